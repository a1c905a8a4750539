"""What every backend does: turn a resolved request into frames.

A backend is built once per model (weights loaded in ``__init__``, or lazily on the first
``generate`` as the diffusers backends do, so that ``resolve`` can refuse a request before any
weights are read) and then called for many requests.
``resolve`` fills a request's unset fields from the model's defaults and snaps
values to the model's rules, returning human-readable notices for every change it made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from ..registry import ModelSpec
from ..errors import InvalidRequestError

ProgressCallback = Callable[[int, int], None]  # (step, total_steps)


@dataclass
class ResolvedSettings:
    """A request with every field decided: what runs, and what the output metadata records."""

    prompt: str
    negative_prompt: str
    num_frames: int
    fps: float
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    seed: int
    motion_strength: float | None = None
    extras: dict = field(default_factory=dict)


class Backend:
    """Base class; subclasses implement ``generate``."""

    def __init__(self, spec: ModelSpec, device: str, dtype: str | None = None):
        self.spec = spec
        self.device = device
        self.dtype = dtype

    def resolve(self, request, notices: list[str]) -> ResolvedSettings:
        from .resolve import resolve_common

        return resolve_common(self.spec.defaults, request, notices)

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool) -> np.ndarray:
        """Return (T, H, W, 3) uint8 frames; fill ``timings`` with encode/denoise/decode seconds."""
        raise NotImplementedError
