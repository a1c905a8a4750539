"""LatentWarp moves a latent image in pixel space through the autoencoder's linear path; camera_flow
turns a camera path into the flow that warp needs."""

import pytest
import torch
import torch.nn.functional as F

from i2v.models.autoencoder import build_autoencoder, to_diffusion_latents
from i2v.models.latent_warp import LatentWarp, camera_flow

from .test_patch_autoencoder import smooth_images


def _vae_with_stats():
    torch.manual_seed(0)
    vae = build_autoencoder("patch-test", sample_size=32).eval()
    vae.fit_linear_path(smooth_images(16, 32, seed=1))
    # a per-channel normalisation as training records it, so the warp must fold it in
    vae.register_to_config(latents_mean=[0.1 * k for k in range(8)], latents_std=[1.0 + k for k in range(8)])
    return vae


def _latents(vae, x):
    with torch.no_grad():
        return to_diffusion_latents(vae, vae.encode(x).latent_dist.mean)


def test_zero_flow_is_the_identity_and_pixels_round_trip():
    vae = _vae_with_stats()
    warp = LatentWarp(8, 4).set_from_autoencoder(vae)
    z = _latents(vae, smooth_images(2, 32))  # (2, 8, 8, 8)
    torch.testing.assert_close(warp(z, torch.zeros(2, 2, 8, 8)), z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(warp.from_pixels(warp.to_pixels(z)), z, atol=1e-5, rtol=1e-5)


def test_a_one_latent_pixel_flow_shifts_the_latents_by_one():
    vae = _vae_with_stats()
    warp = LatentWarp(8, 4).set_from_autoencoder(vae)
    z = _latents(vae, smooth_images(1, 32))
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = -2 / 8  # each pixel shows what was one latent pixel (4 pixels) to its left
    moved = warp(z, flow)
    torch.testing.assert_close(moved[..., 1:], z[..., :-1], atol=1e-5, rtol=1e-5)


def test_a_sub_pixel_shift_moves_the_image_rather_than_blending_codes():
    """Half a latent pixel (2 pixels) decodes to the image shifted by 2 pixels, not to a ghost of two
    codes. A full-rank code (48 channels for 4x4 RGB patches) makes the warp exact."""
    from i2v.models.patch_autoencoder import PatchAutoencoder

    torch.manual_seed(0)
    vae = PatchAutoencoder(latent_channels=48, hidden_channels=8, encoder_blocks=1, decoder_blocks=1,
                           norm_num_groups=4).eval()
    vae.fit_linear_path(torch.rand(8, 3, 32, 32) * 2 - 1)
    warp = LatentWarp(48, 4).set_from_autoencoder(vae)
    x = torch.rand(1, 3, 32, 32) * 2 - 1  # sharp: every pixel its own
    z = _latents(vae, x)
    with torch.no_grad():
        moved = warp.to_pixels(warp(z, torch.full((1, 2, 8, 8), 0.0).index_fill(1, torch.tensor([0]), -2 / 16)))
        naive = warp.to_pixels(F.grid_sample(z, _grid(8, -2 / 16), align_corners=False, padding_mode="border"))
    truth = torch.roll(x, 2, dims=-1)
    torch.testing.assert_close(moved[..., 4:], truth[..., 4:], atol=1e-4, rtol=1e-4)
    assert (naive - truth)[..., 4:].abs().mean() > 0.2


def _grid(n, dx):
    ys = (torch.arange(n) * 2 + 1) / n - 1
    gy, gx = torch.meshgrid(ys, ys, indexing="ij")
    return torch.stack([gx + dx, gy], -1)[None]


def test_only_a_patch_autoencoder_of_the_same_patch_size_gives_a_warp():
    with pytest.raises(ValueError, match="PatchAutoencoder"):
        LatentWarp(4, 4).set_from_autoencoder(build_autoencoder("test"))
    with pytest.raises(ValueError, match="patch size 8"):
        LatentWarp(8, 8).set_from_autoencoder(_vae_with_stats())


def test_camera_flow_of_a_pan_and_a_zoom():
    # frame 1: content 4 px right in an 8 px frame; frame 2: zoom x2 about the centre
    path = torch.tensor([[[1.0, 0, 0], [1.0, 4, 0], [2.0, 0, 0]]])
    flow = camera_flow(path, 8, 8)  # (1, 2, 3, 8, 8)
    assert flow.shape == (1, 2, 3, 8, 8)
    assert flow[:, :, 0].abs().max() == 0
    torch.testing.assert_close(flow[0, 0, 1], torch.full((8, 8), -1.0))  # half the width (1 unit) to the left
    assert flow[0, 1, 1].abs().max() == 0
    # zoom in: each pixel shows what was halfway to the centre
    centre = (torch.arange(8) * 2 + 1) / 8 - 1
    torch.testing.assert_close(flow[0, 0, 2, 0], -centre / 2)
    torch.testing.assert_close(flow[0, 1, 2, :, 0], -centre / 2)
