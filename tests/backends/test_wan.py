"""Wan image-to-video backend on tiny seeded Wan 2.1 I2V and FLF2V folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.base import InvalidRequestError
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.video_io import probe_video

from .tiny_components import sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("wan"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt="the red square moves left", **FAST)).frames


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A random LoRA on the tiny transformer's attention, saved the diffusers way (safetensors)."""
    from diffusers import WanImageToVideoPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = WanImageToVideoPipeline.from_pretrained(tiny_folder("wan"))
    torch.manual_seed(0)
    pipe.transformer.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_out.0"],
                                            init_lora_weights=False))
    folder = tmp_path_factory.mktemp("wan-lora")
    WanImageToVideoPipeline.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
                                              safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def test_folder_defaults(tiny_folder):
    spec = resolve_model(tiny_folder("wan"))
    d = spec.defaults
    assert spec.family == "wan" and (d.num_frames, d.fps, d.size_multiple, d.frame_rule) == (81, 16.0, 16, "4n+1")
    assert spec.extras["first_last_frame"] is False  # Wan 2.1 I2V: one CLIP image only
    assert resolve_model(tiny_folder("wan-flf")).extras["first_last_frame"] is True


def test_cli_snaps_frames_and_size_and_writes_16_fps(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "wan.mp4"
    code = main(["generate", str(square_image), "-m", tiny_folder("wan"), "-p", "the red square moves left",
                 "--negative-prompt", "blurry", "--num-frames", "7", "--height", "30", "--width", "40",
                 "--num-inference-steps", "2", "--seed", "0", "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "snapped to 9" in err and "snapped to 48x32" in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (9, 48, 32, 16)
    meta = sidecar(out)
    assert meta["prompt"] == "the red square moves left" and meta["negative_prompt"] == "blurry"
    assert meta["prompt_used"] is True and meta["flow_shift"] == 3.0 and meta["scheduler"] == "UniPCMultistepScheduler"


def test_default_negative_prompt_and_prompt_routing(gen, square_image, base_frames):
    result = gen.run(GenerationRequest(image=square_image, prompt="the red square moves left", **FAST))
    assert result.settings["negative_prompt"].startswith("Bright tones, overexposed")
    assert np.array_equal(result.frames, base_frames)  # same seed, same settings
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model


def test_first_last_frame(tiny_folder, square_image, portrait_image, tmp_path):
    out = tmp_path / "flf.gif"
    assert main(["generate", str(square_image), "-m", tiny_folder("wan-flf"), "--last-image", str(portrait_image),
                 "--num-frames", "5", "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0",
                 "-q", "-o", str(out)]) == 0
    meta = sidecar(out)
    assert meta["first_last_frame"] is True and meta["last_image"] == str(portrait_image)
    assert probe_video(out)["num_frames"] == 5


def test_a_text_to_video_wan_folder_is_refused(tiny_folder, tmp_path):
    import json
    import shutil

    from i2v.registry import UnknownModelError

    folder = tmp_path / "t2v"
    shutil.copytree(tiny_folder("wan"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
    with pytest.raises(UnknownModelError, match="text-to-video"):
        resolve_model(str(folder))


def test_last_image_is_refused_by_a_plain_i2v_model_before_loading(gen, square_image):
    with pytest.raises(InvalidRequestError, match="first-last-frame"):
        gen.run(GenerationRequest(image=square_image, last_image=square_image, **FAST))


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames,
                                                                    lora_file):
    kw = dict(image=square_image, prompt="the red square moves left", **FAST)
    off = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[f"{lora_file}:0"]).run(GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[str(lora_file.parent)]).run(
        GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]


def test_pickle_lora_is_refused(tiny_folder, tmp_path):
    bad = tmp_path / "style.bin"
    bad.write_bytes(b"not read")
    with pytest.raises(InvalidRequestError, match="safetensors"):
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[str(bad)])


def test_scheduler_swap_and_invalid_name(tiny_folder, square_image, capsys, tmp_path):
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", scheduler="DPMSolverMultistepScheduler")
    result = gen.run(GenerationRequest(image=square_image, **FAST))
    assert result.settings["scheduler"] == "DPMSolverMultistepScheduler"
    code = main(["generate", str(square_image), "-m", tiny_folder("wan"), "--scheduler", "NoSuchScheduler",
                 "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "valid names:" in err and "UniPCMultistepScheduler" in err


def test_memory_options_keep_the_output(tiny_folder, square_image, base_frames, monkeypatch):
    """Group offload (onload to CPU here) and VAE slicing are exact; VAE tiling (forced onto small
    tiles so that it really tiles a 64x64 video) stays within a small tolerance."""
    kw = dict(image=square_image, prompt="the red square moves left", **FAST)
    grouped = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", offload="group", vae_slicing=True)
    result = grouped.run(GenerationRequest(**kw))
    assert result.settings["offload"] == "group" and result.settings["vae_slicing"] is True
    np.testing.assert_array_equal(result.frames, base_frames)

    from diffusers import AutoencoderKLWan

    original = AutoencoderKLWan.enable_tiling
    monkeypatch.setattr(AutoencoderKLWan, "enable_tiling", lambda self: original(
        self, tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=16,
        tile_sample_stride_width=16))
    big = dict(kw, height=64, width=64)
    plain = ImageToVideoGenerator(tiny_folder("wan"), device="cpu").run(GenerationRequest(**big)).frames
    tiled_gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", vae_tiling=True)
    tiled = tiled_gen.run(GenerationRequest(**big)).frames
    assert tiled_gen.backend.pipeline.vae.use_tiling
    assert np.abs(plain.astype(int) - tiled).mean() < 8
