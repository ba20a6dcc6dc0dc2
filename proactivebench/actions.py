"""Proactive actions and the reference's substring map from option text to action (docs/protocol.md §2, §3.6)."""

from __future__ import annotations

ACTIONS = (
    "stop", "left", "right", "rewind", "forward", "rotate", "brightness", "contrast", "saturate", "blur",
    "noise", "jpeg_compression", "pixelate", "artifacts", "details", "up", "down", "zoom",
)

# Insertion order matters: the first key found in the lower-cased option text wins.
ACTION_MAP: dict[str, str] = {
    "to the left": "left",
    "to the right": "right",
    "rewind the video.": "rewind",
    "wait for the": "forward",
    "rotate": "rotate",
    "view": "rotate",
    "angle": "rotate",
    "orientation": "rotate",
    "different": "rotate",
    "brightness": "brightness",
    "contrast": "contrast",
    "saturation": "saturate",
    "deblur": "blur",
    "denoise": "noise",
    "compression": "jpeg_compression",
    "resolution": "pixelate",
    "artifacts": "artifacts",
    "details": "details",
    "quickdraw": "details",
    "drawing": "details",
    "sketch": "details",
    "up": "up",
    "down": "down",
    "farther": "zoom",
}

ABSTAIN_MARKERS = ("cannot", "do not")


def is_abstain(option_text: str) -> bool:
    """The reference's rule: an option is an abstain option when it says "cannot" or "do not"."""
    lowered = option_text.lower()
    return any(marker in lowered for marker in ABSTAIN_MARKERS)


def parse_action(option_text: str, action_space: tuple[str, ...]) -> str | None:
    """The action an option asks for, within a scenario's action space; None when no key matches.

    Unlike the reference, a second matching key is not an error (it crashed QuickDraw options such as
    "Add more details to the drawing.", docs/protocol.md §10.9): the first key in map order wins.
    """
    lowered = option_text.lower()
    for key, action in ACTION_MAP.items():
        if action in action_space and key in lowered:
            return action
    return None
