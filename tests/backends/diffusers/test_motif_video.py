"""Motif-Video backend on a tiny seeded MotifVideoImage2VideoPipeline folder.

The registered model's defaults come from diffusers' Motif-Video docs and Motif Technologies' own
workflows (see the module docstring of ``i2v.backends.diffusers.motif_video``); the folder here is
built by ``tests/backends/tiny_motif_video.py`` the way diffusers' own fast test builds its pipeline.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import load_backend
from i2v.cli import main
from i2v.io.video import read_metadata, read_video
from i2v.registry import MODELS, resolve_model

from ..tiny_components import psnr
from ..tiny_motif_video import GUIDANCE_SCALE, SHIFT

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("motif_video"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST)).frames


def copy_as(folder: str, dest, class_name: str | None = None, edits: dict | None = None) -> str:
    """A copy of ``folder``, optionally saved as another pipeline class or with some JSON configs changed."""
    shutil.copytree(folder, dest)
    if class_name is not None:
        index = json.loads((dest / "model_index.json").read_text())
        (dest / "model_index.json").write_text(json.dumps({**index, "_class_name": class_name}))
    for name, values in (edits or {}).items():
        file = dest / name
        file.write_text(json.dumps({**json.loads(file.read_text()), **values}))
    return str(dest)


def block_calls(gen) -> list[int]:
    """How often the transformer's last single-stream block really runs (its attention)."""
    calls = [0]
    gen.backend.pipeline.transformer.single_transformer_blocks[-1].attn.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- the registry and folders ----------------------------------------------------------------------


def test_the_registered_model_has_the_documented_defaults():
    spec = MODELS["motif-video-2b"]
    d, e = spec.defaults, spec.extras
    assert spec.family == "motif_video" and spec.source == "Motif-Technologies/Motif-Video-2B"
    assert resolve_model(spec.source) is spec
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (121, 736, 1280, 24.0,
                                                                                                 50, 8.0)
    assert (d.frame_rule, d.frame_step, d.frame_offset, d.size_multiple, d.size_policy) == ("4n+1", 4, 1, 16,
                                                                                             "default")
    assert (e["shift"], e["dtype"], e["max_sequence_length"]) == (8.0, "bf16", 512)
    assert e["negative_prompt"] == "worst quality, inconsistent motion, blurry, jittery, distorted"


def test_the_pipeline_class_is_exported_from_diffusers():
    import diffusers

    assert diffusers.MotifVideoImage2VideoPipeline.__name__ == "MotifVideoImage2VideoPipeline"


def test_the_folder_is_recognised_with_its_own_defaults(tiny_folder, tmp_path):
    spec = resolve_model(tiny_folder("motif_video"))
    d = spec.defaults
    assert spec.family == "motif_video" and spec.description == "local MotifVideoImage2VideoPipeline folder"
    assert (d.num_frames, d.frame_rule, d.frame_step, d.fps, d.num_inference_steps) == (121, "4n+1", 4, 24.0, 50)
    assert (d.guidance_scale, d.size_multiple, d.height, d.width) == (GUIDANCE_SCALE, 16, 736, 1280)
    assert spec.extras["shift"] == SHIFT and spec.extras["guider_original_formulation"] is False
    edited = resolve_model(copy_as(tiny_folder("motif_video"), tmp_path / "edited", edits={
        "guider/guider_config.json": {"guidance_scale": 8.0, "use_original_formulation": True},
        "scheduler/scheduler_config.json": {"shift": 8.0}}))
    assert (edited.defaults.guidance_scale, edited.extras["shift"], edited.extras["guider_original_formulation"]) == (
        8.0, 8.0, True)


def test_a_folder_saved_as_the_text_to_video_class_runs_image_to_video(tiny_folder, square_image, base_frames,
                                                                       tmp_path):
    """The hub repository is saved as MotifVideoPipeline: the same components, loaded into the I2V class."""
    folder = copy_as(tiny_folder("motif_video"), tmp_path / "t2v", "MotifVideoPipeline")
    assert resolve_model(folder).family == "motif_video"
    gen = ImageToVideoGenerator(folder, device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert type(gen.backend.pipeline).__name__ == "MotifVideoImage2VideoPipeline"
    assert np.array_equal(result.frames, base_frames)


# -- the command line and the Python API ----------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_python_api_is_reproducible_reports_progress_and_routes_the_prompt(gen, square_image, base_frames):
    steps: list[tuple[int, int]] = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (9, 32, 32, 3) and result.frames.dtype == np.uint8
    assert np.array_equal(result.frames, base_frames)  # same seed, same frames
    assert steps == [(1, 2), (2, 2)] and {"encode", "denoise", "decode"} <= set(result.timings)
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model


def test_the_image_conditions_the_video(gen, tmp_path):
    frames = []
    for seed in (0, 1):
        image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8))
        image.save(tmp_path / f"{seed}.png")
        frames.append(gen.run(GenerationRequest(image=tmp_path / f"{seed}.png", prompt=PROMPT, **FAST)).frames)
    assert not np.array_equal(frames[0], frames[1])


def test_guidance_goes_to_the_guider(gen, square_image, base_frames):
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, negative_prompt="blurry",
                                       guidance_scale=1.0, **FAST))
    assert gen.backend.pipeline.guider.guidance_scale == 1.0
    assert type(gen.backend.pipeline.guider).__name__ == "AdaptiveProjectedGuidance"  # the folder's guider, kept
    assert result.settings["negative_prompt_used"] is False
    assert any("does not use a negative prompt" in n for n in result.notices)
    assert not np.array_equal(result.frames, base_frames)
    again = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))  # back to the folder's 7.5
    assert gen.backend.pipeline.guider.guidance_scale == GUIDANCE_SCALE
    assert np.array_equal(again.frames, base_frames)


def test_the_models_shift_is_set_on_the_scheduler(tiny_folder, square_image):
    spec = resolve_model(tiny_folder("motif_video"))
    backend = load_backend(replace(spec, extras={**spec.extras, "shift": 8.0}), "cpu")
    settings = backend.resolve(GenerationRequest(image=square_image, prompt=PROMPT, **FAST), [])
    image = Image.open(square_image).convert("RGB").resize((32, 32))
    frames = backend.generate(settings, image, None, {}, False)
    assert frames.shape == (9, 32, 32, 3)
    assert backend.pipeline.scheduler.config.shift == 8.0 and settings.extras["shift"] == 8.0


def test_a_longer_video_and_another_aspect_ratio(gen, square_image):
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 17,
                                                                            "height": 32, "width": 64}))
    assert result.frames.shape == (17, 32, 64, 3)


# -- refusals before any weights load -------------------------------------------------------------


# (the requests, LoRAs and caches refused, and the dry run: test_families_common.py)


def test_first_block_cache_really_fails_on_the_ddt_decoder_blocks(tiny_folder, square_image):
    """Why fbcache is refused: diffusers' First Block Cache, applied anyway, fails on this architecture."""
    from i2v.acceleration import Acceleration, apply_acceleration

    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_folder("motif_video"), use_safetensors=True)
    apply_acceleration(pipe, Acceleration(cache="fbcache"), "cpu")
    image = Image.open(square_image).convert("RGB").resize((32, 32))
    with pytest.raises(RuntimeError, match="must match the size"), torch.inference_mode():
        pipe(image=image, prompt=PROMPT, height=32, width=32, num_frames=9, num_inference_steps=2)


# -- speed and memory switches ----------------------------------------------------------------------

MANY_STEPS = {**FAST, "num_inference_steps": 12}


@pytest.fixture(scope="module")
def many_steps_plain(tiny_folder, square_image):
    plain = ImageToVideoGenerator(tiny_folder("motif_video"), device="cpu")
    calls = block_calls(plain)
    frames = plain.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS)).frames
    return frames, calls[0]


@pytest.mark.parametrize("cache", ["pab", "taylorseer"])
def test_the_listed_caches_run_and_stay_close(tiny_folder, square_image, many_steps_plain, cache):
    plain, _ = many_steps_plain
    result = ImageToVideoGenerator(tiny_folder("motif_video"), device="cpu", cache=cache).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert result.settings["acceleration"] == {"cache": cache} and result.frames.shape == plain.shape
    assert not np.array_equal(result.frames, plain) and psnr(result.frames, plain) > 30


def test_magcache_calibrates_and_skips_blocks(tiny_folder, square_image, many_steps_plain, tmp_path):
    plain, plain_calls = many_steps_plain
    folder = copy_as(tiny_folder("motif_video"), tmp_path / "motif")
    assert main(["calibrate-cache", "--model", folder, "--image", str(square_image), "--prompt", PROMPT,
                 "--num-inference-steps", "12", "--num-frames", "9", "--height", "32", "--width", "32"]) == 0
    assert len(json.loads((tmp_path / "motif" / "i2v_magcache.json").read_text())["ratios"]) == 12
    gen = ImageToVideoGenerator(folder, device="cpu", cache="magcache")
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert calls[0] < plain_calls and psnr(result.frames, plain) > 25


def test_the_speed_profile_runs_pab(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("motif_video"), device="cpu", profile="speed")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert result.settings["acceleration"]["cache"] == "pab" and result.frames.shape == (9, 32, 32, 3)


def test_group_offload_keeps_the_text_encoder_whole_and_changes_nothing(tiny_folder, square_image, base_frames):
    gen = ImageToVideoGenerator(tiny_folder("motif_video"), device="cpu", offload="group")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    pipe = gen.backend.pipeline
    assert "text_encoder" in pipe._exclude_from_cpu_offload
    assert getattr(pipe.text_encoder, "_diffusers_hook", None) is None  # no leaf-level hooks on T5Gemma2 / SigLIP
    assert getattr(pipe.transformer, "_diffusers_hook", None) is not None
    assert np.array_equal(result.frames, base_frames)


# -- parity with the stock diffusers pipeline ------------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image, pipe) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it (the same branch
    ``tests/backends/diffusers/test_parity.py`` takes for this family): guidance is the guider's."""
    pipe.guider = pipe.guider.new(guidance_scale=s["guidance_scale"])
    return dict(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"] if s["negative_prompt_used"]
                else None, height=s["height"], width=s["width"], num_frames=s["num_frames"],
                num_inference_steps=s["num_inference_steps"], max_sequence_length=s["max_sequence_length"])


@pytest.mark.parametrize("frames, height, width", [(9, 32, 32), (17, 32, 48)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, frames, height, width):
    from diffusers import DiffusionPipeline

    folder = tiny_folder("motif_video")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated, no video codec between
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out)]) == 0
    s = read_metadata(out)
    ours, _ = read_video(out)

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe.scheduler).__name__ == s["scheduler"] and pipe.scheduler.config.shift == s["shift"]
    kwargs = stock_kwargs(s, image, pipe)
    with torch.inference_mode():
        result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
