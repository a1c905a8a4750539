"""i2v's own model as a training target: the denoiser both ``train_video`` and ``i2v train --model i2v-tiny`` train.

From a model folder (``--model i2v-tiny`` or a saved i2v folder), optionally with a fresh denoiser
of a preset's size (``--preset``: from scratch), or from parts (the video stage: its autoencoder,
a preset's denoiser, its noise-level shift). The objective is the one the embedded model was
trained with: rectified-flow velocity on frames 1..T-1, frame 0 held clean.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.autoencoder import spatial_compression
from ..sampling import flow_matching_loss, sample_training_sigmas
from .export import write_model_folder
from .latent_cache import encode_video

WARP_SIGMA_FLOOR = 0.2  # a warping denoiser's clean-frame error weighs at most 1 / 0.2**2 = 25 times


def load_unet(folder: str | Path, latent_channels: int | None = None, log=print, prediction: str | None = None,
              vae=None, camera_flow: bool | None = None, history_frames: int | None = None) -> torch.nn.Module:
    """A denoiser folder, or a model folder's ``unet/``, as float32 weights to train.

    With ``latent_channels`` other than the folder's (a new autoencoder) or another ``prediction``
    (``"warp"``: see ``models.unet``), the network is rebuilt for them and keeps every weight whose
    shape still fits. The latent-facing patch embedding (``conv_in``) keeps its weights for the
    inputs it already had when the latent channels stay (new inputs start at zero); the output
    (``conv_out``) starts afresh at zero, as in a fresh network. A warping denoiser takes its warp
    from ``vae`` (a ``PatchAutoencoder``); ``camera_flow=True`` adds its affine camera head (zero at
    the start: the flow is unchanged until it trains); ``history_frames`` adds the held-frames input (zero at
    the start: the network is unchanged until it trains)."""
    from safetensors.torch import load_file

    from ..models.unet import SpaceTimeUNet

    folder = Path(folder)
    folder = folder / "unet" if (folder / "unet").is_dir() else folder
    unet = SpaceTimeUNet.from_pretrained(folder, use_safetensors=True, torch_dtype=torch.float32)
    latent_channels = latent_channels or unet.config.latent_channels
    prediction = prediction or unet.config.prediction
    camera_flow = unet.config.get("camera_flow", False) if camera_flow is None else camera_flow
    history_frames = unet.config.get("history_frames", 0) if history_frames is None else history_frames
    if (latent_channels == unet.config.latent_channels and prediction == unet.config.prediction
            and camera_flow == unet.config.get("camera_flow", False)
            and history_frames == unet.config.get("history_frames", 0)):
        return unet
    if unet.config.get("history_frames", 0) and not history_frames:
        raise ValueError(f"{folder}: a denoiser trained with history frames keeps them (history_frames >= 1)")
    changes = {"latent_channels": latent_channels, "prediction": prediction, "camera_flow": camera_flow,
               "history_frames": history_frames}
    if prediction == "warp":
        if vae is None:
            raise ValueError("a warping denoiser needs its autoencoder")
        changes["vae_patch_size"] = vae.config.patch_size
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}  # _use_default_values would win
    fresh = SpaceTimeUNet.from_config({**config, **changes})
    old = {k: v.float() for k, v in load_file(str(folder / "diffusion_pytorch_model.safetensors")).items()}
    own = fresh.state_dict()
    kept = {k: v for k, v in old.items() if k in own and own[k].shape == v.shape and not k.startswith("warp.")}
    grown = own["conv_in.weight"].clone()
    if latent_channels == unet.config.latent_channels and grown.shape[1] > old["conv_in.weight"].shape[1]:
        grown.zero_()[:, : old["conv_in.weight"].shape[1]] = old["conv_in.weight"]  # same inputs first
        kept.update({"conv_in.weight": grown, "conv_in.bias": old["conv_in.bias"]})
    fresh.load_state_dict(kept, strict=False)
    if prediction == "warp":
        fresh.warp.set_from_autoencoder(vae)
    log(f"denoiser from {folder}: {unet.config.latent_channels} -> {latent_channels} latent channels, "
        f"{unet.config.prediction} -> {prediction} prediction, history frames {unet.config.get('history_frames', 0)} "
        f"-> {history_frames}; new: "
        f"{', '.join(sorted(k for k in own if k not in kept and not k.startswith('warp.')))}")
    return fresh


class I2VTrainable:
    family = "tiny"

    def __init__(self, unet, vae, scheduler, text_encoder, folder: str | Path | None = None):
        self.model = unet  # the trained module
        self.denoiser = unet  # where a LoRA goes
        self.vae = vae  # frozen
        self.scheduler = scheduler  # its shift sets the training noise levels
        self.text_encoder = text_encoder  # frozen
        self.folder = None if folder is None else Path(folder)
        scale = spatial_compression(vae.config)
        self.num_frames = unet.config.num_frames
        self.height = self.width = unet.config.sample_size * scale
        self.size_multiple = 2 * scale * unet.config.patch_size  # as the backend snaps sizes

    @classmethod
    def from_args(cls, spec, args, device) -> I2VTrainable:
        """For ``i2v train --model <an i2v model>``: its folder, or a fresh ``--preset`` denoiser."""
        from ..errors import TrainingSetupError
        from ..models.unet import UNET_PRESETS

        if args.text_conditioning:
            raise TrainingSetupError("--text-conditioning is for Stable Video Diffusion; i2v models take text")
        if args.preset is not None and args.preset not in UNET_PRESETS:
            raise TrainingSetupError(f"unknown --preset {args.preset!r}; expected one of {sorted(UNET_PRESETS)}")
        return cls.from_folder(spec.source, preset=args.preset, device=device)

    @classmethod
    def from_folder(cls, folder: str | Path, preset: str | None = None,
                    device: str | torch.device = "cpu") -> I2VTrainable:
        """A saved i2v model; with ``preset``, a fresh denoiser of that size for the folder's latents."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        from ..conditioning import MiniLMTextEncoder
        from ..models.autoencoder import load_autoencoder
        from ..models.unet import build_unet

        folder = Path(folder)
        vae = load_autoencoder(folder / "vae", torch_dtype=torch.float32).eval().requires_grad_(False).to(device)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
        unet = load_unet(folder)
        if preset:
            unet = build_unet(preset, latent_channels=vae.config.latent_channels,
                              num_frames=unet.config.num_frames, sample_size=unet.config.sample_size)
        return cls(unet, vae, scheduler, MiniLMTextEncoder(device=device), folder=folder)

    # ---- frozen encoders: everything a training step needs that does not change ----
    @torch.no_grad()
    def encode_video(self, video: torch.Tensor, fps: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, T, H, W) in [-1, 1] -> {"latents": (B, C, T, h, w)}. Cacheable per clip."""
        with torch.autocast(video.device.type, dtype=torch.bfloat16, enabled=video.device.type == "cpu"):
            return {"latents": encode_video(self.vae, video).float()}

    def encode_text(self, captions: list[str], device: torch.device):
        return self.text_encoder.encode(captions).to(device)

    # ---- the objective ----
    def loss(self, model, cond: dict[str, torch.Tensor], captions: list[str], gen: torch.Generator) -> torch.Tensor:
        latents = cond["latents"]  # (B, C, T, h, w)
        return self.velocity_loss(model, latents, self.encode_text(captions, latents.device), gen)

    def velocity_loss(self, model, latents: torch.Tensor, text, gen: torch.Generator,
                      flow_target: torch.Tensor | None = None, flow_weight: float = 1.0,
                      object_flow_weight: float = 1.0, held: torch.Tensor | None = None,
                      anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Noise levels (at the scheduler's shift) and noise drawn from ``gen``; then ``flow_matching_loss``
        (a warping denoiser's errors floored at sigma 0.2, and its flow fitted to ``flow_target`` if given;
        ``held`` and ``anchor``: a window's history frames and its video's first frame, as there)."""
        device = latents.device
        sigmas = sample_training_sigmas(len(latents), gen, shift=self.scheduler.config.shift).to(device)
        noise = torch.randn(latents.shape, generator=gen).to(device)
        warp = getattr(self.model.config, "prediction", "velocity") == "warp"
        return flow_matching_loss(model, latents, text, sigmas, noise, flow_target=flow_target if warp else None,
                                  flow_weight=flow_weight, sigma_floor=WARP_SIGMA_FLOOR if warp else 0.0,
                                  object_flow_weight=object_flow_weight, held=held, anchor=anchor)

    # ---- output ----
    def save_model(self, model: torch.nn.Module, folder: str | Path) -> None:
        """Write a complete i2v model folder (``i2v generate --model FOLDER``) with ``model``'s weights."""
        from ..pipelines.pipeline_i2v import I2VPipeline

        pipe = I2VPipeline(vae=self.vae, unet=model, scheduler=self.scheduler)
        write_model_folder(lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True), folder)
