"""Kandinsky 5.0 I2V backend on a tiny seeded Kandinsky5I2VPipeline folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import check_request
from i2v.backends.diffusers.kandinsky5 import NEGATIVE, NO_CACHE, rope_scale
from i2v.cli import main
from i2v.io.video import read_metadata, read_video
from i2v.registry import backend_class, resolve_model

from ..tiny_components import save_random_lora
from ..tiny_kandinsky5 import SHIFT, build_kandinsky5

FAST = dict(num_inference_steps=2, seed=0, num_frames=17, height=32, width=32)  # 17: the fewest frames it runs
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("kandinsky5"), device="cpu")


@pytest.fixture(scope="module")
def base(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))


def edited_copy(folder: str, dest, edits: dict) -> str:
    """A copy of ``folder`` with some JSON configs changed: ``{"transformer/config.json": {...}}``."""
    shutil.copytree(folder, dest)
    for name, values in edits.items():
        file = dest / name
        file.write_text(json.dumps({**json.loads(file.read_text()), **values}))
    return str(dest)


# -- defaults -----------------------------------------------------------------------------------


def test_registered_models_and_their_card_defaults():
    models = {s.name: s for s in backend_class("kandinsky5").family.models}
    expected = {  # name: (hub id, steps, guidance)
        "kandinsky-5.0-i2v-lite-5s": ("kandinskylab/Kandinsky-5.0-I2V-Lite-5s-Diffusers", 50, 5.0),
        "kandinsky-5.0-i2v-pro-5s": ("kandinskylab/Kandinsky-5.0-I2V-Pro-sft-5s-Diffusers", 50, 5.0),
        "kandinsky-5.0-i2v-pro-5s-distilled": ("kandinskylab/Kandinsky-5.0-I2V-Pro-distilled-5s-Diffusers", 16, 1.0),
    }
    assert set(models) == set(expected)
    for name, (source, steps, guidance) in expected.items():
        spec, d = models[name], models[name].defaults
        assert spec.source == source and resolve_model(source) is spec  # the hub id names the registered model
        assert (d.num_frames, d.frame_rule, d.frame_step, d.min_frames, d.fps) == (121, "4n+1, at least 17", 4, 17,
                                                                                   24.0)
        assert (d.height, d.width, d.size_multiple, d.size_policy) == (512, 768, 16, "aspect")
        assert (d.num_inference_steps, d.guidance_scale) == (steps, guidance)
        assert spec.extras["negative_prompt"] == NEGATIVE and spec.extras["dtype"] == "bf16"
        assert spec.extras["max_sequence_length"] == 512 and spec.extras["cfg_distilled"] is (guidance == 1.0)


def test_the_negative_prompt_is_the_pipelines_own_default():
    import inspect

    from diffusers import Kandinsky5I2VPipeline

    assert f'negative_prompt = "{NEGATIVE}"' in inspect.getsource(Kandinsky5I2VPipeline.__call__)


def test_folder_is_recognised_with_its_own_defaults(tiny_folder, tmp_path):
    folder = tiny_folder("kandinsky5")
    spec = resolve_model(folder)
    d = spec.defaults
    assert spec.family == "kandinsky5" and spec.source == folder
    assert (d.num_frames, d.frame_rule, d.frame_step, d.min_frames, d.fps) == (121, "4n+1, at least 17", 4, 17, 24.0)
    assert (d.height, d.width, d.size_multiple, d.num_inference_steps, d.guidance_scale) == (512, 768, 16, 50, 5.0)
    assert spec.extras["shift"] == SHIFT and spec.extras["attention"] == "regular"
    distilled = resolve_model(edited_copy(folder, tmp_path / "Kandinsky-5.0-I2V-Pro-distilled-5s", {}))
    assert (distilled.defaults.num_inference_steps, distilled.defaults.guidance_scale) == (16, 1.0)
    assert distilled.extras["cfg_distilled"] is True


def test_sizes_and_frames_snap_to_the_rules(portrait_image):
    spec = resolve_model("kandinsky-5.0-i2v-pro-5s")
    notices = check_request(spec, GenerationRequest(image=portrait_image, seed=0, num_frames=9))
    assert any("snapped to 17" in n for n in notices)  # fewer than 5 latent frames come out NaN
    settings = backend_class("kandinsky5").resolve_for(spec, GenerationRequest(image=portrait_image, seed=0), [])
    # 60x100 input: 512*768 pixels at 3:5, sides a multiple of 16
    assert (settings.width, settings.height) == (480, 816) and settings.num_frames == 121
    assert rope_scale(512, 768) == [1.0, 2.0, 2.0] and rope_scale(1024, 1024) == [1.0, 3.16, 3.16]


# -- generating ----------------------------------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_api_runs_with_progress_and_is_deterministic(gen, square_image, base):
    steps = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (17, 32, 32, 3) and result.frames.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]
    assert {"encode", "denoise", "decode"} <= set(result.timings)
    assert np.array_equal(result.frames, base.frames)  # same seed, same settings
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base.frames)  # the prompt reaches the model
    reseeded = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "seed": 1}))
    assert not np.array_equal(reseeded.frames, base.frames)


def test_without_guidance_the_negative_prompt_is_unused(gen, square_image, base):
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, negative_prompt="blurry",
                                       **{**FAST, "guidance_scale": 1.0}))
    assert result.settings["negative_prompt_used"] is False
    assert any("does not use a negative prompt" in n for n in result.notices)
    assert not np.array_equal(result.frames, base.frames)


def test_a_nabla_folder_takes_sides_of_128_and_runs_on_flex_attention(tmp_path, square_image):
    """A NABLA transformer: sides snapped to 128, flex attention on its own processors (not process-wide),
    and the frames the stock pipeline gives with diffusers' documented ``set_attention_backend("flex")``."""
    from diffusers import DiffusionPipeline
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    folder = tmp_path / "nabla"
    build_kandinsky5(nabla=True).save_pretrained(folder)
    spec = resolve_model(str(folder))
    assert spec.extras["attention"] == "nabla" and spec.defaults.size_multiple == 128
    notices = check_request(spec, GenerationRequest(image=square_image, seed=0, height=100, width=150))
    assert any("snapped to 128x128" in n for n in notices)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    before = _AttentionBackendRegistry._active_backend
    gen = ImageToVideoGenerator(str(folder), device="cpu")
    result = gen.run(GenerationRequest(image=image, prompt=PROMPT, **{**FAST, "height": 128, "width": 128}))
    assert result.frames.shape == (17, 128, 128, 3)
    processor = gen.backend.pipeline.transformer.visual_transformer_blocks[0].self_attention.processor
    assert processor._attention_backend.value == "flex" and _AttentionBackendRegistry._active_backend == before

    s = result.settings
    pipe = DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    pipe.transformer.set_attention_backend("flex")
    try:
        with torch.inference_mode():
            stock = pipe(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"], height=128, width=128,
                         num_frames=17, num_inference_steps=2, guidance_scale=s["guidance_scale"],
                         max_sequence_length=s["max_sequence_length"],
                         generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil").frames[0]
    finally:
        _AttentionBackendRegistry.set_active_backend(before)
    assert np.array_equal(result.frames, np.stack([np.asarray(frame.convert("RGB")) for frame in stock]))


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A small random LoRA on the transformer's query and value projections, saved as diffusers saves one."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_folder("kandinsky5"))  # a Kandinsky5I2VPipeline
    return save_random_lora(pipe, tmp_path_factory.mktemp("kandinsky5-lora"), ["to_query", "to_value"])


def test_lora_loads_through_the_pipelines_loader(tiny_folder, square_image, lora_file, base):
    off = ImageToVideoGenerator(tiny_folder("kandinsky5"), device="cpu", loras=[f"{lora_file}:0"]).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    on = ImageToVideoGenerator(tiny_folder("kandinsky5"), device="cpu", loras=[str(lora_file)]).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert np.array_equal(off.frames, base.frames) and not np.array_equal(on.frames, base.frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]


# -- refusals before any weights load -------------------------------------------------------------


# (the requests refused, and every cache in NO_CACHE refused: test_families_common.py)


def test_the_refused_caches_say_why():
    assert "share one MagCache state" in NO_CACHE["magcache"] and "lengths differ" in NO_CACHE["pab"]


# -- parity: i2v changes nothing ---------------------------------------------------------------------


@pytest.mark.parametrize("frames,height,width", [(17, 32, 32), (17, 32, 48)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, frames, height, width):
    """``i2v generate`` equals the stock pipeline called directly with the sidecar's settings."""
    from diffusers import DiffusionPipeline

    folder = tiny_folder("kandinsky5")
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
    with torch.inference_mode():
        result = pipe(image=image, prompt=s["prompt"],
                      negative_prompt=s["negative_prompt"] if s["negative_prompt_used"] else None,
                      height=s["height"], width=s["width"], num_frames=s["num_frames"],
                      num_inference_steps=s["num_inference_steps"], guidance_scale=s["guidance_scale"],
                      max_sequence_length=s["max_sequence_length"],
                      generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
