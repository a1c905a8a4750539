"""The memory planner sizes a windowed long video by one window: its denoiser estimate stays flat
in the length (SkyReels-V2 diffusion forcing, FramePack, Helios, LTX-Video's long pipeline), while
a one-pass model's grows with every frame."""

from __future__ import annotations

import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.memory import describe_details, estimate_memory
from i2v.registry import resolve_model

# folder builder: (a length past one window, a longer one), both valid for the model
LENGTHS = {"skyreels-df": (193, 385), "framepack": (145, 289), "helios": (129, 257), "ltx": (265, 521)}


@pytest.mark.parametrize("name", sorted(LENGTHS))
def test_a_windowed_model_denoises_one_window_whatever_the_length(name, tiny_folder):
    spec = resolve_model(tiny_folder(name))
    short, long = (estimate_memory(spec, {"num_frames": n, "height": 64, "width": 64}) for n in LENGTHS[name])
    assert short.denoiser_activations == long.denoiser_activations > 0
    assert short.details["denoised_latent_frames"] < short.details["latent"][1]
    assert long.decode > short.decode  # the decoded video itself still grows
    assert "(windows of" in describe_details(long.details)


def test_a_one_pass_model_grows_with_the_length(tiny_folder):
    spec = resolve_model(tiny_folder("wan"))
    short, long = (estimate_memory(spec, {"num_frames": n, "height": 64, "width": 64}) for n in (33, 65))
    assert long.denoiser_activations > short.denoiser_activations
    assert short.details["denoised_latent_frames"] == short.details["latent"][1]


def test_ltx_windows_only_past_its_length_or_with_a_schedule(tiny_folder, square_image):
    spec = resolve_model(tiny_folder("ltx"))
    native = estimate_memory(spec, {"num_frames": 257, "height": 64, "width": 64})
    assert native.details["denoised_latent_frames"] == native.details["latent"][1]
    gen = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    settings = gen.backend.resolve(GenerationRequest(image=square_image, prompt="0s: a; 3s: b", num_frames=257,
                                                     height=64, width=64, seed=0), [])
    scheduled = estimate_memory(spec, settings)
    assert scheduled.denoiser_activations < native.denoiser_activations
