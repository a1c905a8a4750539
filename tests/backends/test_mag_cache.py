"""MagCache: ``i2v calibrate-cache`` measures a model's magnitude-ratio curve and saves it beside the
model; ``--cache magcache`` then skips blocks on the steps the curve allows."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.errors import InvalidRequestError

REQUEST = dict(seed=0, num_frames=5, height=32, width=32, num_inference_steps=12, prompt="a cat walks left")


@pytest.fixture
def wan_copy(tiny_folder, tmp_path):
    folder = tmp_path / "wan"
    shutil.copytree(tiny_folder("wan"), folder)
    return folder


def block_calls(gen) -> list[int]:
    """A counter of the transformer's last block really running (its self-attention: a skipped block's
    call returns the cached residual without running its layers)."""
    calls = [0]
    blocks = gen.backend.pipeline.transformer.blocks
    blocks[-1].attn1.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_without_a_calibration_magcache_is_refused_before_loading(wan_copy, square_image):
    with pytest.raises(InvalidRequestError, match="i2v calibrate-cache --model"):
        ImageToVideoGenerator(str(wan_copy), device="cpu", cache="magcache")


def test_calibrate_then_generate_with_fewer_block_runs(wan_copy, square_image, capsys):
    assert main(["calibrate-cache", "--model", str(wan_copy), "--image", str(square_image), "--num-inference-steps",
                 "12", "--num-frames", "5", "--height", "32", "--width", "32"]) == 0
    saved = json.loads((wan_copy / "i2v_magcache.json").read_text())
    ratios = saved["ratios"]
    assert len(ratios) == 12 and all(r > 0 for r in ratios) and saved["measured_with"]["num_inference_steps"] == 12
    assert "saved to" in capsys.readouterr().out

    plain = ImageToVideoGenerator(str(wan_copy), device="cpu")
    plain_calls = block_calls(plain)
    base = plain.run(GenerationRequest(image=square_image, **REQUEST)).frames
    cached = ImageToVideoGenerator(str(wan_copy), device="cpu", cache="magcache")
    cached_calls = block_calls(cached)
    fast = cached.run(GenerationRequest(image=square_image, **REQUEST))
    assert cached_calls[0] < plain_calls[0]  # some steps' blocks were skipped
    assert np.abs(fast.frames.astype(int) - base).mean() < 12  # and the video stays close
    assert fast.settings["acceleration"]["cache"] == "magcache"
    # another step count: the curve is resampled, and a second run starts from a clean state
    again = cached.run(GenerationRequest(image=square_image, **{**REQUEST, "num_inference_steps": 8}))
    assert again.frames.shape == base.shape


def test_a_broken_calibration_file_is_a_typed_error(wan_copy):
    (wan_copy / "i2v_magcache.json").write_text(json.dumps({"ratios": [1.0, -2.0]}))
    with pytest.raises(InvalidRequestError, match="positive numbers"):
        ImageToVideoGenerator(str(wan_copy), device="cpu", cache="magcache")


def test_video_to_video_is_refused_with_magcache_before_loading(wan_copy, square_image):
    """The calibrated curve covers the whole schedule; video-to-video runs only its tail."""
    (wan_copy / "i2v_magcache.json").write_text(json.dumps({"ratios": [1.0] * 12}))
    gen = ImageToVideoGenerator(str(wan_copy), device="cpu", cache="magcache")
    video = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(InvalidRequestError, match="video-to-video"):
        gen.run(GenerationRequest(image=square_image, init_video=video, strength=0.5, **REQUEST))
    assert not gen.backend.weights_resident()
