"""LTX-Video (``LTXImageToVideoPipeline``, or ``LTXConditionPipeline`` for first/last-frame conditions).

Rules from the LTX-Video card and the diffusers docs: ``num_frames = 8n + 1`` (at most 257), sides
a multiple of 32 (the pipeline checks it), 24 fps (passed to the model as ``frame_rate``, which
scales its temporal RoPE); best under 720x1280. The default size keeps the image's aspect ratio at
the model's pixel area (704x480). For the timestep-aware VAEs (LTX-Video 0.9.1 and later) the docs
set ``decode_timestep=0.05`` and ``image_cond_noise_scale=0.025``.

``last_image`` runs ``LTXConditionPipeline`` with two conditions, the image on frame 0 and the
last image on the last frame; an ``LTXImageToVideoPipeline`` folder is turned into one built from
its components (same weights, no reload, dtypes untouched: ``from_pipe`` without a dtype would cast
every shared model to fp32).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

CONDITION_PIPELINE = "LTXConditionPipeline"
_LTX_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXBackend(DiffusersBackend):
    family = Family(
        name="ltx",
        models=(
            ModelSpec(
                name="ltx-video", family="ltx", source="Lightricks/LTX-Video",
                description="LTX-Video 2B image-to-video (161 frames at 24 fps, 704x480; any size /32 under 720x1280)",
                defaults=ModelDefaults(num_frames=161, height=480, width=704, fps=24.0, num_inference_steps=50,
                                       guidance_scale=3.0, size_multiple=32, frame_rule="8n+1, at most 257",
                                       frame_step=8, frame_offset=1, min_frames=9, max_frames=257,
                                       size_policy="aspect"),
                extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 128, "dtype": "bf16"},
            ),
            ModelSpec(
                name="ltx-video-0.9.5", family="ltx", source="Lightricks/LTX-Video-0.9.5",
                description="LTX-Video 0.9.5 with LTXConditionPipeline (first/last frame conditions), 768x512, 24 fps",
                defaults=ModelDefaults(num_frames=161, height=512, width=768, fps=24.0, num_inference_steps=40,
                                       guidance_scale=3.0, size_multiple=32, frame_rule="8n+1, at most 257",
                                       frame_step=8, frame_offset=1, min_frames=9, max_frames=257,
                                       size_policy="aspect"),
                extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 256, "dtype": "bf16",
                        "pipeline": "LTXConditionPipeline"},
            ),
        ),
        pipeline_classes=("LTXImageToVideoPipeline", "LTXConditionPipeline", "LTXPipeline"),
        # LTX's blocks break First Block Cache's hidden-state bookkeeping
        caches=("pab", "taylorseer"), speed_cache="pab",
        inputs=frozenset({"last_image"}),
        tile_pixels=lambda vae: 512 * 512,
        order=50,
    )
    pipeline_class = "LTXImageToVideoPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local LTX-Video folder (LTX, LTX image-to-video or LTX condition pipeline)."""
        check_model_folder(path, cls.family.pipeline_classes)
        vae = read_config(path, "vae")
        extras = {"timestep_conditioning": bool(vae.get("timestep_conditioning", False))}
        if class_name == CONDITION_PIPELINE:
            extras["pipeline"] = CONDITION_PIPELINE
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras=extras)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        super().__init__(spec, device, options)
        if spec.extras.get("pipeline") == CONDITION_PIPELINE:
            self.pipeline_class = CONDITION_PIPELINE
        self._condition_pipe = None

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        if settings.fps != round(settings.fps):
            notices.append(f"LTX-Video's frame_rate conditioning is a whole number; using {round(settings.fps)}")
        settings.extras.update(frame_rate=max(1, round(settings.fps)),
                               max_sequence_length=int(self.spec.extras.get("max_sequence_length", 128)),
                               first_last_frame=request.last_image is not None)

    def condition_pipeline(self):
        """The pipeline to run with a last image: the loaded one if it is an LTXConditionPipeline,
        else an LTXConditionPipeline sharing its components."""
        import diffusers

        pipe = self._pipe
        if type(pipe).__name__ == CONDITION_PIPELINE:
            return pipe
        if self._condition_pipe is None:
            # built from the same component objects: no copy, no reload, no dtype cast (``from_pipe``
            # would call ``.to(dtype=float32)`` on the shared models when given no dtype)
            cls = getattr(diffusers, CONDITION_PIPELINE)
            expected, _ = cls._get_signature_keys(cls)
            self._condition_pipe = cls(**{k: v for k, v in pipe.components.items() if k in expected})
        return self._condition_pipe

    def decode_kwargs(self, pipe) -> dict:
        if getattr(pipe.vae.config, "timestep_conditioning", False):  # LTX-Video 0.9.1+ VAEs
            return {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
        return {}

    def active_pipeline(self, last_image: Image.Image | None):
        if last_image is not None or self.pipeline_class == CONDITION_PIPELINE:
            return self.condition_pipeline()
        return self._pipe

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        kwargs = dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      frame_rate=e["frame_rate"], guidance_scale=settings.guidance_scale,
                      max_sequence_length=e["max_sequence_length"], **self.decode_kwargs(self._pipe))
        if type(self.active).__name__ != CONDITION_PIPELINE:
            return dict(image=image, **kwargs)
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        conditions = [LTXVideoCondition(image=image, frame_index=0)]
        if last_image is not None:
            conditions.append(LTXVideoCondition(image=last_image, frame_index=settings.num_frames - 1))
        if "decode_timestep" in kwargs:
            kwargs["image_cond_noise_scale"] = 0.025
        return dict(conditions=conditions, **kwargs)
