"""The embedded model's autoencoder presets (4x down-sampling, the latent channels each preset
names), the one loader for both kinds, and the spatial factor read from a config."""

import json

import pytest
import torch

from i2v.models.autoencoder import VAE_PRESETS, build_autoencoder, load_autoencoder, spatial_compression


@pytest.mark.parametrize("preset, channels", [("small", 4), ("photo", 16), ("test", 4), ("patch-test", 8)])
def test_presets_downsample_4x_to_their_latent_channels(preset, channels):
    vae = build_autoencoder(preset).eval()
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean
        x = vae.decode(z).sample
    assert z.shape == (1, channels, 8, 8) and x.shape == (1, 3, 32, 32)
    assert VAE_PRESETS[preset]["latent_channels"] == channels
    assert spatial_compression(dict(vae.config)) == 4


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown autoencoder preset"):
        build_autoencoder("huge")


@pytest.mark.parametrize("preset", ["test", "patch-test"])
def test_load_autoencoder_gives_back_the_saved_kind(tmp_path, preset):
    torch.manual_seed(0)
    vae = build_autoencoder(preset).eval()
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_autoencoder(tmp_path / "vae", torch_dtype=torch.float32).eval()
    assert type(loaded) is type(vae)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.encode(x).latent_dist.mean, vae.encode(x).latent_dist.mean)


def test_load_autoencoder_refuses_a_foreign_or_unreadable_config(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKLWan"}))
    with pytest.raises(ValueError, match="not one of"):
        load_autoencoder(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable autoencoder config"):
        load_autoencoder(tmp_path / "b")


def test_diffusion_latents_round_trip_per_channel_or_by_one_factor():
    from i2v.models.autoencoder import from_diffusion_latents, to_diffusion_latents

    z = torch.randn(2, 8, 4, 4) * torch.arange(1, 9).view(1, 8, 1, 1) + 3
    patch = build_autoencoder("patch-test")
    patch.register_to_config(latents_mean=z.mean(dim=(0, 2, 3)).tolist(), latents_std=z.std(dim=(0, 2, 3)).tolist())
    normalised = to_diffusion_latents(patch, z)
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-5)
    assert torch.allclose(normalised.std(dim=(0, 2, 3)), torch.ones(8), atol=1e-5)
    assert torch.allclose(from_diffusion_latents(patch, normalised), z, atol=1e-5)
    kl = build_autoencoder("test")
    kl.register_to_config(scaling_factor=0.5)
    assert torch.allclose(to_diffusion_latents(kl, z[:, :4]), z[:, :4] * 0.5)
    assert torch.allclose(from_diffusion_latents(kl, z[:, :4] * 0.5), z[:, :4])
