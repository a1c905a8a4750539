"""Synthetic clips with known motion for the metric tests: textured pans, zooms, flicker, jitter."""

from __future__ import annotations

import cv2
import numpy as np


def texture(size: int, seed: int = 0, cells: int = 8, low: int = 40, high: int = 215) -> np.ndarray:
    """(size, size, 3) uint8 smooth random colour texture (bicubic-upsampled noise), values in
    [low, high] so that brightness changes never clip."""
    rng = np.random.default_rng(seed)
    grid = rng.random((cells + 3, cells + 3, 3)).astype(np.float32)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    img = (img - img.min()) / (img.max() - img.min())
    return (low + img * (high - low)).round().astype(np.uint8)


def pan_clip(dx: float, dy: float, num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """Content sliding by ``(dx, dy)`` pixels per frame (a camera panning the opposite way)."""
    margin = int(np.ceil(max(abs(dx), abs(dy)) * num_frames)) + 4
    big = texture(size + 2 * margin, seed, cells=8 + 2 * margin * 8 // size)
    frames = []
    for k in range(num_frames):
        m = np.float32([[1, 0, dx * k - margin], [0, 1, dy * k - margin]])  # out(p) = big(p + margin - k * shift)
        frames.append(cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR))
    return np.stack(frames)


def zoom_clip(rate: float, num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """Content scaled about the frame centre by ``rate`` per frame (> 1 = zoom in)."""
    big = texture(2 * size, seed, cells=16)
    frames = []
    c = (size - 1) / 2.0
    for k in range(num_frames):
        s = rate**k
        # frame pixel p shows big at (p - c) / s + (big centre)
        m = np.float32([[s, 0, c - s * (size - 0.5)], [0, s, c - s * (size - 0.5)]])
        frames.append(cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR))
    return np.stack(frames)


def static_clip(num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.repeat(texture(size, seed)[None], num_frames, axis=0)


def flicker_clip(amount: int = 40, num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """A still picture whose odd frames are ``amount`` brighter (no clipping)."""
    frames = static_clip(num_frames, size, seed).astype(np.int16)
    frames[1::2] += amount
    return np.clip(frames, 0, 255).astype(np.uint8)


def jitter_clip(amplitude: float = 3.0, num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """A still picture shaken by a random shift of up to ``amplitude`` px every frame."""
    rng = np.random.default_rng(seed + 1)
    big = texture(size + 16, seed, cells=10)
    frames = []
    for _ in range(num_frames):
        sx, sy = rng.uniform(-amplitude, amplitude, 2)
        m = np.float32([[1, 0, sx - 8], [0, 1, sy - 8]])
        frames.append(cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR))
    return np.stack(frames)
