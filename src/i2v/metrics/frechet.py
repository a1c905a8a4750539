"""Fréchet distance between Gaussians fitted to feature sets (FID / FVD), without scipy.

``d^2 = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})`` (Dowson & Landau 1982; FID,
Heusel et al. 2017; FVD, Unterthiner et al. 2018). ``Tr (S_1 S_2)^{1/2}`` is computed as
``Tr (S_1^{1/2} S_2 S_1^{1/2})^{1/2}``: the two matrices are similar, and the second one is
symmetric positive semi-definite, so two symmetric eigendecompositions (``numpy.linalg.eigh``)
give it exactly, with no complex parts to discard as ``scipy.linalg.sqrtm`` produces.
"""

from __future__ import annotations

import numpy as np


def sqrtm_psd(matrix) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix (eigh; eigenvalues
    below 0 from round-off are clipped to 0). Float64 ``(D, D)``."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {m.shape}")
    m = 0.5 * (m + m.T)
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """``Tr (sigma1 sigma2)^{1/2}`` for symmetric PSD ``sigma1, sigma2``."""
    root = sqrtm_psd(sigma1)
    inner = root @ np.asarray(sigma2, dtype=np.float64) @ root
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    This is the number FID and FVD report (they do not take the square root). Never negative:
    tiny negative round-off is returned as 0.0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(d2, 0.0)


def gaussian_stats(features, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of ``(N, D)`` features.

    ``ddof=0`` (divide by N) is what StyleGAN-V's FVD uses (its ``FeatureStats``); pytorch-fid
    and ``np.cov`` use ``ddof=1``.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 1:
        raise ValueError(f"features must be shaped (N, D) with N >= 1, got {f.shape}")
    mu = f.mean(0)
    centred = f - mu
    denom = len(f) - ddof
    if denom <= 0:
        raise ValueError(f"need more than {ddof} feature vectors for ddof={ddof}, got {len(f)}")
    return mu, centred.T @ centred / denom


def frechet_distance_from_features(features1, features2, ddof: int = 0) -> float:
    """``frechet_distance`` of Gaussians fitted to two ``(N, D)`` feature sets."""
    mu1, s1 = gaussian_stats(features1, ddof)
    mu2, s2 = gaussian_stats(features2, ddof)
    return frechet_distance(mu1, s1, mu2, s2)
