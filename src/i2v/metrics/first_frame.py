"""How faithfully a clip keeps its conditioning image: SSIM, first-frame fidelity, drift curves.

An image-to-video model is asked to start from the input image, so frame 0 should reproduce
it (PSNR, SSIM against the image fitted to the video), and the later frames show how far the
clip drifts from it over time (one PSNR and SSIM per frame). Pure functions over uint8 frames
``(T, H, W, 3)``; the image is ``(H, W, 3)`` uint8 or a PIL image, fitted to the video's size
exactly as generation fits it (``i2v.io.images.fit_image``: cover, then centre-crop), so that an
image of another aspect ratio is compared with the part of it the model was given (as
``fidelity.first_frame_psnr`` does).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..io.images import fit_image
from .fidelity import psnr

# Wang, Bovik, Sheikh & Simoncelli 2004: 11-tap Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _as_image(x, name: str) -> np.ndarray:
    if isinstance(x, Image.Image):
        return np.asarray(x.convert("RGB"))
    arr = np.asarray(x)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 (0..255), got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be shaped (H, W) or (H, W, C), got {arr.shape}")
    return arr


def _as_video(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def fit_to_video(image, height: int, width: int) -> np.ndarray:
    """The input image as ``(height, width, 3)`` uint8, fitted as generation fits it
    (``i2v.io.images.fit_image``: resize to cover, then centre-crop; unchanged when sizes match)."""
    img = _as_image(image, "image")
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image must be shaped (H, W, 3), got {img.shape}")
    if img.shape[:2] != (height, width):
        img = np.asarray(fit_image(Image.fromarray(img), width, height)[0])
    return img


def ssim(a, b) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 images of the same shape.

    Gaussian-weighted local statistics (sigma 1.5, 11 taps, reflected borders), constants
    ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, population (not sample) variances; the
    SSIM map is averaged away from a 5-pixel border and over channels. This is the recipe of
    ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``. Identical images give 1.0.
    """
    a, b = _as_image(a, "a"), _as_image(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        return 1.0
    x = a.astype(np.float64).reshape(a.shape[0], a.shape[1], -1)
    y = b.astype(np.float64).reshape(x.shape)
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    k = 2 * SSIM_RADIUS + 1

    def blur(z: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(z, (k, k), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)
        return out.reshape(z.shape)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    r = SSIM_RADIUS
    if ssim_map.shape[0] > 2 * r and ssim_map.shape[1] > 2 * r:
        ssim_map = ssim_map[r:-r, r:-r]
    return float(ssim_map.mean())


def fidelity_drift(frames, image) -> dict[str, list[float]]:
    """PSNR (dB; ``inf`` where identical) and SSIM of every frame against the input image:
    ``{"psnr": [T floats], "ssim": [T floats]}``. Entry 0 is the first-frame fidelity."""
    frames = _as_video(frames)
    img = fit_to_video(image, *frames.shape[1:3])
    return {"psnr": [psnr(f, img) for f in frames], "ssim": [ssim(f, img) for f in frames]}


def first_frame_fidelity(frames, image) -> dict[str, float]:
    """``{"psnr": dB, "ssim": ...}`` of frame 0 against the input image (``inf`` / 1.0 if exact)."""
    frames = _as_video(frames)
    img = fit_to_video(image, *frames.shape[1:3])
    return {"psnr": psnr(frames[0], img), "ssim": ssim(frames[0], img)}
