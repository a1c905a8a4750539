"""FasterCache's CFG-Cache (Lv et al. 2024, sec. 3.2) as a diffusers hook, for U-Net pipelines
(SVD, AnimateDiff) that call their denoiser once per step on a [uncond; cond] batch.

On a skip step only the conditional half runs; the unconditional output is the conditional one
minus the (cond - uncond) difference kept from the last full step. Full steps: the first call,
every ``every``-th call, and every step outside ``timestep_range`` (on the 1000 -> 0 progress
scale of ``i2v.acceleration.StepClock``), so the start and the end of the schedule are exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.hooks import ModelHook


class CFGCacheHook(ModelHook):
    _is_stateful = True

    def __init__(self, clock: Callable[[], float], every: int = 2, timestep_range: tuple[float, float] = (100, 900)):
        super().__init__()
        self.clock, self.every, self.timestep_range = clock, every, timestep_range
        self.delta: torch.Tensor | None = None  # cond - uncond of the last full step, (B, ...)
        self.calls = 0

    def initialize_hook(self, module):
        return module

    def reset_state(self, module):
        self.delta, self.calls = None, 0
        return module

    def new_forward(self, module, *args, **kwargs):
        sample = args[0] if args else kwargs["sample"]
        batch = sample.shape[0]  # 2B: [uncond; cond]
        lo, hi = self.timestep_range
        skip = (self.delta is not None and batch % 2 == 0 and self.delta.shape[0] == batch // 2
                and self.calls % self.every != 0 and lo < self.clock() < hi)
        self.calls += 1
        if not skip:
            out = self.fn_ref.original_forward(*args, **kwargs)
            if batch % 2 == 0:
                uncond, cond = _prediction(out).chunk(2)
                self.delta = cond - uncond
            return out

        def half(v):
            """The conditional half of a batched input: dim 0 is the batch, or batch x frames in batch-major
            order (AnimateDiff's per-frame text states and ControlNet residuals); lists are walked."""
            if isinstance(v, (list, tuple)):
                return type(v)(half(x) for x in v)
            if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] >= batch and v.shape[0] % batch == 0:
                return v[v.shape[0] // 2:]
            return v

        out = self.fn_ref.original_forward(*[half(a) for a in args], **{k: half(v) for k, v in kwargs.items()})
        cond = _prediction(out)
        pred = torch.cat([cond - self.delta, cond])  # (2B, ...): [uncond estimate; cond]
        if isinstance(out, tuple):
            return (pred, *out[1:])
        out.sample = pred
        return out


def _prediction(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out.sample
