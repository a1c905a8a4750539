"""Procedural images with the statistics of natural images, as pure functions of (seed, height, width).

Photographs share a few statistics that flat graphics lack: occluding objects at every scale, an
amplitude spectrum falling as about 1/f, texture everywhere. These generators reproduce them, so
training can draw unlimited photo-like backdrops besides the few real photographs:

- ``dead_leaves``: occluding discs, ellipses and rectangles with a power-law size distribution
  (p(r) ~ r^-3, the scale-invariant "dead leaves" model of Matheron; Lee, Mumford & Huang 2001).
- ``fractal_noise``: colour fields with a 1/f^alpha amplitude spectrum, alpha near 1.
- ``warped_texture``: stripes, checkers or rings whose coordinates are bent by smooth noise.

Each returns (H, W, 3) uint8 and is deterministic: same (seed, height, width) -> same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

_SHIFT = 4  # cv2 drawing with 4 fractional bits: sub-pixel positions and radii
_ONE = 1 << _SHIFT


def _rng(seed: int, tag: int) -> np.random.Generator:
    """A generator per (seed, image kind), so kinds sharing a seed do not share random numbers."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFF, tag])


def _power_law_field(rng: np.random.Generator, height: int, width: int, alpha: float) -> np.ndarray:
    """(H, W) float64 Gaussian field with a 1/f^alpha amplitude spectrum, zero mean and unit std."""
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx * fx + fy * fy)  # (H, W//2+1) cycles per pixel
    f[0, 0] = 1.0 / max(height, width)  # the mean is removed below; avoid dividing by zero
    field = np.fft.irfft2(np.fft.rfft2(white) * f ** -alpha, s=(height, width))
    field -= field.mean()
    return field / (field.std() + 1e-12)


def _palette(rng: np.random.Generator, k: int) -> np.ndarray:
    """(k, 3) float colours drawn around one random mean, as a scene's colours are correlated."""
    mean = rng.uniform(60, 190, size=3)
    return np.clip(mean + rng.normal(0, 55, size=(k, 3)), 0, 255)


def _grain(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Add sensor-like noise to an (H, W, 3) float image and quantise to uint8."""
    noisy = image + rng.normal(0.0, sigma, size=image.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


# ---- dead leaves ---------------------------------------------------------------------------------
def dead_leaves(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: occluding shapes whose radii follow p(r) ~ r^-3 between r_min and r_max."""
    rng = _rng(seed, 1)
    r_min, r_max = max(1.0, min(height, width) / 200), 0.4 * min(height, width)
    # Enough leaves to cover the canvas ~4 times over (E[r^2] of the truncated r^-3 law)
    mean_r2 = 2 * math.log(r_max / r_min) / (r_min**-2 - r_max**-2)
    count = min(20_000, math.ceil(4 * height * width / (math.pi * mean_r2)))
    palette = _palette(rng, int(rng.integers(4, 9)))

    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = palette[0].astype(np.uint8)
    u = rng.random(count)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5  # inverse CDF of p(r) ~ r^-3
    centres = rng.uniform((-0.1 * width, -0.1 * height), (1.1 * width, 1.1 * height), size=(count, 2))
    kinds = rng.choice(3, size=count, p=(0.6, 0.25, 0.15))  # disc, ellipse, rectangle
    colours = np.clip(palette[rng.integers(len(palette), size=count)] + rng.normal(0, 18, (count, 3)), 0, 255)
    aspects = rng.uniform(0.35, 1.0, size=count)
    angles = rng.uniform(0, 180, size=count)
    for r, (cx, cy), kind, colour, aspect, angle in zip(radii, centres, kinds, colours, aspects, angles, strict=True):
        c = tuple(float(v) for v in colour)
        centre = (round(cx * _ONE), round(cy * _ONE))
        if kind == 0:
            cv2.circle(canvas, centre, round(r * _ONE), c, -1, cv2.LINE_AA, _SHIFT)
        elif kind == 1:
            axes = (round(r * _ONE), round(r * aspect * _ONE))
            cv2.ellipse(canvas, centre, axes, float(angle), 0, 360, c, -1, cv2.LINE_AA, _SHIFT)
        else:
            box = cv2.boxPoints(((float(cx), float(cy)), (2 * r, 2 * r * aspect), float(angle)))  # (4, 2)
            cv2.fillConvexPoly(canvas, np.round(box * _ONE).astype(np.int32), c, cv2.LINE_AA, _SHIFT)
    return _grain(rng, canvas.astype(np.float64), 2.0)


# ---- 1/f colour noise ---------------------------------------------------------------------------
def fractal_noise(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: a luminance and two colour-opponent 1/f^alpha fields mixed into RGB."""
    rng = _rng(seed, 2)
    alpha = rng.uniform(0.9, 1.3)  # natural images: amplitude ~ 1/f^1 (power ~ 1/f^2)
    luminance = _power_law_field(rng, height, width, alpha)
    # colour varies more smoothly than brightness in photographs
    opponent = [_power_law_field(rng, height, width, alpha + 0.4) for _ in range(2)]
    grey = np.ones(3) / math.sqrt(3)
    # two unit colour directions orthogonal to grey (a random opponent-colour basis)
    chroma = np.linalg.qr(np.column_stack([grey, rng.normal(size=(3, 2))]))[0][:, 1:]  # (3, 2)
    base = rng.uniform(80, 170, size=3)
    image = (base + rng.uniform(35, 55) * luminance[..., None]  # same change in R, G and B
             + rng.uniform(10, 30) * opponent[0][..., None] * chroma[:, 0]
             + rng.uniform(10, 30) * opponent[1][..., None] * chroma[:, 1])  # (H, W, 3)
    return _grain(rng, image, 1.5)


# ---- warped textures ----------------------------------------------------------------------------
TEXTURE_PATTERNS = ("stripes", "checker", "rings")


def warped_texture(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: stripes, a checker or rings, bent by smooth noise, in two colours with grain."""
    rng = _rng(seed, 3)
    pattern = TEXTURE_PATTERNS[int(rng.integers(len(TEXTURE_PATTERNS)))]
    period = rng.uniform(0.04, 0.15) * min(height, width)  # pixels
    warp = rng.uniform(0.2, 1.2) * period
    theta = rng.uniform(0, math.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u = x * math.cos(theta) + y * math.sin(theta) + warp * _power_law_field(rng, height, width, 2.0)
    v = -x * math.sin(theta) + y * math.cos(theta) + warp * _power_law_field(rng, height, width, 2.0)
    if pattern == "stripes":
        wave = np.sin(2 * math.pi * u / period)
    elif pattern == "checker":
        wave = np.sin(2 * math.pi * u / period) * np.sin(2 * math.pi * v / period)
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        wave = np.sin(2 * math.pi * (np.hypot(x - cx, y - cy) + u - u.mean()) / period)
    sharpness = rng.uniform(1.0, 6.0)  # soft waves to nearly hard edges
    mix = (np.tanh(sharpness * wave) / math.tanh(sharpness) + 1) / 2  # (H, W) in [0, 1]
    a, b = _palette(rng, 2)
    # slow shading across the image, as lighting varies over a real surface
    shade = 1 + 0.15 * _power_law_field(rng, height, width, 2.5)
    image = (a * (1 - mix[..., None]) + b * mix[..., None]) * shade[..., None]
    return _grain(rng, image, 3.0)


PROCEDURAL_IMAGES: dict[str, Callable[[int, int, int], np.ndarray]] = {
    "dead_leaves": dead_leaves,
    "fractal_noise": fractal_noise,
    "warped_texture": warped_texture,
}


def procedural_image(kind: str, seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 image of one of PROCEDURAL_IMAGES."""
    if kind not in PROCEDURAL_IMAGES:
        raise ValueError(f"unknown procedural image {kind!r}; expected one of {sorted(PROCEDURAL_IMAGES)}")
    return PROCEDURAL_IMAGES[kind](seed, height, width)
