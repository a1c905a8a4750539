"""Captions of camera moves over photographs: the shapes world's camera phrasings, plus the
vocabulary of camera work (tilt, truck, dolly, push in, pull back) in training captions.

The held-out phrasings are the shapes world's held-out camera phrasings, so a benchmark on
photos asks for moves in words the model was not trained on, as the shapes benchmark does.
"""

from __future__ import annotations

import numpy as np

from ..captions import MOVE_VERBS, PAN_WORDS, SPLITS, TEMPLATES, _pick
from ..scenes import CAMERA_PANS
from .camera import CAMERA_MOTIONS, STATIC

# Training phrasings of camera work, by motion. Pans up/down are tilts; pans left/right trucks.
CAMERA_WORK: dict[str, list[str]] = {
    "pan_left": ["the camera trucks {dir}", "a tracking shot to the left", "the camera slides {dir}",
                 "the camera tracks {dir}"],
    "pan_right": ["the camera trucks {dir}", "a tracking shot to the right", "the camera slides {dir}",
                  "the camera tracks {dir}"],
    "pan_up": ["the camera tilts {dir}", "a tilt {dir}", "the camera tilts {dir} slowly", "the camera cranes {dir}"],
    "pan_down": ["the camera tilts {dir}", "a tilt {dir}", "the camera tilts {dir} slowly", "the camera cranes {dir}"],
    "zoom_in": ["push in", "a slow push in", "the camera dollies forward", "dolly in", "zoom into the picture"],
    "zoom_out": ["pull back", "a slow pull back", "the camera dollies backward", "dolly out",
                 "zoom out of the picture"],
    STATIC: ["a locked-off shot", "the camera holds still", "a still frame of the photo", "the picture does not move"],
}


def caption_camera(kind: str, rng: np.random.Generator, split: str = "train", p_camera_work: float = 0.3) -> str:
    """A caption asking for camera motion ``kind`` (a key of ``CAMERA_MOTIONS``) in ``split``'s phrasings."""
    if kind not in CAMERA_MOTIONS:
        raise ValueError(f"unknown camera motion {kind!r}; expected one of {CAMERA_MOTIONS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    heldout = split == "heldout"
    words: dict[str, str] = {}
    if kind in CAMERA_PANS:
        key = "pan"
        words["dir"] = _pick(rng, PAN_WORDS[kind], split)
    else:
        key = kind
    if not heldout and p_camera_work and rng.random() < p_camera_work:
        return str(rng.choice(CAMERA_WORK[kind])).format(**words)
    if key != STATIC and not heldout:
        words["verb"] = _pick(rng, MOVE_VERBS, split)
    template = str(rng.choice(TEMPLATES[key][1 if heldout else 0]))
    return template.format(**words)
