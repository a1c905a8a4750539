"""Training batches from photographs and procedural images, as a pure function of a seed.

A user's photo reaches the model downscaled to the frame size (128 or 256 pixels on its short
side), so a crop of a frame is a window of the photo at some scale, resized. ``photo_crops`` draws
windows at log-uniform scales, from a few pixels per output pixel to nearly 1:1, so that the
autoencoder sees both the fine texture of a close crop and the dense detail of a whole
downscaled photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from .procedural import PROCEDURAL_IMAGES, procedural_image
from .store import MANIFEST, load_rgb

# A window covers at least this fraction of the photo's short side at the coarsest scale.
MAX_WINDOW_FRACTION = 0.9


def load_photos(folder: str | Path, split: str = "train", max_side: int = 1024) -> list[np.ndarray]:
    """The ``split`` photos of a gathered folder (``make photos``) as (H, W, 3) uint8 arrays,
    downscaled to ``max_side`` (frames are 128-256 pixels: finer detail is never seen)."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    files = [folder / entry["file"] for entry in manifest["images"] if entry["split"] == split]
    if not files:
        raise FileNotFoundError(f"{folder}: no {split} photos in {MANIFEST}; run `make photos` first")
    return [load_rgb(path, max_side=max_side)[0] for path in sorted(files)]


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """N x (H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def random_window(rng: np.random.Generator, photo: np.ndarray, crop: int) -> np.ndarray:
    """(crop, crop, 3) uint8: a square window of ``photo`` at a log-uniform scale, area-resampled."""
    h, w = photo.shape[:2]
    short = min(h, w)
    side = int(np.exp(rng.uniform(np.log(crop), np.log(max(crop, MAX_WINDOW_FRACTION * short)))))
    side = min(side, short)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    window = photo[top:top + side, left:left + side]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    return cv2.resize(np.ascontiguousarray(window), (crop, crop), interpolation=cv2.INTER_AREA)


def photo_crops(rng: np.random.Generator, photos: list[np.ndarray], n: int, crop: int) -> torch.Tensor:
    """(n, 3, crop, crop) in [-1, 1]: windows of random photos at random scales."""
    picks = rng.integers(0, len(photos), size=n)
    return to_tensor([random_window(rng, photos[int(i)], crop) for i in picks])


def procedural_crops(rng: np.random.Generator, n: int, crop: int) -> torch.Tensor:
    """(n, 3, crop, crop) in [-1, 1]: procedural images (dead leaves, 1/f noise, textures), each
    rendered at 1-4x the crop and area-resampled, like a downscaled photo."""
    kinds = sorted(PROCEDURAL_IMAGES)
    images = []
    for _ in range(n):
        kind = kinds[int(rng.integers(len(kinds)))]
        side = int(crop * rng.uniform(1.0, 4.0))
        image = procedural_image(kind, int(rng.integers(2**31)), side, side)
        images.append(cv2.resize(image, (crop, crop), interpolation=cv2.INTER_AREA))
    return to_tensor(images)
