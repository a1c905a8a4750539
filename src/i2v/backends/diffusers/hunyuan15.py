"""HunyuanVideo 1.5 image-to-video (``HunyuanVideo15ImageToVideoPipeline``).

The five released I2V checkpoints in diffusers layout (hub ids from the hunyuanvideo-community
collection that the Tencent-Hunyuan/HunyuanVideo-1.5 README links, and diffusers PR #12802 for the
step-distilled one). Where each default comes from:

- ``num_frames = 4n + 1``, 121 by default: the reference ``generate.py`` (``--video_length``
  default 121, "121 frames is the optimal value") and diffusers' ``__call__`` default; the VAE
  compresses time 4x (a causal VAE: ``(T - 1) // 4 + 1`` latent frames), so other counts do not
  come back whole.
- 24 fps: ``generate.py`` writes its videos at ``fps=24``; diffusers' examples export at 24.
- steps, guidance, flow shift: the README's "Optimal Inference Configurations" table and the
  reference ``PIPELINE_CONFIGS`` (hyvideo/commons/__init__.py), which diffusers' conversion script
  (``SCHEDULER_CONFIGS`` / ``GUIDANCE_CONFIGS``) writes into each hub folder's scheduler and guider:
  480p I2V 50 steps, guidance 6, shift 5; 720p I2V 50, 6, 7; the CFG-distilled ones guidance 1
  ("must use 50 steps"), shift 5 (480p) / 7 (720p); the 480p step-distilled (MeanFlow) one 12
  steps ("8 or 12 (recommended)"; ``PIPELINE_CONFIGS`` default 12), guidance 1, shift 7.
- dtype bf16: the reference runs the transformer in bf16 (``--dtype`` default), and diffusers'
  examples load the whole pipeline with ``torch_dtype=torch.bfloat16``.
- size: the pipeline takes no height or width. It picks the size itself from the image: the
  bucket of ``target_size**2`` pixels (transformer config: 640 at 480p, 960 at 720p), sides a
  multiple of the VAE's 16x (``vae_scale_factor_spatial``), aspect ratio at most 4:1, nearest the
  image's aspect ratio (``HunyuanVideo15ImageProcessor.calculate_default_height_width``, copied
  from the reference ``get_closest_ratio``); the default 480x848 / 720x1280 are the 16:9 buckets.
  i2v resolves a request to such a bucket before anything loads (an unset size: the image's own
  bucket, as the pipeline would choose; a given size: the bucket nearest its aspect ratio), and
  the image is fitted to it, so that the pipeline generates exactly the resolved size. Some
  buckets are not their own nearest bucket (the ratios are rounded to 5 decimals: an image of such
  a bucket's size would be cropped to a neighbour), so where the pipeline's pick is one of them,
  i2v takes the nearest bucket in aspect ratio that the pipeline keeps.

Guidance is not a ``__call__`` argument: the pipeline's ``guider`` component
(``ClassifierFreeGuidance``) holds it, and the backend swaps in ``guider.new(guidance_scale=...)``
as diffusers' docs do. At guidance 1 there is no unconditional pass, so a negative prompt is unused
(said in a notice). The conditional and unconditional passes run one after the other.
The flow shift is the scheduler's ``shift``, set to the model's own value.
``__call__`` has no ``callback_on_step_end``: the step callback (progress, NaN check) runs after
each scheduler step instead. The pipeline has no LoRA loader.
A local folder's defaults come from its configs: its transformer's ``target_size`` and
``use_meanflow``, its VAE's compression, its scheduler's shift and its guider's guidance (a hub id
that is not registered arrives without the guider's config: guidance 6, the base models' value).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UnknownModelError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

REPO = "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-"
TARGET_480P, TARGET_720P = 640, 960  # transformer target_size (diffusers' conversion TRANSFORMER_CONFIGS)


def _hv15(name: str, variant: str, description: str, *, target: int, guidance: float, shift: float,
          steps: int = 50, cfg_distilled: bool = False) -> ModelSpec:
    # HunyuanVideo 1.5 I2V: 121 frames (4n+1) at 24 fps; the size is a bucket of target**2 pixels
    # (sides /16), the 16:9 one by default; steps, guidance and shift from the README's table.
    height, width = pipeline_size(9, 16, target, 16)
    return ModelSpec(
        name=name, family="hunyuan15", source=REPO + variant, description=description,
        defaults=ModelDefaults(num_frames=121, height=height, width=width, fps=24.0, num_inference_steps=steps,
                               guidance_scale=guidance, size_multiple=16, frame_rule="4n+1", frame_step=4,
                               frame_offset=1, min_frames=5, size_policy="aspect"),
        extras={"target_size": target, "bucket_stride": 16, "shift": shift, "dtype": "bf16",
                "cfg_distilled": cfg_distilled},
    )


# -- the pipeline's size buckets (pure Python: resolving a request loads neither numpy nor diffusers) --


def crop_sizes(target_size: int, stride: int, max_ratio: float = 4.0) -> list[tuple[int, int]]:
    """The buckets ``(height, width)`` of ``target_size**2`` pixels, sides a multiple of ``stride``, in the
    pipeline's order (diffusers' ``generate_crop_size_list``, from the reference data_utils.py)."""
    patches = round((target_size / stride) ** 2)
    sizes, wp, hp = [], patches, 1
    while wp > 0:
        if max(wp, hp) / min(wp, hp) <= max_ratio:
            sizes.append((wp * stride, hp * stride))
        if (hp + 1) * wp <= patches:
            hp += 1
        else:
            wp -= 1
    return sizes


def closest_bucket(height: int, width: int, target_size: int, stride: int) -> tuple[int, int]:
    """The bucket the pipeline picks for an image of ``height x width`` (``get_closest_ratio``: among the
    buckets no taller (portrait) or no wider (landscape) than the image, the nearest aspect ratio)."""
    sizes = crop_sizes(target_size, stride)
    aspect = float(height) / float(width)
    diffs = [round(float(h) / float(w), 5) - aspect for h, w in sizes]
    candidates = [(i, d) for i, d in enumerate(diffs) if (d <= 0 if aspect >= 1 else d >= 0)]
    index = min(candidates, key=lambda pair: abs(pair[1]))[0]
    return sizes[index]


@cache
def stable_buckets(target_size: int, stride: int) -> tuple[tuple[int, int], ...]:
    """The buckets the pipeline keeps when given an image of their own size (its rounded aspect ratios
    make some buckets pick a neighbour instead)."""
    sizes = crop_sizes(target_size, stride)
    return tuple(s for s in sizes if closest_bucket(*s, target_size, stride) == s)


def pipeline_size(height: int, width: int, target_size: int, stride: int) -> tuple[int, int]:
    """The size to generate for ``height x width``: the bucket the pipeline picks for it when the pipeline
    keeps that bucket for an image of its own size (the image is fitted to it first), else the kept bucket
    of the nearest aspect ratio."""
    size = closest_bucket(height, width, target_size, stride)
    stable = stable_buckets(target_size, stride)
    if size in stable:
        return size
    aspect = float(height) / float(width)
    return min(stable, key=lambda s: abs(s[0] / s[1] - aspect))


def _read_json(file: Path) -> dict:
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownModelError(f"{file} is not valid JSON: {exc}") from exc


class _StepCallbacks:
    """The pipeline, taking diffusers' ``callback_on_step_end`` arguments that its ``__call__`` lacks:
    the callback runs after each scheduler step with the new latents. Everything else is the pipeline's."""

    def __init__(self, pipe):
        self.pipe = pipe

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, callback_on_step_end=None, callback_on_step_end_tensor_inputs=(), **kwargs):
        pipe = self.pipe
        if callback_on_step_end is None:
            return pipe(**kwargs)
        scheduler = pipe.scheduler
        original, index = scheduler.step, 0

        def step(model_output, timestep, sample, *args, **step_kwargs):
            nonlocal index
            out = original(model_output, timestep, sample, *args, **step_kwargs)
            latents = out[0] if isinstance(out, tuple) else out.prev_sample
            callback_on_step_end(pipe, index, timestep, {"latents": latents})
            index += 1
            return out

        scheduler.step = step
        try:
            return pipe(**kwargs)
        finally:
            del scheduler.step


class HunyuanVideo15Backend(DiffusersBackend):
    family = Family(
        name="hunyuan15",
        models=(
            _hv15("hunyuanvideo-1.5-i2v-480p", "480p_i2v",
                  "HunyuanVideo 1.5 I2V 8.3B, 480p: 121 frames at 24 fps, 480x848 (bucketed to the image)",
                  target=TARGET_480P, guidance=6.0, shift=5.0),
            _hv15("hunyuanvideo-1.5-i2v-720p", "720p_i2v",
                  "HunyuanVideo 1.5 I2V 8.3B, 720p: 121 frames at 24 fps, 720x1280 (bucketed to the image)",
                  target=TARGET_720P, guidance=6.0, shift=7.0),
            _hv15("hunyuanvideo-1.5-i2v-480p-distilled", "480p_i2v_distilled",
                  "HunyuanVideo 1.5 I2V 480p, CFG-distilled (guidance 1, one pass per step, 50 steps)",
                  target=TARGET_480P, guidance=1.0, shift=5.0, cfg_distilled=True),
            _hv15("hunyuanvideo-1.5-i2v-720p-distilled", "720p_i2v_distilled",
                  "HunyuanVideo 1.5 I2V 720p, CFG-distilled (guidance 1, one pass per step, 50 steps)",
                  target=TARGET_720P, guidance=1.0, shift=7.0, cfg_distilled=True),
            _hv15("hunyuanvideo-1.5-i2v-480p-step-distilled", "480p_i2v_step_distilled",
                  "HunyuanVideo 1.5 I2V 480p, step-distilled (MeanFlow): 12 steps, guidance 1",
                  target=TARGET_480P, guidance=1.0, shift=7.0, steps=12, cfg_distilled=True),
        ),
        pipeline_classes=("HunyuanVideo15ImageToVideoPipeline",),
        # checked on the tiny model (tests/backends/diffusers/test_hunyuan15.py): diffusers registers no
        # block metadata for HunyuanVideo 1.5's transformer blocks, which First Block Cache and MagCache need
        caches=("pab", "taylorseer"), speed_cache="pab",
        batched_guidance=False,  # the guider runs the conditional and unconditional passes one after the other
        loras=False,  # HunyuanVideo15ImageToVideoPipeline has no LoRA loader
        # AutoencoderKLHunyuanVideo15 decodes the whole clip at once; with tiling on, 256x256 tiles
        tile_pixels=lambda vae: 256 * 256,
        order=65,
    )
    pipeline_class = "HunyuanVideo15ImageToVideoPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local HunyuanVideo 1.5 I2V folder, from its transformer, VAE, scheduler and guider."""
        check_model_folder(path, cls.family.pipeline_classes)
        base = cls.family.models[0]
        transformer, vae, scheduler = (read_config(path, c) for c in ("transformer", "vae", "scheduler"))
        guider = _read_json(path / "guider" / "guider_config.json")
        target = int(transformer.get("target_size", TARGET_480P))
        stride = int(vae.get("spatial_compression_ratio", 16))
        temporal = int(vae.get("temporal_compression_ratio", 4))
        patch = int(transformer.get("patch_size", 1))
        height, width = pipeline_size(9, 16, target, stride)  # the 16:9 bucket, as the registered models
        meanflow = bool(transformer.get("use_meanflow", False))
        guidance = float(guider.get("guidance_scale", base.defaults.guidance_scale))
        extras = {"target_size": target, "bucket_stride": stride,
                  "shift": float(scheduler.get("shift", base.extras["shift"])), "cfg_distilled": guidance == 1.0}
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras,
                                 height=height, width=width, size_multiple=stride * patch,
                                 frame_rule=f"{temporal}n+1", frame_step=temporal, frame_offset=1,
                                 min_frames=temporal + 1, guidance_scale=guidance,
                                 num_inference_steps=12 if meanflow else 50)

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """The common resolution, with the size snapped to the bucket the pipeline will generate."""
        target, stride = int(spec.extras.get("target_size", TARGET_480P)), int(spec.extras.get("bucket_stride", 16))
        if request.height is None and request.width is None:  # what the pipeline picks: the image's own bucket
            from ..resolve import image_size

            image_w, image_h = image_size(request.image)
            height, width = pipeline_size(image_h, image_w, target, stride)
            if (height, width) != (image_h, image_w):
                notices.append(f"size {width}x{height} chosen for the {image_w}x{image_h} input (the size bucket of "
                               f"{target}x{target} pixels nearest its aspect ratio)")
            request = replace(request, height=height, width=width)
        settings = super().resolve_for(spec, request, notices)
        height, width = pipeline_size(settings.height, settings.width, target, stride)
        if (height, width) != (settings.height, settings.width):
            notices.append(f"{spec.name} generates only at its size buckets ({target}x{target} pixels, sides a "
                           f"multiple of {stride}, aspect ratio up to 4:1); {settings.width}x{settings.height} "
                           f"snapped to {width}x{height}, the bucket nearest its aspect ratio")
            settings.height, settings.width = height, width
        return settings

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        cfg = not math.isclose(settings.guidance_scale, 1.0)  # the guider's own test: no CFG at 1.0
        if settings.negative_prompt and not cfg:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale 1 (no classifier-free "
                           "guidance)")
        if cfg and e.get("cfg_distilled"):
            notices.append(f"{self.spec.name} is guidance-distilled (its card runs it at guidance 1); guidance_scale "
                           f"{settings.guidance_scale:g} adds classifier-free guidance, two transformer passes a step")
        settings.extras.update(shift=float(e.get("shift", 5.0)), target_size=int(e.get("target_size", TARGET_480P)),
                               negative_prompt_used=cfg and bool(settings.negative_prompt))

    def active_pipeline(self, last_image: Image.Image | None):
        return _StepCallbacks(self._pipe)

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        pipe, e = self._pipe, settings.extras
        config = pipe.scheduler.config
        key = "shift" if "shift" in config else "flow_shift" if "flow_shift" in config else None
        if key is not None and config[key] != e["shift"]:  # the model's own flow shift
            pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: e["shift"]})
        if getattr(pipe.guider, "guidance_scale", None) != settings.guidance_scale:  # the guider holds guidance
            pipe.guider = pipe.guider.new(guidance_scale=settings.guidance_scale)
        return dict(image=image, prompt=settings.prompt,
                    negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else None,
                    num_frames=settings.num_frames)
