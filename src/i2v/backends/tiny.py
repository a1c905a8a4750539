"""The embedded model's backend: a GenerationRequest onto ``I2VPipeline``."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

from ..registry import ModelSpec
from .base import Backend, InvalidRequestError, ProgressCallback, ResolvedSettings


class TinyBackend(Backend):
    accepts_options = True  # LoRAs only (trained by `i2v train --lora-rank`); others are refused

    def __init__(self, spec: ModelSpec, device: str, dtype: str | None = None, *, loras=(), **options):
        super().__init__(spec, device, dtype)
        if options:
            raise InvalidRequestError(f"{spec.name} does not take {', '.join(sorted(options))} (diffusers models "
                                      "only; the embedded model is small enough not to need them)")
        from ..pipelines.pipeline_i2v import I2VPipeline
        from .diffusers_common import check_loras, load_loras

        loras = check_loras(loras, {})  # checked before loading
        torch_dtype = {None: torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        self.pipeline = I2VPipeline.from_folder(spec.source, torch_dtype=torch_dtype).to(device)
        self.lora_records = load_loras(self.pipeline, loras)

    def resolve(self, request, notices: list[str]) -> ResolvedSettings:
        settings = super().resolve(request, notices)
        if settings.motion_strength is not None:
            notices.append("motion_strength is not used by i2v-tiny: the prompt names the motion")
        if self.lora_records:
            settings.extras["loras"] = self.lora_records
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
            callback=callback,
            timings=timings,
        )
        timings.setdefault("pipeline", time.perf_counter() - t0)
        return out.frames
