import numpy as np
import pytest

from i2v.world.photos.procedural import PROCEDURAL_IMAGES, fractal_noise, procedural_image

KINDS = sorted(PROCEDURAL_IMAGES)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_per_seed_with_the_right_shape(kind):
    a = procedural_image(kind, 7, 96, 160)
    assert a.shape == (96, 160, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, procedural_image(kind, 7, 96, 160))
    assert not np.array_equal(a, procedural_image(kind, 8, 96, 160))


@pytest.mark.parametrize("kind", KINDS)
def test_statistics_are_not_trivial(kind):
    for seed in range(3):
        img = procedural_image(kind, seed, 128, 128)
        assert img.std() > 12  # not flat
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 2000  # many colours, not a palette graphic
        assert 20 < img.mean() < 235  # not blown out


def test_kinds_with_the_same_seed_differ():
    images = [procedural_image(kind, 3, 64, 64) for kind in KINDS]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])


def _spectral_slope(grey: np.ndarray) -> float:
    """Slope of log radial amplitude vs log frequency (natural images: about -1)."""
    h, w = grey.shape
    amp = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean())))
    y, x = np.indices(amp.shape)
    r = np.hypot(x - w // 2, y - h // 2).astype(int)
    radial = np.bincount(r.ravel(), amp.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    f = np.arange(4, min(h, w) // 3)  # skip the lowest and the noisiest frequencies
    return float(np.polyfit(np.log(f), np.log(radial[f]), 1)[0])


@pytest.mark.parametrize("kind", ["fractal_noise", "dead_leaves"])
def test_amplitude_spectrum_falls_like_a_photographs(kind):
    slopes = [_spectral_slope(procedural_image(kind, s, 256, 256).mean(axis=2)) for s in range(3)]
    assert all(-1.8 < s < -0.6 for s in slopes), slopes


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown procedural image"):
        procedural_image("clouds", 0, 8, 8)


def test_odd_sizes():
    assert fractal_noise(0, 33, 17).shape == (33, 17, 3)
