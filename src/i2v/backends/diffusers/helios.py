"""Helios image-to-video (``HeliosPipeline``, ``HeliosPyramidPipeline``): long videos made chunk by chunk.

Helios (PKU-YuanGroup, a 14B fine-tune of Wan 2.1 T2V 14B) is an autoregressive video diffusion
model: it generates 33 frames at a time (9 latent frames), each chunk conditioned on a compressed
history of the frames before it (16 + 2 + 1 latent frames at 4x, 2x and 1x compression), so a
video of any length costs the memory of one chunk. The image is the history's first latent frame
(image-to-video) and a "fake" history frame; both are noised a little (sigma 0.111-0.135, the
pipeline's and the reference's defaults). Three checkpoints share one architecture:

- ``helios-base`` (``BestWishYsh/Helios-Base``, ``HeliosPipeline``): best quality; 50 steps per chunk
  with classifier-free guidance 5 (v-prediction, ``HeliosScheduler``, one stage);
- ``helios-mid`` (``BestWishYsh/Helios-Mid``, ``HeliosPyramidPipeline``): each chunk is denoised in a
  pyramid of three stages, from 1/4 of the size up (the "faster multi-resolution variant"), 20 steps
  per stage, CFG-Zero* at guidance 5 (the pipeline's ``is_cfg_zero_star``, ``use_zero_init``,
  ``zero_steps`` 1); an intermediate checkpoint ("may not meet expected quality", Helios README);
- ``helios-distilled`` (``BestWishYsh/Helios-Distilled``, ``HeliosPyramidPipeline``): the pyramid with
  ``HeliosDMDScheduler``, 2 steps per stage, no classifier-free guidance (guidance 1), the first
  chunk with twice the steps (``is_amplify_first_chunk``); real time on an H100.

Frames. The pipeline generates ``ceil(num_frames / 33)`` whole chunks of 33 frames, decodes each
chunk's 9 latent frames on their own and trims the clip to ``4n + 1`` frames (``(n - 1) // 4 * 4 +
1``): 1, 2, 3, 4 chunks give 33, 65, 97, 129 frames, 5 to 8 chunks 165, 197, 229, 261, and so on
(``32 k + 1 + 4 floor((k - 1) / 4)``). i2v snaps a request to the nearest such count (reported) and
asks the pipeline for exactly it, so the sidecar's ``num_frames`` is what a stock call returns;
``chunks`` records how many. (The pipeline itself rounds up: ``num_frames=240`` gives 261 frames;
i2v snaps 240 to the nearer 229, and the default of 261 is the docs' run.) Progress counts every
denoising step of every chunk (and pyramid stage).

Where each default comes from:

- 384x640, 24 fps, 50 steps, guidance 5.0, the negative prompt (Wan's English one): the reference
  ``infer_helios.py`` (``--height 384 --width 640 --fps 24 --num_inference_steps 50
  --guidance_scale 5.0``, ``--negative_prompt`` default) and diffusers' Helios docs (Helios-Base: 50
  steps, guidance 5, ``export_to_video(..., fps=24)``, the image ``.resize((640, 384))``). The size
  policy is the reference's: the image is brought to 640x384 whatever its shape (i2v crops to it
  rather than stretching; a given size runs as given, snapped to the model's multiple).
- frames: the reference and the docs run Base and Mid with ``num_frames=99`` (the README's "81 ->
  99 (33x3)") and Distilled with ``num_frames=240`` ("240 -> 264 (33x8)"); the pipeline returns 97
  and 261 frames for them (3 and 8 chunks, trimmed to 4n+1), the defaults here.
- Helios-Mid: ``pyramid_num_inference_steps_list=[20, 20, 20]``, ``guidance_scale=5.0``,
  ``use_zero_init=True``, ``zero_steps=1`` (diffusers' docs, the README's vLLM-Omni command and
  ``infer_helios.py``'s ``--pyramid_num_inference_steps_list`` default). Helios-Distilled:
  ``[2, 2, 2]``, ``guidance_scale=1.0``, ``is_amplify_first_chunk=True`` (diffusers' docs and the
  README's Diffusers and low-VRAM commands). i2v's ``num_inference_steps`` is the steps of each
  pyramid stage (the lists are always uniform there); the list is recorded as
  ``pyramid_num_inference_steps_list``. The number of stages is the scheduler's ``stages`` (3).
- sizes: ``HeliosPipeline`` checks height and width ``% 16`` (the VAE's 8x times the 2x2 patch); the
  pyramid halves the latent twice before the 2x2 patch, so its sides are a multiple of ``8 * 2 * 4 =
  64`` (other sizes fail when the stages are upsampled back). 384x640 fits both. With CFG-Zero*
  (Helios-Mid, guidance on) a 64x64 video is refused before loading: its smallest stage is a single
  patch, where diffusers' CFG-Zero* step fails (``view`` of a non-contiguous prediction).
- dtype: bf16 with the VAE in fp32 (the docs and ``infer_helios.py`` load ``AutoencoderKLWan`` in
  float32, the rest in bf16).
- the schedulers (dynamic shifting by the chunk's token count) and history sizes (``[16, 2, 1]``)
  are the folders' and the pipeline's own; i2v passes neither.

Caches (checked on the tiny seeded pipelines, tests/backends/diffusers/test_helios.py): on Helios-Base
PAB, First Block Cache, TaylorSeer and MagCache. The pipeline opens a cache context per pass
("cond" / "uncond"); First Block Cache and MagCache read a block's output layout from diffusers'
``TransformerBlockRegistry``, which has no entry for ``HeliosTransformerBlock`` (hidden states in,
hidden states out, like Wan's block): the backend registers Wan's entry before loading
(``register_block_metadata``). MagCache's step count follows each chunk's schedule. On the pyramid
models only PAB runs (``PYRAMID_CACHES``; i2v's step clock reads 1000 at the first step of every
stage, so no attention output is re-used across a change of size): each stage denoises at another
size, so First Block Cache's, TaylorSeer's and MagCache's kept residuals do not fit the next stage
(they fail there, and are refused before loading); ``--speed`` runs PAB there.
The pipelines have a LoRA loader (``HeliosLoraLoaderMixin``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ProgressCallback, ResolvedSettings
from ..base import Family
from ..resolve import MAX_FRAMES
from .base import DiffusersBackend
from .progress import counting_callback
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

PIPELINE = "HeliosPipeline"
PYRAMID = "HeliosPyramidPipeline"
LATENT_FRAMES_PER_CHUNK = 9  # the pipeline's num_latent_frames_per_chunk default (the reference's too)
TEMPORAL = 4  # AutoencoderKLWan's time compression
# the caches that run on the pyramid models: each pyramid stage denoises at another size, so a block cache's
# kept residual of one stage does not fit the next (First Block Cache, TaylorSeer and MagCache fail there)
PYRAMID_CACHES = ("pab",)
PYRAMID_NO_CACHE = "its stages denoise at different sizes, so kept block residuals do not fit the next stage"

# the reference's --negative_prompt default and diffusers' Helios docs' (Wan's English negative prompt)
NEGATIVE_PROMPT = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
                   "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
                   "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
                   "fused fingers, still picture, messy background, three legs, many people in the background, "
                   "walking backwards")


def chunk_frames(latent_frames: int = LATENT_FRAMES_PER_CHUNK, temporal: int = TEMPORAL) -> int:
    """Frames one chunk decodes to (its latent frames through the causal VAE): 33."""
    return (latent_frames - 1) * temporal + 1


def output_frames(chunks: int, chunk: int = 33, temporal: int = TEMPORAL) -> int:
    """Frames the pipeline returns for ``chunks`` chunks: all of them, trimmed to ``temporal * n + 1``."""
    return (chunks * chunk - 1) // temporal * temporal + 1


def chunks_for(num_frames: int, chunk: int = 33) -> int:
    """Chunks the pipeline generates for ``num_frames`` (its own ``ceil(num_frames / chunk)``, at least one)."""
    return max(1, (num_frames + chunk - 1) // chunk)


def snap_frames(num_frames: int, chunk: int = 33, temporal: int = TEMPORAL, limit: int = MAX_FRAMES) -> int:
    """The frame count nearest ``num_frames`` (ties: the longer) that whole chunks give, at most ``limit``."""
    counts, k = [], 1
    while (n := output_frames(k, chunk, temporal)) <= limit or k == 1:
        counts.append(n)
        k += 1
    return min(counts, key=lambda n: (abs(n - num_frames), -n))


def frame_rule(chunk: int = 33, temporal: int = TEMPORAL) -> str:
    examples = ", ".join(str(output_frames(k, chunk, temporal)) for k in range(1, 6))
    return f"chunks of {chunk}, trimmed to {temporal}n+1: {examples}, ..."


def _helios(name: str, source: str, description: str, *, pyramid: bool, frames: int = 97, steps: int = 50,
            guidance: float = 5.0, **extras) -> ModelSpec:
    # Helios: 384x640 at 24 fps, chunks of 33 frames (infer_helios.py, diffusers' docs); the pyramid's
    # sides are a multiple of 64, the base pipeline's of 16
    return ModelSpec(
        name=name, family="helios", source=source, description=description,
        defaults=ModelDefaults(num_frames=frames, height=384, width=640, fps=24.0, num_inference_steps=steps,
                               guidance_scale=guidance, size_multiple=64 if pyramid else 16, frame_rule=frame_rule(),
                               min_frames=chunk_frames(), size_policy="default"),
        extras={"pyramid": pyramid, "negative_prompt": NEGATIVE_PROMPT, "max_sequence_length": 512,
                "latent_frames_per_chunk": LATENT_FRAMES_PER_CHUNK, "temporal_compression_ratio": TEMPORAL,
                "dtype": "bf16", "fp32_components": ["vae"], **extras},
    )


def register_block_metadata() -> None:
    """Let diffusers' block caches (First Block Cache, MagCache) run on Helios's transformer.

    They read a block's output layout from diffusers' ``TransformerBlockRegistry``, which (diffusers
    0.42) has no entry for ``HeliosTransformerBlock``; like ``WanTransformerBlock`` it takes and returns
    the hidden states only (no encoder states returned): it gets Wan's entry. Idempotent.
    """
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
    from diffusers.models.transformers.transformer_helios import HeliosTransformerBlock

    TransformerBlockRegistry.register(model_class=HeliosTransformerBlock, metadata=TransformerBlockMetadata(
        return_hidden_states_index=0, return_encoder_hidden_states_index=None))


class _PyramidCall:
    """The pyramid pipeline, taking (and dropping) the ``num_inference_steps`` every diffusers run is given:
    its steps are ``pyramid_num_inference_steps_list``. Everything else is the pipeline's."""

    def __init__(self, pipe):
        self.pipe = pipe

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, num_inference_steps=None, **kwargs):
        return self.pipe(**kwargs)


class HeliosBackend(DiffusersBackend):
    family = Family(
        name="helios",
        models=(
            _helios("helios-base", "BestWishYsh/Helios-Base",
                    "Helios-Base 14B: long videos chunk by chunk (33 frames each), best quality, 24 fps, 640x384",
                    pyramid=False),
            _helios("helios-mid", "BestWishYsh/Helios-Mid",
                    "Helios-Mid 14B: pyramid (multi-resolution) sampling with CFG-Zero*, 20 steps per stage",
                    pyramid=True, steps=20, stages=3, cfg_zero_star=True, use_zero_init=True, zero_steps=1),
            _helios("helios-distilled", "BestWishYsh/Helios-Distilled",
                    "Helios-Distilled 14B: real-time pyramid sampling, 2 steps per stage, no CFG, 261 frames",
                    pyramid=True, frames=261, steps=2, guidance=1.0, stages=3, distilled=True,
                    amplify_first_chunk=True),
        ),
        pipeline_classes=(PIPELINE, PYRAMID),
        # on Helios-Base, checked on the tiny seeded pipeline (tests/backends/diffusers/test_helios.py);
        # fbcache and magcache through register_block_metadata; only PAB on the pyramid models (PYRAMID_CACHES)
        caches=("pab", "fbcache", "taylorseer", "magcache"), speed_cache="fbcache",
        batched_guidance=False,  # noise_uncond = transformer(...): a second pass of batch 1
        # Wan's causal VAE decodes one latent frame (``temporal`` frames) at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        # one chunk beside its history (16 + 2 + 1 latent frames at 4x, 2x and 1x: about 3 of tokens)
        denoise_window=lambda spec, frames, settings: (chunk_frames(), 3),
        order=72,
    )
    pipeline_class = PIPELINE

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Helios folder, from its class, model_index.json, scheduler, VAE and transformer."""
        index = check_model_folder(path, cls.family.pipeline_classes)
        scheduler, vae, transformer = (read_config(path, c) for c in ("scheduler", "vae", "transformer"))
        temporal = int(vae.get("scale_factor_temporal", TEMPORAL))
        spatial = int(vae.get("scale_factor_spatial", 8))
        patch = transformer.get("patch_size", [1, 2, 2])
        patch = int(patch[-1] if isinstance(patch, list) else patch)
        chunk = chunk_frames(LATENT_FRAMES_PER_CHUNK, temporal)
        pyramid = class_name == PYRAMID
        distilled = pyramid and (bool(index.get("is_distilled")) or scheduler.get("_class_name") == "HeliosDMDScheduler"
                                 or scheduler.get("scheduler_type") == "dmd")
        base = cls.registered("helios-distilled" if distilled else "helios-mid" if pyramid else "helios-base")
        stages = int(scheduler.get("stages", 3)) if pyramid else 1
        extras = {"temporal_compression_ratio": temporal}
        if pyramid:
            extras.update(stages=stages, cfg_zero_star=bool(index.get("is_cfg_zero_star")))
        multiple = max(16, spatial * patch * 2 ** (stages - 1))
        frames = snap_frames(base.defaults.num_frames, chunk, temporal)
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras,
                                 size_multiple=multiple, num_frames=frames, min_frames=chunk,
                                 frame_rule=frame_rule(chunk, temporal))

    @classmethod
    def registered(cls, name: str) -> ModelSpec:
        return next(spec for spec in cls.family.models if spec.name == name)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        self.pyramid = bool(spec.extras.get("pyramid"))
        cache = (options or LoadOptions()).cache
        if self.pyramid and cache is not None and cache not in PYRAMID_CACHES:
            raise InvalidRequestError(f"cache {cache!r} does not run on {spec.name} (pyramid sampling: "
                                      f"{PYRAMID_NO_CACHE}); use {', '.join(PYRAMID_CACHES)}, or helios-base")
        super().__init__(spec, device, options)
        if self.pyramid:
            self.pipeline_class = PYRAMID
            if self.acceleration.cache not in (None, *PYRAMID_CACHES):  # the --speed profile's cache
                self.acceleration = replace(self.acceleration, cache=PYRAMID_CACHES[0])
                self.acceleration.notes.append(f"speed profile: cache {PYRAMID_CACHES[0]} on {spec.name} (pyramid "
                                               f"sampling: {PYRAMID_NO_CACHE})")

    def accepted_classes(self) -> tuple[str, ...]:
        return (PYRAMID,) if self.spec.extras.get("pyramid") else (PIPELINE,)

    # -- before any weights load -------------------------------------------------------------------

    @classmethod
    def chunk_of(cls, spec: ModelSpec) -> tuple[int, int]:
        """(frames of one chunk, the VAE's time compression) of a model."""
        temporal = int(spec.extras.get("temporal_compression_ratio", TEMPORAL))
        latent = int(spec.extras.get("latent_frames_per_chunk", LATENT_FRAMES_PER_CHUNK))
        return chunk_frames(latent, temporal), temporal

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """The common resolution, with the frame count snapped to whole chunks first (reported)."""
        chunk, temporal = cls.chunk_of(spec)
        asked = request.num_frames
        if (isinstance(asked, int) and not isinstance(asked, bool) and 2 <= asked <= MAX_FRAMES
                and (frames := snap_frames(asked, chunk, temporal)) != asked):
            notices.append(f"num_frames {asked} does not fit the model's rule ({frame_rule(chunk, temporal)}); "
                           f"snapped to {frames}")
            request = replace(request, num_frames=frames)
        return super().resolve_for(spec, request, notices)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e, name = self.spec.extras, self.spec.name
        chunk, _ = self.chunk_of(self.spec)
        chunks = chunks_for(settings.num_frames, chunk)
        cfg = settings.guidance_scale > 1.0  # the pipeline's do_classifier_free_guidance
        if settings.negative_prompt and not cfg:
            notices.append(f"{name} does not use a negative prompt at guidance_scale {settings.guidance_scale:g} "
                           "(no classifier-free guidance)")
        if cfg and e.get("distilled"):
            notices.append(f"{name} is distilled for guidance 1 (no classifier-free guidance); guidance_scale "
                           f"{settings.guidance_scale:g} adds a second transformer pass a step")
        if chunks > 1:
            notices.append(f"Helios: {settings.num_frames} frames in {chunks} chunks of {chunk} frames, each "
                           "conditioned on the history before it; each chunk needs the memory of one")
        steps = settings.num_inference_steps
        extras = dict(pyramid=self.pyramid, chunks=chunks, chunk_frames=chunk,
                      max_sequence_length=int(e.get("max_sequence_length", 512)),
                      negative_prompt_used=cfg and bool(settings.negative_prompt))
        if self.pyramid:
            stages = int(e.get("stages", 3))
            multiple = self.spec.defaults.size_multiple
            cfg_zero = bool(e.get("cfg_zero_star", not e.get("distilled")))
            if cfg and cfg_zero and settings.height <= multiple and settings.width <= multiple:
                raise InvalidRequestError(f"{name}: CFG-Zero* needs more than one patch at the pyramid's smallest "
                                          f"stage; {settings.width}x{settings.height} gives one (use a side above "
                                          f"{multiple})")
            amplify = bool(e.get("amplify_first_chunk", False))
            per_chunk = stages * steps
            # the DMD scheduler gives the first chunk twice the steps of every stage when it is amplified
            passes = chunks * per_chunk + (per_chunk if amplify and e.get("distilled") else 0)
            extras.update(pyramid_num_inference_steps_list=[steps] * stages, use_zero_init=bool(e.get("use_zero_init",
                          True)), zero_steps=int(e.get("zero_steps", 1)), is_amplify_first_chunk=amplify)
        else:
            passes = chunks * steps
        extras["denoising_steps"] = passes
        settings.extras.update(extras)

    # -- loading and generating -----------------------------------------------------------------------

    def load_pipeline(self, folder: Path):
        register_block_metadata()  # before the caches are applied (and before MagCache calibrates)
        return super().load_pipeline(folder)

    def active_pipeline(self, last_image):
        return _PyramidCall(self._pipe) if self.pyramid else self._pipe

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        kwargs = dict(image=image, prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      guidance_scale=settings.guidance_scale, max_sequence_length=e["max_sequence_length"])
        if self.pyramid:
            kwargs.update(pyramid_num_inference_steps_list=list(e["pyramid_num_inference_steps_list"]),
                          use_zero_init=e["use_zero_init"], zero_steps=e["zero_steps"],
                          is_amplify_first_chunk=e["is_amplify_first_chunk"])
        return kwargs

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None) -> np.ndarray:
        passes = settings.extras["denoising_steps"]
        if callback is not None and passes != settings.num_inference_steps:  # every step of every chunk
            callback = counting_callback(callback, passes)
        return super().generate(settings, image, callback, timings, show_progress, last_image)
