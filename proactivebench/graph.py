"""The episode's state graph and the one breadth-first walk over it (docs/architecture.md §3).

Every question asked of the graph goes through `walk`: which states a turn budget reaches (validation, GRPO's
one example per state), the shortest way to a state with some property (the oracle baseline, few-shot
trajectories), and a builder exploring a scenario's state machine before its states are numbered.

Turns count from 1: the start state is seen on turn 1, and a state seen on turn `max_turns` is not expanded (its
moves would need a turn the budget does not have). Moves are followed in ascending option order, so ties between
equally short paths break towards the lowest option index; every builder of this package stores moves in that
order already.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Hashable, Iterable, Sequence, TypeVar

if TYPE_CHECKING:  # the schema validates through this module, so the import only serves the type checker
    from .schema import State

Node = TypeVar("Node", bound=Hashable)


@dataclass(frozen=True)
class Walk(Generic[Node]):
    """What a breadth-first walk found: every node it saw, in the order it saw them."""

    depth: dict[Node, int]  # node → the turn it is first seen on (the start is turn 1); insertion = discovery order
    parent: dict[Node, tuple[Node, int] | None]  # node → (the node it was reached from, the option taken)
    found: Node | None = None  # the first node that satisfied the walk's `stop_at`, if any

    def path_to(self, node: Node) -> list[Node]:
        """The nodes from the start to `node`, both included."""
        path = [node]
        while (link := self.parent[path[-1]]) is not None:
            path.append(link[0])
        return path[::-1]

    def options_to(self, node: Node) -> list[int]:
        """The options taken from the start to `node`."""
        options = []
        while (link := self.parent[node]) is not None:
            node, option = link
            options.append(option)
        return options[::-1]


def walk(
    start: Node,
    edges: Callable[[Node], Iterable[tuple[int, Node]]],
    max_turns: int,
    stop_at: Callable[[Node], bool] | None = None,
) -> Walk[Node]:
    """Breadth first from `start` within `max_turns` turns; `edges(node)` yields (option, target) in order.

    With `stop_at`, the walk ends at the first node (in breadth-first order) that satisfies it, which is then
    `Walk.found`; nodes are tested when taken from the queue, the start included.
    """
    depth: dict[Node, int] = {start: 1}
    parent: dict[Node, tuple[Node, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if stop_at is not None and stop_at(node):
            return Walk(depth, parent, node)
        if depth[node] >= max_turns:
            continue
        for option, target in edges(node):
            if target not in depth:
                depth[target] = depth[node] + 1
                parent[target] = (node, option)
                queue.append(target)
    return Walk(depth, parent)


@dataclass(frozen=True)
class StateGraph:
    """An episode's states (`EpisodeRecord.states` / the engine's) as a graph of numbered states."""

    states: Sequence[State]

    def edges(self, index: int) -> list[tuple[int, int]]:
        """(option, target state) of each move out of a state, lowest option first."""
        return sorted((move.option, move.to) for move in self.states[index].moves)

    def reachable(self, start: int, max_turns: int) -> list[int]:
        """The states seen within `max_turns` turns from `start`, nearest first, then by index."""
        seen = walk(start, self.edges, max_turns).depth
        return sorted(seen, key=lambda index: (seen[index], index))

    def shortest_path(self, start: int, max_turns: int, predicate: Callable[[State], bool]) -> list[int] | None:
        """The states from `start` to the nearest one satisfying `predicate` within the budget, else None."""
        found = walk(start, self.edges, max_turns, stop_at=lambda index: predicate(self.states[index]))
        return None if found.found is None else found.path_to(found.found)

    def shortest_moves(self, start: int, max_turns: int, predicate: Callable[[State], bool]) -> list[int] | None:
        """The options to take from `start` to the nearest state satisfying `predicate`, else None."""
        found = walk(start, self.edges, max_turns, stop_at=lambda index: predicate(self.states[index]))
        return None if found.found is None else found.options_to(found.found)

    def answer_path(self, start: int, max_turns: int) -> list[int] | None:
        """The states to the nearest one that accepts an answer (the invariant `EpisodeRecord.validate` checks)."""
        return self.shortest_path(start, max_turns, accepts_answer)


def accepts_answer(state: State) -> bool:
    return state.accepts_answer
