"""The state graph's one walk (proactivebench/graph.py): cycles, unreachable states, turn budgets, tie-breaks."""

import pytest

from proactivebench.graph import StateGraph, accepts_answer, walk
from proactivebench.schema import Move, State


def state(*moves: tuple[int, int], accepts: bool = False, frame: int = 0) -> State:
    return State(frame=frame, shown=sorted({option for option, _ in moves}), moves=[Move(o, t) for o, t in moves],
                 accepts_answer=accepts)


# 0 → 1 → 2 → 0 (a cycle, like ROD's wrap-around), 2 → 3; 4 is never reached; only 3 and 4 accept an answer.
CYCLE = StateGraph([state((0, 1)), state((0, 2)), state((0, 0), (1, 3)), state(accepts=True), state(accepts=True)])


def test_reachable_follows_the_budget_and_terminates_on_a_cycle():
    assert CYCLE.reachable(0, 1) == [0]
    assert CYCLE.reachable(0, 2) == [0, 1]
    assert CYCLE.reachable(0, 3) == [0, 1, 2]
    assert CYCLE.reachable(0, 4) == [0, 1, 2, 3]
    assert CYCLE.reachable(0, 100) == [0, 1, 2, 3]  # the cycle back to 0 adds nothing; 4 stays unreachable
    assert CYCLE.reachable(2, 2) == [2, 0, 3]  # nearest first, then by index


def test_shortest_path_within_the_budget_or_none():
    assert CYCLE.answer_path(0, 3) is None  # state 3 is seen on turn 4
    assert CYCLE.answer_path(0, 4) == [0, 1, 2, 3]
    assert CYCLE.shortest_moves(0, 4, accepts_answer) == [0, 0, 1]
    assert CYCLE.answer_path(3, 1) == [3]  # the start itself counts, even with a one-turn budget
    assert CYCLE.shortest_moves(3, 1, accepts_answer) == []
    assert CYCLE.shortest_path(1, 100, lambda s: s is CYCLE.states[4]) is None  # unreachable however long


def test_ties_break_towards_the_lowest_option_whatever_the_stored_order():
    # Options 2 and 1 both lead, in one move, to a state that accepts; moves stored highest option first.
    graph = StateGraph([state((2, 1), (1, 2)), state(accepts=True, frame=1), state(accepts=True, frame=2)])
    assert graph.edges(0) == [(1, 2), (2, 1)]
    assert graph.shortest_moves(0, 2, accepts_answer) == [1]
    assert graph.answer_path(0, 2) == [0, 2]
    assert graph.reachable(0, 2) == [0, 1, 2]


def test_walk_over_an_implicit_graph_records_discovery_order_depths_and_parents():
    # Keys are any hashable: here integers where n moves to n + 1 (option 0) and 2n (option 1).
    seen = walk(1, lambda n: [(0, n + 1), (1, 2 * n)], max_turns=3)
    assert list(seen.depth) == [1, 2, 3, 4]  # 2 is found twice (1 + 1 and 2 * 1): first by option 0
    assert seen.depth == {1: 1, 2: 2, 3: 3, 4: 3}
    assert seen.parent[4] == (2, 1) and seen.options_to(4) == [0, 1] and seen.path_to(4) == [1, 2, 4]
    assert seen.found is None
    stopped = walk(1, lambda n: [(0, n + 1), (1, 2 * n)], max_turns=10, stop_at=lambda n: n == 8)
    assert stopped.found == 8 and stopped.path_to(8) == [1, 2, 4, 8]


@pytest.mark.parametrize("budget", [1, 2, 5])
def test_nodes_on_the_last_turn_are_seen_but_not_expanded(budget):
    expanded = []

    def edges(n):
        expanded.append(n)
        return [(0, n + 1)]

    seen = walk(0, edges, budget)
    assert list(seen.depth) == list(range(budget))
    assert expanded == list(range(budget - 1))
