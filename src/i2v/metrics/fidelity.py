"""Frame fidelity metrics: PSNR, first-frame PSNR against the input image, temporal flicker.

Pure functions over uint8 frames shaped ``(T, H, W, 3)`` (images ``(H, W, 3)``), the frame
convention of ``i2v.io.video``. Nothing here needs a model.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..io.images import fit_image


def _as_uint8(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 (0..255), got dtype {arr.dtype}")
    return arr


def _as_video(frames) -> np.ndarray:
    frames = _as_uint8(frames, "frames")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    return frames


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays of the same shape (peak 255).

    ``10 log10(255^2 / MSE)``; identical inputs give ``float('inf')``.
    """
    a, b = _as_uint8(a, "a"), _as_uint8(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(255.0**2 / mse)


def _to_rgb_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = _as_uint8(image, "image")
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"image must be shaped (H, W, 3), got {arr.shape}")
    return arr


def first_frame_psnr(frames, image) -> float:
    """PSNR of the video's first frame against the conditioning image.

    ``image`` is an ``(H, W, 3)`` uint8 array or a PIL image; when the sizes differ it is fitted to
    the video as generation fits it (``i2v.io.images.fit_image``: resize to cover, then centre-crop),
    so an image of another aspect ratio is compared with the part the model was given.
    """
    frames = _as_video(frames)
    img = _to_rgb_array(image)
    h, w = frames.shape[1:3]
    if img.shape[:2] != (h, w):
        img = np.asarray(fit_image(Image.fromarray(img), w, h)[0])
    return psnr(frames[0], img)


def temporal_flicker(frames) -> float:
    """VBench temporal-flickering score: ``(255 - mean_t mean_pixels |I_{t+1} - I_t|) / 255``.

    1.0 means no change between consecutive frames; lower means more frame-to-frame change.
    VBench computes it on static-camera clips (its "temporal flickering" prompts), where any
    frame-to-frame difference is flicker; on clips with real motion it also counts the motion,
    so compare it only across the same kind of clip. A single frame scores 1.0.
    """
    frames = _as_video(frames).astype(np.float32)
    if len(frames) < 2:
        return 1.0
    # mean over pixels and channels per step, then over steps (equal-sized frames: one mean)
    mad = float(np.mean(np.abs(frames[1:] - frames[:-1])))
    return (255.0 - mad) / 255.0
