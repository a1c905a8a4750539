"""PSNR, first-frame PSNR and VBench temporal flicker on known inputs."""

import math

import numpy as np
import pytest
from PIL import Image

from i2v.world.scenes import render, sample_scene
from i2v.metrics import first_frame_psnr, psnr, temporal_flicker


def test_psnr_identical_is_inf():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(img, img) == float("inf")


@pytest.mark.parametrize("sigma", [1, 5, 20])
def test_psnr_matches_closed_form_for_known_noise(sigma):
    # +/- sigma on a checkerboard: the MSE is exactly sigma^2
    a = np.full((16, 16, 3), 128, dtype=np.uint8)
    sign = np.where((np.indices((16, 16)).sum(0) % 2)[..., None] == 0, 1, -1)
    b = (a.astype(int) + sigma * sign).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / sigma**2), abs=1e-9)
    assert psnr(b, a) == pytest.approx(psnr(a, b))


def test_psnr_rejects_bad_inputs():
    a = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((8, 9, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        psnr(a.astype(np.float32), a)


def test_first_frame_psnr_identical_resized_and_pil():
    frames = render(sample_scene(3, motion="move_left"))
    assert first_frame_psnr(frames, frames[0]) == float("inf")
    assert first_frame_psnr(frames, Image.fromarray(frames[0])) == float("inf")
    # an input twice the video's size is resized (as generation fits it) before comparing
    big = np.asarray(Image.fromarray(frames[0]).resize((256, 256), Image.BICUBIC))
    assert first_frame_psnr(frames, big) > 28.0
    # a different image scores low
    assert first_frame_psnr(frames, 255 - frames[0]) < 15.0


def test_first_frame_psnr_centre_crops_an_image_of_another_aspect():
    """Generation covers + centre-crops the image (i2v.io.images.fit_image); the metric compares the same
    crop, so a wider image whose centre is frame 0 scores inf (stretching it would not)."""
    frames = render(sample_scene(3, motion="move_left"))  # (T, 128, 128, 3)
    h, w = frames.shape[1:3]
    wide = np.zeros((h, w + 64, 3), np.uint8)
    wide[:, :32] = 255
    wide[:, 32:32 + w] = frames[0]
    assert first_frame_psnr(frames, wide) == float("inf")
    assert first_frame_psnr(frames, Image.fromarray(wide)) == float("inf")


def test_flicker_static_is_one_and_flashing_is_low():
    frames = render(sample_scene(4, motion="static"))
    static = np.repeat(frames[:1], len(frames), axis=0)
    assert temporal_flicker(static) == 1.0
    assert temporal_flicker(static[:1]) == 1.0
    flashing = static.astype(int)
    flashing[1::2] += 40  # alternate frames brightened by 40
    flashing = np.clip(flashing, 0, 255).astype(np.uint8)
    assert temporal_flicker(flashing) < 0.95


def test_flicker_closed_form():
    base = np.full((4, 8, 8, 3), 100, dtype=np.uint8)
    base[1::2] += 40  # every step changes every pixel by exactly 40
    assert temporal_flicker(base) == pytest.approx((255 - 40) / 255)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        temporal_flicker(base[0])
