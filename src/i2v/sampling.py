"""Noise schedules and samplers for the embedded model, as small pure functions.

The embedded model is a rectified-flow model (Liu et al. 2022; Esser et al. 2024, "SD3"):
``x_sigma = (1 - sigma) * x0 + sigma * noise`` and the network predicts the velocity
``v = noise - x0``. A sampler integrates ``dx/dsigma = v`` from sigma = 1 (noise) to 0 (data).

Every sampler has the k-diffusion signature ``(model, x, sigmas, extra_args, callback) -> x``
where ``model(x, sigma, **extra_args) -> v``.
"""

from __future__ import annotations

from typing import Callable

import torch

Model = Callable[..., torch.Tensor]


def flow_sigmas(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """(num_steps + 1,) sigmas from 1 to 0, warped by SD3's time shift ``s*t / (1 + (s-1)*t)``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return (shift * t / (1 + (shift - 1) * t)).float()


@torch.no_grad()
def sample_euler(model: Model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                 callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Euler's method on the rectified-flow ODE (first order, one model call per step)."""
    extra_args = extra_args or {}
    for i in range(len(sigmas) - 1):
        v = model(x, sigmas[i], **extra_args)
        x = x + (sigmas[i + 1] - sigmas[i]) * v
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigmas[i], "sigma_next": sigmas[i + 1]})
    return x


@torch.no_grad()
def sample_heun(model: Model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Heun's method (Karras et al. 2022, Alg. 1): Euler plus a trapezoidal correction, two calls per step."""
    extra_args = extra_args or {}
    for i in range(len(sigmas) - 1):
        dt = sigmas[i + 1] - sigmas[i]
        v = model(x, sigmas[i], **extra_args)
        x_euler = x + dt * v
        if sigmas[i + 1] > 0:
            v_next = model(x_euler, sigmas[i + 1], **extra_args)
            x = x + dt * (v + v_next) / 2
        else:
            x = x_euler
        if callback is not None:
            callback({"i": i, "x": x, "sigma": sigmas[i], "sigma_next": sigmas[i + 1]})
    return x


SAMPLERS: dict[str, Callable] = {"euler": sample_euler, "heun": sample_heun}


def get_sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The forward process: ``(1 - sigma) * x0 + sigma * noise``; sigma broadcasts from (B,)."""
    s = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise


def sample_training_sigmas(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,) training noise levels from SD3's logit-normal(0, 1) density."""
    return torch.sigmoid(torch.randn(batch, generator=generator))
