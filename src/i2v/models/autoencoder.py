"""The embedded model's image autoencoders, by named preset, and the one way to load a saved one.

Two kinds, both at 4x spatial down-sampling (the denoiser patchifies 2x2 on top):
- diffusers' ``AutoencoderKL`` (``small``, ``test``): the shapes world's autoencoder, 4 latent channels;
- ``PatchAutoencoder`` (``photo``, ``patch-test``): a linear patch code plus a learned correction,
  16 latent channels, for photographs (``patch_autoencoder.py``).
A saved folder says which it is in its ``config.json`` (``_class_name``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # diffusers loads on first use: ``spatial_compression`` serves light code paths too
    import torch
    from diffusers import AutoencoderKL

    from .patch_autoencoder import PatchAutoencoder

VAE_PRESETS: dict[str, dict] = {
    # ~1.5M parameters; trains on 64x64 crops on a laptop CPU.
    "small": dict(block_out_channels=(16, 32, 96), norm_num_groups=16, latent_channels=4),
    # ~0.5M parameters, 16 latent channels per 4x4 patch: a photograph's detail survives (a 128x128
    # frame is 32x32x16 latents)
    "photo": dict(kind="patch", latent_channels=16, hidden_channels=64, encoder_blocks=2, decoder_blocks=4),
    # for tests: a few thousand parameters
    "test": dict(block_out_channels=(8, 8, 16), norm_num_groups=8, latent_channels=4),
    "patch-test": dict(kind="patch", latent_channels=8, hidden_channels=8, encoder_blocks=1, decoder_blocks=1,
                       norm_num_groups=4),
}

AUTOENCODER_CLASS_NAMES = ("AutoencoderKL", "PatchAutoencoder")


def _classes() -> dict[str, type]:
    from diffusers import AutoencoderKL

    from .patch_autoencoder import PatchAutoencoder

    return {"AutoencoderKL": AutoencoderKL, "PatchAutoencoder": PatchAutoencoder}


def build_autoencoder(preset: str = "small", sample_size: int = 128) -> AutoencoderKL | PatchAutoencoder:
    if preset not in VAE_PRESETS:
        raise ValueError(f"unknown autoencoder preset {preset!r}; expected one of {sorted(VAE_PRESETS)}")
    cfg = dict(VAE_PRESETS[preset])
    classes = _classes()
    if cfg.pop("kind", "kl") == "patch":
        return classes["PatchAutoencoder"](sample_size=sample_size, **cfg)
    n = len(cfg["block_out_channels"])
    return classes["AutoencoderKL"](
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1,
        sample_size=sample_size,
        **cfg,
    )


def autoencoder_class(folder: str | Path) -> type:
    """The class a saved autoencoder folder names; ``ValueError`` when unreadable or not one of ours."""
    path = Path(folder) / "config.json"
    try:
        name = json.loads(path.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: unreadable autoencoder config ({exc})") from exc
    if name not in AUTOENCODER_CLASS_NAMES:
        raise ValueError(f"{path}: autoencoder class {name!r} is not one of {list(AUTOENCODER_CLASS_NAMES)}")
    return _classes()[name]


def load_autoencoder(folder: str | Path, torch_dtype: torch.dtype | None = None):
    """A saved embedded-model autoencoder (either kind), from safetensors."""
    kwargs = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
    return autoencoder_class(folder).from_pretrained(folder, use_safetensors=True, **kwargs)


def spatial_compression(config: dict) -> int:
    """Pixels per latent along each side, from an autoencoder's config (either kind)."""
    if config.get("_class_name") == "PatchAutoencoder" or "patch_size" in config:
        return int(config.get("patch_size", 4))
    return 2 ** (len(config.get("block_out_channels", [0, 0, 0])) - 1)


def _channel_stats(vae, z):
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    shape = (1, len(mean)) + (1,) * (z.ndim - 2)
    return (z.new_tensor(mean).view(shape), z.new_tensor(std).view(shape))


def to_diffusion_latents(vae, z):
    """The autoencoder's latents (N, C, h, w) -> what the denoiser works on: normalised per channel
    when the config records ``latents_mean`` / ``latents_std``, else times ``scaling_factor``."""
    stats = _channel_stats(vae, z)
    if stats is None:
        return z * vae.config.scaling_factor
    return (z - stats[0]) / stats[1]


def from_diffusion_latents(vae, z):
    """The inverse of ``to_diffusion_latents``: the denoiser's latents -> what the decoder takes."""
    stats = _channel_stats(vae, z)
    if stats is None:
        return z / vae.config.scaling_factor
    return z * stats[1] + stats[0]
