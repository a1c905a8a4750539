"""Stable Video Diffusion backend on a tiny seeded SVD folder."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.svd import motion_bucket_id
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import probe_video
from i2v.registry import resolve_model

from ..tiny_components import sidecar

FAST = dict(num_inference_steps=2, seed=0, height=16, width=16, num_frames=3)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("svd"), device="cpu")


def test_folder_is_detected_with_its_own_defaults(tiny_folder):
    spec = resolve_model(tiny_folder("svd"))
    assert spec.family == "svd" and not spec.defaults.uses_prompt
    assert (spec.defaults.num_frames, spec.defaults.fps) == (4, 7.0)  # unet.num_frames; SVD's native 7 fps


def test_cli_writes_native_fps_and_says_the_prompt_is_not_used(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "svd.mp4"
    code = main(["generate", str(square_image), "-m", tiny_folder("svd"), "-p", "a cat walks left",
                 "--num-frames", "3", "--height", "16", "--width", "16", "--num-inference-steps", "2", "--seed", "1",
                 "--motion-strength", "0.8", "--decode-chunk-size", "2", "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "takes no text" in err and "NOT used" in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (3, 16, 16, 7)
    meta = sidecar(out)
    assert meta["prompt_used"] is False and meta["motion_bucket_id"] == motion_bucket_id(0.8) == 203
    assert (meta["fps_conditioning"], meta["noise_aug_strength"], meta["decode_chunk_size"]) == (7, 0.02, 2)
    assert (meta["min_guidance_scale"], meta["max_guidance_scale"]) == (1.0, 3.0)


def test_motion_strength_maps_onto_motion_buckets(gen, square_image):
    assert (motion_bucket_id(0.0), motion_bucket_id(0.5), motion_bucket_id(1.0)) == (0, 127, 254)
    notices: list[str] = []
    s = gen.backend.resolve(GenerationRequest(image=square_image, seed=0), notices)
    assert s.extras["motion_bucket_id"] == 127 and s.extras["prompt_used"] is False
    assert not any("takes no text" in n for n in notices)  # no prompt, nothing to warn about
    with pytest.raises(InvalidRequestError, match=r"\[0, 1\]"):
        gen.backend.resolve(GenerationRequest(image=square_image, motion_strength=1.5, seed=0), [])


def test_motion_strength_and_decode_chunks_reach_the_pipeline(gen, square_image):
    base = gen.run(GenerationRequest(image=square_image, **FAST))
    assert base.frames.shape == (3, 16, 16, 3) and base.settings["decode_chunk_size"] == 3
    moved = gen.run(GenerationRequest(image=square_image, motion_strength=1.0, **FAST))
    assert moved.settings["motion_bucket_id"] == 254 and not np.array_equal(base.frames, moved.frames)
    # the temporal decoder mixes frames within a chunk: one frame at a time is a (valid) different decode
    chunked = gen.run(GenerationRequest(image=square_image, decode_chunk_size=1, **FAST))
    assert chunked.settings["decode_chunk_size"] == 1 and chunked.frames.shape == base.frames.shape
    assert not np.array_equal(base.frames, chunked.frames)


def test_orientation_follows_the_image(portrait_image):
    gen = ImageToVideoGenerator("svd-xt", device="cpu")
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert (s.height, s.width, s.num_frames, s.fps) == (1024, 576, 25, 7.0)


def test_svd_refuses_options_it_cannot_honour(tiny_folder):
    with pytest.raises(InvalidRequestError, match="decode-chunk-size"):
        ImageToVideoGenerator(tiny_folder("svd"), device="cpu", vae_tiling=True)
    # LoRAs load onto the U-Net (tests/training/test_finetune.py); a missing file is named before loading
    with pytest.raises(InvalidRequestError, match="x.safetensors"):
        ImageToVideoGenerator(tiny_folder("svd"), device="cpu", loras=["x.safetensors"])


def test_non_finite_latents_stop_the_run(tiny_folder, square_image):
    """The step callback checks the latents: a U-Net that outputs NaN (broken weights, simulated) stops the
    run with a typed error instead of a black clip."""
    import torch

    from i2v.errors import NonFiniteError

    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu")
    unet = gen.backend.pipeline.unet
    real_forward = unet.forward

    def nan_forward(*args, **kwargs):
        out = real_forward(*args, **kwargs)
        if isinstance(out, tuple):
            return (torch.full_like(out[0], float("nan")),) + out[1:]
        out.sample = torch.full_like(out.sample, float("nan"))
        return out

    unet.forward = nan_forward
    try:
        with pytest.raises(NonFiniteError, match="NaN or infinite at denoising step 1"):
            gen.run(GenerationRequest(image=square_image, num_frames=3, height=16, width=16, num_inference_steps=2,
                                      seed=0))
    finally:
        del unet.forward
