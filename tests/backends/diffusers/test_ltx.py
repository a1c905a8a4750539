"""LTX-Video backend on a tiny seeded LTXImageToVideoPipeline folder."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")


def test_folder_defaults(tiny_folder):
    d = resolve_model(tiny_folder("ltx")).defaults
    assert (d.num_frames, d.fps, d.size_multiple, d.frame_rule) == (161, 24.0, 32, "8n+1, at most 257")


def test_cli_writes_24_fps_and_frame_rate(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "ltx.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("ltx"), "-p", "the camera pans left",
                 "--num-frames", "12", "--height", "40", "--width", "40", "--num-inference-steps", "2",
                 "--seed", "0", "--timings", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "snapped to 9" in err and "snapped to 32x32" in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (9, 32, 32, 24)
    meta = sidecar(out)
    assert meta["frame_rate"] == 24 and meta["negative_prompt"].startswith("worst quality")


def test_default_size_keeps_the_image_aspect(gen, portrait_image):
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert s.height > s.width and s.height % 32 == 0 and s.width % 32 == 0
    assert abs(s.height * s.width - 480 * 704) / (480 * 704) < 0.15


def test_last_image_runs_the_condition_pipeline(gen, square_image, portrait_image):
    first = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST))
    both = gen.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt="x", **FAST))
    assert type(gen.backend.active).__name__ == "LTXConditionPipeline"
    assert both.frames.shape == first.frames.shape == (9, 32, 32, 3)
    assert both.settings["first_last_frame"] is True and not np.array_equal(both.frames, first.frames)
    # the condition pipeline shares the loaded weights (from_pipe), nothing is loaded twice
    assert gen.backend.active.transformer is gen.backend.pipeline.transformer


def test_vae_tiling_keeps_the_output(tiny_folder, gen, square_image):
    plain = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    tiled = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu", vae_tiling=True).run(
        GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    assert np.abs(plain.astype(int) - tiled).max() <= 2


def test_condition_pipeline_keeps_the_loaded_dtypes(tiny_folder):
    """The LTXConditionPipeline built for a last image shares the loaded (bf16) models without casting
    them (diffusers' ``from_pipe`` with no dtype would turn them all to fp32)."""
    import torch

    gen = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    pipe = gen.backend.pipeline
    pipe.transformer.to(torch.bfloat16)
    pipe.text_encoder.to(torch.bfloat16)
    condition = gen.backend.condition_pipeline()
    assert type(condition).__name__ == "LTXConditionPipeline"
    assert condition.transformer is pipe.transformer and condition.vae is pipe.vae
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32  # each component keeps its own dtype
