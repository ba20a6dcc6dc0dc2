"""Ablations that rewrite an episode row before it is played (a registry: name → row transform).

`invalid-suggestions` (the paper's Fig. 5 / Fig. 20, the reference's random mode, docs/protocol.md §3.10): every
proactive option is replaced by a suggestion from another scenario (e.g. "Rewind the video." on a sketch), and
choosing any of them does what the reference does in random mode: a uniformly random action of the episode's
own action space. In graph terms, per state and option a seeded draw picks one of the episode's own actions;
the option then moves where that action moves from this state, or, where that action has no move here (CIT at
the first frame, a COCO axis already exhausted, the last MVP-N / IN-C / QD turn), ends the episode wrong.
As in the reference's random mode, options are not pruned: every state shows every option, in row order.
COCO differs from the reference in one corner: beyond an exhausted axis the reference keeps cropping, while
our graph has no such state, so that draw ends the episode.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from proactivebench.actions import ACTIONS, is_abstain, parse_action
from proactivebench.seeding import rng_for

# Proactive suggestions per scenario, in the reference's wording (docs/protocol.md §4).
SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "occlusion": ("Move the red blocks to the left.", "Move the red blocks to the right."),
    "temporal_occlusion": ("Rewind the video.", "Wait for the occlusion to disappear."),
    "viewpoint": ("Rotate the object.", "Change the camera angle of the object."),
    "image_quality": ("Denoise the image.", "Increase image resolution.", "Reduce brightness.", "Deblur the image."),
    "details": ("Make this drawing more complete.",),
    "temporal": ("Wait for the object to appear.", "Rewind the video."),
    "camera_movement": (
        "Move the camera to the left.", "Move the camera to the right.", "Move the camera up.",
        "Move the camera down.", "Move farther from the object.",
    ),
}


def _action(text: str) -> str | None:
    return parse_action(text, ACTIONS)


def invalid_suggestions(row: Mapping[str, Any], seed: int = 0) -> dict:
    rng = rng_for(seed, row["sample_id"], hashed=True)
    options = [dict(o) for o in row["options"]]
    proactive = [i for i, o in enumerate(options) if o["kind"] == "proactive"]
    own_actions = sorted({o["action"] for o in options if o["kind"] == "proactive"})
    own_texts = {o["text"] for o in options}
    candidates = sorted(
        {
            text
            for scenario, texts in SUGGESTIONS.items()
            if scenario != row["scenario"]
            for text in texts
            if text not in own_texts and _action(text) not in own_actions and not is_abstain(text)
        }
    )
    if not proactive or not candidates:
        return dict(row)
    picks = rng.sample(candidates, len(proactive)) if len(candidates) >= len(proactive) else [
        rng.choice(candidates) for _ in proactive
    ]
    for index, text in zip(proactive, picks):
        options[index] = {"text": text, "kind": "proactive", "action": _action(text) or "unknown"}

    # The reference draws among its action space's map keys; an episode's own proactive actions stand for it.
    # Only actions that move somewhere in the graph count (IN-C lists four quality options, one of them valid).
    original = row["options"]
    movable = sorted({original[m["option"]]["action"] for s in row["states"] for m in s["moves"]}) or own_actions
    states = []
    for number, state in enumerate(row["states"]):
        by_action = {original[m["option"]]["action"]: m["to"] for m in state["moves"]}
        moves = []
        for index in proactive:
            drawn = movable[rng_for(seed, row["sample_id"], number, index, hashed=True).randrange(len(movable))]
            if drawn in by_action:
                moves.append({"option": index, "to": by_action[drawn]})
        states.append({**state, "shown": list(range(len(options))), "moves": moves})
    return {**row, "options": options, "states": states}


Ablation = Callable[[Mapping[str, Any], int], dict]
ABLATIONS: dict[str, Ablation] = {"invalid-suggestions": invalid_suggestions}


def get_ablation(name: str | None) -> Ablation | None:
    if not name:
        return None
    try:
        return ABLATIONS[name]
    except KeyError:
        raise ValueError(f"unknown ablation {name!r}; expected one of {', '.join(ABLATIONS)}") from None
