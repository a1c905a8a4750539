"""Helios backend on tiny seeded HeliosPipeline (Base) and HeliosPyramidPipeline (Mid, Distilled) folders.

The registered models' defaults come from the Helios reference code and diffusers' Helios docs (see
the module docstring of ``i2v.backends.diffusers.helios``); the folders here are built by
``tests/backends/tiny_helios.py`` the way diffusers' own fast test builds its pipeline.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.helios import chunks_for, output_frames, snap_frames
from i2v.cli import main
from i2v.errors import UnknownModelError
from i2v.io.video import probe_video, read_metadata, read_video
from i2v.registry import MODELS, resolve_model

from ..tiny_components import psnr, save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=33, height=32, width=32)
PYRAMID_FAST = {**FAST, "height": 64, "width": 128}  # sides a multiple of 64; CFG-Zero* needs two patches
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("helios"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST)).frames


def block_calls(gen) -> list[int]:
    """How often the transformer's last block really runs (its self-attention: a block a cache skips
    returns its kept residual without running its layers)."""
    calls = [0]
    gen.backend.pipeline.transformer.blocks[-1].attn1.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, source, frames, steps, guidance, multiple", [
    ("helios-base", "BestWishYsh/Helios-Base", 97, 50, 5.0, 16),
    ("helios-mid", "BestWishYsh/Helios-Mid", 97, 20, 5.0, 64),
    ("helios-distilled", "BestWishYsh/Helios-Distilled", 261, 2, 1.0, 64),
])
def test_registered_models_have_the_references_defaults(name, source, frames, steps, guidance, multiple):
    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "helios" and spec.source == source and resolve_model(source) is spec
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (
        frames, 384, 640, 24.0, steps, guidance)
    assert (d.size_multiple, d.size_policy, d.min_frames) == (multiple, "default", 33)
    assert d.height % multiple == 0 and d.width % multiple == 0
    assert e["negative_prompt"].startswith("Bright tones, overexposed") and e["dtype"] == "bf16"
    assert e["fp32_components"] == ["vae"] and e["pyramid"] is (name != "helios-base")
    # the docs' num_frames: 99 (Base, Mid) and 240 (Distilled), which the pipeline returns as 97 and 261
    assert output_frames(chunks_for(99)) == 97 and output_frames(chunks_for(240)) == 261
    if name == "helios-mid":
        assert (e["cfg_zero_star"], e["use_zero_init"], e["zero_steps"], e["stages"]) == (True, True, 1, 3)
    if name == "helios-distilled":
        assert (e["distilled"], e["amplify_first_chunk"], e["stages"]) == (True, True, 3)


def test_the_frame_rule_is_whole_chunks_trimmed_to_4n_plus_1():
    """The pipeline makes ceil(n / 33) chunks of 33 frames and trims to 4k+1: i2v's snapping and its count agree."""
    assert [output_frames(k) for k in range(1, 10)] == [33, 65, 97, 129, 165, 197, 229, 261, 297]
    for k in range(1, 31):
        n = output_frames(k)
        assert chunks_for(n) == k and snap_frames(n) == n  # asking for a valid count gets exactly it back
    assert (snap_frames(2), snap_frames(40), snap_frames(49), snap_frames(99), snap_frames(240)) == (33, 33, 65, 97,
                                                                                                      229)
    assert snap_frames(1025) == 1021 and output_frames(32) > 1025  # i2v's limit: 31 chunks


# -- folders --------------------------------------------------------------------------------------


def test_folders_are_recognised_with_their_own_defaults(tiny_folder, tmp_path):
    base = resolve_model(tiny_folder("helios"))
    d = base.defaults
    assert base.family == "helios" and base.extras["pyramid"] is False
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (97, 384, 640, 24.0,
                                                                                                 50, 5.0)
    assert (d.size_multiple, d.min_frames, d.frame_rule.startswith("chunks of 33, trimmed to 4n+1")) == (16, 33, True)

    mid = resolve_model(tiny_folder("helios-mid"))
    assert mid.extras["pyramid"] is True and mid.extras["cfg_zero_star"] is True and mid.extras["stages"] == 3
    assert (mid.defaults.num_inference_steps, mid.defaults.guidance_scale, mid.defaults.size_multiple) == (20, 5.0, 64)

    distilled = resolve_model(tiny_folder("helios-distilled"))  # HeliosDMDScheduler and is_distilled
    assert distilled.extras["distilled"] is True and distilled.extras["amplify_first_chunk"] is True
    assert (distilled.defaults.num_frames, distilled.defaults.num_inference_steps,
            distilled.defaults.guidance_scale) == (261, 2, 1.0)

    t2v = tmp_path / "other"  # a pipeline class Helios does not run
    shutil.copytree(tiny_folder("helios"), t2v)
    index = json.loads((t2v / "model_index.json").read_text())
    (t2v / "model_index.json").write_text(json.dumps({**index, "_class_name": "HeliosModularPipeline"}))
    with pytest.raises(UnknownModelError, match="not supported"):
        resolve_model(str(t2v))


# -- the command line and the Python API ----------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_python_api_is_reproducible_reports_progress_and_routes_the_prompt(gen, square_image, base_frames):
    steps: list[tuple[int, int]] = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (33, 32, 32, 3) and result.frames.dtype == np.uint8
    assert np.array_equal(result.frames, base_frames)  # same seed, same frames
    assert steps == [(1, 2), (2, 2)] and {"encode", "denoise", "decode"} <= set(result.timings)
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model
    seeded = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "seed": 1}))
    assert not np.array_equal(seeded.frames, base_frames)


def test_the_image_conditions_the_video(gen, tmp_path):
    frames = []
    for seed in (0, 1):  # two different images (noise: the tiny model's response to a flat image is faint)
        image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8))
        image.save(tmp_path / f"{seed}.png")
        frames.append(gen.run(GenerationRequest(image=tmp_path / f"{seed}.png", prompt=PROMPT, **FAST)).frames)
    assert frames[0].shape == frames[1].shape and not np.array_equal(frames[0], frames[1])


def test_the_default_size_is_the_references_whatever_the_image(gen, portrait_image):
    """The reference resizes every image to 640x384 (size policy "default")."""
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert (s.height, s.width, s.num_frames, s.num_inference_steps, s.guidance_scale) == (384, 640, 97, 50, 5.0)


# -- long videos ------------------------------------------------------------------------------------


def test_a_long_video_runs_chunk_by_chunk_with_progress_over_all_chunks(gen, square_image, base_frames, tmp_path,
                                                                       capsys):
    steps: list[tuple[int, int]] = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 65}),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (65, 32, 32, 3)
    assert (result.settings["chunks"], result.settings["denoising_steps"]) == (2, 4)
    assert steps == [(i, 4) for i in range(1, 5)]
    assert any("65 frames in 2 chunks of 33 frames" in n for n in result.notices)
    # the first chunk does not depend on what follows it
    assert np.array_equal(result.frames[:33], base_frames)
    out = tmp_path / "long.mp4"
    assert main(["generate", str(square_image), "-m", gen.spec.source, "-p", PROMPT, "--num-frames", "100",
                 "--height", "32", "--width", "32", "--num-inference-steps", "1", "--seed", "0", "-o", str(out)]) == 0
    assert "snapped to 97" in capsys.readouterr().err
    assert probe_video(out)["num_frames"] == 97 and sidecar(out)["chunks"] == 3


@pytest.mark.parametrize("name", ["helios-mid", "helios-distilled"])
def test_the_pyramid_models_run_long_videos_with_their_stage_steps(tiny_folder, square_image, name):
    gen = ImageToVideoGenerator(tiny_folder(name), device="cpu")
    steps: list[tuple[int, int]] = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**PYRAMID_FAST, "num_frames": 65}),
                     callback=lambda step, total: steps.append((step, total)))
    s = result.settings
    assert result.frames.shape == (65, 64, 128, 3) and s["chunks"] == 2 and s["pyramid"] is True
    assert s["pyramid_num_inference_steps_list"] == [2, 2, 2]
    # the distilled model's first chunk takes twice the steps of every stage (is_amplify_first_chunk)
    total = 2 * 3 * 2 + (3 * 2 if name == "helios-distilled" else 0)
    assert s["denoising_steps"] == total and steps == [(i, total) for i in range(1, total + 1)]
    assert s["is_amplify_first_chunk"] is (name == "helios-distilled")
    assert s["scheduler"] == ("HeliosDMDScheduler" if name == "helios-distilled" else "HeliosScheduler")
    again = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**PYRAMID_FAST, "num_frames": 65}))
    assert np.array_equal(again.frames, result.frames)


# -- refusals before any weights load -------------------------------------------------------------


# (the requests and caches refused, the dry run, and the listing in `i2v models`: test_families_common.py)


# -- speed switches and LoRA ----------------------------------------------------------------------

MANY_STEPS = {**FAST, "num_inference_steps": 12}


@pytest.fixture(scope="module")
def many_steps_plain(tiny_folder, square_image):
    plain = ImageToVideoGenerator(tiny_folder("helios"), device="cpu")
    calls = block_calls(plain)
    frames = plain.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS)).frames
    return frames, calls[0]


@pytest.mark.parametrize("cache, skips_blocks", [("pab", False), ("fbcache", True), ("taylorseer", False)])
def test_caches_run_on_helios_base_and_stay_close(tiny_folder, square_image, many_steps_plain, cache, skips_blocks):
    plain, plain_calls = many_steps_plain
    gen = ImageToVideoGenerator(tiny_folder("helios"), device="cpu", cache=cache)
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert result.settings["acceleration"] == {"cache": cache}
    assert not np.array_equal(result.frames, plain)  # the cache did something
    assert psnr(result.frames, plain) > 30
    assert (calls[0] < plain_calls) == skips_blocks  # First Block Cache skips whole blocks; the others attention


def test_magcache_calibrates_and_skips_blocks_in_every_chunk(tiny_folder, square_image, many_steps_plain, tmp_path):
    plain, plain_calls = many_steps_plain
    folder = tmp_path / "helios"
    shutil.copytree(tiny_folder("helios"), folder)
    assert main(["calibrate-cache", "--model", str(folder), "--image", str(square_image), "--prompt", PROMPT,
                 "--num-inference-steps", "12", "--num-frames", "33", "--height", "32", "--width", "32"]) == 0
    assert len(json.loads((folder / "i2v_magcache.json").read_text())["ratios"]) == 12
    gen = ImageToVideoGenerator(str(folder), device="cpu", cache="magcache")
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert calls[0] < plain_calls and psnr(result.frames, plain) > 25
    calls[0] = 0
    long = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**MANY_STEPS, "num_frames": 65}))
    assert long.frames.shape == (65, 32, 32, 3) and calls[0] < 2 * plain_calls  # skipped in both chunks


def test_pab_runs_on_a_pyramid_model_and_the_speed_profile_picks_it(tiny_folder, square_image):
    kw = dict(image=square_image, prompt=PROMPT, **{**PYRAMID_FAST, "num_inference_steps": 5})
    plain = ImageToVideoGenerator(tiny_folder("helios-mid"), device="cpu").run(GenerationRequest(**kw))
    result = ImageToVideoGenerator(tiny_folder("helios-mid"), device="cpu", cache="pab").run(GenerationRequest(**kw))
    assert result.settings["acceleration"] == {"cache": "pab"}
    assert not np.array_equal(result.frames, plain.frames) and psnr(result.frames, plain.frames) > 30
    speed = ImageToVideoGenerator(tiny_folder("helios-distilled"), device="cpu", profile="speed")
    assert speed.backend.acceleration.cache == "pab"  # the family's fbcache does not run on the pyramid
    assert any("speed profile: cache pab" in n for n in speed.backend.acceleration.notes)


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames,
                                                                    tmp_path):
    from diffusers import HeliosPipeline

    pipe = HeliosPipeline.from_pretrained(tiny_folder("helios"))
    lora = save_random_lora(pipe, tmp_path, ["to_q", "to_out.0"])
    kw = dict(image=square_image, prompt=PROMPT, **FAST)
    off = ImageToVideoGenerator(tiny_folder("helios"), device="cpu", loras=[f"{lora}:0"]).run(GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(tiny_folder("helios"), device="cpu", loras=[str(lora)]).run(GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora), "scale": 1.0}]


# -- parity with the stock diffusers pipelines ----------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it (the same branch
    ``tests/backends/diffusers/test_parity.py`` takes for this family): the pyramid pipelines take their
    steps as ``pyramid_num_inference_steps_list``."""
    kwargs = dict(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None, height=s["height"],
                  width=s["width"], num_frames=s["num_frames"], guidance_scale=s["guidance_scale"],
                  max_sequence_length=s["max_sequence_length"])
    if s["pyramid"]:
        kwargs.update(pyramid_num_inference_steps_list=s["pyramid_num_inference_steps_list"],
                      use_zero_init=s["use_zero_init"], zero_steps=s["zero_steps"],
                      is_amplify_first_chunk=s["is_amplify_first_chunk"])
    else:
        kwargs["num_inference_steps"] = s["num_inference_steps"]
    return kwargs


@pytest.mark.parametrize("name, frames, height, width", [
    ("helios", 33, 32, 32),
    ("helios", 65, 32, 48),  # two chunks
    ("helios-mid", 33, 64, 128),
    ("helios-distilled", 65, 64, 64),  # two chunks, the first amplified
])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, name, frames, height, width):
    from diffusers import DiffusionPipeline

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    folder = tiny_folder(name)
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated, no video codec between
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out)]) == 0
    settings = read_metadata(out)
    ours, _ = read_video(out)

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe.scheduler).__name__ == settings["scheduler"]
    kwargs = stock_kwargs(settings, image)
    with torch.inference_mode():
        result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
