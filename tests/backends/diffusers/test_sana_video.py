"""SANA-Video I2V backend on tiny seeded SanaImageToVideoPipeline folders (and the released T2V layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import check_request
from i2v.backends.diffusers.sana_video import NEGATIVE, motion_prompt
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import read_metadata, read_video
from i2v.registry import backend_class, resolve_model

from ..tiny_components import save_random_lora
from ..tiny_sana_video import SHIFT

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("sana_video"), device="cpu")


@pytest.fixture(scope="module")
def base(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))


# -- defaults -----------------------------------------------------------------------------------


def test_registered_model_and_its_card_defaults():
    spec = resolve_model("sana-video-2b-480p")
    d, e = spec.defaults, spec.extras
    assert spec.family == "sana_video" and spec.source == "Efficient-Large-Model/SANA-Video_2B_480p_diffusers"
    assert resolve_model(spec.source) is spec  # the hub id names the registered model
    assert (d.num_frames, d.frame_rule, d.frame_step, d.fps) == (81, "4n+1", 4, 16.0)
    assert (d.height, d.width, d.size_multiple, d.size_policy) == (480, 832, 32, "aspect")
    assert (d.num_inference_steps, d.guidance_scale) == (50, 6.0)
    assert (e["negative_prompt"], e["motion_score"], e["shift"], e["max_sequence_length"]) == (NEGATIVE, 30, 8.0, 300)
    assert e["dtype"] == "bf16" and e["fp32_components"] == ["vae"]
    assert backend_class("sana_video").family.pipeline_classes == ("SanaImageToVideoPipeline", "SanaVideoPipeline")


def test_folders_are_recognised_with_their_own_defaults(tiny_folder):
    # the I2V folder, and the same tiny components in the released folder's layout (SanaVideoPipeline,
    # flow DPM-Solver)
    for folder in (tiny_folder("sana_video"), tiny_folder("sana_video-t2v")):
        spec = resolve_model(folder)
        d = spec.defaults
        assert spec.family == "sana_video" and spec.source == folder
        assert (d.num_frames, d.frame_rule, d.frame_step, d.min_frames, d.fps) == (81, "4n+1", 4, 5, 16.0)
        # sample_size 8 (the released: 30 -> 480x832): 128 pixels high at 480x832's aspect ratio, sides /32
        assert (d.height, d.width, d.size_multiple, d.num_inference_steps, d.guidance_scale) == (128, 224, 32, 50, 6.0)
        assert spec.extras["shift"] == SHIFT and spec.extras["vae"] == "AutoencoderKLWan"


def test_the_motion_score_is_appended_once():
    assert motion_prompt("a cat", 30) == "a cat motion score: 30."
    assert motion_prompt("a cat. Motion score: 5.", 30) == "a cat. Motion score: 5."
    assert motion_prompt("a cat", None) == "a cat"


def test_sizes_snap_to_multiples_of_32(portrait_image):
    spec = resolve_model("sana-video-2b-480p")
    notices = check_request(spec, GenerationRequest(image=portrait_image, seed=0, height=470, width=300))
    assert any("snapped to 288x480" in n for n in notices)
    settings = backend_class("sana_video").resolve_for(spec, GenerationRequest(image=portrait_image, seed=0), [])
    assert settings.width % 32 == 0 and settings.height % 32 == 0 and settings.height > settings.width


# -- generating ----------------------------------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_api_runs_with_progress_and_is_deterministic(gen, square_image, base):
    steps = []
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST),
                     callback=lambda step, total: steps.append((step, total)))
    assert result.frames.shape == (9, 32, 32, 3) and result.frames.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]
    assert {"encode", "denoise", "decode"} <= set(result.timings)
    assert np.array_equal(result.frames, base.frames)  # same seed, same settings
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base.frames)  # the prompt reaches the model
    scored = gen.run(GenerationRequest(image=square_image, prompt=PROMPT + " motion score: 5.", **FAST))
    assert scored.settings["pipeline_prompt"] == PROMPT + " motion score: 5." and scored.settings["motion_score"] is None
    assert not np.array_equal(scored.frames, base.frames)


def test_without_guidance_the_negative_prompt_is_unused(gen, square_image, base):
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, negative_prompt="blurry",
                                       **{**FAST, "guidance_scale": 1.0}))
    assert result.settings["negative_prompt_used"] is False
    assert any("does not use a negative prompt" in n for n in result.notices)
    assert not np.array_equal(result.frames, base.frames)


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A small random LoRA on the transformer's attention projections, saved as diffusers saves one."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_folder("sana_video"))  # a SanaImageToVideoPipeline
    return save_random_lora(pipe, tmp_path_factory.mktemp("sana-video-lora"), ["to_q", "to_out.0"])


def test_lora_loads_through_the_pipelines_loader(tiny_folder, square_image, lora_file, base):
    off = ImageToVideoGenerator(tiny_folder("sana_video"), device="cpu", loras=[f"{lora_file}:0"]).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    on = ImageToVideoGenerator(tiny_folder("sana_video"), device="cpu", loras=[str(lora_file)]).run(
        GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert np.array_equal(off.frames, base.frames) and not np.array_equal(on.frames, base.frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]


# -- refusals before any weights load -------------------------------------------------------------


# (the requests refused, and every cache refused: test_families_common.py)


def test_fp16_is_refused_before_loading(tiny_folder):
    with pytest.raises(InvalidRequestError, match="fp16 is not supported"):
        ImageToVideoGenerator(tiny_folder("sana_video"), device="cpu", dtype="fp16")


# -- parity: i2v changes nothing ---------------------------------------------------------------------


def i2v_and_stock(folder: str, tmp_path, frames: int, height: int, width: int, stock_class=None):
    """i2v's PNG frames and the stock pipeline's, called directly with the sidecar's settings."""
    import diffusers

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out)]) == 0
    s = read_metadata(out)
    ours, _ = read_video(out)

    pipe = getattr(diffusers, stock_class or "DiffusionPipeline").from_pretrained(folder, use_safetensors=True)
    if s["shift"] is not None:  # diffusers' docs' I2V scheduler: flow-Euler at the model's shift
        pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=s["shift"])
    assert type(pipe.scheduler).__name__ == s["scheduler"]
    with torch.inference_mode():
        result = pipe(image=image, prompt=s["pipeline_prompt"],
                      negative_prompt=s["negative_prompt"] if s["negative_prompt_used"] else "",
                      height=s["height"], width=s["width"], frames=s["num_frames"],
                      num_inference_steps=s["num_inference_steps"], guidance_scale=s["guidance_scale"],
                      max_sequence_length=s["max_sequence_length"], use_resolution_binning=s["use_resolution_binning"],
                      generator=torch.Generator("cpu").manual_seed(s["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    return ours, stock


@pytest.mark.parametrize("frames,height,width", [(9, 32, 32), (9, 32, 64)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, frames, height, width):
    ours, stock = i2v_and_stock(tiny_folder("sana_video"), tmp_path, frames, height, width)
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)


def test_the_released_layout_runs_as_diffusers_docs_run_it(tiny_folder, tmp_path):
    """A SanaVideoPipeline folder (flow DPM-Solver) runs with SanaImageToVideoPipeline and flow-Euler at the
    folder's flow shift: the frames of the docs' I2V recipe, with ``shift`` set as it means to."""
    ours, stock = i2v_and_stock(tiny_folder("sana_video-t2v"), tmp_path, 9, 32, 32,
                                stock_class="SanaImageToVideoPipeline")
    assert ours.shape == stock.shape == (9, 32, 32, 3)
    assert np.array_equal(ours, stock)
