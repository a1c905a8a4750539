"""Stable Video Diffusion as a training target: fine-tune ``UNetSpatioTemporalConditionModel``.

SVD's conditioning, as its pipeline feeds it at generation time:
* the first frame, noise-augmented (``noise_aug_strength``), VAE-encoded (posterior mode, not
  scaled) and concatenated on channels to every frame's noisy latent;
* the first frame's CLIP image embedding as the cross-attention token;
* ``added_time_ids = [fps - 1, motion_bucket_id, noise_aug_strength]`` micro-conditioning.
Optionally (``--text-conditioning``) the prompt's MiniLM tokens, projected by a trained
``TextProjection``, are appended to the image token (see ``pipelines/pipeline_svd_text.py``).

Objective: EDM (Karras et al. 2022, eq. 2/7) with SVD's v-prediction preconditioning,
``D(x) = c_skip x + c_out F(c_in x, c_noise)`` with ``c_in = 1/sqrt(s^2+1)``, ``c_skip = 1/(s^2+1)``,
``c_out = -s/sqrt(s^2+1)``, ``c_noise = log(s)/4``; log-sigma ~ N(0.7, 1.6^2); loss weight
``(s^2+1)/s^2``. ``c_in`` and ``c_noise`` are exactly what diffusers' EulerDiscreteScheduler
(``timestep_type="continuous"``) gives the U-Net at sampling time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..models.text_projection import TextProjection, svd_encoder_states
from .export import write_model_folder

P_MEAN, P_STD = 0.7, 1.6  # log-normal training sigmas
NOISE_AUG_MEAN, NOISE_AUG_STD = -3.0, 0.5  # log-normal conditioning noise, around SVD's default 0.02..0.1
CONDITION_DROPOUT = 0.1  # per sample: image token / first-frame latent dropped (classifier-free guidance)


class SVDDenoiser(nn.Module):
    """The trained part: the SVD U-Net, plus the text projection when text-guided."""

    def __init__(self, unet, text_proj: TextProjection | None):
        super().__init__()
        self.unet = unet
        self.text_proj = text_proj

    def forward(self, sample, timestep, image_embeds, added_time_ids, text_states=None, text_mask=None):
        # sample: (B, T, 2C, h, w); image_embeds: (B, 1, D); text_states: (B, L, 384)
        tokens = self.text_proj(text_states, text_mask) if self.text_proj is not None else None
        states = svd_encoder_states(image_embeds, tokens)
        return self.unet(sample, timestep, encoder_hidden_states=states, added_time_ids=added_time_ids).sample


class SVDTrainable:
    family = "svd"

    @classmethod
    def from_args(cls, spec, args, device) -> SVDTrainable:
        """For ``i2v train --model <an SVD name or folder>``: fine-tuned from its folder (downloaded if need be)."""
        from ..backends.diffusers.loading import local_model_folder
        from ..errors import TrainingSetupError

        if args.preset:
            raise TrainingSetupError("--preset builds an i2v model from scratch; SVD is fine-tuned from its folder")
        folder = Path(spec.source) if Path(spec.source).is_dir() else local_model_folder(spec.source)
        return cls(folder, device=device, text_conditioning=args.text_conditioning,
                   motion_bucket_id=args.motion_bucket_id)

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", text_conditioning: bool = False,
                 motion_bucket_id: int = 127):
        from diffusers import StableVideoDiffusionPipeline

        from ..backends.diffusers.svd import TEXT_PROJ_FOLDER

        self.folder = Path(folder)
        pipe = StableVideoDiffusionPipeline.from_pretrained(str(self.folder), use_safetensors=True,
                                                            torch_dtype=torch.float32)
        self.pipe = pipe
        for frozen in (pipe.vae, pipe.image_encoder):
            frozen.eval().requires_grad_(False).to(device)
        text_proj = None
        if (self.folder / TEXT_PROJ_FOLDER).is_dir():  # an already text-guided SVD keeps (and trains) its projection
            text_proj = TextProjection.from_pretrained(str(self.folder / TEXT_PROJ_FOLDER), use_safetensors=True)
        elif text_conditioning:
            torch.manual_seed(0)
            text_proj = TextProjection(cross_attention_dim=pipe.unet.config.cross_attention_dim)
        self.text_encoder = None
        if text_proj is not None:
            from ..conditioning import MiniLMTextEncoder

            self.text_encoder = MiniLMTextEncoder(device=device)
        self.model = SVDDenoiser(pipe.unet, text_proj)
        self.denoiser = pipe.unet  # where a LoRA goes
        self.motion_bucket_id = motion_bucket_id
        vae_scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        self.num_frames = pipe.unet.config.num_frames
        self.height = self.width = pipe.unet.config.sample_size * vae_scale
        self.size_multiple = vae_scale * 2 ** (len(pipe.unet.config.block_out_channels) - 1)

    # ---- frozen encoders ----
    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, fps: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, T, H, W) in [-1, 1] -> latents (B, T, C, h, w) scaled, the clean first frame
        (B, 3, H, W), its CLIP embedding (B, 1, D) and the clip's fps (B,). Cacheable per clip."""
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing,
        )

        vae = self.pipe.vae
        b, _, t = video.shape[:3]
        frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
        latents = torch.cat([vae.encode(c).latent_dist.mode() for c in frames.split(16)])
        latents = (latents * vae.config.scaling_factor).unflatten(0, (b, t))  # (B, T, C, h, w)
        first = video[:, :, 0]  # (B, 3, H, W)
        # the pipeline's own image path: antialiased resize to 224 in [-1, 1], then CLIP normalisation
        clip_in = (_resize_with_antialiasing(first, (224, 224)) + 1.0) / 2.0
        embeds = self.pipe._encode_image(clip_in.clamp(0, 1), video.device, 1, False)  # (B, 1, D)
        return {"latents": latents, "first_frame": first, "image_embeds": embeds, "fps": fps.float()}

    def loss(self, model, cond: dict[str, torch.Tensor], captions: list[str], gen: torch.Generator) -> torch.Tensor:
        latents = cond["latents"]  # (B, T, C, h, w)
        device, b = latents.device, latents.shape[0]
        rand = lambda *shape: torch.randn(shape, generator=gen).to(device)  # noqa: E731
        unif = lambda *shape: torch.rand(shape, generator=gen).to(device)  # noqa: E731

        # conditioning: noise-augmented first frame -> VAE latent (mode, unscaled), as the pipeline does
        aug = torch.exp(NOISE_AUG_MEAN + NOISE_AUG_STD * rand(b))  # (B,)
        first = cond["first_frame"] + aug[:, None, None, None] * rand(*cond["first_frame"].shape)
        with torch.no_grad():
            cond_latents = self.pipe.vae.encode(first).latent_dist.mode()  # (B, C, h, w)
        keep_latent = (unif(b) >= CONDITION_DROPOUT).float()[:, None, None, None]
        keep_image = (unif(b) >= CONDITION_DROPOUT).float()[:, None, None]
        cond_latents = (cond_latents * keep_latent)[:, None].expand(-1, latents.shape[1], -1, -1, -1)
        image_embeds = cond["image_embeds"] * keep_image
        added_time_ids = torch.stack([cond["fps"] - 1, torch.full_like(aug, float(self.motion_bucket_id)), aug], 1)

        # EDM noising and v-prediction preconditioning
        sigma = torch.exp(P_MEAN + P_STD * rand(b))[:, None, None, None, None]  # (B, 1, 1, 1, 1)
        noisy = latents + sigma * rand(*latents.shape)
        c_in, c_skip, c_out = 1 / (sigma**2 + 1).sqrt(), 1 / (sigma**2 + 1), -sigma / (sigma**2 + 1).sqrt()
        c_noise = sigma.flatten().log() / 4
        text = {}
        if self.text_encoder is not None:
            emb = self.text_encoder.encode(captions).to(device)
            text = dict(text_states=emb.states, text_mask=emb.mask)
        inp = torch.cat([c_in * noisy, cond_latents], dim=2)  # (B, T, 2C, h, w)
        pred = model(inp, c_noise, image_embeds, added_time_ids, **text)
        denoised = c_skip * noisy + c_out * pred.float()
        weight = (sigma**2 + 1) / sigma**2
        return (weight * (denoised - latents) ** 2).mean()

    # ---- output ----
    def save_model(self, model: SVDDenoiser, folder: str | Path) -> None:
        """A complete SVD folder (``i2v generate --model FOLDER``); ``text_proj/`` when text-guided."""
        from ..backends.diffusers.svd import TEXT_PROJ_FOLDER

        def save(tmp: Path) -> None:
            components = {**self.pipe.components, "unet": model.unet}
            type(self.pipe)(**components).save_pretrained(tmp, safe_serialization=True)
            if model.text_proj is not None:
                model.text_proj.save_pretrained(tmp / TEXT_PROJ_FOLDER, safe_serialization=True)

        write_model_folder(save, folder)
