"""i2v's own model as a training target for ``i2v train --model ... --data ...``.

From the shipped weights (``--model i2v-tiny`` or a saved i2v folder) or from scratch (``--preset``:
a fresh denoiser of that size, with the folder's autoencoder). The objective is the one the
embedded model was trained with: rectified-flow velocity on frames 1..T-1, frame 0 held clean.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from ..sampling import sample_training_sigmas
from .latent_cache import encode_video
from .train_video import flow_matching_loss


class I2VTrainable:
    family = "tiny"

    def __init__(self, folder: str | Path, preset: str | None = None, device: str | torch.device = "cpu"):
        from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler

        from ..conditioning import MiniLMTextEncoder
        from ..models.unet import SpaceTimeUNet, build_unet

        self.folder = Path(folder)
        self.vae = AutoencoderKL.from_pretrained(self.folder / "vae", use_safetensors=True,
                                                 torch_dtype=torch.float32).eval().requires_grad_(False).to(device)
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(self.folder / "scheduler")
        base = SpaceTimeUNet.from_pretrained(self.folder / "unet", use_safetensors=True, torch_dtype=torch.float32)
        if preset:  # from scratch: a fresh denoiser of the preset's size for the folder's latents
            base = build_unet(preset, latent_channels=self.vae.config.latent_channels,
                              num_frames=base.config.num_frames, sample_size=base.config.sample_size)
        self.model = base  # the trained module
        self.denoiser = base  # where a LoRA goes
        self.text_encoder = MiniLMTextEncoder(device=device)
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.num_frames = base.config.num_frames
        self.height = self.width = base.config.sample_size * scale
        self.size_multiple = scale * base.config.patch_size * 2 ** (len(base.config.block_out_channels) - 1)
        self.default_fps = 8.0

    # ---- frozen encoders: everything a training step needs that does not change ----
    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, fps: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, T, H, W) in [-1, 1] -> {"latents": (B, C, T, h, w)}. Cacheable per clip."""
        with torch.autocast(video.device.type, dtype=torch.bfloat16, enabled=video.device.type == "cpu"):
            return {"latents": encode_video(self.vae, video).float()}

    def loss(self, model, cond: dict[str, torch.Tensor], captions: list[str], gen: torch.Generator) -> torch.Tensor:
        latents = cond["latents"]  # (B, C, T, h, w)
        device = latents.device
        text = self.text_encoder.encode(captions).to(device)
        sigmas = sample_training_sigmas(len(latents), gen, shift=self.scheduler.config.shift).to(device)
        noise = torch.randn(latents.shape, generator=gen).to(device)
        return flow_matching_loss(model, latents, text, sigmas, noise)

    # ---- output ----
    def save_model(self, model: torch.nn.Module, folder: str | Path) -> None:
        """Write a complete i2v model folder (``i2v generate --model FOLDER``) with ``model``'s weights."""
        from ..pipelines.pipeline_i2v import I2VPipeline

        pipe = I2VPipeline(vae=self.vae, unet=model, scheduler=self.scheduler)
        write_model_folder(lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True), folder)


def write_model_folder(save, folder: str | Path) -> None:
    """Run ``save(tmp)`` into a temporary folder, then move its entries into ``folder``.

    ``model_index.json`` moves last, so a folder that has one holds a complete model; other
    entries of ``folder`` (checkpoints, logs, samples) are left alone."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model_", dir=folder))
    try:
        save(tmp)
        index = tmp / "model_index.json"
        (folder / "model_index.json").unlink(missing_ok=True)
        for entry in sorted(tmp.iterdir()):
            if entry == index:
                continue
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            entry.replace(target)
        index.replace(folder / "model_index.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
