"""The embedded model shipped in the package: loads offline and runs once."""

import numpy as np

from i2v import ImageToVideoGenerator
from i2v.world.scenes import render, sample_scene
from i2v.metrics.fidelity import first_frame_psnr
from i2v.registry import DEFAULT_MODEL, MODELS


def test_shipped_weights_are_safetensors_and_small():
    folder = MODELS[DEFAULT_MODEL].source
    from pathlib import Path

    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert sum(p.stat().st_size for p in files) < 60 * 2**20


def test_shipped_model_generates_offline():
    gen = ImageToVideoGenerator()  # no model name: the embedded default
    scene = sample_scene(3, motion="move_right")
    first = render(scene)[0]
    frames = gen.generate(image=first, prompt="the object moves to the right", seed=0, num_inference_steps=4)
    assert frames.shape == (16, 128, 128, 3) and frames.dtype == np.uint8
    assert first_frame_psnr(frames, first) > 26  # frame 0 is the input through the autoencoder
