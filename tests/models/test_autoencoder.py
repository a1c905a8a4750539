"""The embedded model's autoencoder presets: 4x down-sampling, the latent channels each preset names."""

import pytest
import torch

from i2v.models.autoencoder import VAE_PRESETS, build_autoencoder


@pytest.mark.parametrize("preset, channels", [("small", 4), ("photo", 8), ("test", 4)])
def test_presets_downsample_4x_to_their_latent_channels(preset, channels):
    vae = build_autoencoder(preset).eval()
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean
        x = vae.decode(z).sample
    assert z.shape == (1, channels, 8, 8) and x.shape == (1, 3, 32, 32)
    assert VAE_PRESETS[preset]["latent_channels"] == channels


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown autoencoder preset"):
        build_autoencoder("huge")
