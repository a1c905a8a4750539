"""AnimateDiff + SparseCtrl RGB backend on a tiny seeded AnimateDiffSparseControlNetPipeline folder."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.animatediff import MOTION_LORAS
from i2v.errors import InvalidRequestError
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=4, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu")


def test_folder_defaults(tiny_folder):
    d = resolve_model(tiny_folder("animatediff")).defaults
    assert (d.num_frames, d.max_frames, d.fps, d.size_multiple) == (16, 32, 8.0, 8)


def test_cli_conditions_frame_zero_on_the_image(tiny_folder, square_image, tmp_path):
    out = tmp_path / "ad.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("animatediff"), "-p", "the red square moves right",
                 "--num-frames", "4", "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0",
                 "-q", "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (4, 32, 32, 8)
    meta = sidecar(out)
    assert meta["controlnet_frame_indices"] == [0] and meta["controlnet_conditioning_scale"] == 1.0


def test_the_image_reaches_the_model(gen, square_image, portrait_image):
    a = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    b = gen.run(GenerationRequest(image=portrait_image, prompt="x", **FAST)).frames
    assert not np.array_equal(a, b)


def test_more_frames_than_the_motion_module_holds_is_refused(gen, square_image):
    with pytest.raises(InvalidRequestError, match="at most 32"):
        gen.run(GenerationRequest(image=square_image, num_frames=48, seed=0))


def test_motion_lora_aliases_and_a_local_motion_lora(tiny_folder, square_image, tmp_path):
    assert MOTION_LORAS["zoom-in"] == "guoyww/animatediff-motion-lora-zoom-in" and len(MOTION_LORAS) == 8
    from diffusers import AnimateDiffSparseControlNetPipeline

    pipe = AnimateDiffSparseControlNetPipeline.from_pretrained(tiny_folder("animatediff"))
    # a LoRA on the motion modules' attention, as AnimateDiff's motion LoRAs are
    lora = save_random_lora(pipe, tmp_path, r".*motion_modules.*\.(to_q|to_v)", component="unet")
    kw = dict(image=square_image, prompt="x", **FAST)
    base = ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu").run(GenerationRequest(**kw))
    moved = ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu", loras=[f"{lora}:1.5"]).run(
        GenerationRequest(**kw))
    assert moved.settings["loras"][0]["scale"] == 1.5 and not np.array_equal(base.frames, moved.frames)
