"""SkyReels-V2 backend on tiny seeded SkyReels-V2 I2V, FLF2V and diffusion-forcing folders.

The registered models' defaults come from the SkyReels-V2 README and reference code (see the module
docstring of ``i2v.backends.diffusers.skyreels``); the folders here are built by
``tests/backends/tiny_skyreels.py`` the way diffusers' own fast tests build theirs.
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
from i2v.cli import main
from i2v.errors import InvalidRequestError, UnknownModelError
from i2v.io.video import probe_video, read_metadata, read_video
from i2v.registry import MODELS, resolve_model

from ..tiny_components import psnr, save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("skyreels"), device="cpu")


@pytest.fixture(scope="module")
def df_gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("skyreels-df"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST)).frames


def copy_as(folder: str, tmp_path, name: str, class_name: str | None = None):
    """A copy of a tiny folder under another name, optionally saved as another pipeline class."""
    target = tmp_path / name
    shutil.copytree(folder, target)
    if class_name is not None:
        index = json.loads((target / "model_index.json").read_text())
        (target / "model_index.json").write_text(json.dumps({**index, "_class_name": class_name}))
    return target


def block_calls(gen) -> list[int]:
    """How often the transformer's last block really runs (its self-attention: a block a cache skips
    returns its kept residual without running its layers)."""
    calls = [0]
    gen.backend.pipeline.transformer.blocks[-1].attn1.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, source, frames, size, steps", [
    ("skyreels-v2-i2v-1.3b-540p", "Skywork/SkyReels-V2-I2V-1.3B-540P-Diffusers", 97, (544, 960), 50),
    ("skyreels-v2-i2v-14b-540p", "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers", 97, (544, 960), 50),
    ("skyreels-v2-i2v-14b-720p", "Skywork/SkyReels-V2-I2V-14B-720P-Diffusers", 121, (720, 1280), 50),
    ("skyreels-v2-df-1.3b-540p", "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", 97, (544, 960), 30),
    ("skyreels-v2-df-14b-540p", "Skywork/SkyReels-V2-DF-14B-540P-Diffusers", 97, (544, 960), 30),
    ("skyreels-v2-df-14b-720p", "Skywork/SkyReels-V2-DF-14B-720P-Diffusers", 121, (720, 1280), 30),
])
def test_registered_models_have_the_readmes_defaults(name, source, frames, size, steps):
    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "skyreels" and spec.source == source and resolve_model(source) is spec
    assert (d.num_frames, (d.height, d.width), d.fps, d.num_inference_steps, d.guidance_scale) == (
        frames, size, 24.0, steps, 5.0)
    assert (d.frame_step, d.frame_offset, d.size_multiple, d.size_policy) == (4, 1, 16, "orient")
    assert (d.num_frames - 1) % 4 == 0 and d.height % 16 == 0 and d.width % 16 == 0
    assert e["flow_shift"] == 5.0 and e["fp32_components"] == ["vae"] and e["dtype"] == "bf16"
    if "-df-" in name:  # README: base_num_frames 97 (540P) / 121 (720P), overlap 17, addnoise 20, ar_step 0
        assert (e["base_num_frames"], e["overlap_history"], e["addnoise_condition"], e["ar_step"],
                e["causal_block_size"]) == (frames, 17, 20, 0, 1)
        assert e["negative_prompt"].startswith("色调艳丽")  # generate_video_df.py's
    else:
        assert e["negative_prompt"].startswith("Bright tones, overexposed")  # generate_video.py's
        assert e["first_last_frame"] is False


# -- folders --------------------------------------------------------------------------------------


def test_folders_are_recognised_with_their_own_defaults(tiny_folder, tmp_path):
    spec = resolve_model(tiny_folder("skyreels"))
    d = spec.defaults
    assert spec.family == "skyreels" and spec.extras["first_last_frame"] is False
    assert (d.num_frames, d.height, d.width, d.fps, d.size_multiple, d.frame_rule) == (97, 544, 960, 24.0, 16, "4n+1")
    assert (d.num_inference_steps, d.guidance_scale, spec.extras["flow_shift"]) == (50, 5.0, 5.0)
    assert resolve_model(tiny_folder("skyreels-flf")).extras["first_last_frame"] is True  # pos_embed_seq_len

    df = resolve_model(tiny_folder("skyreels-df"))
    assert df.extras["diffusion_forcing"] is True and df.defaults.num_inference_steps == 30
    assert (df.extras["base_num_frames"], df.extras["overlap_history"], df.extras["causal_block_size"]) == (97, 17, 1)
    # the Skywork DF repositories are saved as the text-to-video DF class: an image-to-video model all the same
    saved_as_t2v = copy_as(tiny_folder("skyreels-df"), tmp_path, "df-t2v", "SkyReelsV2DiffusionForcingPipeline")
    assert resolve_model(str(saved_as_t2v)).extras["diffusion_forcing"] is True
    big = resolve_model(str(copy_as(tiny_folder("skyreels-df"), tmp_path, "SkyReels-V2-DF-14B-720P")))
    assert (big.defaults.height, big.defaults.width, big.defaults.num_frames, big.extras["base_num_frames"]) == (
        720, 1280, 121, 121)
    snapshot = tmp_path / "models--Skywork--SkyReels-V2-I2V-14B-720P-Diffusers" / "snapshots"  # the hub cache's
    snapshot.mkdir(parents=True)
    cached = resolve_model(str(copy_as(tiny_folder("skyreels"), snapshot, "3f720aa")))  # a revision, not a size
    assert (cached.defaults.height, cached.defaults.num_frames) == (720, 121)
    assert resolve_model(str(copy_as(tiny_folder("skyreels"), tmp_path, "3f720aa"))).defaults.height == 544
    t2v = copy_as(tiny_folder("skyreels-df"), tmp_path, "t2v", "SkyReelsV2Pipeline")  # no image conditioning
    with pytest.raises(UnknownModelError, match="not supported"):
        resolve_model(str(t2v))


def test_a_df_folder_saved_as_the_text_to_video_class_runs(tiny_folder, square_image, tmp_path):
    folder = copy_as(tiny_folder("skyreels-df"), tmp_path, "df-t2v", "SkyReelsV2DiffusionForcingPipeline")
    gen = ImageToVideoGenerator(str(folder), device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert type(gen.backend.pipeline).__name__ == "SkyReelsV2DiffusionForcingImageToVideoPipeline"
    assert result.frames.shape == (9, 32, 32, 3)


# -- the command line and the Python API ----------------------------------------------------------


# (the CLI runs of an I2V and a DF model, their notices and their sidecars: test_families_common.py)


def test_python_api_is_reproducible_sets_the_flow_shift_and_routes_the_prompt(gen, square_image, base_frames):
    again = gen.generate(image_path=square_image, prompt=PROMPT, **FAST)
    assert again.shape == (9, 32, 32, 3) and np.array_equal(again, base_frames)  # same seed, same frames
    assert gen.backend.pipeline.scheduler.config.flow_shift == 5.0  # the folder's scheduler says 1.0
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model
    assert gen.last_result.settings["flow_shift"] == 5.0


def test_portrait_images_get_the_portrait_size(gen, portrait_image):
    """SkyReels' scripts swap 544x960 to 960x544 for a portrait image (size policy "orient")."""
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert (s.height, s.width, s.num_frames, s.num_inference_steps) == (960, 544, 97, 50)


def test_a_df_run_is_reproducible_and_leaves_the_global_generator_alone(df_gen, square_image):
    """The DF pipeline noises its conditioning latents with torch's global generator: seeded per run."""
    df_gen.backend.pipeline  # loaded first: loading is not part of the run
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = df_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert torch.equal(torch.get_rng_state(), state)  # restored after the run
    torch.manual_seed(7)  # whatever the caller's generator holds
    second = df_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert np.array_equal(first.frames, second.frames) and first.settings["torch_manual_seed"] == 0


def test_last_image_on_flf2v_and_df_models(tiny_folder, square_image, portrait_image):
    flf = ImageToVideoGenerator(tiny_folder("skyreels-flf"), device="cpu")
    result = flf.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt=PROMPT, **FAST))
    assert result.settings["first_last_frame"] is True and result.frames.shape == (9, 32, 32, 3)
    df = ImageToVideoGenerator(tiny_folder("skyreels-df"), device="cpu")
    plain = df.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    both = df.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt=PROMPT, **FAST))
    assert both.settings["first_last_frame"] is True and both.frames.shape == plain.frames.shape
    assert not np.array_equal(both.frames, plain.frames)


# -- long videos (diffusion forcing) --------------------------------------------------------------


def test_a_long_df_video_runs_in_windows_and_reports_them(tiny_folder, square_image, tmp_path, capsys):
    """177 frames with the model's 97-frame window: two windows overlapping by 17 frames."""
    out = tmp_path / "long.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("skyreels-df"), "-p", PROMPT, "--num-frames", "177",
                 "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    assert "177 frames in 2 windows of up to 97 frames, each overlapping the last by 17" in capsys.readouterr().err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (177, 32, 32, 24)
    meta = sidecar(out)
    assert (meta["num_frames"], meta["windows"], meta["base_num_frames"], meta["overlap_history"],
            meta["denoising_passes"]) == (177, 2, 97, 17, 4)


def test_a_long_video_with_a_short_last_window_runs_and_reports_progress_over_all_windows(df_gen, square_image):
    """113 frames: windows of 25 and 9 latent frames (diffusers alone fails on a last window shorter
    than the first; the backend gives it the window's own length, as SkyReels' reference does)."""
    steps: list[tuple[int, int]] = []
    result = df_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 113}),
                        callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (113, 32, 32, 3) and result.settings["windows"] == 2
    total = result.settings["denoising_passes"]
    assert steps == [(i, total) for i in range(1, total + 1)] and total == 4


# -- refusals before any weights load -------------------------------------------------------------


# (the requests and caches refused, a plain I2V model's last image and a last image across DF windows among
# them, the dry run, and the listing in `i2v models`: test_families_common.py)


def test_a_servers_check_refuses_a_last_image_for_a_plain_i2v_model(tiny_folder, square_image):
    from i2v.api import check_request

    with pytest.raises(InvalidRequestError, match="cannot condition on a last image"):
        check_request(resolve_model(tiny_folder("skyreels")),
                      GenerationRequest(image=square_image, last_image=square_image, **FAST))


@pytest.mark.parametrize("settings, frames, message", [
    ({"overlap_history": 97}, 177, "must be shorter than base_num_frames"),
    ({"ar_step": -1}, 9, "ar_step must be an integer >= 0"),
    ({"causal_block_size": 5}, 113, r"multiple of it .*windows of \[25, 9\]"),  # README: 25 and 9 latents
])
def test_df_settings_the_pipeline_cannot_run_are_refused_before_loading(tiny_folder, square_image, settings, frames,
                                                                        message):
    from i2v.api import load_backend

    spec = resolve_model(tiny_folder("skyreels-df"))
    backend = load_backend(replace(spec, extras={**spec.extras, **settings}), "cpu")
    with pytest.raises(InvalidRequestError, match=message):
        backend.resolve(GenerationRequest(image=square_image, **{**FAST, "num_frames": frames}), [])
    assert backend._pipe is None


# -- speed switches and LoRA ----------------------------------------------------------------------


MANY_STEPS = {**FAST, "num_inference_steps": 12}


@pytest.fixture(scope="module")
def many_steps_plain(gen, square_image):
    calls = block_calls(gen)
    frames = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS)).frames
    return frames, calls[0]


@pytest.mark.parametrize("cache, skips_blocks", [("pab", False), ("fbcache", True), ("taylorseer", False)])
def test_caches_run_on_the_i2v_model_and_stay_close(tiny_folder, square_image, many_steps_plain, cache, skips_blocks):
    plain, plain_calls = many_steps_plain
    gen = ImageToVideoGenerator(tiny_folder("skyreels"), device="cpu", cache=cache)
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert result.settings["acceleration"] == {"cache": cache}
    assert not np.array_equal(result.frames, plain)  # the cache did something
    assert psnr(result.frames, plain) > 30
    assert (calls[0] < plain_calls) == skips_blocks  # First Block Cache skips whole blocks; the others attention


def test_magcache_calibrates_and_skips_blocks_on_the_i2v_model(tiny_folder, square_image, many_steps_plain,
                                                              tmp_path, capsys):
    plain, plain_calls = many_steps_plain
    folder = copy_as(tiny_folder("skyreels"), tmp_path, "skyreels")
    assert main(["calibrate-cache", "--model", str(folder), "--image", str(square_image), "--prompt", PROMPT,
                 "--num-inference-steps", "12", "--num-frames", "9", "--height", "32", "--width", "32"]) == 0
    assert len(json.loads((folder / "i2v_magcache.json").read_text())["ratios"]) == 12
    gen = ImageToVideoGenerator(str(folder), device="cpu", cache="magcache")
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert calls[0] < plain_calls and psnr(result.frames, plain) > 25


def test_the_speed_profile_runs_a_df_model_without_a_cache(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("skyreels-df"), device="cpu", profile="speed")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert "cache" not in result.settings["acceleration"]
    assert any("no cache on" in note for note in result.settings["acceleration_notes"])


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames, tmp_path):
    from diffusers import SkyReelsV2ImageToVideoPipeline

    pipe = SkyReelsV2ImageToVideoPipeline.from_pretrained(tiny_folder("skyreels"))
    lora = save_random_lora(pipe, tmp_path, ["to_q", "to_out.0"])
    kw = dict(image=square_image, prompt=PROMPT, **FAST)
    off = ImageToVideoGenerator(tiny_folder("skyreels"), device="cpu", loras=[f"{lora}:0"]).run(GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(tiny_folder("skyreels"), device="cpu", loras=[str(lora)]).run(GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora), "scale": 1.0}]


# -- parity with the stock diffusers pipelines ----------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image, last: Image.Image) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it (the same branch
    ``tests/backends/diffusers/test_parity.py`` takes for this family)."""
    kwargs = dict(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None,
                  height=s["height"], width=s["width"], num_frames=s["num_frames"],
                  num_inference_steps=s["num_inference_steps"], guidance_scale=s["guidance_scale"],
                  max_sequence_length=s["max_sequence_length"])
    if s["first_last_frame"]:
        kwargs["last_image"] = last
    if s["diffusion_forcing"]:
        kwargs.update(base_num_frames=s["base_num_frames"], overlap_history=s["overlap_history"],
                      addnoise_condition=s["addnoise_condition"], ar_step=s["ar_step"],
                      causal_block_size=s["causal_block_size"], fps=s["fps_conditioning"])
        # addnoise_condition draws from torch's global generator: seeded as the sidecar says
        torch.manual_seed(s["torch_manual_seed"])
    return kwargs


@pytest.mark.parametrize("name, frames, last", [
    ("skyreels", 9, False),
    ("skyreels-flf", 9, True),
    ("skyreels-df", 9, False),
    ("skyreels-df", 9, True),
    ("skyreels-df", 177, False),  # two windows
])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, name, frames, last):
    from diffusers import DiffusionPipeline

    height = width = 32
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    last_image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    last_image.save(tmp_path / "last.png")
    folder = tiny_folder(name)
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated, no video codec between
    flags = ["--last-image", str(tmp_path / "last.png")] if last else []
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out), *flags]) == 0
    settings = read_metadata(out)
    ours, _ = read_video(out)

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe.scheduler).__name__ == settings["scheduler"]
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, flow_shift=settings["flow_shift"])
    kwargs = stock_kwargs(settings, image, last_image)
    with torch.inference_mode():
        result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)


def test_video_to_video_runs_the_schedules_tail_on_the_i2v_models(gen, square_image):
    video = np.random.default_rng(0).integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    calls = []
    result = gen.run(GenerationRequest(image=square_image, prompt="x", init_video=video, strength=0.5,
                                       **{**FAST, "num_inference_steps": 4}), callback=lambda s, t: calls.append((s, t)))
    assert result.frames.shape == (9, 32, 32, 3) and result.settings["denoising_steps"] == 2
    assert calls == [(1, 2), (2, 2)] and result.settings["strength"] == 0.5


def test_video_to_video_is_refused_on_diffusion_forcing_before_loading(tiny_folder, square_image):
    fresh = ImageToVideoGenerator(tiny_folder("skyreels-df"), device="cpu")
    video = np.zeros((9, 32, 32, 3), np.uint8)
    with pytest.raises(InvalidRequestError, match="diffusion forcing schedules each frame apart"):
        fresh.run(GenerationRequest(image=square_image, init_video=video, **FAST))
    assert not fresh.backend.weights_resident()
