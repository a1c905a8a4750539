"""Kandinsky 5.0 Video image-to-video (``Kandinsky5I2VPipeline``).

The Kandinsky Lab I2V checkpoints in diffusers layout: ``kandinskylab/Kandinsky-5.0-I2V-Pro-sft-5s-Diffusers``
(diffusers' Kandinsky 5.0 Video docs, "Available Models", and the pipeline's example docstring);
``kandinskylab/Kandinsky-5.0-I2V-Lite-5s-Diffusers``, the Diffusers copy of the Lite I2V model that the
kandinskylab/kandinsky-5 README's model zoo links (``Kandinsky-5.0-I2V-Lite-5s``, config
k5_lite_i2v_5s_sft_sd.yaml); and ``kandinskylab/Kandinsky-5.0-I2V-Pro-distilled-5s-Diffusers``, the Pro
I2V's diffusion-distilled copy on the kandinskylab hub (the two ids not in diffusers' table are the
ones FastVideo's model registry maps to ``Kandinsky5I2VPipeline``). Where each default comes from:

- ``num_frames = 4n + 1``, 121 by default, at 24 fps: the reference ``Kandinsky5I2VPipeline``
  (kandinsky/i2v_pipeline.py: ``time_length`` 5 s -> ``5 * 24 // 4 + 1`` = 31 latent frames = 121
  frames, written at ``fps=24``), the diffusers ``__call__`` default (121) and its example
  (``export_to_video(..., fps=24)``). The HunyuanVideo VAE compresses time 4x. At least 17 frames:
  the pipeline's first-frame fix (``normalize_first_frame``) normalises the first 4 latent frames by
  the ones after them; with fewer than 5 latent frames there are none and the video comes out NaN
  (checked on the tiny model), so shorter requests are snapped up to 17. The "5s" checkpoints are
  trained for clips of up to 5 seconds (README); longer requests run, with a notice.
- size: the reference resizes the image to the pixel area of 512x768 at the image's own aspect ratio,
  sides a multiple of 16 (``resize_image(max_area=512*768, divisibility=16)`` at ``resolution: 512``,
  the SD configs k5_{lite,pro}_i2v_5s_sft_sd.yaml); i2v sizes an unset request the same way
  (``reference_size``, its rounding included), and snaps a given size to a multiple of 16 (the pipeline
  checks ``% 16``). The diffusers ``__call__`` default and its example are 512x768 too. The pipeline
  scales its RoPE by (1, 2, 2) when both sides lie in [480, 854] (the SD
  configs' ``scale_factor``), else by (1, 3.16, 3.16) (the HD config); the sidecar records which.
  A transformer with NABLA sparse attention (``attention_type="nabla"``, the reference's HD config)
  groups patches in 8x8 blocks: its sides must be a multiple of 128 (the reference's HD
  ``divisibility=128``), and diffusers runs it only with the ``flex`` attention backend, which the
  backend sets on the transformer as diffusers' docs do (``set_attention_backend("flex")``), without
  diffusers' side effect of making flex the process-wide default.
- steps 50 and guidance 5: the reference configs (``num_steps: 50``, ``guidance_weight: 5.0``), the
  ``__call__`` defaults and the example. The distilled Pro: guidance 1 (diffusers' docs: "all nocfg and
  diffusion distilled models should be inferred without CFG (guidance_scale=1.0)") and 16 steps (the
  docs' distilled example, "Model is distilled in 16 steps", and FastVideo's preset for this id).
- negative prompt: the reference's ``negative_caption`` and the pipeline's own default (identical),
  used only while guidance > 1 (the pipeline's ``guidance_scale > 1.0`` test).
- flow shift: the folder's own scheduler (``FlowMatchEulerDiscreteScheduler``), left as it is, as
  diffusers runs it; the sidecar records it. (The reference's I2V pipeline samples at
  ``scheduler_scale`` 10 by default; its HD config lists 5.)
- ``max_sequence_length`` 512: the ``__call__`` default (the pipeline refuses more than 1024).
- dtype bf16: diffusers' examples load the pipeline with ``torch_dtype=torch.bfloat16``.

Guidance runs the conditional and unconditional passes one after the other. Caches: none (each tried on
the tiny seeded pipeline, tests/backends/diffusers/test_kandinsky5.py). PAB re-uses the attention
outputs of the text blocks too, whose prompt and negative prompt differ in length: the unconditional
pass fails (a size mismatch). First Block Cache fails on the decoder blocks' ``visual_embed`` argument,
and TaylorSeer hooks no layer (the blocks are ``visual_transformer_blocks`` with ``self_attention``).
MagCache runs, but the pipeline opens no cache context: with guidance its conditional and unconditional
passes share one state (each pass counts as a step, and a skipped pass re-uses the other's residual).
FasterCache needs batched guidance. Every cache is refused before loading (``NO_CACHE``).
LoRA: ``KandinskyLoraLoaderMixin``. No last image: the pipeline conditions on the first frame only.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

PIPELINE = "Kandinsky5I2VPipeline"
TRAINED_FRAMES = 121  # the "5s" checkpoints: 5 s at 24 fps
MIN_FRAMES = 17  # 5 latent frames: the pipeline's first-frame normalisation needs one after the first 4
NABLA_BLOCK = 8  # NABLA attention groups 8x8 patches
SD_SIDES = (480, 854)  # the pipeline's SD test: both sides in this range -> RoPE scale (1, 2, 2)
# the reference's negative_caption (kandinsky/i2v_pipeline.py) and the diffusers pipeline's default
NEGATIVE = ("Static, 2D cartoon, cartoon, 2d animation, paintings, images, worst quality, low quality, ugly, "
            "deformed, walking backwards")
NO_CACHE = {  # why each cache does not run (tried on the tiny seeded pipeline, test_kandinsky5.py)
    "pab": "PAB re-uses the text blocks' attention outputs across the prompt and negative prompt, whose lengths "
           "differ (the unconditional pass fails)",
    "fbcache": "First Block Cache cannot hook the decoder blocks (their hidden states argument is visual_embed)",
    "taylorseer": "TaylorSeer finds no attention layer it knows (visual_transformer_blocks.N.self_attention)",
    "magcache": "the pipeline opens no cache context, so with guidance the conditional and unconditional passes "
                "would share one MagCache state (each pass counted as a step, one's residual re-used for the other)",
    "fastercache": "FasterCache needs batched guidance; the guidance passes run separately",
    "deepcache": "DeepCache needs a U-Net",
}


def _k5(name: str, source: str, description: str, *, steps: int = 50, guidance: float = 5.0,
        distilled: bool = False) -> ModelSpec:
    # 121 frames (4n+1, at least 17) at 24 fps; 512x768 pixels at the image's aspect ratio, sides /16;
    # 50 steps at guidance 5 (distilled: 16 steps, guidance 1)
    return ModelSpec(
        name=name, family="kandinsky5", source=source, description=description,
        defaults=ModelDefaults(num_frames=TRAINED_FRAMES, height=512, width=768, fps=24.0, num_inference_steps=steps,
                               guidance_scale=guidance, size_multiple=16, frame_rule=f"4n+1, at least {MIN_FRAMES}",
                               frame_step=4, frame_offset=1, min_frames=MIN_FRAMES, size_policy="aspect"),
        extras={"negative_prompt": NEGATIVE, "max_sequence_length": 512, "dtype": "bf16",
                "trained_frames": TRAINED_FRAMES, "cfg_distilled": distilled},
    )


def reference_size(height: int, width: int, area: int, multiple: int) -> tuple[int, int]:
    """The size the reference gives an image of ``height x width`` (kandinsky/i2v_pipeline.py ``resize_image``):
    ``area`` pixels at the image's aspect ratio, each side rounded to a multiple of ``multiple``."""
    k = math.sqrt(area / (height * width)) / multiple
    return max(multiple, round(height * k) * multiple), max(multiple, round(width * k) * multiple)


def rope_scale(height: int, width: int) -> list[float]:
    """The pipeline's RoPE scale for a size (``Kandinsky5I2VPipeline._get_scale_factor``)."""
    low, high = SD_SIDES
    if low <= height <= high and low <= width <= high:
        return [1.0, 2.0, 2.0]
    return [1.0, 3.16, 3.16]


def set_own_attention_backend(model, backend: str) -> None:
    """``model.set_attention_backend(backend)`` for this model's attention processors only: diffusers also makes
    it the process-wide default, which would switch every other model in the process (a server's) to it."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    previous = _AttentionBackendRegistry._active_backend
    model.set_attention_backend(backend)
    _AttentionBackendRegistry.set_active_backend(previous)


def named_distilled(path: Path) -> bool:
    """Whether a folder holds a distilled checkpoint, by its name (a hub snapshot's: its repository's)."""
    name = path.parent.parent.name if path.parent.name == "snapshots" else path.name
    return re.search(r"distil", name, re.IGNORECASE) is not None


class Kandinsky5Backend(DiffusersBackend):
    family = Family(
        name="kandinsky5",
        models=(
            _k5("kandinsky-5.0-i2v-lite-5s", "kandinskylab/Kandinsky-5.0-I2V-Lite-5s-Diffusers",
                "Kandinsky 5.0 Video Lite I2V 2B: 121 frames (5 s) at 24 fps, 512x768 area at the image's aspect"),
            _k5("kandinsky-5.0-i2v-pro-5s", "kandinskylab/Kandinsky-5.0-I2V-Pro-sft-5s-Diffusers",
                "Kandinsky 5.0 Video Pro I2V 19B (SFT): 121 frames (5 s) at 24 fps, 512x768 area at the image's "
                "aspect"),
            _k5("kandinsky-5.0-i2v-pro-5s-distilled", "kandinskylab/Kandinsky-5.0-I2V-Pro-distilled-5s-Diffusers",
                "Kandinsky 5.0 Video Pro I2V 19B, diffusion-distilled: 16 steps, guidance 1", steps=16,
                guidance=1.0, distilled=True),
        ),
        pipeline_classes=(PIPELINE,),
        caches=(), speed_cache=None,  # none runs: NO_CACHE (tried on the tiny seeded pipeline)
        batched_guidance=False,  # the unconditional pass is a second transformer call of batch 1
        # AutoencoderKLHunyuanVideo decodes 16 frames at a time (framewise); 256x256 tiles with tiling on
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, 16),
        tile_pixels=lambda vae: 256 * 256,
        last_image_help="Kandinsky 5.0 conditions on the first frame only",
        order=77,
    )
    pipeline_class = PIPELINE

    @classmethod
    def registered(cls, name: str) -> ModelSpec:
        return next(spec for spec in cls.family.models if spec.name == name)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Kandinsky 5.0 I2V folder, from its transformer, VAE and scheduler configs."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae, scheduler = (read_config(path, c) for c in ("transformer", "vae", "scheduler"))
        temporal = int(vae.get("temporal_compression_ratio", 4))
        spatial = int(vae.get("spatial_compression_ratio", 8))
        patch = transformer.get("patch_size") or [1, 2, 2]
        attention = transformer.get("attention_type", "regular")
        multiple = max(16, spatial * int(patch[1]))  # the pipeline checks height and width % 16
        if attention == "nabla":
            multiple = spatial * int(patch[1]) * NABLA_BLOCK
        distilled = named_distilled(path)
        pro = int(transformer.get("model_dim", 0)) >= 4096  # the Pro DiT (19B) is 4096 wide, Lite 1792
        base = cls.registered("kandinsky-5.0-i2v-pro-5s-distilled" if distilled else
                              "kandinsky-5.0-i2v-pro-5s" if pro else "kandinsky-5.0-i2v-lite-5s")
        min_frames = temporal * 4 + 1  # five latent frames
        frames = max(min_frames, 1 + (TRAINED_FRAMES - 1) // temporal * temporal)
        height, width = (max(multiple, 512 // multiple * multiple), max(multiple, 768 // multiple * multiple))
        extras = {"attention": attention, "cfg_distilled": distilled}
        if "shift" in scheduler:
            extras["shift"] = float(scheduler["shift"])
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras,
                                 num_frames=frames, height=height, width=width, size_multiple=multiple,
                                 frame_rule=f"{temporal}n+1, at least {min_frames}", frame_step=temporal,
                                 frame_offset=1, min_frames=min_frames)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        cache = (options or LoadOptions()).cache
        if cache in NO_CACHE:  # said here, with the reason: the family's generic refusal lists no cache to use
            raise InvalidRequestError(f"cache {cache!r} does not run on {spec.name}: {NO_CACHE[cache]}; run it "
                                      "without --cache")
        super().__init__(spec, device, options)

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """The common resolution; an unset size is the reference's for the image (``reference_size``)."""
        if request.height is None and request.width is None:
            from ..resolve import image_size

            d = spec.defaults
            image_w, image_h = image_size(request.image)
            height, width = reference_size(image_h, image_w, d.height * d.width, d.size_multiple)
            if (height, width) != (d.height, d.width):
                notices.append(f"size {width}x{height} chosen for the {image_w}x{image_h} input ({d.width}x{d.height} "
                               f"pixels at its aspect ratio, sides a multiple of {d.size_multiple})")
            request = replace(request, height=height, width=width)
        return super().resolve_for(spec, request, notices)

    def load_pipeline(self, folder: Path):
        pipe = super().load_pipeline(folder)
        if pipe.transformer.config.attention_type == "nabla":  # diffusers' docs: NABLA runs on flex attention
            set_own_attention_backend(pipe.transformer, "flex")
        return pipe

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        cfg = settings.guidance_scale > 1.0  # the pipeline's classifier-free guidance test
        if settings.negative_prompt and not cfg:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale "
                           f"{settings.guidance_scale:g} (classifier-free guidance needs more than 1)")
        if cfg and e.get("cfg_distilled"):
            notices.append(f"{self.spec.name} is distilled to run without guidance (guidance_scale 1); guidance_scale "
                           f"{settings.guidance_scale:g} adds classifier-free guidance, two transformer passes a step")
        trained = int(e.get("trained_frames", TRAINED_FRAMES))
        if settings.num_frames > trained:
            notices.append(f"{self.spec.name} is trained for clips of up to {trained} frames (5 s); "
                           f"{settings.num_frames} frames may lose coherence")
        if e.get("attention") == "nabla":
            self.check_nabla_size(settings.height, settings.width)
        scale = rope_scale(settings.height, settings.width)
        settings.extras.update(negative_prompt_used=cfg and bool(settings.negative_prompt),
                               max_sequence_length=int(e.get("max_sequence_length", 512)), rope_scale=scale,
                               resolution_mode="SD" if scale[1] == 2.0 else "HD")

    def check_nabla_size(self, height: int, width: int) -> None:
        multiple = 16 * NABLA_BLOCK
        if height % multiple or width % multiple:
            raise InvalidRequestError(f"{self.spec.name} runs NABLA sparse attention, which groups 8x8 patches: height "
                                      f"and width must be multiples of {multiple}, got {width}x{height}")

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        pipe, e = self._pipe, settings.extras
        if pipe.transformer.config.attention_type == "nabla":  # a hub model's configs arrive with its weights
            self.check_nabla_size(settings.height, settings.width)
        if pipe.scheduler.config.get("shift") is not None:
            e["shift"] = float(pipe.scheduler.config["shift"])  # the folder's own flow shift, as diffusers runs it
        return dict(image=image, prompt=settings.prompt,
                    negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else None,
                    height=settings.height, width=settings.width, num_frames=settings.num_frames,
                    guidance_scale=settings.guidance_scale, max_sequence_length=e["max_sequence_length"])
