"""Captions of camera moves over photos: training adds camera-work words; held-out are the world's held-out."""

from __future__ import annotations

import numpy as np
import pytest

from i2v.world.captions import all_heldout_words
from i2v.world.photos.camera import CAMERA_MOTIONS
from i2v.world.photos.captions import caption_camera


@pytest.mark.parametrize("kind", CAMERA_MOTIONS)
def test_captions_name_the_motion(kind):
    rng = np.random.default_rng(0)
    train = {caption_camera(kind, rng, "train") for _ in range(200)}
    held = {caption_camera(kind, rng, "heldout") for _ in range(50)}
    assert train and held and not (train & held)  # no held-out phrasing is a training phrasing
    words = {"pan_left": "left", "pan_right": "right", "pan_up": "up", "pan_down": "down"}
    if kind in words:
        assert all(words[kind] in c or "top" in c or "bottom" in c for c in train | held)


def test_camera_work_vocabulary_in_training_only():
    rng = np.random.default_rng(1)
    tilts = [caption_camera("pan_up", rng, "train", p_camera_work=1.0) for _ in range(20)]
    assert any("tilt" in c for c in tilts)
    pushes = {caption_camera("zoom_in", rng, "train", p_camera_work=1.0) for _ in range(50)}
    assert any("push in" in c or "dolly" in c for c in pushes)
    held = " ".join(caption_camera(k, rng, "heldout") for k in CAMERA_MOTIONS for _ in range(20))
    assert "tilt" not in held and "truck" not in held
    assert all_heldout_words()  # the world's held-out words exist for the paraphrase check


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown camera motion"):
        caption_camera("move_left", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown split"):
        caption_camera("static", np.random.default_rng(0), "validation")
