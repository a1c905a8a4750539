"""The embedded model's photo autoencoder: patches in, a linear code plus a learned correction.

An image is cut into ``patch_size`` x ``patch_size`` patches (pixel unshuffle). A linear map
(a 1x1 convolution) takes each patch to ``latent_channels`` numbers and a second one takes them
back; both start as the principal components of training patches (``fit_linear_path``), which
alone reconstruct a photograph at about 26 dB with 8 channels. A residual network of 3x3
convolutions at latent resolution adds to each side what the linear code misses (its last layers
start at zero, so training starts at the linear code's quality and only improves it).

The interface is ``AutoencoderKL``'s where the pipeline and the trainers use it:
``encode(x).latent_dist`` (deterministic: ``mean``, ``std`` 0, ``kl()`` 0), ``decode(z).sample``,
``config.scaling_factor`` and ``spatial_compression``. Its channels carry very different amounts of
signal (the first principal components most), so the denoiser sees them normalised channel by
channel (``latents_mean`` / ``latents_std`` in the config, as Wan's video VAE does): every channel
then has the same signal-to-noise ratio at each noise level, and the detail channels are denoised
as carefully as the coarse ones (``autoencoder.to_diffusion_latents``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Correction(nn.Module):
    """``in_channels`` -> ``out_channels`` at one resolution; the output layer starts at zero."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, num_blocks: int, groups: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden, groups) for _ in range(num_blocks)])
        self.norm_out = nn.GroupNorm(groups, hidden)
        self.conv_out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(x)))))


class PatchAutoencoder(ModelMixin, ConfigMixin):
    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(self, patch_size: int = 4, latent_channels: int = 8, hidden_channels: int = 64,
                 encoder_blocks: int = 2, decoder_blocks: int = 4, norm_num_groups: int = 16,
                 scaling_factor: float = 1.0, sample_size: int = 128, latents_mean: list[float] | None = None,
                 latents_std: list[float] | None = None):
        super().__init__()
        patch_dim = 3 * patch_size * patch_size
        self.linear_encode = nn.Conv2d(patch_dim, latent_channels, 1)
        self.linear_decode = nn.Conv2d(latent_channels, patch_dim, 1)
        self.encode_correction = Correction(patch_dim, latent_channels, hidden_channels, encoder_blocks,
                                            norm_num_groups)
        self.decode_correction = Correction(latent_channels, patch_dim, hidden_channels, decoder_blocks,
                                            norm_num_groups)

    @property
    def spatial_compression(self) -> int:
        return self.config.patch_size

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """(B, 3, H, W) in [-1, 1], H and W multiples of ``patch_size`` -> (B, C, H/p, W/p) latents."""
        patches = F.pixel_unshuffle(x, self.config.patch_size)  # (B, 3*p*p, H/p, W/p)
        z = self.linear_encode(patches) + self.encode_correction(patches)
        posterior = DiagonalGaussianDistribution(torch.cat([z, torch.zeros_like(z)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        """(B, C, h, w) latents -> (B, 3, h*p, w*p) pixels."""
        patches = self.linear_decode(z) + self.decode_correction(z)  # (B, 3*p*p, h, w)
        x = F.pixel_shuffle(patches, self.config.patch_size)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        z = self.encode(sample).latent_dist.mean
        return self.decode(z, return_dict=return_dict)

    @torch.no_grad()
    def fit_linear_path(self, pixels: torch.Tensor) -> float:
        """Set both linear maps to the principal components of ``pixels``' patches.

        pixels: (N, 3, H, W) in [-1, 1]. Returns the share of patch variance the code keeps.
        """
        p, c = self.config.patch_size, self.config.latent_channels
        patches = F.pixel_unshuffle(pixels.float(), p).permute(0, 2, 3, 1).reshape(-1, 3 * p * p)
        mean = patches.mean(0)
        centered = patches - mean
        cov = centered.T @ centered / (len(patches) - 1)  # (3*p*p, 3*p*p)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
        basis = eigenvectors[:, -c:].flip(1)  # (3*p*p, c), largest first
        self.linear_encode.weight.copy_(basis.T[:, :, None, None].to(self.linear_encode.weight))
        self.linear_encode.bias.copy_((-mean @ basis).to(self.linear_encode.bias))
        self.linear_decode.weight.copy_(basis[:, :, None, None].to(self.linear_decode.weight))
        self.linear_decode.bias.copy_(mean.to(self.linear_decode.bias))
        return float(eigenvalues[-c:].sum() / eigenvalues.sum())
