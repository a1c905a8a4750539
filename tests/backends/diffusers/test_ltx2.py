"""LTX-2 backend (video with sound) on a tiny seeded ``LTX2ImageToVideoPipeline`` folder.

The registered models' defaults come from the LTX-2 reference code, the diffusers docs and the model
cards (see the module docstring of ``i2v.backends.diffusers.ltx2``); the folder here is built by
``tests/backends/tiny_ltx2.py`` the way diffusers' own fast tests build theirs. Parity: i2v's frames
and sound equal the stock pipeline's, called directly with the settings i2v's sidecar records.
"""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import read_metadata, read_video
from i2v.registry import MODELS, resolve_model

from ..tiny_components import save_random_lora, sidecar
from ..tiny_ltx2 import SAMPLE_RATE

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)
PROMPT = "a red ball moves left"
GUIDANCE = ("stg_scale", "modality_scale", "guidance_rescale", "audio_guidance_scale", "audio_stg_scale",
            "audio_modality_scale", "audio_guidance_rescale")


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("ltx2"), device="cpu")


def saved_as(folder: str, target, class_name: str):
    """A copy of the folder whose model_index.json names another LTX-2 pipeline class."""
    shutil.copytree(folder, target)
    index = target / "model_index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "_class_name": class_name}))
    return target


def audio_stream(path) -> dict:
    with av.open(str(path)) as container:
        assert container.streams.audio, f"{path} has no audio stream"
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return {"codec": stream.codec_context.name, "rate": stream.sample_rate,
                "channels": len(stream.layout.channels), "samples": samples}


def stock_call(s: dict, **inputs) -> dict:
    """The stock pipeline's arguments for a sidecar ``s``, as a diffusers user writes them."""
    kwargs = dict(prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None, height=s["height"],
                  width=s["width"], num_frames=s["num_frames"], frame_rate=s["frame_rate"],
                  num_inference_steps=s["num_inference_steps"], guidance_scale=s["guidance_scale"],
                  **{key: s[key] for key in GUIDANCE}, spatio_temporal_guidance_blocks=s["stg_blocks"],
                  use_cross_timestep=s["use_cross_timestep"], max_sequence_length=s["max_sequence_length"],
                  generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil", **inputs)
    if s["sigmas"]:
        kwargs["sigmas"] = s["sigmas"]
    return kwargs


# -- the registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, source, steps, guidance, rate, version, distilled", [
    ("ltx-2", "Lightricks/LTX-2", 40, 3.0, 24000, "2.0", False),
    ("ltx-2-distilled", "rootonchair/LTX-2-19b-distilled", 8, 1.0, 24000, "2.0", True),
    ("ltx-2.3", "diffusers/LTX-2.3-Diffusers", 30, 3.0, 48000, "2.3", False),
    ("ltx-2.3-distilled", "diffusers/LTX-2.3-Distilled-Diffusers", 8, 1.0, 48000, "2.3", True),
])
def test_registered_models_have_the_reference_defaults(name, source, steps, guidance, rate, version, distilled):
    from diffusers.pipelines.ltx2.utils import DEFAULT_IMAGE_CRF, DEFAULT_NEGATIVE_PROMPT, DISTILLED_SIGMA_VALUES

    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "ltx2" and spec.source == source and resolve_model(source) is spec
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (
        121, 512, 768, 24.0, steps, guidance)
    assert (d.frame_step, d.frame_offset, d.min_frames, d.size_multiple, d.size_policy) == (8, 1, 9, 32, "aspect")
    assert (e["audio_sample_rate"], e["ltx_version"], e["distilled"], e["image_crf"]) == (
        rate, version, distilled, DEFAULT_IMAGE_CRF)
    assert e["use_cross_timestep"] is (version == "2.3") and e["stg_blocks"] == ([29] if version == "2.0" else [28])
    if distilled:  # unguided, on the 8 distilled noise levels
        assert e["sigmas"] == list(DISTILLED_SIGMA_VALUES) and "negative_prompt" not in e
        assert (e["stg_scale"], e["modality_scale"], e["audio_guidance_scale"], e["guidance_rescale"]) == (0, 1, 1, 0)
    else:  # ltx_pipelines' video and audio guiders
        assert e["negative_prompt"] == DEFAULT_NEGATIVE_PROMPT and "sigmas" not in e
        assert [e[k] for k in GUIDANCE] == [1.0, 3.0, 0.7, 7.0, 1.0, 3.0, 0.7]


@pytest.mark.parametrize("class_name", ["LTX2ImageToVideoPipeline", "LTX2ConditionPipeline", "LTX2Pipeline"])
def test_folders_of_either_pipeline_are_recognised_with_their_defaults(tiny_folder, tmp_path, class_name):
    folder = tiny_folder("ltx2")
    path = folder if class_name == "LTX2ImageToVideoPipeline" else saved_as(folder, tmp_path / "m", class_name)
    spec = resolve_model(path)
    d, e = spec.defaults, spec.extras
    assert spec.family == "ltx2" and spec.description == f"local {class_name} folder"
    assert (d.num_frames, d.fps, d.num_inference_steps, d.guidance_scale, d.frame_rule, d.size_multiple) == (
        121, 24.0, 40, 3.0, "8n+1", 32)
    # the folder's own vocoder rate; STG on its last block (the tiny transformer has 2, not 30)
    assert (e["audio_sample_rate"], e["stg_blocks"], e["use_cross_timestep"]) == (SAMPLE_RATE, [1], False)
    assert (e.get("pipeline") == "LTX2ConditionPipeline") is (class_name == "LTX2ConditionPipeline")


# -- generating: the CLI, the API, the sound ---------------------------------------------------------


def test_cli_writes_an_mp4_with_sound_and_a_sidecar(tiny_folder, square_image, tmp_path, capsys):
    folder = tiny_folder("ltx2")
    out = tmp_path / "ltx2.mp4"
    assert main(["generate", str(square_image), "-m", folder, "-p", PROMPT, "--num-frames", "12", "--height", "40",
                 "--width", "40", "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "snapped to 9" in captured.err and "snapped to 32x32" in captured.err
    assert "s of sound" in captured.out and "cannot hold sound" not in captured.err
    frames, fps = read_video(out)
    assert frames.shape == (9, 32, 32, 3) and fps == 24
    sound = audio_stream(out)
    assert (sound["codec"], sound["rate"], sound["channels"]) == ("aac", SAMPLE_RATE, 2)
    assert abs(sound["samples"] / SAMPLE_RATE - 9 / 24) < 0.1  # the sound lasts as long as the video
    meta = sidecar(out)
    assert meta["audio_sample_rate"] == SAMPLE_RATE and meta["video_file"]["audio"]["codec"] == "aac"
    assert meta["negative_prompt"].startswith("blurry, out of focus")
    assert (meta["stg_blocks"], meta["stg_scale"], meta["audio_guidance_scale"], meta["frame_rate"]) == ([1], 1.0, 7.0,
                                                                                                      24.0)
    assert meta["image_crf"] == 33 and meta["use_cross_timestep"] is False and meta["sigmas"] is None


def test_gif_output_gives_the_notice_and_a_wav(tiny_folder, square_image, tmp_path, capsys):
    folder = tiny_folder("ltx2")
    out = tmp_path / "ltx2.gif"
    assert main(["generate", str(square_image), "-m", folder, "-p", PROMPT, "--num-frames", "9", "--height", "32",
                 "--width", "32", "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    wav = tmp_path / "ltx2.gif.wav"
    err = capsys.readouterr().err
    assert "GIF output cannot hold sound" in err and str(wav) in err
    assert wav.is_file() and sidecar(out)["video_file"]["audio"]["file"] == "ltx2.gif.wav"
    sound = audio_stream(wav)
    assert (sound["codec"], sound["rate"], sound["channels"]) == ("pcm_f32le", SAMPLE_RATE, 2)


def test_the_api_returns_the_sound(gen, square_image):
    first = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    again = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    other = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "seed": 1}))
    assert first.frames.shape == (9, 32, 32, 3) and first.audio_sample_rate == SAMPLE_RATE
    assert first.audio.dtype == np.float32 and first.audio.shape[0] == 2 and np.isfinite(first.audio).all()
    assert abs(first.audio.shape[1] / SAMPLE_RATE - 9 / 24) < 0.1
    assert np.array_equal(first.audio, again.audio) and np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.audio, other.audio)
    assert gen.backend.take_audio() is None  # handed over once


def test_last_image_runs_the_condition_pipeline(gen, square_image, portrait_image):
    first = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    both = gen.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt=PROMPT, **FAST))
    active = gen.backend.active
    assert type(active).__name__ == "LTX2ConditionPipeline"
    assert active.transformer is gen.backend.pipeline.transformer and active.vocoder is gen.backend.pipeline.vocoder
    assert both.frames.shape == first.frames.shape and both.audio.shape == first.audio.shape
    assert both.settings["first_last_frame"] is True and both.settings["last_image_frame"] == 1
    assert not np.array_equal(both.frames, first.frames)


def test_last_image_gives_the_stock_condition_pipelines_frames_and_sound(tiny_folder, tmp_path):
    """A diffusers user's FLF2V call (diffusers' docs: conditions at latent index 0 and -1)."""
    from diffusers import LTX2ConditionPipeline
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    folder = tiny_folder("ltx2")
    rng = np.random.default_rng(1)
    image, last = (Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(2))
    image.save(tmp_path / "first.png")
    last.save(tmp_path / "last.png")
    result = ImageToVideoGenerator(folder, device="cpu").run(GenerationRequest(
        image=tmp_path / "first.png", last_image=tmp_path / "last.png", prompt=PROMPT, **FAST))
    s = result.settings
    pipe = LTX2ConditionPipeline.from_pretrained(folder, use_safetensors=True)
    conditions = [LTX2VideoCondition(frames=image, index=0, strength=1.0, crf=s["image_crf"]),
                  LTX2VideoCondition(frames=last, index=-1, strength=1.0, crf=s["image_crf"])]
    with torch.inference_mode():
        out = pipe(**stock_call(s, conditions=conditions))
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in out.frames[0]])
    assert np.array_equal(result.frames, stock)
    assert np.array_equal(result.audio, out.audio[0].float().numpy())


def test_a_condition_pipeline_folder_runs_its_own_class(tiny_folder, tmp_path, square_image):
    folder = tiny_folder("ltx2")
    gen = ImageToVideoGenerator(str(saved_as(folder, tmp_path / "cond", "LTX2ConditionPipeline")), device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert type(gen.backend.pipeline).__name__ == "LTX2ConditionPipeline" and gen.backend.active is gen.backend.pipeline
    assert result.frames.shape == (9, 32, 32, 3) and result.audio is not None


# -- refused before any weights load --------------------------------------------------------------


# (the caches refused, and the listing in `i2v models`: test_families_common.py)


def test_impossible_requests_are_refused_before_weights_load(tiny_folder, square_image, tmp_path, capsys):
    from dataclasses import replace

    from i2v.api import load_backend

    folder = tiny_folder("ltx2")
    gen = ImageToVideoGenerator(folder, device="cpu")
    gen.spec = replace(gen.spec, extras={**gen.spec.extras, "stg_blocks": []})  # STG on, but on no block
    gen.backend = load_backend(gen.spec, "cpu")
    with pytest.raises(InvalidRequestError, match="stg_blocks is empty"):
        gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    gen.spec = replace(gen.spec, extras={**gen.spec.extras, "stg_blocks": [1], "audio_guidance_scale": float("nan")})
    gen.backend = load_backend(gen.spec, "cpu")
    with pytest.raises(InvalidRequestError, match="audio_guidance_scale must be a finite number"):
        gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert gen.backend._pipe is None  # nothing was loaded
    out = tmp_path / "x.mp4"
    assert main(["generate", str(square_image), "-m", folder, "-p", PROMPT, "--cache", "fbcache",
                 "-o", str(out)]) == 2
    assert "does not run" in capsys.readouterr().err and not out.exists()
    assert main(["generate", str(square_image), "-m", folder, "-p", PROMPT, "--scheduler", "NoSuchScheduler",
                 "-o", str(out)]) == 2
    assert not out.exists()


def test_a_distilled_model_runs_its_sigmas_or_says_why_not(tiny_folder, square_image):
    from dataclasses import replace

    from i2v.api import load_backend

    folder = tiny_folder("ltx2")
    gen = ImageToVideoGenerator(folder, device="cpu")
    gen.spec = replace(gen.spec, extras={**MODELS["ltx-2-distilled"].extras, "stg_blocks": [1],
                                         "audio_sample_rate": SAMPLE_RATE})
    gen.backend = load_backend(gen.spec, "cpu")
    eight = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_inference_steps": 8}))
    assert eight.settings["sigmas"] == MODELS["ltx-2-distilled"].extras["sigmas"]
    assert eight.settings["negative_prompt"] == ""  # unguided: no negative prompt
    two = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert two.settings["sigmas"] is None and any("linear schedule" in n for n in two.notices)


# -- caches ------------------------------------------------------------------------------------


def test_taylorseer_runs_and_stays_close(tiny_folder, square_image):
    folder = tiny_folder("ltx2")
    request = GenerationRequest(image=square_image, prompt=PROMPT, **{**FAST, "num_inference_steps": 8})
    plain = ImageToVideoGenerator(folder, device="cpu").run(request)
    cached = ImageToVideoGenerator(folder, device="cpu", cache="taylorseer").run(request)
    assert cached.settings["acceleration"] == {"cache": "taylorseer"}
    assert not np.array_equal(cached.frames, plain.frames)  # the cache did something
    mse = np.mean((cached.frames.astype(float) - plain.frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 35
    assert np.abs(cached.audio - plain.audio).max() < 1e-2


# -- parity ------------------------------------------------------------------------------------


def test_i2v_gives_the_stock_pipelines_frames_and_sound(tiny_folder, tmp_path):
    """``i2v generate`` into PNG frames equals ``LTX2ImageToVideoPipeline`` called directly with the
    sidecar's settings (input already at the output size); the WAV beside the frames is its sound."""
    from diffusers import DiffusionPipeline

    folder = tiny_folder("ltx2")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    out = tmp_path / "frames"
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", "9", "--height", "32", "--width", "32", "--num-inference-steps", "2",
                 "--seed", "3", "-o", str(out)]) == 0
    settings = read_metadata(out)
    ours, _ = read_video(out)

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe).__name__ == "LTX2ImageToVideoPipeline" and type(pipe.scheduler).__name__ == settings["scheduler"]
    with torch.inference_mode():
        result = pipe(**stock_call(settings, image=image, image_crf=settings["image_crf"]))
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (9, 32, 32, 3)
    assert np.array_equal(ours, stock)
    with av.open(str(out / "audio.wav")) as container:  # float32 WAV: the sound exactly
        stream = container.streams.audio[0]
        assert stream.sample_rate == settings["audio_sample_rate"] == pipe.vocoder.config.output_sampling_rate
        wav = np.concatenate([f.to_ndarray().reshape(-1, 2).T for f in container.decode(stream)], axis=1)
    assert np.array_equal(wav, result.audio[0].float().numpy())


# -- LoRA --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A random LoRA on the tiny transformer's attention, saved the diffusers way."""
    from diffusers import LTX2ImageToVideoPipeline

    pipe = LTX2ImageToVideoPipeline.from_pretrained(tiny_folder("ltx2"), use_safetensors=True)
    return save_random_lora(pipe, tmp_path_factory.mktemp("ltx2-lora"), ["to_q", "to_out.0"])


def test_a_lora_loads_and_changes_the_clip(tiny_folder, square_image, lora_file, gen):
    folder = tiny_folder("ltx2")
    request = GenerationRequest(image=square_image, prompt=PROMPT, **FAST)
    plain = gen.run(request)
    off = ImageToVideoGenerator(folder, device="cpu", loras=[f"{lora_file}:0"]).run(request)
    on = ImageToVideoGenerator(folder, device="cpu", loras=[str(lora_file)]).run(request)
    assert np.array_equal(off.frames, plain.frames) and not np.array_equal(on.frames, plain.frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]
