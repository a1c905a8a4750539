"""The patch autoencoder: its linear code is the patches' principal components, its learned
correction starts at zero, and it answers the AutoencoderKL calls the pipeline makes."""

import math

import torch
import torch.nn.functional as F

from i2v.models.patch_autoencoder import PatchAutoencoder


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) in [-1, 1]: low-frequency noise, so a few components hold most variance."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(4 / float(((a - b) ** 2).mean()))


def test_fresh_model_is_its_linear_code_and_pca_beats_random():
    torch.manual_seed(0)
    vae = PatchAutoencoder(latent_channels=8, hidden_channels=8, encoder_blocks=1, decoder_blocks=1,
                           norm_num_groups=4).eval()
    x = smooth_images(8, 32)
    with torch.no_grad():
        before = psnr(vae(x).sample, x)
        kept = vae.fit_linear_path(smooth_images(32, 32, seed=1))
        z = vae.encode(x).latent_dist.mean
        linear = F.pixel_shuffle(vae.linear_decode(vae.linear_encode(F.pixel_unshuffle(x, 4))), 4)
        after = vae.decode(z).sample
    assert 0.9 < kept <= 1.0
    assert torch.allclose(after, linear, atol=1e-6)  # the corrections start at zero
    assert after.shape == x.shape and z.shape == (8, 8, 8, 8)
    assert psnr(after, x) > 30 and psnr(after, x) > before + 10


def test_principal_directions_are_orthonormal_and_ordered():
    vae = PatchAutoencoder(latent_channels=4, hidden_channels=8, encoder_blocks=1, decoder_blocks=1,
                           norm_num_groups=4)
    x = smooth_images(16, 32)
    vae.fit_linear_path(x)
    basis = vae.linear_decode.weight[:, :, 0, 0]  # (48, 4)
    assert torch.allclose(basis.T @ basis, torch.eye(4), atol=1e-4)
    with torch.no_grad():
        z = vae.linear_encode(F.pixel_unshuffle(x, 4))
    variances = z.transpose(0, 1).flatten(1).var(1)
    assert torch.all(variances[:-1] >= variances[1:])


def test_deterministic_posterior_and_shapes():
    vae = PatchAutoencoder(latent_channels=16, hidden_channels=8, encoder_blocks=1, decoder_blocks=1,
                           norm_num_groups=4)
    posterior = vae.encode(torch.zeros(2, 3, 48, 64)).latent_dist
    assert posterior.mean.shape == (2, 16, 12, 16)
    assert float(posterior.std.abs().max()) == 0 and float(posterior.kl().abs().max()) == 0
    assert vae.spatial_compression == 4
    assert vae.decode(posterior.mean).sample.shape == (2, 3, 48, 64)
