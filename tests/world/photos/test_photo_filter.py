import numpy as np

from i2v.world.photos.photo_filter import MIN_GRADIENT_ENTROPY, exclusion_reason, gradient_entropy
from i2v.world.photos.procedural import dead_leaves, fractal_noise


def test_flat_graphics_score_low_and_natural_images_high():
    flat = np.zeros((300, 400, 3), np.uint8)
    flat[:] = (20, 120, 200)
    flat[100:200, 50:250] = (250, 250, 250)
    assert gradient_entropy(flat) < 1.0
    ramp = np.repeat(np.linspace(0, 255, 400)[None, :, None], 300, 0).repeat(3, 2).astype(np.uint8)
    assert gradient_entropy(ramp) < 1.0  # a smooth gradient is not texture
    for image in (fractal_noise(0, 300, 400), dead_leaves(0, 300, 400)):
        assert gradient_entropy(image) > MIN_GRADIENT_ENTROPY + 1


def test_large_images_are_measured_at_the_analysis_size():
    small = fractal_noise(3, 256, 256)
    big = np.kron(small, np.ones((4, 4, 1), np.uint8))  # 1024 px, the same picture
    assert abs(gradient_entropy(big) - gradient_entropy(small)) < 0.6


def test_exclusion_reasons():
    assert exclusion_reason(5.0, 640, 480) is None
    assert exclusion_reason(1.2, 640, 480).startswith("flat graphic")
    assert exclusion_reason(5.0, 200, 480).startswith("too small")
