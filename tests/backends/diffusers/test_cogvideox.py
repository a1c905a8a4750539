"""CogVideoX image-to-video backend on a tiny seeded CogVideoX 1.0-style folder (learned positions)."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.errors import InvalidRequestError
from i2v.cli import main
from i2v.registry import MODELS, resolve_model
from i2v.io.video import probe_video

from ..tiny_components import sidecar


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("cogvideox"), device="cpu")


def test_folder_defaults_come_from_the_transformer(tiny_folder):
    d = resolve_model(tiny_folder("cogvideox")).defaults
    # sample_height/width 2 latents x 8 = 16 px, sample_frames 9, learned positions -> one size only
    assert (d.height, d.width, d.num_frames, d.max_frames, d.fps, d.size_policy) == (16, 16, 9, 9, 8.0, "fixed")
    assert (d.frame_step, d.frame_offset) == (8, 1)


def test_cli_default_run_writes_8_fps(tiny_folder, portrait_image, tmp_path, capsys):
    out = tmp_path / "cog.webm"
    assert main(["generate", str(portrait_image), "-m", tiny_folder("cogvideox"), "-p", "the green square moves up",
                 "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (9, 16, 16, 8)
    meta = sidecar(out)
    assert meta["use_dynamic_cfg"] is True and meta["max_sequence_length"] == 16 and meta["prompt_used"] is True


def test_frames_snap_to_8n_plus_1_and_size_is_fixed(gen, square_image):
    notices: list[str] = []
    s = gen.backend.resolve(GenerationRequest(image=square_image, num_frames=6, seed=0), notices)
    assert s.num_frames == 9 and any("8n+1" in n for n in notices)
    with pytest.raises(InvalidRequestError, match="only generates 16x16"):
        gen.backend.resolve(GenerationRequest(image=square_image, height=32, width=32, seed=0), [])
    with pytest.raises(InvalidRequestError, match="at most 9"):
        gen.backend.resolve(GenerationRequest(image=square_image, num_frames=17, seed=0), [])


def test_prompt_and_negative_prompt_reach_the_model(gen, square_image):
    kw = dict(image=square_image, num_inference_steps=2, seed=3)
    a = gen.run(GenerationRequest(prompt="the red square moves left", **kw)).frames
    b = gen.run(GenerationRequest(prompt="the red square moves left", negative_prompt="blurry static", **kw)).frames
    assert a.shape == (9, 16, 16, 3) and not np.array_equal(a, b)


def test_vae_tiling_and_slicing_keep_the_output(tiny_folder, gen, square_image):
    kw = dict(image=square_image, prompt="x", num_inference_steps=2, seed=1)
    plain = gen.run(GenerationRequest(**kw)).frames
    tiled = ImageToVideoGenerator(tiny_folder("cogvideox"), device="cpu", vae_tiling=True,
                                  vae_slicing=True).run(GenerationRequest(**kw)).frames
    np.testing.assert_array_equal(plain, tiled)  # 16x16 is below one tile: the switch must not disturb it


def test_cogvideox_15_resolves_by_orientation(portrait_image):
    spec = MODELS["cogvideox1.5-5b-i2v"]
    s = ImageToVideoGenerator(spec.name, device="cpu").backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert (s.height, s.width, s.num_frames, s.fps) == (1360, 768, 81, 16.0)


def test_video_to_video_runs_the_schedules_tail(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("cogvideox"), device="cpu")
    video = np.random.default_rng(0).integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    calls, seen = [], []
    hook = gen.backend.pipeline.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["timestep"].flatten()[0].item()), with_kwargs=True)
    result = gen.run(GenerationRequest(image=square_image, prompt="x", init_video=video, strength=0.5, seed=0,
                                       num_frames=9, height=16, width=16, num_inference_steps=4),
                     callback=lambda s, t: calls.append((s, t)))
    hook.remove()
    assert result.frames.shape == (9, 16, 16, 3) and result.settings["denoising_steps"] == 2
    assert calls == [(1, 2), (2, 2)]
    full = type(gen.backend.pipeline.scheduler).from_config(gen.backend.pipeline.scheduler.config)
    full.set_timesteps(4)
    assert sorted(set(seen), reverse=True) == [int(t) for t in full.timesteps[2:]]  # the schedule's last two steps


def test_video_to_video_is_refused_on_cogvideox_1_5_before_loading(square_image):
    from i2v.registry import backend_class, resolve_model

    spec = resolve_model("cogvideox1.5-5b-i2v")
    with pytest.raises(InvalidRequestError, match="runs on CogVideoX 1.0"):
        backend_class(spec.family).resolve_for(spec, GenerationRequest(image=square_image,
                                                                       init_video=np.zeros((9, 16, 16, 3), np.uint8)), [])
