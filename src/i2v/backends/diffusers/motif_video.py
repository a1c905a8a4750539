"""Motif-Video image-to-video (``MotifVideoImage2VideoPipeline``).

Motif-Video 2B (Motif Technologies) is a flow-matching diffusion transformer (12 dual-stream + 16
single-stream blocks with shared text cross-attention + 8 DDT decoder blocks) on Wan 2.1's VAE, with
a T5Gemma2 text encoder whose SigLIP vision tower also embeds the first frame. One checkpoint does
text- and image-to-video: ``Motif-Technologies/Motif-Video-2B`` is saved as ``MotifVideoPipeline``
(the text-to-video class; its hub page lists that class), so such folders load into the image-to-video
class, which takes the same components. ``MotifVideoImage2VideoPipeline`` is exported from
``diffusers`` (``from diffusers import MotifVideoImage2VideoPipeline``).

Where each default comes from:

- 121 frames at 24 fps, 1280x736, 50 steps: diffusers' Motif-Video docs and the pipeline's own example
  (``width=1280, height=736, num_frames=121, num_inference_steps=50``, ``export_to_video(..., fps=24)``;
  the same are the ``__call__`` defaults) and Motif Technologies' ComfyUI workflows ("1280x736, 33,
  65 or 121 frames", 50 steps). The size policy is the docs': the pipeline resizes the image to the
  requested size, 1280x736 unless one is given (i2v crops to it rather than stretching).
- ``num_frames = 4n + 1``: Wan's causal VAE compresses time 4x (``(T - 1) // 4 + 1`` latent frames) and
  the transformer's time patch is 1; the docs' 33 / 65 / 121 fit it. Sides: a multiple of 16 (the VAE's
  8x times the transformer's 2x2 patch; the pipeline itself checks ``% 8``).
- guidance 8.0 with Adaptive Projected Guidance: the guidance lives in the pipeline's ``guider``
  component (no ``guidance_scale`` argument); Motif Technologies' ComfyUI I2V workflow runs APG
  (norm threshold 12, momentum 0.1) at cfg 8.0, the APG settings the model's authors recommend in
  diffusers' integration (PR #13551: "APG ... is our default guider", ``guidance_scale=8.0,
  adaptive_projected_guidance_rescale=12.0, adaptive_projected_guidance_momentum=0.1,
  use_original_formulation=True``). The backend swaps in ``guider.new(guidance_scale=...)`` keeping
  the folder's other guider settings, as diffusers' guider API does. A local folder's default is its
  guider's ``guidance_scale``.
- flow shift 8: the ComfyUI I2V workflow's ``ModelSamplingSD3 shift = 8`` (15 for text-to-video), the
  same static shift as ``FlowMatchEulerDiscreteScheduler``'s ``shift``; the backend sets it on the
  folder's scheduler (when the scheduler shifts dynamically by sequence length, its own ``mu``
  applies and the sidecar says ``dynamic_shifting``). A local folder's default is its scheduler's shift.
- negative prompt: the pipeline's own image-to-video example ("worst quality, inconsistent motion,
  blurry, jittery, distorted"), used when guidance is on and none is given.
- dtype bf16: the docs load the whole pipeline with ``torch_dtype=torch.bfloat16``.
- ``max_sequence_length`` 512: the pipeline's default.

Caches (checked on the tiny seeded pipeline, tests/backends/diffusers/test_motif_video.py, which has the
released layout's DDT decoder blocks): PAB, TaylorSeer and MagCache. First Block Cache does not run:
the DDT decoder blocks take the encoder's video tokens as their second stream, so the last block's
"encoder states" are not the first block's text tokens and its residual check fails (refused before
loading). The guider runs the conditional and unconditional passes one after the other, each in its
own cache context. The pipeline has no LoRA loader. Under sequential and group offload the text
encoder stays whole on the device: diffusers' own tests skip those offloads for this pipeline
("T5Gemma2Encoder's vision_tower doesn't support block-level or leaf-level offloading"; on a CPU,
where onload and offload devices are one, both ways run alike).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UnknownModelError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

PIPELINE = "MotifVideoImage2VideoPipeline"
T2V_FOLDER = "MotifVideoPipeline"  # the hub repository's class: the same components, text- and image-to-video
NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


def _motif(name: str, source: str, description: str) -> ModelSpec:
    # Motif-Video 2B I2V: 121 frames (4n+1) at 24 fps, 1280x736 (sides /16), 50 steps (diffusers' docs);
    # APG guidance 8 and flow shift 8 (Motif Technologies' I2V workflow)
    return ModelSpec(
        name=name, family="motif_video", source=source, description=description,
        defaults=ModelDefaults(num_frames=121, height=736, width=1280, fps=24.0, num_inference_steps=50,
                               guidance_scale=8.0, size_multiple=16, frame_rule="4n+1", frame_step=4, frame_offset=1,
                               min_frames=5, size_policy="default"),
        extras={"shift": 8.0, "negative_prompt": NEGATIVE_PROMPT, "max_sequence_length": 512, "dtype": "bf16",
                "guider_original_formulation": True},
    )


def guidance_on(scale: float, original_formulation: bool) -> bool:
    """Whether the guider runs an unconditional pass at ``scale`` (APG's and CFG's own test: off at 1, or at 0
    with the original formulation)."""
    return not math.isclose(scale, 0.0 if original_formulation else 1.0)


def _read_json(file: Path) -> dict:
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownModelError(f"{file} is not valid JSON: {exc}") from exc


def keep_text_encoder_whole(pipe) -> None:
    """Place the T5Gemma2 text encoder (with its SigLIP vision tower) on the device whole under sequential
    and group offload: the vision tower does not run under diffusers' leaf-level hooks."""
    pipe._exclude_from_cpu_offload = [*pipe._exclude_from_cpu_offload, "text_encoder"]  # sequential
    original = pipe.enable_group_offload

    def enable_group_offload(*args, exclude_modules=None, **kwargs):
        if isinstance(exclude_modules, str):
            exclude_modules = [exclude_modules]
        return original(*args, exclude_modules=[*(exclude_modules or []), "text_encoder"], **kwargs)

    pipe.enable_group_offload = enable_group_offload


class MotifVideoBackend(DiffusersBackend):
    family = Family(
        name="motif_video",
        models=(
            _motif("motif-video-2b", "Motif-Technologies/Motif-Video-2B",
                   "Motif-Video 2B image-to-video: 121 frames at 24 fps, 1280x736, APG guidance"),
        ),
        pipeline_classes=(PIPELINE, T2V_FOLDER),
        # checked on the tiny seeded pipeline (tests/backends/diffusers/test_motif_video.py); First Block Cache
        # fails on the DDT decoder blocks (their second stream is the video, not the text)
        caches=("pab", "taylorseer", "magcache"), speed_cache="pab",
        batched_guidance=False,  # the guider runs the conditional and unconditional passes one after the other
        loras=False,  # MotifVideoImage2VideoPipeline has no LoRA loader
        # Wan's causal VAE decodes one latent frame (``temporal`` frames) at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        order=74,
    )
    pipeline_class = PIPELINE

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Motif-Video folder, from its transformer, VAE, scheduler and guider."""
        check_model_folder(path, cls.family.pipeline_classes)
        base = cls.family.models[0]
        transformer, vae, scheduler = (read_config(path, c) for c in ("transformer", "vae", "scheduler"))
        guider = _read_json(path / "guider" / "guider_config.json")
        temporal = int(vae.get("scale_factor_temporal", 4)) * int(transformer.get("patch_size_t", 1))
        multiple = int(vae.get("scale_factor_spatial", 8)) * int(transformer.get("patch_size", 2))
        extras = {"shift": float(scheduler.get("shift", base.extras["shift"])),
                  "guider_original_formulation": bool(guider.get("use_original_formulation", False))}
        return folder_model_spec(path, class_name, base, extras=extras, size_multiple=multiple,
                                 guidance_scale=float(guider.get("guidance_scale", base.defaults.guidance_scale)),
                                 frame_rule=f"{temporal}n+1", frame_step=temporal, frame_offset=1,
                                 min_frames=temporal + 1)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        cfg = guidance_on(settings.guidance_scale, bool(e.get("guider_original_formulation")))
        if settings.negative_prompt and not cfg:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale "
                           f"{settings.guidance_scale:g} (its guider runs no unconditional pass there)")
        settings.extras.update(shift=float(e.get("shift", 8.0)),
                               negative_prompt_used=cfg and bool(settings.negative_prompt),
                               max_sequence_length=int(e.get("max_sequence_length", 512)))

    def load_pipeline(self, folder: Path):
        pipe = super().load_pipeline(folder)
        keep_text_encoder_whole(pipe)
        return pipe

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        pipe, e = self._pipe, settings.extras
        config = pipe.scheduler.config
        if config.get("use_dynamic_shifting"):  # its own shift by sequence length (the pipeline passes mu)
            e["dynamic_shifting"] = True
        elif "shift" in config and config["shift"] != e["shift"]:  # the model's own flow shift
            pipe.scheduler = type(pipe.scheduler).from_config(config, shift=e["shift"])
        if getattr(pipe.guider, "guidance_scale", None) != settings.guidance_scale:  # the guider holds guidance
            pipe.guider = pipe.guider.new(guidance_scale=settings.guidance_scale)
        e["guider"] = type(pipe.guider).__name__
        e["negative_prompt_used"] = bool(settings.negative_prompt) and guidance_on(  # what the guider itself does
            settings.guidance_scale, bool(getattr(pipe.guider, "use_original_formulation", False)))
        return dict(image=image, prompt=settings.prompt,
                    negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else None,
                    height=settings.height, width=settings.width, num_frames=settings.num_frames,
                    max_sequence_length=e["max_sequence_length"])
