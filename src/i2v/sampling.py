"""Noise schedules, samplers and the training loss of the embedded model, as small pure functions.

The embedded model is a rectified-flow model (Liu et al. 2022; Esser et al. 2024, "SD3"):
``x_sigma = (1 - sigma) * x0 + sigma * noise`` and the network predicts the velocity
``v = noise - x0``. A sampler integrates ``dx/dsigma = v`` from sigma = 1 (noise) to 0 (data).

Every sampler has the k-diffusion signature ``(model, x, sigmas, extra_args, callback) -> x``
where ``model(x, sigma, **extra_args) -> v``. Training regresses that velocity
(``flow_matching_loss``) at noise levels drawn by ``sample_training_sigmas``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Model = Callable[..., torch.Tensor]


def flow_sigmas(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """(num_steps + 1,) sigmas from 1 to 0, warped by SD3's time shift ``s*t / (1 + (s-1)*t)``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    t = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return time_shift(t, shift).float()


def time_shift(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's time shift ``s*t / (1 + (s-1)*t)``: s > 1 moves noise levels towards pure noise."""
    return shift * t / (1 + (shift - 1) * t)


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


def _log_snr(sigma: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) with alpha = 1 - sigma, clamped finite at sigma = 0 and 1."""
    sigma = sigma.double().clamp(1e-6, 1 - 1e-6)
    return torch.log((1 - sigma) / sigma)


@torch.no_grad()
def sample_dpmpp_2m(model: Model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                    callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): second-order multistep in the data prediction, one call per step.

    Rectified flow is the VP-like path ``alpha = 1 - sigma``; the data prediction is ``x0 = x - sigma * v``.
    One step: ``x' = (s'/s) x - alpha' (e^-h - 1) D`` with ``h = lambda' - lambda`` and ``D`` the first-order
    ``x0`` or, from the second step, its extrapolation ``(1 + 1/2r) x0 - 1/2r x0_prev`` (``r = h_prev / h``).
    The last step (to sigma = 0) returns the data prediction, as k-diffusion does.
    """
    extra_args = extra_args or {}
    x0_prev, h_prev = None, None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        v = model(x, s, **extra_args)
        x0 = x - s * v
        if s_next == 0:
            x = x0
        else:
            h = _log_snr(s_next) - _log_snr(s)
            d = x0
            if x0_prev is not None:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (s_next / s) * x - (1 - s_next) * torch.expm1(-h).to(x.dtype) * d
            x0_prev, h_prev = x0, h
        if callback is not None:
            callback({"i": i, "x": x, "sigma": s, "sigma_next": s_next, "denoised": x0})
    return x


SAMPLERS: dict[str, Callable] = {"euler": sample_euler, "heun": sample_heun, "dpmpp_2m": sample_dpmpp_2m}


def get_sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The forward process: ``(1 - sigma) * x0 + sigma * noise``; sigma broadcasts from (B,)."""
    s = sigma.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise


def sample_training_sigmas(batch: int, generator: torch.Generator | None = None, shift: float = 1.0) -> torch.Tensor:
    """(B,) training noise levels: SD3's logit-normal(0, 1) density, time-shifted by ``shift``.

    Train with the shift the sampler uses: with frame 0 given, a video's motion is decided only
    at high noise, and shift 3 puts 39% of the draws above sigma 0.8 instead of 8%.
    """
    return time_shift(torch.sigmoid(torch.randn(batch, generator=generator)), shift)


OBJECT_FLOW_THRESHOLD = 0.02  # normalised units: a pixel at 128 is 0.0156


def object_mask(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, T, h, w) flow, NaN where unknown -> (B, 1, T, h, w) 1.0 where it departs from its frame's
    least-squares affine field by more than ``OBJECT_FLOW_THRESHOLD`` (an object moving on its own)."""
    from .models.unet import fit_affine_flow

    filled = flow.float().nan_to_num(0.0)
    return ((filled - fit_affine_flow(filled, robust=True)).norm(dim=1, keepdim=True) > OBJECT_FLOW_THRESHOLD).float()


def flow_matching_loss(unet, latents, text, sigmas, noise, flow_target=None, flow_weight: float = 1.0,
                       sigma_floor: float = 0.0, object_flow_weight: float = 1.0, held: torch.Tensor | None = None,
                       anchor: torch.Tensor | None = None) -> torch.Tensor:
    """Velocity MSE on the frames the denoiser makes: frames 1..T-1, frame 0 clean (the image), as at
    generation time; or those after a window's ``held`` frames.

    ``held`` (B, T) bool, for a denoiser with ``history_frames``: the frames given clean (a window of a long
    video starts with the window before's last frames), which stay clean and are not scored; ``anchor``
    (B, C, h, w): the image the denoiser is conditioned on (the video's first frame), frame 0 by default.

    ``sigma_floor``: a denoiser that predicts clean frames (``prediction="warp"``) has a velocity error
    of (clean error) / sigma, which the rare draws near sigma 0 would blow up; below the floor the
    error is weighted as at the floor. ``flow_target`` (B, 2, T, h, w), NaN where unknown (a whole
    clip, usually): a warping denoiser's flow is fitted to it (MSE, times ``flow_weight``), and the
    velocity error does not reach the flow through the warp. ``object_flow_weight``: the weight of the
    flow's error where the target departs from its frame's affine (camera) field, i.e. on moving
    objects: a few percent of the pixels, whose error an unweighted mean hardly sees.
    """
    # latents, noise: (B, C, T, h, w); sigmas: (B,)
    x = add_noise(latents, noise, sigmas)
    given = {} if held is None else {"held": held.float()}
    if held is None:
        held = torch.zeros(latents.shape[0], latents.shape[2], dtype=torch.bool, device=latents.device)
        held[:, 0] = True
    held = held.bool()
    x = torch.where(held[:, None, :, None, None], latents, x)
    args = (x, sigmas, latents[:, :, 0] if anchor is None else anchor, text.states, text.pooled, text.mask)
    if flow_target is None:
        v, flow = unet(*args, **given), None
    else:  # the flow learns from its target only; the clean-frame error trains the rest
        v, flow = unet(*args, return_flow=True, detach_flow=True, **given)
    target = noise - latents
    weight = (sigmas / sigmas.clamp(min=sigma_floor)).view(-1, 1, 1, 1, 1) if sigma_floor > 0 else 1.0
    scored = (~held)[:, None, :, None, None].expand_as(target)  # frames the denoiser makes
    loss = (((v.float() - target) * weight) ** 2)[scored].mean()
    if flow is not None:
        known = ~flow_target[:, :, 1:].isnan()
        if known.any():
            # unknown targets zeroed before the error, not after: a NaN there would reach the gradient
            error = (flow.float()[:, :, 1:] - flow_target[:, :, 1:].nan_to_num(0.0)) ** 2  # (B, 2, T-1, h, w)
            if object_flow_weight != 1.0:
                error = error * (1 + (object_flow_weight - 1) * object_mask(flow_target[:, :, 1:]))
            loss = loss + flow_weight * error[known].mean()
    return loss