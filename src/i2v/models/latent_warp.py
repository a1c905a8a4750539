"""LatentWarp: move a latent image by a dense flow, warping in pixel space through the linear path.

The photo autoencoder (``PatchAutoencoder``) codes each ``p x p`` pixel patch mostly linearly, so
shifting its latents by a fraction of a latent pixel (bilinear in latent space) blends the codes
of neighbouring patches: it ghosts instead of moving. Going back to pixels with the linear decoder,
warping there, and coding the result with the linear map's pseudo-inverse moves the image by any
sub-pixel amount and is cheap (two 1x1 maps and a ``grid_sample`` of RGB frames). The autoencoder's
correction networks change its latents by about 1% on photographs, which the denoiser's own
residual covers.

The maps act on the denoiser's latents (normalised per channel, ``autoencoder.to_diffusion_latents``):
the normalisation is folded into them, and they are buffers saved with the denoiser, so a model
folder needs no autoencoder to warp. With zero flow the warp is the identity.

Flow convention: backward flow in ``grid_sample``'s normalised units, channel 0 along x (2 = the
frame's width), channel 1 along y: output pixel ``p`` shows the input at ``p + flow(p)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LatentWarp(nn.Module):
    def __init__(self, latent_channels: int, patch_size: int):
        super().__init__()
        patch_dim = 3 * patch_size * patch_size
        self.patch_size = patch_size
        self.register_buffer("to_patches", torch.zeros(patch_dim, latent_channels))  # (P, C)
        self.register_buffer("patch_bias", torch.zeros(patch_dim))  # (P,)
        self.register_buffer("from_patches", torch.zeros(latent_channels, patch_dim))  # (C, P)

    @torch.no_grad()
    def set_from_autoencoder(self, vae) -> LatentWarp:
        """Take the linear path (and latent normalisation) of a ``PatchAutoencoder``."""
        if not hasattr(vae, "linear_decode") or vae.config.patch_size != self.patch_size:
            raise ValueError("a warping denoiser needs a PatchAutoencoder with patch size "
                             f"{self.patch_size}; got {type(vae).__name__}")
        weight = vae.linear_decode.weight[:, :, 0, 0].double()  # (P, C)
        bias = vae.linear_decode.bias.double()
        c = weight.shape[1]
        mean = torch.tensor(vae.config.latents_mean or [0.0] * c, dtype=torch.float64)
        std = torch.tensor(vae.config.latents_std or [1.0 / vae.config.scaling_factor] * c, dtype=torch.float64)
        # patches = W (std * z + mean) + b; z = (pinv(W) (patches - b') ) / std with b' = W mean + b
        self.to_patches.copy_(weight * std[None, :])
        self.patch_bias.copy_(weight @ mean + bias)
        self.from_patches.copy_(torch.linalg.pinv(weight) / std[:, None])
        return self

    def to_pixels(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) latents -> (N, 3, h*p, w*p) their linear reconstruction."""
        patches = torch.einsum("pc,nchw->nphw", self.to_patches.to(z.dtype), z)
        return F.pixel_shuffle(patches + self.patch_bias.to(z.dtype)[None, :, None, None], self.patch_size)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, C, H/p, W/p): the inverse of ``to_pixels`` on its range."""
        patches = F.pixel_unshuffle(pixels, self.patch_size) - self.patch_bias.to(pixels.dtype)[None, :, None, None]
        return torch.einsum("cp,nphw->nchw", self.from_patches.to(pixels.dtype), patches)

    def forward(self, z: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        # z: (N, C, h, w) latents; flow: (N, 2, h, w) backward flow, normalised units -> (N, C, h, w)
        # in float32 whatever the model's dtype: a sub-pixel shift is a small difference of large values
        dtype = z.dtype
        with torch.autocast(z.device.type, enabled=False):
            pixels = self.to_pixels(z.float())  # (N, 3, H, W)
            n, _, height, width = pixels.shape
            flow = F.interpolate(flow.float(), size=(height, width), mode="bilinear", align_corners=False)
            grid = base_grid(height, width, z.device) + flow.permute(0, 2, 3, 1)  # (N, H, W, 2) as (x, y)
            moved = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
            return self.from_pixels(moved).to(dtype)


def base_grid(height: int, width: int, device=None) -> torch.Tensor:
    """(1, H, W, 2) pixel centres in ``grid_sample``'s normalised units (align_corners=False), (x, y)."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


def camera_flow(path: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Backward flow of a camera path (``world.photos.camera.camera_path``) at (height, width).

    path: (B, T, 3) per frame (scale, dx, dy), dx and dy in output pixels of a ``height x width``
    frame (a content point at p in frame 0 is at ``scale * (p - c) + c + (dx, dy)`` in frame t).
    Returns (B, 2, T, height, width): for each pixel of frame t, where it was in frame 0, minus
    where it is.
    """
    p = base_grid(height, width, path.device)[:, None]  # (1, 1, H, W, 2)
    scale = path[..., 0][..., None, None, None]  # (B, T, 1, 1, 1)
    shift = torch.stack([path[..., 1] * 2 / width, path[..., 2] * 2 / height], dim=-1)[:, :, None, None]
    source = (p - shift) / scale  # (B, T, H, W, 2)
    return (source - p).permute(0, 4, 1, 2, 3)
