"""Shared fixtures: tiny seeded models built in-process (diffusers' get_dummy_components pattern)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)  # tiny models gain nothing from more; avoids oversubscribing shared CPUs


def dummy_components(num_frames: int = 4, size: int = 64, vae_preset: str = "test", prediction: str = "velocity"):
    """A seeded tiny VAE (``test``: AutoencoderKL, ``patch-test``: PatchAutoencoder) + SpaceTimeUNet
    (``prediction="warp"``, with ``patch-test`` only: a warping denoiser with the patch autoencoder's
    linear path and the camera head) + scheduler, ~0.4M parameters in all."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from i2v.models.autoencoder import build_autoencoder, spatial_compression
    from i2v.models.unet import build_unet

    torch.manual_seed(0)
    vae = build_autoencoder(vae_preset, sample_size=size)
    latent = size // spatial_compression(dict(vae.config))
    torch.manual_seed(0)
    warp = dict(vae_patch_size=vae.config.patch_size, camera_flow=True) if prediction == "warp" else {}
    unet = build_unet("test", num_frames=num_frames, sample_size=latent,
                      latent_channels=vae.config.latent_channels, prediction=prediction, **warp)
    randomize_zero_init(unet)
    if unet.warp is not None:
        unet.warp.set_from_autoencoder(vae)
    return {"vae": vae, "unet": unet, "scheduler": FlowMatchEulerDiscreteScheduler(shift=1.0)}


def randomize_zero_init(module: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    """Zero-initialised output layers make a fresh model ignore its inputs; tests need them live."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.fixture(scope="session")
def text_encoder():
    from i2v.conditioning import MiniLMTextEncoder

    return MiniLMTextEncoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved tiny embedded-model folder (model_index.json + vae/ unet/ scheduler/)."""
    from i2v.pipelines.pipeline_i2v import I2VPipeline

    folder = tmp_path_factory.mktemp("tiny-model")
    I2VPipeline(**dummy_components()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def warp_model_dir(tmp_path_factory):
    """A saved tiny embedded-model folder whose denoiser warps (``prediction="warp"``): it takes a camera
    path and trajectories (``TinyBackend.takes_motion``)."""
    from i2v.pipelines.pipeline_i2v import I2VPipeline

    folder = tmp_path_factory.mktemp("warp-model")
    I2VPipeline(**dummy_components(vae_preset="patch-test", prediction="warp")).save_pretrained(folder)
    return folder


@pytest.fixture
def sample_image_path(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.zeros((80, 96, 3), np.uint8) + 120
    arr[20:50, 30:60] = (220, 30, 30)
    arr += rng.integers(0, 5, arr.shape, dtype=np.uint8)
    path = tmp_path / "input.png"
    Image.fromarray(arr).save(path)
    return path
