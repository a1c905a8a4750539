"""HunyuanVideo 1.5 I2V backend on a tiny seeded HunyuanVideo15ImageToVideoPipeline folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import check_request, load_backend
from i2v.backends.diffusers.hunyuan15 import closest_bucket, crop_sizes, pipeline_size
from i2v.cli import main
from i2v.io.video import read_metadata, read_video
from i2v.registry import backend_class, resolve_model

from ..tiny_hunyuan15 import GUIDANCE_SCALE, TARGET_SIZE

FAST = dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("hunyuan15"), device="cpu")


@pytest.fixture(scope="module")
def base(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))


def edited_copy(folder: str, dest, edits: dict) -> str:
    """A copy of ``folder`` with some JSON configs changed: ``{"guider/guider_config.json": {...}}``."""
    shutil.copytree(folder, dest)
    for name, values in edits.items():
        file = dest / name
        file.write_text(json.dumps({**json.loads(file.read_text()), **values}))
    return str(dest)


# -- defaults -----------------------------------------------------------------------------------


def test_registered_models_and_their_card_defaults():
    models = {s.name: s for s in backend_class("hunyuan15").family.models}
    expected = {  # name: (hub variant, steps, guidance, shift, height, width)
        "hunyuanvideo-1.5-i2v-480p": ("480p_i2v", 50, 6.0, 5.0, 480, 848),
        "hunyuanvideo-1.5-i2v-720p": ("720p_i2v", 50, 6.0, 7.0, 720, 1280),
        "hunyuanvideo-1.5-i2v-480p-distilled": ("480p_i2v_distilled", 50, 1.0, 5.0, 480, 848),
        "hunyuanvideo-1.5-i2v-720p-distilled": ("720p_i2v_distilled", 50, 1.0, 7.0, 720, 1280),
        "hunyuanvideo-1.5-i2v-480p-step-distilled": ("480p_i2v_step_distilled", 12, 1.0, 7.0, 480, 848),
    }
    assert set(models) == set(expected)
    for name, (variant, steps, guidance, shift, height, width) in expected.items():
        spec, d = models[name], models[name].defaults
        assert spec.source == f"hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-{variant}"
        assert resolve_model(spec.source) is spec  # the hub id names the registered model
        assert (d.num_frames, d.frame_rule, d.fps, d.num_inference_steps, d.guidance_scale) == (121, "4n+1", 24.0,
                                                                                                steps, guidance)
        assert (d.height, d.width, d.size_multiple, spec.extras["shift"], spec.extras["dtype"]) == (
            height, width, 16, shift, "bf16")


def test_folder_is_recognised_with_its_own_defaults(tiny_folder):
    spec = resolve_model(tiny_folder("hunyuan15"))
    d = spec.defaults
    assert spec.family == "hunyuan15"
    assert (d.num_frames, d.frame_rule, d.frame_step, d.fps, d.num_inference_steps) == (121, "4n+1", 4, 24.0, 50)
    assert (d.guidance_scale, d.size_multiple, d.height, d.width) == (GUIDANCE_SCALE, 4, 24, 40)  # its 16:9 bucket
    assert spec.extras["target_size"] == TARGET_SIZE and spec.extras["shift"] == 5.0
    assert spec.extras["cfg_distilled"] is False


def test_a_distilled_folder_takes_its_guider_and_meanflow_defaults(tiny_folder, tmp_path):
    distilled = edited_copy(tiny_folder("hunyuan15"), tmp_path / "step-distilled", {
        "guider/guider_config.json": {"guidance_scale": 1.0},
        "transformer/config.json": {"use_meanflow": True, "target_size": 64},
        "scheduler/scheduler_config.json": {"shift": 7.0},
    })
    spec = resolve_model(distilled)
    assert (spec.defaults.guidance_scale, spec.defaults.num_inference_steps) == (1.0, 12)
    assert spec.extras["shift"] == 7.0 and spec.extras["cfg_distilled"] is True
    assert (spec.defaults.height, spec.defaults.width) == pipeline_size(9, 16, 64, 4)


# -- sizes: the pipeline's buckets ---------------------------------------------------------------


@pytest.mark.parametrize("target,stride", [(640, 16), (960, 16), (TARGET_SIZE, 4)])
def test_buckets_are_the_pipelines(target, stride):
    """i2v's pure-Python buckets are diffusers' (no numpy or diffusers at resolve time), and the size
    i2v resolves is one the pipeline keeps when given an image of that size."""
    from diffusers.pipelines.hunyuan_video1_5.image_processor import (HunyuanVideo15ImageProcessor,
                                                                      generate_crop_size_list)

    assert crop_sizes(target, stride) == [tuple(s) for s in generate_crop_size_list(target, stride)]
    processor = HunyuanVideo15ImageProcessor(vae_scale_factor=stride)
    rng = np.random.default_rng(0)
    sides = rng.integers(8, 4 * target, (200, 2)).tolist() + [[9, 16], [16, 9], [1, 1], [3, 4], [1, 5], [5, 1]]
    for h, w in sides:
        ours = closest_bucket(h, w, target, stride)
        assert ours == tuple(int(x) for x in processor.calculate_default_height_width(h, w, target))
        kept = pipeline_size(h, w, target, stride)
        assert tuple(int(x) for x in processor.calculate_default_height_width(*kept, target)) == kept


def test_registered_sizes_snap_to_the_models_buckets(portrait_image):
    spec, cls = resolve_model("hunyuanvideo-1.5-i2v-720p"), backend_class("hunyuan15")
    notices = check_request(spec, GenerationRequest(image=portrait_image, seed=0))
    assert any("size 736x1216 chosen for the 60x100 input" in n for n in notices)  # the 3:5 bucket of 960x960 px
    notices = []
    settings = cls.resolve_for(spec, GenerationRequest(image=portrait_image, seed=0, height=480, width=848), notices)
    # its own pixel area at the asked aspect ratio: the pipeline's pick (720x1264) would not be kept for an
    # image of that size, so the nearest kept bucket
    assert (settings.height, settings.width) == (720, 1280) and any("snapped to 1280x720" in n for n in notices)


# -- generating ----------------------------------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_api_runs_with_progress_and_is_deterministic(gen, square_image, base):
    steps = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (5, 32, 32, 3) and result.frames.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]  # the step callback runs after each scheduler step
    assert {"encode", "denoise", "decode"} <= set(result.timings)
    assert np.array_equal(result.frames, base.frames)  # same seed, same settings
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base.frames)  # the prompt reaches the model


def test_sizes_are_the_buckets_the_pipeline_keeps(gen, portrait_image):
    result = gen.run(GenerationRequest(image=portrait_image, prompt=PROMPT, num_inference_steps=2, seed=0,
                                       num_frames=5))
    assert result.frames.shape == (5, 36, 24, 3)  # 60x100 -> the 2:3 bucket, generated as resolved
    assert any("size 24x36 chosen for the 60x100 input" in n for n in result.notices)
    # 32x40: the pipeline's pick, 28x32, is cropped to another bucket when given an image of its own size;
    # the nearest bucket it keeps is 28x36
    result = gen.run(GenerationRequest(image=portrait_image, prompt=PROMPT, num_inference_steps=2, seed=0,
                                       num_frames=5, height=40, width=32))
    assert result.frames.shape == (5, 36, 28, 3) and any("snapped to 28x36" in n for n in result.notices)


def test_guidance_goes_to_the_guider(gen, square_image, base):
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, negative_prompt="blurry",
                                       guidance_scale=1.0, **FAST))
    assert gen.backend.pipeline.guider.guidance_scale == 1.0
    assert result.settings["negative_prompt_used"] is False
    assert any("does not use a negative prompt" in n for n in result.notices)
    assert not np.array_equal(result.frames, base.frames)
    again = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))  # back to the default 6.0
    assert gen.backend.pipeline.guider.guidance_scale == GUIDANCE_SCALE
    assert np.array_equal(again.frames, base.frames)


def test_the_models_shift_is_set_on_the_scheduler(tiny_folder, square_image):
    spec = resolve_model(tiny_folder("hunyuan15"))
    backend = load_backend(replace(spec, extras={**spec.extras, "shift": 7.0}), "cpu")
    settings = backend.resolve(GenerationRequest(image=square_image, prompt=PROMPT, **FAST), [])
    image = Image.open(square_image).convert("RGB").resize((32, 32))
    frames = backend.generate(settings, image, None, {}, False)
    assert frames.shape == (5, 32, 32, 3)
    assert backend.pipeline.scheduler.config.shift == 7.0 and settings.extras["shift"] == 7.0


@pytest.mark.parametrize("cache", ["pab", "taylorseer"])
def test_the_listed_caches_run(tiny_folder, square_image, cache):
    fast = {**FAST, "num_inference_steps": 4}
    folder = tiny_folder("hunyuan15")
    plain = ImageToVideoGenerator(folder, device="cpu").run(GenerationRequest(image=square_image, prompt=PROMPT,
                                                                              **fast))
    result = ImageToVideoGenerator(folder, device="cpu", cache=cache).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **fast))
    assert result.settings["acceleration"] == {"cache": cache} and result.frames.shape == plain.frames.shape
    mse = np.mean((result.frames.astype(float) - plain.frames.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255.0 ** 2 / mse) > 25


# -- refusals before any weights load -------------------------------------------------------------


# (the requests, LoRAs and caches refused: test_families_common.py)


# -- parity: i2v changes nothing ---------------------------------------------------------------------


@pytest.mark.parametrize("frames,height,width", [(5, 32, 32), (5, 36, 24)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, frames, height, width):
    """``i2v generate`` equals the stock pipeline called directly with the sidecar's settings (the
    guidance set on its guider, as diffusers' docs do), on a square and a portrait bucket."""
    from diffusers import DiffusionPipeline

    folder = tiny_folder("hunyuan15")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out)]) == 0
    s = read_metadata(out)
    ours, _ = read_video(out)

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe.scheduler).__name__ == s["scheduler"] and pipe.scheduler.config.shift == s["shift"]
    pipe.guider = pipe.guider.new(guidance_scale=s["guidance_scale"])
    with torch.inference_mode():
        result = pipe(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None,
                      num_frames=s["num_frames"], num_inference_steps=s["num_inference_steps"],
                      generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
