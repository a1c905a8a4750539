"""FramePack backend on a tiny seeded ``HunyuanVideoFramepackPipeline`` folder.

The registered models' defaults come from lllyasviel/FramePack's demo_gradio.py / demo_gradio_f1.py
and the diffusers docs (see the module docstring of ``i2v.backends.diffusers.framepack``); the folder
here is built by ``tests/backends/tiny_framepack.py`` the way diffusers' own fast test builds its
pipeline. One folder serves both samplings: copied under a name with "F1" in it, it is FramePack-F1.

FramePack makes whole sections: at the models' latent window of 9 a clip has ``36n + 1`` frames
(37, 73, 109, ...), each section made with the same transformer input size.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import check_request, load_backend
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import probe_video, read_metadata, read_video
from i2v.registry import MODELS, resolve_model
from i2v.types import LoadOptions

from ..tiny_components import psnr, save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=37, height=32, width=32)
PROMPT = "the red square moves left"
BASE = "hunyuanvideo-community/HunyuanVideo"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("framepack"), device="cpu")


@pytest.fixture(scope="module")
def f1_gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("framepack-f1"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST)).frames


def copy_as(folder: str, target):
    shutil.copytree(folder, target)
    return target


def transformer_inputs(gen) -> list[tuple]:
    """The shape of every transformer pass's noisy latents and clean history (its whole input)."""
    seen: list[tuple] = []
    gen.backend.pipeline.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((tuple(kwargs["hidden_states"].shape),
                                                  tuple(kwargs["latents_clean"].shape),
                                                  tuple(kwargs["latents_history_2x"].shape),
                                                  tuple(kwargs["latents_history_4x"].shape))), with_kwargs=True)
    return seen


def block_calls(gen) -> list[int]:
    """How often the transformer's last block really runs (a block a cache skips does not)."""
    calls = [0]
    gen.backend.pipeline.transformer.single_transformer_blocks[-1].attn.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, transformer, sampling", [
    ("framepack-i2v", "lllyasviel/FramePackI2V_HY", "inverted_anti_drifting"),
    ("framepack-f1-i2v", "lllyasviel/FramePack_F1_I2V_HY_20250503", "vanilla"),
])
def test_registered_models_have_the_demos_defaults(name, transformer, sampling):
    """demo_gradio(_f1).py: 25 steps, distilled guidance 10, cfg 1, window 9, 30 fps, 5 s = 4 sections."""
    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "framepack" and spec.source == BASE
    assert (d.num_frames, (d.height, d.width), d.fps, d.num_inference_steps, d.guidance_scale) == (
        145, (640, 608), 30.0, 25, 10.0)
    assert (d.frame_step, d.frame_offset, d.min_frames, d.size_multiple, d.size_policy) == (36, 1, 37, 16, "aspect")
    assert (e["transformer_repo"], e["image_encoder_repo"], e["sampling_type"]) == (
        transformer, "lllyasviel/flux_redux_bfl", sampling)
    assert (e["latent_window_size"], e["true_cfg_scale"], e["max_sequence_length"]) == (9, 1.0, 256)
    assert (e["dtype"], e["transformer_dtype"]) == ("fp16", "bf16")


# -- folders --------------------------------------------------------------------------------------


def test_folders_are_recognised_with_their_defaults(tiny_folder, tmp_path):
    spec = resolve_model(tiny_folder("framepack"))
    d, e = spec.defaults, spec.extras
    assert spec.family == "framepack" and spec.source == tiny_folder("framepack")
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (
        145, 640, 608, 30.0, 25, 10.0)
    assert (d.frame_step, d.min_frames, d.size_multiple, d.frame_rule) == (
        36, 37, 16, "36n+1 (n sections of 9 latent frames, 36 frames each)")
    assert e["sampling_type"] == "inverted_anti_drifting" and e["temporal_compression_ratio"] == 4
    assert "transformer_repo" not in e and "image_encoder_repo" not in e  # a saved folder has them inside
    assert resolve_model(tiny_folder("framepack-f1")).extras["sampling_type"] == "vanilla"  # "F1" in its name
    snapshot = tmp_path / "models--lllyasviel--FramePack_F1_I2V_HY_20250503" / "snapshots"  # the hub cache's
    snapshot.mkdir(parents=True)
    assert resolve_model(str(copy_as(tiny_folder("framepack"), snapshot / "0a1b2c"))).extras[
        "sampling_type"] == "vanilla"
    assert resolve_model(str(copy_as(tiny_folder("framepack"), tmp_path / "framepack-fp16"))).extras[
        "sampling_type"] == "inverted_anti_drifting"


# -- the command line and the Python API ----------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_python_api_is_reproducible_and_routes_the_prompt(gen, square_image, base_frames):
    again = gen.generate(image_path=square_image, prompt=PROMPT, **FAST)
    assert again.shape == (37, 32, 32, 3) and np.array_equal(again, base_frames)  # same seed, same frames
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model
    # the tiny tokenizer is not Llama-3's: the template's own length is cropped, not the released 95 tokens
    ids = gen.backend.pipeline.tokenizer(gen.backend._template["template"].split("{}")[0]).input_ids
    assert gen.last_result.settings["prompt_template_crop_start"] == len(ids) != 95


def test_an_unset_size_is_framepacks_bucket_for_the_image(gen, square_image, portrait_image):
    """demo_gradio.py: find_nearest_bucket(H, W, resolution=640)."""
    notices: list[str] = []
    s = gen.backend.resolve(GenerationRequest(image=square_image, seed=0), notices)
    assert (s.height, s.width, s.num_frames, s.num_inference_steps, s.fps) == (640, 608, 145, 25, 30.0)
    assert any("640 bucket" in n for n in notices) and s.extras["sections"] == 4
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert (s.height, s.width) == (832, 480)  # 60x100: the 0.577 bucket
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0, height=64, width=96), [])
    assert (s.height, s.width) == (64, 96)  # a given size runs as given


# -- long videos ----------------------------------------------------------------------------------


def test_a_long_video_runs_in_sections_with_the_same_transformer_input(tiny_folder, gen, square_image, tmp_path,
                                                                      capsys):
    """109 frames: 3 sections of 36 frames after the image, every pass the size of a one-section run."""
    one_section = transformer_inputs(gen)
    gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    sizes = set(one_section)
    out = tmp_path / "long.mp4"
    long_gen = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu")
    three_sections = transformer_inputs(long_gen)
    assert main(["generate", str(square_image), "-m", tiny_folder("framepack"), "-p", PROMPT, "--num-frames", "109",
                 "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    assert "109 frames in 3 sections of 9 latent frames" in capsys.readouterr().err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (109, 32, 32, 30)
    meta = sidecar(out)
    assert (meta["num_frames"], meta["sections"], meta["pipeline_num_frames"]) == (109, 3, 99)
    steps: list[tuple[int, int]] = []
    result = long_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 109}),
                          callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (109, 32, 32, 3)
    assert steps == [(i, 6) for i in range(1, 7)]  # every step of every section
    assert len(three_sections) == 6 and set(three_sections) == sizes  # constant memory: one section's input


# -- the two samplings ----------------------------------------------------------------------------


def test_f1_samples_forward_and_gives_another_video(f1_gen, square_image, base_frames):
    result = f1_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert result.settings["sampling_type"] == "vanilla" and result.frames.shape == (37, 32, 32, 3)
    assert not np.array_equal(result.frames, base_frames)  # same weights and seed, other sampling
    long = f1_gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 73}))
    assert long.frames.shape == (73, 32, 32, 3) and long.settings["sections"] == 2


def test_first_last_frame_on_the_inverted_model(gen, square_image, portrait_image, base_frames):
    result = gen.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt=PROMPT, **FAST))
    assert result.settings["first_last_frame"] is True and result.frames.shape == (37, 32, 32, 3)
    assert not np.array_equal(result.frames, base_frames)  # the last image reaches the model
    long = gen.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt=PROMPT,
                                     **{**FAST, "num_frames": 73}))
    assert long.frames.shape == (73, 32, 32, 3) and long.settings["sections"] == 2


# -- refusals before any weights load -------------------------------------------------------------


# (the requests and caches every family refuses, the F1 folder's last image among them, the dry run, and the
# listing in `i2v models`: test_families_common.py)


def test_a_last_image_is_refused_by_the_registered_f1_model_before_loading(square_image, tmp_path, capsys):
    with pytest.raises(InvalidRequestError, match="samples forward"):  # a server's check
        check_request(MODELS["framepack-f1-i2v"], GenerationRequest(image=square_image, last_image=square_image))
    code = main(["generate", str(square_image), "-m", "framepack-f1-i2v", "--last-image", str(square_image),
                 "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "framepack-i2v (inverted anti-drifting sampling) takes one" in capsys.readouterr().err


@pytest.mark.parametrize("request_values, extras, message", [
    ({}, {"latent_window_size": 0}, "latent_window_size must be an integer >= 1"),
    ({}, {"sampling_type": "sideways"}, "sampling_type must be one of"),
    ({}, {"true_cfg_scale": -1}, "true_cfg_scale must be a finite number"),
])
def test_impossible_settings_are_refused_before_loading(tiny_folder, square_image, request_values, extras, message):
    spec = resolve_model(tiny_folder("framepack"))
    backend = load_backend(replace(spec, extras={**spec.extras, **extras}), "cpu")
    with pytest.raises(InvalidRequestError, match=message):
        backend.resolve(GenerationRequest(image=square_image, **{**FAST, **request_values}), [])
    assert backend._pipe is None


def test_pab_with_true_cfg_and_a_negative_prompt_is_refused_before_loading(tiny_folder, square_image):
    spec = resolve_model(tiny_folder("framepack"))
    backend = load_backend(replace(spec, extras={**spec.extras, "true_cfg_scale": 3.0}), "cpu",
                           LoadOptions(cache="pab"))
    with pytest.raises(InvalidRequestError, match="share the cache's state"):
        backend.resolve(GenerationRequest(image=square_image, negative_prompt="blurry", **FAST), [])
    assert backend._pipe is None


# -- the registered models' assembly, offline ------------------------------------------------------


def split_like_the_hub(folder: str, tmp_path):
    """The tiny folder split as the registered models are assembled: a base folder of the
    text-to-video class whose transformer is a config only (as the backend downloads it), the FramePack
    transformer's repository (weights at its root) and the SigLIP repository (image_encoder/,
    feature_extractor/)."""
    base = copy_as(folder, tmp_path / "HunyuanVideo")
    transformer = tmp_path / "FramePackI2V_HY"
    shutil.move(base / "transformer", transformer)
    (base / "transformer").mkdir()
    shutil.copy(transformer / "config.json", base / "transformer" / "config.json")
    encoder = tmp_path / "flux_redux_bfl"
    encoder.mkdir()
    for sub in ("image_encoder", "feature_extractor"):
        shutil.move(base / sub, encoder / sub)
    index = json.loads((base / "model_index.json").read_text())
    index = {k: v for k, v in index.items() if k not in ("image_encoder", "feature_extractor")}
    (base / "model_index.json").write_text(json.dumps({**index, "_class_name": "HunyuanVideoPipeline"}))
    registered = MODELS["framepack-i2v"]
    return replace(registered, source=str(base), extras={**registered.extras, "transformer_repo": str(transformer),
                                                         "image_encoder_repo": str(encoder)})


def test_a_registered_model_is_assembled_from_its_three_sources(tiny_folder, square_image, base_frames, tmp_path):
    from i2v.memory import estimate_memory

    spec = split_like_the_hub(tiny_folder("framepack"), tmp_path)
    estimate = estimate_memory(spec, {"num_frames": 37, "height": 32, "width": 32}, device="cpu")
    assert {"transformer", "image_encoder", "text_encoder", "vae"} <= set(estimate.components)
    assert estimate.components["transformer"] > 0 and not estimate.notes  # the parts are counted
    gen = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu")
    gen.spec, gen.backend = spec, load_backend(spec, "cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    pipe = gen.backend.pipeline
    assert type(pipe).__name__ == "HunyuanVideoFramepackPipeline"
    assert type(pipe.transformer).__name__ == "HunyuanVideoFramepackTransformer3DModel"
    assert type(pipe.image_encoder).__name__ == "SiglipVisionModel"
    assert np.array_equal(result.frames, base_frames)  # the same weights, assembled: the same video


def test_a_registered_model_downloads_its_parts_but_not_the_bases_transformer(tiny_folder, square_image, base_frames,
                                                                            tmp_path, monkeypatch):
    """``framepack-i2v`` as a user runs it, the hub replaced by the split tiny folder: the base repository
    is asked for everything but its (text-to-video) transformer's weights."""
    import huggingface_hub

    spec = split_like_the_hub(tiny_folder("framepack"), tmp_path)
    repos = {BASE: spec.source, "lllyasviel/FramePackI2V_HY": spec.extras["transformer_repo"],
             "lllyasviel/flux_redux_bfl": spec.extras["image_encoder_repo"]}
    calls: list[tuple] = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None, local_files_only=False, **kwargs):
        calls.append((repo_id, allow_patterns, local_files_only))
        return repos[repo_id]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    gen = ImageToVideoGenerator("framepack-i2v", device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert np.array_equal(result.frames, base_frames) and result.settings["model"] == "framepack-i2v"
    downloads = {repo: patterns for repo, patterns, local in calls if not local}
    assert set(downloads) == set(repos)

    def fetched(repo: str, file: str) -> bool:
        return any(fnmatch.fnmatch(file, p) for p in downloads[repo])

    for file in ("model_index.json", "transformer/config.json", "scheduler/scheduler_config.json",
                 "tokenizer/tokenizer.json", "tokenizer_2/merges.txt", "text_encoder/model-00001-of-00004.safetensors",
                 "text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert fetched(BASE, file), file
    assert not fetched(BASE, "transformer/diffusion_pytorch_model-00001-of-00006.safetensors")
    assert not fetched(BASE, "transformer/pytorch_model.bin") and not fetched(BASE, "pipeline.py")
    assert fetched("lllyasviel/FramePackI2V_HY", "diffusion_pytorch_model-00001-of-00003.safetensors")
    assert fetched("lllyasviel/flux_redux_bfl", "image_encoder/model.safetensors")
    assert not fetched("lllyasviel/flux_redux_bfl", "image_embedder/diffusion_pytorch_model.safetensors")


def test_a_missing_part_is_named_in_the_plan(tmp_path):
    from i2v.backends.diffusers.framepack import FramePackBackend
    from i2v.memory import estimate_memory

    spec = replace(MODELS["framepack-f1-i2v"], extras={**MODELS["framepack-f1-i2v"].extras,
                                                        "transformer_repo": "nobody-here/not-downloaded"})

    parts, host, notes = FramePackBackend.outside_components(spec, "cpu")
    assert any("nobody-here/not-downloaded" in n and "not counted" in n for n in notes)
    assert estimate_memory(spec, device="cpu") is not None  # the base not downloaded: an estimate of unknowns


# -- speed and memory switches, LoRA ----------------------------------------------------------------

MANY_STEPS = {**FAST, "num_inference_steps": 12}


@pytest.fixture(scope="module")
def many_steps_plain(tiny_folder, square_image):
    plain = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu")
    calls = block_calls(plain)
    frames = plain.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS)).frames
    return frames, calls[0]


def test_pab_runs_and_stays_close(tiny_folder, square_image, many_steps_plain):
    plain, _ = many_steps_plain
    gen = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu", cache="pab")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert result.settings["acceleration"] == {"cache": "pab"}
    assert not np.array_equal(result.frames, plain) and psnr(result.frames, plain) > 30


def test_the_speed_profile_runs_pab(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu", profile="speed")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert result.settings["acceleration"]["cache"] == "pab" and result.frames.shape == (37, 32, 32, 3)


def test_magcache_calibrates_and_skips_blocks_in_every_section(tiny_folder, square_image, many_steps_plain, tmp_path):
    plain, plain_calls = many_steps_plain
    folder = copy_as(tiny_folder("framepack"), tmp_path / "framepack")
    assert main(["calibrate-cache", "--model", str(folder), "--image", str(square_image), "--prompt", PROMPT,
                 "--num-inference-steps", "12", "--num-frames", "37", "--height", "32", "--width", "32"]) == 0
    assert len(json.loads((folder / "i2v_magcache.json").read_text())["ratios"]) == 12
    gen = ImageToVideoGenerator(str(folder), device="cpu", cache="magcache")
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert calls[0] < plain_calls and psnr(result.frames, plain) > 25
    calls[0] = 0
    long = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**MANY_STEPS, "num_frames": 73}))
    assert long.frames.shape == (73, 32, 32, 3) and calls[0] < 2 * plain_calls  # skipped in both sections


def test_group_offload_keeps_the_image_encoder_whole_and_changes_nothing(tiny_folder, square_image, base_frames):
    gen = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu", offload="group")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    pipe = gen.backend.pipeline
    assert "image_encoder" in pipe._exclude_from_cpu_offload
    assert getattr(pipe.image_encoder, "_diffusers_hook", None) is None  # no leaf-level hooks on SigLIP
    assert getattr(pipe.transformer, "_diffusers_hook", None) is not None
    assert np.array_equal(result.frames, base_frames)


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames, tmp_path):
    from diffusers import HunyuanVideoFramepackPipeline

    pipe = HunyuanVideoFramepackPipeline.from_pretrained(tiny_folder("framepack"))
    lora = save_random_lora(pipe, tmp_path, ["to_q", "to_out.0"])
    kw = dict(image=square_image, prompt=PROMPT, **FAST)
    off = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu", loras=[f"{lora}:0"]).run(
        GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(tiny_folder("framepack"), device="cpu", loras=[str(lora)]).run(GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora), "scale": 1.0}]


# -- parity with the stock diffusers pipeline ------------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image, last: Image.Image) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it (the same branch
    ``tests/backends/diffusers/test_parity.py`` takes for this family). The tiny tokenizer is not the
    released Llama-3 one, so the template's crop is the one the sidecar records (the released
    tokenizer's is diffusers' default, 95)."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

    kwargs = dict(image=image, prompt=s["prompt"], negative_prompt=s["negative_prompt"] if s["negative_prompt_used"]
                  else None, height=s["height"], width=s["width"], num_frames=s["pipeline_num_frames"],
                  latent_window_size=s["latent_window_size"], num_inference_steps=s["num_inference_steps"],
                  guidance_scale=s["distilled_guidance_scale"], true_cfg_scale=s["true_cfg_scale"],
                  max_sequence_length=s["max_sequence_length"], sampling_type=s["sampling_type"],
                  prompt_template={"template": DEFAULT_PROMPT_TEMPLATE["template"],
                                   "crop_start": s["prompt_template_crop_start"]})
    if s["first_last_frame"]:
        kwargs["last_image"] = last
    return kwargs


@pytest.mark.parametrize("name, frames, last", [
    ("framepack", 37, False),
    ("framepack", 73, True),  # two sections, first and last frame
    ("framepack-f1", 109, False),  # three sections, forward
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
    kwargs = stock_kwargs(settings, image, last_image)
    with torch.inference_mode():
        result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
