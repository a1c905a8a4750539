"""Progress and output of a diffusers pipeline run: (step, total) callbacks, timings, uint8 frames."""

from __future__ import annotations

import time

from ...errors import NonFiniteError
from ...types import ProgressCallback


class StepReporter:
    """A diffusers ``callback_on_step_end`` that reports ``(step, total)`` and times the steps.

    Diffusers gives no hook between encoding, denoising and decoding, so ``timings`` gets an
    estimate: encode = time before the first step ends less one average step; decode = time after
    the last step; denoise = the rest.
    """

    def __init__(self, callback: ProgressCallback | None, total: int):
        self.callback = callback
        self.total = total
        self.start = time.perf_counter()
        self.step_ends: list[float] = []

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        import torch

        latents = next(iter(callback_kwargs.values()), None)  # "latents", or a pipeline's own name for them
        if latents is not None and not torch.isfinite(latents).all():  # a black video is not an answer
            raise NonFiniteError(f"the latents became NaN or infinite at denoising step {step + 1}; lower the "
                                 "guidance, or check the model's weights")
        self.step_ends.append(time.perf_counter())
        if self.callback is not None:
            self.callback(step + 1, self.total)
        return callback_kwargs

    def fill(self, timings: dict) -> None:
        end = time.perf_counter()
        if not self.step_ends:
            timings["pipeline"] = end - self.start
            return
        first, last, n = self.step_ends[0], self.step_ends[-1], len(self.step_ends)
        step = (last - first) / (n - 1) if n > 1 else (first - self.start) / 2
        timings["encode"] = max(0.0, first - self.start - step)
        timings["denoise"] = last - (self.start + timings["encode"])
        timings["decode"] = end - last


def counting_callback(callback: ProgressCallback, total: int) -> ProgressCallback:
    """Progress over a run of several windows: the pipeline calls back once per denoising pass of each."""
    done = 0

    def report(step: int, _steps: int) -> None:
        nonlocal done
        done += 1
        callback(min(done, total), total)

    return report


def to_uint8_frames(frames):
    """One video of a pipeline's ``output_type="np"`` output -> (T, H, W, 3) uint8."""
    import numpy as np

    video = np.asarray(frames[0] if isinstance(frames, (list, tuple)) or np.ndim(frames) == 5 else frames)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise RuntimeError(f"unexpected pipeline output of shape {video.shape}")
    return np.clip(np.round(video.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
