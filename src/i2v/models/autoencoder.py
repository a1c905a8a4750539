"""The embedded model's image autoencoder: a small diffusers ``AutoencoderKL``.

128x128 RGB <-> 32x32x4 latents (4x down-sampling: shapes' edges and colours survive at
the >= 28 dB first-frame fidelity the product promises; the denoiser patchifies 2x2). The architecture is diffusers' own; i2v
only chooses the size, in a table of named presets.
"""

from __future__ import annotations

from diffusers import AutoencoderKL

VAE_PRESETS: dict[str, dict] = {
    # ~1.5M parameters; trains on 64x64 crops on a laptop CPU.
    "small": dict(block_out_channels=(16, 32, 96), norm_num_groups=16, latent_channels=4),
    # ~2.7M parameters, 8 latent channels: room for a photograph's detail at the same 4x down-sampling
    # (a 128x128 frame is 32x32x8 latents)
    "photo": dict(block_out_channels=(32, 64, 128), norm_num_groups=32, latent_channels=8),
    # for tests: a few thousand parameters
    "test": dict(block_out_channels=(8, 8, 16), norm_num_groups=8, latent_channels=4),
}


def build_autoencoder(preset: str = "small", sample_size: int = 128) -> AutoencoderKL:
    if preset not in VAE_PRESETS:
        raise ValueError(f"unknown autoencoder preset {preset!r}; expected one of {sorted(VAE_PRESETS)}")
    cfg = VAE_PRESETS[preset]
    n = len(cfg["block_out_channels"])
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        layers_per_block=1,
        sample_size=sample_size,
        **cfg,
    )
