"""Video-to-video (SDEdit) on image-to-video pipelines that take no video, through their ``latents``.

diffusers' video-to-video pipelines (``WanVideoToVideoPipeline``, ``CogVideoXVideoToVideoPipeline``)
skip the first ``steps - int(steps * strength)`` steps of the schedule (``get_timesteps``) and start
from the video's latents noised to the first step they keep. The image-to-video pipelines have no
``strength``, but they take starting ``latents`` and set their schedule through
``scheduler.set_timesteps``: ``truncated_schedule`` makes that call keep only the last steps (and the
noise levels beside them, so the scheduler counts its steps from there), and ``noised_latents`` noises the
video's latents to the first of them with the scheduler's own rule (``scale_noise`` for flow
matching, ``add_noise`` for the others). Frame 0 stays the image: the pipelines condition on it
as in any run.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the registry imports every backend module, which load no torch
    import numpy as np
    import torch


def start_index(num_inference_steps: int, strength: float) -> int:
    """Steps skipped at the start of the schedule (diffusers' ``get_timesteps``)."""
    return num_inference_steps - min(int(num_inference_steps * strength), num_inference_steps)


def _cut(scheduler, start: int) -> None:
    """Keep the schedule from step ``start`` on (the scheduler already set for the full run): its
    timesteps, and its noise levels where it keeps them beside the timesteps (one more: the final
    level), so a scheduler that counts its steps starts at the first kept one."""
    order = getattr(scheduler, "order", 1)
    count = len(scheduler.timesteps)
    scheduler.timesteps = scheduler.timesteps[start * order:]
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas) in (count, count + 1):
        scheduler.sigmas = sigmas[start * order:]


@contextmanager
def truncated_schedule(scheduler, num_inference_steps: int, strength: float):
    """While open, ``scheduler.set_timesteps`` sets the full schedule and keeps its last
    ``int(steps * strength)`` steps (what a pipeline reads back as ``scheduler.timesteps``)."""
    start = start_index(num_inference_steps, strength)
    original = scheduler.set_timesteps

    def set_timesteps(*args, **kwargs):
        result = original(*args, **kwargs)
        _cut(scheduler, start)
        return result

    scheduler.set_timesteps = set_timesteps
    try:
        yield
    finally:
        del scheduler.set_timesteps  # the class's method again


def kept_schedule(scheduler, num_inference_steps: int, strength: float, device=None):
    """A copy of ``scheduler`` set for a run at ``strength``: its schedule from the first kept step on
    (what the pipeline's own runs inside ``truncated_schedule``); the pipeline's is left alone."""
    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(num_inference_steps, device=device)
    _cut(probe, start_index(num_inference_steps, strength))
    return probe


def noised_latents(scheduler, latents: torch.Tensor, num_inference_steps: int, strength: float,
                   generator: torch.Generator, device) -> torch.Tensor:
    """The video's latents noised to the first step a run at ``strength`` keeps."""
    import torch

    probe = kept_schedule(scheduler, num_inference_steps, strength, device)
    timestep = probe.timesteps[:1]
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(device)
    latents = latents.to(device, torch.float32)
    if hasattr(probe, "scale_noise"):  # flow matching: (1 - sigma) * x0 + sigma * noise
        return probe.scale_noise(latents, timestep, noise)
    return probe.add_noise(latents, noise, timestep)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [-1, 1], a video VAE's input."""
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1


def wan_video_latents(pipe, frames: np.ndarray) -> torch.Tensor:
    """Wan's VAE (Wan, SkyReels-V2): the video's normalised latents (1, z_dim, F, h, w), as
    ``WanVideoToVideoPipeline.prepare_latents`` makes them (the mode, ``(z - mean) / std``)."""
    import torch

    vae = pipe.vae
    video = frames_to_tensor(frames).to(pipe._execution_device, vae.dtype)
    with torch.inference_mode():
        z = vae.encode(video).latent_dist.mode().float()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(z)
    return (z - mean) / std


def cogvideox_video_latents(pipe, frames: np.ndarray) -> torch.Tensor:
    """CogVideoX's VAE: the video's latents (1, F, C, h, w), frames before channels as its pipelines
    hold them, scaled by the VAE's factor, as ``CogVideoXVideoToVideoPipeline.prepare_latents`` makes
    them (which draws a sample of the latent distribution; this takes its mode, as Wan's does)."""
    import torch

    vae = pipe.vae
    video = frames_to_tensor(frames).to(pipe._execution_device, vae.dtype)
    with torch.inference_mode():
        z = vae.encode(video).latent_dist.mode().float() * vae.config.scaling_factor
    return z.permute(0, 2, 1, 3, 4)
