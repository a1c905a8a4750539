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

Long videos (more than 257 frames) and prompt schedules run ``LTXI2VLongMultiPromptPipeline``, built
the same way: windows of 80 frames overlapping by 24 (its defaults, as in Lightricks' ComfyUI
workflow), each window's prompt the schedule's segment at the window's middle frame, the image held
as frame 0 (``cond_strength=1``: the other pipelines keep frame 0 too; the stock default of 0.5
half-noises it) and the Euler ancestral RF scheduler the pipeline's docs name for ComfyUI parity.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...prompt_schedule import window_prompts
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .progress import counting_callback
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

CONDITION_PIPELINE = "LTXConditionPipeline"
LONG_PIPELINE = "LTXI2VLongMultiPromptPipeline"
NATIVE_MAX_FRAMES = 257  # one window of the model; longer runs go through LONG_PIPELINE
LONG_WINDOW = 80  # LONG_PIPELINE's temporal_tile_size and temporal_overlap (its defaults), in frames
LONG_OVERLAP = 24
_FRAME_RULE = "8n+1; above 257 or with a prompt schedule: windows of 80 frames overlapping by 24"
_LTX_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXBackend(DiffusersBackend):
    family = Family(
        name="ltx",
        models=(
            ModelSpec(
                name="ltx-video", family="ltx", source="Lightricks/LTX-Video",
                description="LTX-Video 2B image-to-video (161 frames at 24 fps, 704x480; any size /32 under 720x1280)",
                defaults=ModelDefaults(num_frames=161, height=480, width=704, fps=24.0, num_inference_steps=50,
                                       guidance_scale=3.0, size_multiple=32, frame_rule=_FRAME_RULE,
                                       frame_step=8, frame_offset=1, min_frames=9, max_frames=1025,
                                       size_policy="aspect"),
                extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 128, "dtype": "bf16"},
            ),
            ModelSpec(
                name="ltx-video-0.9.5", family="ltx", source="Lightricks/LTX-Video-0.9.5",
                description="LTX-Video 0.9.5 with LTXConditionPipeline (first/last frame conditions), 768x512, 24 fps",
                defaults=ModelDefaults(num_frames=161, height=512, width=768, fps=24.0, num_inference_steps=40,
                                       guidance_scale=3.0, size_multiple=32, frame_rule=_FRAME_RULE,
                                       frame_step=8, frame_offset=1, min_frames=9, max_frames=1025,
                                       size_policy="aspect"),
                extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 256, "dtype": "bf16",
                        "pipeline": "LTXConditionPipeline"},
            ),
        ),
        pipeline_classes=("LTXImageToVideoPipeline", "LTXConditionPipeline", "LTXPipeline"),
        # LTX's blocks break First Block Cache's hidden-state bookkeeping
        caches=("pab", "taylorseer"), speed_cache="pab",
        inputs=frozenset({"last_image", "prompt_schedule", "init_video"}),
        tile_pixels=lambda vae: 512 * 512,
        denoise_window=lambda spec, frames, settings: long_denoise_window(frames, settings),
        order=50,
    )
    pipeline_class = "LTXImageToVideoPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local LTX-Video folder (LTX, LTX image-to-video or LTX condition pipeline)."""
        check_model_folder(path, cls.family.pipeline_classes)
        vae = read_config(path, "vae")
        scaling = sum(bool(x) for x in vae.get("spatio_temporal_scaling", (True, True, True, False)))
        extras = {"timestep_conditioning": bool(vae.get("timestep_conditioning", False)),
                  "vae_temporal_ratio": int(vae.get("temporal_compression_ratio") or
                                            vae.get("patch_size_t", 1) * 2 ** scaling),
                  "vae_spatial_ratio": int(vae.get("spatial_compression_ratio")
                                           or vae.get("patch_size", 4) * 2 ** scaling)}
        if class_name == CONDITION_PIPELINE:
            extras["pipeline"] = CONDITION_PIPELINE
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras=extras)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        super().__init__(spec, device, options)
        if spec.extras.get("pipeline") == CONDITION_PIPELINE:
            self.pipeline_class = CONDITION_PIPELINE
        self._condition_pipe = None
        self._long_pipe = None
        self.long_plan: dict | None = None  # the running request's long-video plan (family_resolve's)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        if settings.fps != round(settings.fps):
            notices.append(f"LTX-Video's frame_rate conditioning is a whole number; using {round(settings.fps)}")
        settings.extras.update(frame_rate=max(1, round(settings.fps)),
                               max_sequence_length=int(self.spec.extras.get("max_sequence_length", 128)),
                               first_last_frame=request.last_image is not None)
        if settings.num_frames > NATIVE_MAX_FRAMES or settings.prompt_schedule:
            if request.init_video is not None:
                raise InvalidRequestError(
                    f"{self.spec.name}: video-to-video (init_video) works up to {NATIVE_MAX_FRAMES} frames with one "
                    f"prompt; long videos and prompt schedules run {LONG_PIPELINE}, which starts from noise")
            if request.last_image is not None:
                raise InvalidRequestError(
                    f"{self.spec.name}: a last image (last_image) works up to {NATIVE_MAX_FRAMES} frames with one "
                    f"prompt; long videos and prompt schedules run {LONG_PIPELINE}, which takes only a first image")
            temporal = int(self.spec.extras.get("vae_temporal_ratio", 8))
            settings.extras["long_video"] = long_video_plan(settings, temporal)
            if settings.num_frames > NATIVE_MAX_FRAMES:
                notices.append(f"{settings.num_frames} frames is more than one LTX-Video window ({NATIVE_MAX_FRAMES}); "
                               f"generating in {len(settings.extras['long_video']['window_prompts'])} windows of "
                               f"{LONG_WINDOW} frames overlapping by {LONG_OVERLAP} ({LONG_PIPELINE})")

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

    def long_pipeline(self):
        """LTXI2VLongMultiPromptPipeline sharing the loaded components, with its own scheduler (the RF
        Euler ancestral one of its docs; the loaded pipeline keeps its own)."""
        import diffusers

        if self._long_pipe is None:
            cls = getattr(diffusers, LONG_PIPELINE)
            expected, _ = cls._get_signature_keys(cls)
            components = {k: v for k, v in self._pipe.components.items() if k in expected}
            components["scheduler"] = diffusers.LTXEulerAncestralRFScheduler.from_config(self._pipe.scheduler.config)
            self._long_pipe = cls(**components)
        return self._long_pipe

    def decode_kwargs(self, pipe) -> dict:
        if getattr(pipe.vae.config, "timestep_conditioning", False):  # LTX-Video 0.9.1+ VAEs
            return {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
        return {}

    def active_pipeline(self, last_image: Image.Image | None):
        if self.long_plan is not None:
            return self.long_pipeline()
        if last_image is not None or self.init_video is not None or self.pipeline_class == CONDITION_PIPELINE:
            return self.condition_pipeline()
        return self._pipe

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback, timings: dict, show_progress: bool,
                 last_image: Image.Image | None = None, init_video: np.ndarray | None = None):
        self.long_plan = settings.extras.get("long_video")
        if self.long_plan is not None and callback is not None:
            callback = counting_callback(callback, self.long_plan["denoising_passes"])
        return super().generate(settings, image, callback, timings, show_progress, last_image, init_video)

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        if self.long_plan is not None:
            return self.long_call_kwargs(settings, image)
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
        if self.init_video is not None:  # video-to-video: the condition pipeline's own denoise_strength
            kwargs.update(latents=self.video_latents(self.init_video), denoise_strength=settings.strength)
        return dict(conditions=conditions, **kwargs)

    def video_latents(self, frames: np.ndarray):
        """(T, H, W, 3) uint8 -> the condition pipeline's normalised latents (1, C, F, h, w): what its
        ``latents`` argument takes for ``denoise_strength`` below 1."""
        import torch

        from .video_to_video import frames_to_tensor

        pipe = self.active
        video = frames_to_tensor(frames)
        with torch.inference_mode():
            latents = pipe.vae.encode(video.to(pipe._execution_device, pipe.vae.dtype)).latent_dist.mode()
        return pipe._normalize_latents(latents.float(), pipe.vae.latents_mean, pipe.vae.latents_std,
                                       pipe.vae.config.scaling_factor)

    def long_call_kwargs(self, settings: ResolvedSettings, image: Image.Image) -> dict:
        """``LTXI2VLongMultiPromptPipeline``'s arguments: one prompt per window, the image as frame 0."""
        e, plan = settings.extras, self.long_plan
        pipe = self.active
        if pipe.vae_temporal_compression_ratio != plan["vae_temporal_ratio"]:
            raise RuntimeError(f"the VAE compresses time {pipe.vae_temporal_compression_ratio}x, not "
                               f"{plan['vae_temporal_ratio']}x as its config says; please report this")
        latent_w = settings.width // pipe.vae_spatial_compression_ratio
        latent_h = settings.height // pipe.vae_spatial_compression_ratio
        tiles = {"decode_horizontal_tiles": max(1, min(4, latent_w // 8)),  # the stock 4 tiles, at least 8 wide
                 "decode_vertical_tiles": max(1, min(4, latent_h // 8))}
        e["long_video"].update(tiles)
        segments = [{"start_window": i, "end_window": i, "text": text}
                    for i, text in enumerate(plan["window_prompts"])]
        decode = self.decode_kwargs(self._pipe) or {"decode_timestep": None, "decode_noise_scale": None}
        return dict(prompt=plan["window_prompts"][0], prompt_segments=segments,
                    negative_prompt=settings.negative_prompt or None, height=settings.height, width=settings.width,
                    num_frames=settings.num_frames, frame_rate=e["frame_rate"], guidance_scale=settings.guidance_scale,
                    seed=settings.seed, cond_image=image, cond_strength=1.0, temporal_tile_size=LONG_WINDOW,
                    temporal_overlap=LONG_OVERLAP, max_sequence_length=e["max_sequence_length"],
                    # the pipeline hands back "latents" from a callback as its packed window latents:
                    # give the callback the packed ones
                    callback_on_step_end_tensor_inputs=["latents_packed"], **tiles, **decode)


def long_denoise_window(num_frames: int, settings: dict) -> tuple[int, int] | None:
    """A long run denoises one window at a time, beside the image's latent frame (its negative index)."""
    if num_frames > NATIVE_MAX_FRAMES or settings.get("prompt_schedule") or settings.get("long_video"):
        return LONG_WINDOW, 1
    return None


def long_video_windows(latent_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """LTXI2VLongMultiPromptPipeline's sliding windows over latent frames, (start, end) each."""
    stride = max(window - overlap, 1)
    windows, start = [], 0
    while start < latent_frames:
        end = min(start + window, latent_frames)
        windows.append((start, end))
        if end == latent_frames:
            break
        start += stride
    return windows


def long_video_plan(settings: ResolvedSettings, temporal_ratio: int) -> dict:
    """The windows of a long run and each one's prompt (the schedule's segment at its middle frame);
    refuses a schedule whose segment would play in no window."""
    latent_frames = (settings.num_frames - 1) // temporal_ratio + 1
    windows = long_video_windows(latent_frames, max(1, LONG_WINDOW // temporal_ratio),
                                 max(0, LONG_OVERLAP // temporal_ratio))
    step = (LONG_WINDOW - LONG_OVERLAP) / settings.fps
    middles = [min(settings.num_frames - 1, (start + end - 1) * temporal_ratio // 2) for start, end in windows]
    prompts = window_prompts(settings.prompt, settings.prompt_schedule, middles, settings.fps,
                             f"LTX-Video changes the prompt once per window of its long-video pipeline, every "
                             f"{step:.2f}s here: make each segment at least that long")
    steps_per_window = max(settings.num_inference_steps - 1, 0)  # it runs all its timesteps but the last
    return {"pipeline": LONG_PIPELINE, "vae_temporal_ratio": temporal_ratio,
            "temporal_tile_size": LONG_WINDOW, "temporal_overlap": LONG_OVERLAP,
            "windows": [list(w) for w in windows], "window_prompts": prompts,
            "denoising_passes": steps_per_window * len(windows)}
