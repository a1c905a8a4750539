"""Fréchet distance without scipy, against closed forms for Gaussians."""

import numpy as np
import pytest

from i2v.metrics import frechet_distance, frechet_distance_from_features, gaussian_stats, sqrtm_psd
from i2v.metrics.frechet import trace_sqrt_product


def _random_psd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T


def _rotation(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_diagonal_covariances_match_the_closed_form():
    # d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 when both covariances are diagonal
    rng = np.random.default_rng(0)
    d = 7
    a, b = rng.uniform(0.1, 4.0, d), rng.uniform(0.1, 4.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # the same pair seen in a rotated basis (commuting covariances) has the same distance
    q = _rotation(rng, d)
    rotated = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_one_dimensional_and_identical_gaussians():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    rng = np.random.default_rng(1)
    s = _random_psd(rng, 5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_trace_sqrt_of_non_commuting_product_matches_its_eigenvalues():
    # Tr (S1 S2)^(1/2) = sum sqrt(eig(S1 S2)): S1 S2 is similar to a PSD matrix
    rng = np.random.default_rng(2)
    for d, rank in [(4, None), (6, None), (6, 3)]:
        s1, s2 = _random_psd(rng, d, rank), _random_psd(rng, d)
        eig = np.linalg.eigvals(s1 @ s2)
        expected = np.sqrt(np.clip(eig.real, 0, None)).sum()
        assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-7, abs=1e-7)
        assert trace_sqrt_product(s2, s1) == pytest.approx(expected, rel=1e-7, abs=1e-7)
        d12 = frechet_distance(np.zeros(d), s1, np.ones(d), s2)
        assert d12 >= 0.0 and d12 == pytest.approx(frechet_distance(np.ones(d), s2, np.zeros(d), s1), rel=1e-9)


def test_sqrtm_psd_squares_back_including_singular_matrices():
    rng = np.random.default_rng(3)
    for rank in (None, 2):
        s = _random_psd(rng, 5, rank)
        r = sqrtm_psd(s)
        np.testing.assert_allclose(r @ r, s, atol=1e-9)
        np.testing.assert_allclose(r, r.T, atol=1e-12)
    with pytest.raises(ValueError, match="square"):
        sqrtm_psd(np.zeros((2, 3)))


def test_stats_and_distance_from_features():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(50, 3))
    mu, cov = gaussian_stats(f)  # population covariance, as StyleGAN-V's FVD
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(cov, np.cov(f, rowvar=False, ddof=0))
    np.testing.assert_allclose(gaussian_stats(f, ddof=1)[1], np.cov(f, rowvar=False))
    assert frechet_distance_from_features(f, f) == pytest.approx(0.0, abs=1e-9)
    # shifting every feature by v moves only the mean: d^2 = |v|^2
    v = np.array([1.0, -2.0, 0.5])
    assert frechet_distance_from_features(f, f + v) == pytest.approx(v @ v, rel=1e-9)
    # scaling by k: d^2 = |mu|^2 (k-1)^2 + (k-1)^2 Tr(S)
    k = 3.0
    expected = (k - 1) ** 2 * (mu @ mu + np.trace(cov))
    assert frechet_distance_from_features(f, k * f) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="mismatch"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
