"""SSIM, first-frame fidelity and drift against the input image, on known inputs."""

import math

import numpy as np
import pytest
from PIL import Image

from i2v.world.scenes import render, sample_scene
from i2v.metrics import fidelity_drift, first_frame_fidelity, ssim
from i2v.metrics.first_frame import fit_to_video

from .synthetic import pan_clip, texture

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def test_ssim_identical_is_one_and_constant_images_have_the_closed_form():
    img = texture(32)
    assert ssim(img, img) == 1.0
    # two flat images: no variance, so SSIM is the luminance term alone
    a = np.full((24, 24, 3), 100, np.uint8)
    b = np.full((24, 24, 3), 150, np.uint8)
    expected = (2 * 100 * 150 + C1) / (100**2 + 150**2 + C1)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert ssim(b, a) == pytest.approx(expected, abs=1e-9)


def test_ssim_falls_with_noise_and_is_symmetric():
    rng = np.random.default_rng(0)
    img = texture(48)
    scores = []
    for sigma in (2, 10, 40):
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
        scores.append(ssim(img, noisy))
        assert ssim(noisy, img) == pytest.approx(scores[-1], abs=1e-12)
    assert 1.0 > scores[0] > scores[1] > scores[2] > -1.0
    assert ssim(img, 255 - img) < 0.0  # inverted structure: anti-correlated
    with pytest.raises(ValueError, match="equal shapes"):
        ssim(img, img[:10])
    with pytest.raises(TypeError, match="uint8"):
        ssim(img.astype(np.float32), img)


def test_exact_first_frame_is_inf_and_one():
    frames = pan_clip(2.0, 0.0)
    fid = first_frame_fidelity(frames, frames[0])
    assert fid == {"psnr": math.inf, "ssim": 1.0}
    assert first_frame_fidelity(frames, Image.fromarray(frames[0]))["ssim"] == 1.0
    # an input twice the video's size is resized (as generation fits it) before comparing
    big = np.asarray(Image.fromarray(frames[0]).resize((128, 128), Image.BICUBIC))
    assert fit_to_video(big, 64, 64).shape == (64, 64, 3)
    resized = first_frame_fidelity(frames, big)
    assert resized["psnr"] > 30.0 and resized["ssim"] > 0.95


def test_drift_curve_of_a_pan_falls_and_of_a_still_copy_stays_exact():
    frames = render(sample_scene(5, motion="pan_right"), size=64)
    drift = fidelity_drift(frames, frames[0])
    assert len(drift["psnr"]) == len(drift["ssim"]) == len(frames)
    assert drift["psnr"][0] == math.inf and drift["ssim"][0] == 1.0
    assert drift["psnr"][-1] < drift["psnr"][1] and drift["ssim"][-1] < drift["ssim"][1]
    still = np.repeat(frames[:1], 6, axis=0)
    assert fidelity_drift(still, frames[0]) == {"psnr": [math.inf] * 6, "ssim": [1.0] * 6}


def test_an_image_of_another_aspect_is_centre_cropped_like_generation():
    """Generation fits the image by cover + centre-crop (i2v.io.images.fit_image), not by stretching:
    a wider image whose centre is frame 0 is a perfect first frame."""
    from i2v.io.images import fit_image

    frames = pan_clip(2.0, 0.0)  # (T, 64, 64, 3)
    wide = np.zeros((64, 96, 3), np.uint8)  # same height, 16 px of other content on each side
    wide[:, :16], wide[:, -16:] = 255, 30
    wide[:, 16:80] = frames[0]
    assert np.array_equal(fit_to_video(wide, 64, 64), frames[0])
    assert first_frame_fidelity(frames, wide) == {"psnr": math.inf, "ssim": 1.0}
    assert fidelity_drift(frames, Image.fromarray(wide))["psnr"][0] == math.inf
    # with a resize too: the reference is exactly what generation would have been given
    tall = np.asarray(Image.fromarray(texture(48)).resize((48, 80)))
    fitted = np.asarray(fit_image(tall, 32, 32)[0])
    assert np.array_equal(fit_to_video(tall, 32, 32), fitted)
