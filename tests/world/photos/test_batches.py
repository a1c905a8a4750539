"""Photo and procedural crops for the autoencoder: shapes, ranges, determinism per seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from i2v.world.photos.batches import load_photos, photo_crops, procedural_crops, random_window
from i2v.world.photos.procedural import fractal_noise


def test_crops_are_deterministic_per_seed_and_in_range():
    photos = [fractal_noise(0, 300, 400), fractal_noise(1, 200, 500)]
    a = photo_crops(np.random.default_rng(3), photos, 5, 32)
    b = photo_crops(np.random.default_rng(3), photos, 5, 32)
    assert a.shape == (5, 3, 32, 32) and bool((a == b).all())
    assert a.min() >= -1 and a.max() <= 1 and a.std() > 0.05
    p = procedural_crops(np.random.default_rng(4), 3, 32)
    assert p.shape == (3, 3, 32, 32) and bool((p == procedural_crops(np.random.default_rng(4), 3, 32)).all())


def test_windows_span_scales():
    """A window is a view of the photo at some scale: a tiny smooth gradient photo shows a wider
    range of values in coarse windows than in fine ones."""
    ramp = np.tile(np.linspace(0, 255, 1024).astype(np.uint8)[None, :, None], (1024, 1, 3))
    spans = [np.ptp(random_window(np.random.default_rng(s), ramp, 16)[..., 0].astype(int)) for s in range(200)]
    assert min(spans) < 10 and max(spans) > 150


def test_load_photos_reads_the_split(tmp_path):
    images = []
    for i, split in enumerate(["train", "heldout"]):
        (tmp_path / split).mkdir()
        Image.fromarray(fractal_noise(i, 64, 64)).save(tmp_path / split / f"{i}.png")
        images.append({"file": f"{split}/{i}.png", "split": split})
    (tmp_path / "manifest.json").write_text(json.dumps({"images": images}))
    assert len(load_photos(tmp_path, "train")) == 1 and load_photos(tmp_path, "train")[0].shape == (64, 64, 3)
    with pytest.raises(FileNotFoundError, match="make photos"):
        load_photos(tmp_path, "validation")
