"""Photograph or flat graphic? One statistic: the entropy of the gradient magnitudes.

A photograph has edges of every strength (texture, noise, soft focus and hard edges), so the
histogram of its gradient magnitudes is broad; vector art and flat wallpapers are mostly flat
colour or smooth gradient with a few hard edges, so their histogram piles up near zero.

The statistic: the Shannon entropy (bits) of the histogram of Sobel gradient magnitudes of the
grey image, measured at ANALYSIS_SIDE pixels on the long side, in 64 bins of width 4 (the last
bin takes everything above). Over the allowed sources, photographs mostly score 3.2-5.6 bits,
flat wallpapers 0-2.5; smooth low-poly renders sit in between. Files under MIN_GRADIENT_ENTROPY are
left out (misty, nearly featureless photographs among them: see docs/data-card.md).
"""

from __future__ import annotations

import cv2
import numpy as np

ANALYSIS_SIDE = 512
MIN_GRADIENT_ENTROPY = 3.0  # bits
MIN_SIDE = 256  # pixels; smaller images cannot fill a 256-pixel clip without upsampling


def gradient_entropy(image: np.ndarray) -> float:
    """Entropy (bits) of the gradient-magnitude histogram of an (H, W, 3) uint8 RGB image."""
    h, w = image.shape[:2]
    scale = ANALYSIS_SIDE / max(h, w)
    if scale < 1:  # never upsample: interpolation would invent smooth gradients
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)  # (h, w), 0..~1443
    bins = np.minimum(magnitude / 4.0, 63).astype(np.int64)
    p = np.bincount(bins.ravel(), minlength=64) / bins.size
    p = p[p > 0]
    return float(max(0.0, -(p * np.log2(p)).sum()))


def exclusion_reason(entropy: float, width: int, height: int, min_entropy: float = MIN_GRADIENT_ENTROPY,
                     min_side: int = MIN_SIDE) -> str | None:
    """Why an image of this size and gradient entropy is not a training photograph, or None."""
    if min(width, height) < min_side:
        return f"too small: {width}x{height} (shorter side under {min_side})"
    if entropy < min_entropy:
        return f"flat graphic: gradient entropy {entropy:.2f} < {min_entropy} bits"
    return None
