"""Cosmos Predict backend on tiny seeded Cosmos-Predict2 and Cosmos-Predict2.5 folders.

The registered models' defaults come from diffusers' pipelines and docs and NVIDIA's inference code
(the module docstring of ``i2v.backends.diffusers.cosmos``); the folders are built by
``tests/backends/tiny_cosmos.py`` the way diffusers' own fast tests build theirs, and saved the way
diffusers' conversion script saves NVIDIA's (no safety checker in the folder). ``cosmos_guardrail``
and torchvision are not installed here: i2v runs without the guardrail (with a notice), and the tiny
transformers have no padding mask (the one torchvision use).
"""

from __future__ import annotations

import json
import shutil
import types
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers import cosmos
from i2v.cli import main
from i2v.errors import InvalidRequestError, UnknownModelError
from i2v.io.video import read_metadata, read_video
from i2v.registry import MODELS, backend_class, resolve_model

from ..tiny_components import save_random_lora
from ..tiny_cosmos import DummyCosmosSafetyChecker

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module", autouse=True)
def without_guardrail():
    """cosmos_guardrail is not installed here: this module's tests run without it, as a user's explicit choice."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("I2V_COSMOS_NO_GUARDRAIL", "1")
        yield


def test_without_the_guardrail_package_a_cosmos_model_is_refused_unless_chosen(tiny_folder, monkeypatch):
    from i2v.errors import InvalidRequestError

    monkeypatch.setattr(cosmos, "guardrail_installed", lambda: False)
    monkeypatch.delenv("I2V_COSMOS_NO_GUARDRAIL")
    with pytest.raises(InvalidRequestError, match="pip install cosmos_guardrail"):
        ImageToVideoGenerator(tiny_folder("cosmos"), device="cpu")
    monkeypatch.setenv("I2V_COSMOS_NO_GUARDRAIL", "1")
    assert ImageToVideoGenerator(tiny_folder("cosmos"), device="cpu").backend._pipe is None


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("cosmos"), device="cpu")


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


# -- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, source, pipeline", [
    ("cosmos-predict2-2b-video2world", "nvidia/Cosmos-Predict2-2B-Video2World", cosmos.PREDICT2),
    ("cosmos-predict2-14b-video2world", "nvidia/Cosmos-Predict2-14B-Video2World", cosmos.PREDICT2),
    ("cosmos-predict2.5-2b", "nvidia/Cosmos-Predict2.5-2B@diffusers/base/post-trained", cosmos.PREDICT25),
])
def test_registered_models_have_the_verified_defaults(name, source, pipeline):
    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "cosmos" and spec.source == source and resolve_model(source) is spec
    # 93 frames at 704x1280 and 16 fps; 35 steps at guidance 7 (diffusers' and NVIDIA's defaults)
    assert (d.num_frames, d.height, d.width, d.fps, d.num_inference_steps, d.guidance_scale) == (
        93, 704, 1280, 16.0, 35, 7.0)
    assert (d.frame_step, d.frame_offset, d.min_frames, d.max_frames, d.size_multiple) == (4, 1, 5, 509, 16)
    assert e["pipeline"] == pipeline and e["dtype"] == "bf16" and e["max_sequence_length"] == 512
    assert e["max_side"] == 2048 and e["needs_torchvision"] is True
    assert e["negative_prompt"].startswith("The video captures a series of frames showing ugly scenes")
    assert [tuple(s) for s in e["sizes"]] == [(704, 1280), (704, 960), (960, 960), (960, 704), (1280, 704)]


def test_the_family_runs_both_pipelines_and_no_cache():
    family = backend_class("cosmos").family
    assert family.pipeline_classes == (cosmos.PREDICT2, cosmos.PREDICT25) and family.caches == ()


def test_the_positional_tables_limit_frames_and_sides():
    assert cosmos.position_limits(cosmos.RELEASED_TRANSFORMER) == (509, 2048)
    tiny = {"max_size": [4, 32, 32], "patch_size": [1, 2, 2], "extra_pos_embed_type": "learnable"}
    assert cosmos.position_limits(tiny) == (13, 256)
    assert cosmos.position_limits({**tiny, "extra_pos_embed_type": None}) == (61, 256)  # RoPE: max over the axes


# -- folders --------------------------------------------------------------------------------------


def test_folders_are_recognised_with_their_own_defaults(tiny_folder, tmp_path):
    for name, pipeline in (("cosmos", cosmos.PREDICT2), ("cosmos-25", cosmos.PREDICT25)):
        spec = resolve_model(tiny_folder(name))
        d, e = spec.defaults, spec.extras
        assert spec.family == "cosmos" and e["pipeline"] == pipeline and e["needs_torchvision"] is False
        # the tiny transformer's learnable positions cover 4 latent frames and 16 patches a side
        assert (d.num_frames, d.max_frames, d.frame_rule, e["max_side"]) == (13, 13, "4n+1, at most 13", 256)
        assert (d.height, d.width, d.size_multiple) == (128, 256, 16)  # NVIDIA's 16:9 size, scaled to fit
        assert (d.fps, d.num_inference_steps, d.guidance_scale) == (16.0, 35, 7.0)
        assert e["negative_prompt"] == MODELS["cosmos-predict2-2b-video2world"].extras["negative_prompt"]
    released = edited_copy(tiny_folder("cosmos"), tmp_path / "released", {"transformer/config.json": {
        "max_size": [128, 240, 240], "extra_pos_embed_type": None, "concat_padding_mask": True}})
    spec = resolve_model(released)
    assert (spec.defaults.num_frames, spec.defaults.height, spec.defaults.width, spec.defaults.max_frames) == (
        93, 704, 1280, 509)
    assert spec.extras["needs_torchvision"] is True and spec.extras["max_side"] == 2048
    text_to_image = edited_copy(tiny_folder("cosmos"), tmp_path / "t2i",
                                {"model_index.json": {"_class_name": "Cosmos2TextToImagePipeline"}})
    with pytest.raises(UnknownModelError, match="not supported"):
        resolve_model(text_to_image)


def test_an_unset_size_is_nvidias_size_nearest_the_images_aspect(tiny_folder, square_image, portrait_image):
    spec = resolve_model(tiny_folder("cosmos"))
    registered = MODELS["cosmos-predict2-2b-video2world"]
    registered = replace(registered, extras={**registered.extras, "needs_torchvision": False})
    cls = backend_class("cosmos")
    for s, image, size in ((spec, square_image, (192, 192)), (spec, portrait_image, (256, 128)),
                           (registered, square_image, (960, 960)), (registered, portrait_image, (1280, 704))):
        notices = []
        settings = cls.resolve_for(s, GenerationRequest(image=image, seed=0), notices)
        assert (settings.height, settings.width) == size
        assert any(f"size {size[1]}x{size[0]} chosen" in n for n in notices)
    one_side = cls.resolve_for(registered, GenerationRequest(image=portrait_image, seed=0, height=480), [])
    assert (one_side.height, one_side.width) == (480, 288)  # the other side follows the image (60x100)


# -- the command line and the Python API ----------------------------------------------------------

# (the CLI runs of both pipelines, the notices and the sidecars: test_families_common.py)


def test_python_api_is_reproducible_and_the_prompt_and_fps_reach_the_model(gen, square_image, base):
    steps = []
    again = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                    callback=lambda step, total: steps.append((step, total)))
    assert again.frames.shape == (9, 32, 32, 3) and again.frames.dtype == np.uint8
    assert np.array_equal(again.frames, base.frames) and steps == [(1, 2), (2, 2)]
    assert isinstance(gen.backend.pipeline.safety_checker, cosmos.NoGuardrail)
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base.frames)
    faster = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, fps=24, **FAST))
    assert faster.settings["fps_conditioning"] == 24 and not np.array_equal(faster.frames, base.frames)
    unguided = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, negative_prompt="blurry",
                                         guidance_scale=1.0, **FAST))
    assert unguided.settings["negative_prompt_used"] is False
    assert any("does not use a negative prompt" in n for n in unguided.notices)


def test_an_installed_guardrail_is_diffusers_own(tiny_folder, square_image, monkeypatch):
    """With ``cosmos_guardrail`` installed i2v passes no safety checker: diffusers builds its
    ``CosmosSafetyChecker``, which checks the prompt before and the video after (a stand-in here)."""
    import diffusers.pipelines.cosmos.pipeline_cosmos2_video2world as predict2

    calls = []

    class Guardrail:
        def check_text_safety(self, prompt):
            calls.append("text")
            return "cat" not in prompt

        def check_video_safety(self, frames):
            calls.append("video")
            return frames

        def to(self, *args, **kwargs):
            return self

    monkeypatch.setattr(cosmos, "guardrail_installed", lambda: True)
    monkeypatch.setattr(predict2, "CosmosSafetyChecker", Guardrail)
    guarded = ImageToVideoGenerator(tiny_folder("cosmos"), device="cpu")
    result = guarded.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert isinstance(guarded.backend.pipeline.safety_checker, Guardrail) and calls == ["text", "video"]
    assert result.settings["guardrail"] == "cosmos_guardrail"
    assert not any("cosmos_guardrail is not installed" in n for n in result.notices)
    with pytest.raises(ValueError, match="Cosmos Guardrail detected unsafe text"):
        guarded.run(GenerationRequest(image=square_image, prompt="a cat walks", **FAST))


def test_predict25s_video_path_gives_its_image_paths_frames(tiny_folder, monkeypatch):
    """i2v hands Predict2.5 the image as a one-frame video (no torchvision needed); its ``image=`` path,
    with torchvision's ``to_tensor``, gives the same frames."""
    import diffusers.pipelines.cosmos.pipeline_cosmos2_5_predict as predict25
    from diffusers import DiffusionPipeline

    def to_tensor(pic):  # torchvision.transforms.functional.to_tensor for an RGB PIL image
        array = torch.from_numpy(np.array(pic, np.uint8, copy=True)).view(pic.size[1], pic.size[0], 3)
        return array.permute((2, 0, 1)).contiguous().to(dtype=torch.get_default_dtype()).div(255)

    functional = types.SimpleNamespace(to_tensor=to_tensor)
    monkeypatch.setattr(predict25, "torchvision", types.SimpleNamespace(
        transforms=types.SimpleNamespace(functional=functional)), raising=False)
    pipe = DiffusionPipeline.from_pretrained(tiny_folder("cosmos-25"), safety_checker=DummyCosmosSafetyChecker())
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    kw = dict(prompt=PROMPT, height=32, width=48, num_frames=9, num_inference_steps=2, output_type="np")
    with torch.inference_mode():
        by_image = pipe(image=image, generator=torch.Generator("cpu").manual_seed(0), **kw).frames[0]
        by_video = pipe(video=[image], num_latent_conditional_frames=1,
                        generator=torch.Generator("cpu").manual_seed(0), **kw).frames[0]
    assert np.array_equal(by_image, by_video)


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A random LoRA on the tiny Predict2.5 transformer's attention, saved the diffusers way."""
    from diffusers import Cosmos2_5_PredictBasePipeline

    pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(tiny_folder("cosmos-25"),
                                                         safety_checker=DummyCosmosSafetyChecker())
    return save_random_lora(pipe, tmp_path_factory.mktemp("cosmos-lora"), ["to_q", "to_out.0"])


def test_lora_runs_on_predict25(tiny_folder, square_image, lora_file):
    kw = dict(image=square_image, prompt=PROMPT, **FAST)
    plain = ImageToVideoGenerator(tiny_folder("cosmos-25"), device="cpu").run(GenerationRequest(**kw))
    off = ImageToVideoGenerator(tiny_folder("cosmos-25"), device="cpu", loras=[f"{lora_file}:0"]).run(
        GenerationRequest(**kw))
    on = ImageToVideoGenerator(tiny_folder("cosmos-25"), device="cpu", loras=[str(lora_file)]).run(
        GenerationRequest(**kw))
    assert np.array_equal(off.frames, plain.frames) and not np.array_equal(on.frames, plain.frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]


def test_a_registered_model_downloads_without_nvidias_native_checkpoints(tiny_folder, tmp_path, monkeypatch):
    """NVIDIA's Predict2 repositories also hold ``model-*.pt`` and ``tokenizer/tokenizer.pth``: the
    download asks for the model_index's components only, and for no pickle and no code."""
    import huggingface_hub

    snapshot = tmp_path / "snapshot"
    shutil.copytree(tiny_folder("cosmos"), snapshot)
    asked = {}

    def hf_hub_download(repo, filename, revision=None, **kwargs):
        asked["index"] = (repo, filename, revision)
        return str(snapshot / filename)

    def snapshot_download(repo, revision=None, allow_patterns=None, ignore_patterns=None, **kwargs):
        asked["snapshot"] = (repo, revision, sorted(allow_patterns), ignore_patterns)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    spec = MODELS["cosmos-predict2.5-2b"]
    backend = backend_class("cosmos")(spec, "cpu")
    monkeypatch.setattr(backend, "accepted_classes", lambda: (cosmos.PREDICT2,))  # the tiny folder's class
    assert backend.fetch() == snapshot and backend._pipe is None
    assert asked["index"] == ("nvidia/Cosmos-Predict2.5-2B", "model_index.json", "diffusers/base/post-trained")
    repo, revision, allow, ignore = asked["snapshot"]
    assert (repo, revision) == ("nvidia/Cosmos-Predict2.5-2B", "diffusers/base/post-trained")
    assert allow == ["model_index.json", "scheduler/*", "text_encoder/*", "tokenizer/*", "transformer/*", "vae/*"]
    assert {"*.pt", "*.pth", "*.bin", "*.py"} <= set(ignore)


# -- refusals before any weights load -------------------------------------------------------------


# (the requests, LoRAs and caches refused, and the listing in `i2v models`: test_families_common.py)


def test_a_padded_transformer_is_refused_without_torchvision_before_loading(tiny_folder, square_image, tmp_path,
                                                                             monkeypatch):
    padded = edited_copy(tiny_folder("cosmos"), tmp_path / "padded",
                         {"transformer/config.json": {"concat_padding_mask": True}})
    monkeypatch.setattr(cosmos, "torchvision_installed", lambda: False)
    needs = ImageToVideoGenerator(padded, device="cpu")
    with pytest.raises(InvalidRequestError, match="needs torchvision"):
        needs.run(GenerationRequest(image=square_image, **FAST))
    assert needs.backend._pipe is None


# -- parity: i2v changes nothing ---------------------------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it (Predict2.5: the image
    as a one-frame video, the call the sidecar records; its ``image=`` path is the same, tested above)."""
    kwargs = dict(prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None, height=s["height"],
                  width=s["width"], num_frames=s["num_frames"], num_inference_steps=s["num_inference_steps"],
                  guidance_scale=s["guidance_scale"], max_sequence_length=s["max_sequence_length"])
    if s["pipeline"] == cosmos.PREDICT2:
        return dict(image=image, fps=s["fps_conditioning"], **kwargs)
    return dict(video=[image], num_latent_conditional_frames=s["num_latent_conditional_frames"], **kwargs)


@pytest.mark.parametrize("name, frames, height, width", [
    ("cosmos", 9, 32, 32), ("cosmos", 9, 32, 48), ("cosmos-25", 9, 32, 32), ("cosmos-25", 5, 48, 32)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, name, frames, height, width):
    """``i2v generate`` equals the stock pipeline called directly with the sidecar's settings, loaded
    with diffusers' fast tests' pass-through guardrail (``cosmos_guardrail`` is not installed here)."""
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

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True, safety_checker=DummyCosmosSafetyChecker())
    assert type(pipe).__name__ == settings["pipeline"] and type(pipe.scheduler).__name__ == settings["scheduler"]
    with torch.inference_mode():
        result = pipe(**stock_kwargs(settings, image), generator=torch.Generator("cpu").manual_seed(settings["seed"]),
                      output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
