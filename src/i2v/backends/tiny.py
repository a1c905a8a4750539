"""The embedded model's backend: a GenerationRequest onto ``I2VPipeline``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..registry import TINY_DECODE_CHUNK, ModelSpec
from .base import Backend, InvalidRequestError, ProgressCallback, ResolvedSettings


def default_dtype(device: str) -> str:
    """The embedded model's fastest dtype that keeps its benchmark scores: bf16 on GPUs and on CPUs with
    native bf16 (measured by benchmarks/bench_embedded.py), fp32 on other CPUs."""
    from ..devices import cpu_has_fast_bf16

    if device.startswith("cpu"):
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "fp16"


# (model folder, its files' stamp, device, dtype) -> loaded pipeline: later generators in the process
# reuse it (warm start); a folder rewritten since (a training run's new export) is loaded afresh
_PIPELINE_CACHE: dict[tuple, object] = {}


def folder_stamp(folder: str | Path) -> tuple:
    """(relative path, size, mtime) of every weights and config file under ``folder``."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".json"))
    return tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


class TinyBackend(Backend):
    # LoRAs (trained by `i2v train --lora-rank`) and the sampler (``scheduler``: a name from
    # i2v.sampling.SAMPLERS); the diffusers-only options are refused
    accepts_options = True

    def __init__(self, spec: ModelSpec, device: str, dtype: str | None = None, *, loras=(), scheduler=None,
                 profile: str | None = None, **options):
        super().__init__(spec, device, dtype)
        if options:
            raise InvalidRequestError(f"{spec.name} does not take {', '.join(sorted(options))} (diffusers models "
                                      "only; the embedded model is small enough not to need them)")
        from ..acceleration import check_profile
        from ..sampling import SAMPLERS
        from .diffusers_common import check_loras, load_loras

        if scheduler is not None and scheduler not in SAMPLERS:
            raise InvalidRequestError(f"{spec.name}: unknown sampler {scheduler!r}; expected one of {sorted(SAMPLERS)}")
        check_profile(profile)
        # Its defaults already are the speed profile; the memory profile decodes 2 frames at a time.
        self.profile, self.decode_chunk_size = profile, 2 if profile == "memory" else TINY_DECODE_CHUNK
        self.sampler = scheduler
        loras = check_loras(loras, {})  # checked before loading
        self.dtype = dtype or default_dtype(device)
        self.pipeline = self._load(spec.source, device, self.dtype, cached=not loras)
        self.lora_records = load_loras(self.pipeline, loras)

    @staticmethod
    def _load(folder: str, device: str, dtype: str, cached: bool):
        """Load the pipeline, or reuse the one already loaded in this process (never when LoRAs will
        change its weights)."""
        from ..pipelines.pipeline_i2v import I2VPipeline
        from ..devices import torch_dtype

        key = (str(folder), folder_stamp(folder), device, dtype)
        if cached and key in _PIPELINE_CACHE:
            return _PIPELINE_CACHE[key]
        pipe = I2VPipeline.from_folder(folder, torch_dtype=torch_dtype(dtype)).to(device)
        if device.startswith("cpu"):  # oneDNN's convolutions are fastest on channels-last 3D tensors
            pipe.unet.to(memory_format=torch.channels_last_3d)
        if cached:
            _PIPELINE_CACHE.clear()  # keep one model warm, not every model ever loaded
            _PIPELINE_CACHE[key] = pipe
        return pipe

    def resolve(self, request, notices: list[str]) -> ResolvedSettings:
        settings = super().resolve(request, notices)
        if settings.motion_strength is not None:
            notices.append("motion_strength is not used by i2v-tiny: the prompt names the motion")
        if self.lora_records:
            settings.extras["loras"] = self.lora_records
        settings.extras["sampler"] = self.sampler or self.pipeline.default_settings["sampler"]
        settings.extras["dtype"] = self.dtype
        return settings

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool) -> np.ndarray:
        self.pipeline.set_progress_bar_config(disable=not show_progress, leave=False, desc="denoising")
        t0 = time.perf_counter()
        out = self.pipeline(
            image=image,
            prompt=settings.prompt,
            negative_prompt=settings.negative_prompt,
            num_frames=settings.num_frames,
            height=settings.height,
            width=settings.width,
            num_inference_steps=settings.num_inference_steps,
            guidance_scale=settings.guidance_scale,
            seed=settings.seed,
            sampler=settings.extras["sampler"],
            decode_chunk_size=self.decode_chunk_size,
            callback=callback,
            timings=timings,
        )
        timings.setdefault("pipeline", time.perf_counter() - t0)
        return out.frames
