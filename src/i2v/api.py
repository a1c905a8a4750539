"""The Python API: GenerationRequest / GenerationResult and ImageToVideoGenerator.

    gen = ImageToVideoGenerator()                      # the embedded model, offline
    frames = gen.generate(image_path="cat.png", prompt="the red ball moves left", seed=0)
    gen.save_video(frames, "out.mp4")

``generate`` is the brief's convenience call; ``run(GenerationRequest)`` is the dataclass API
underneath it. Defaults (frames, size, fps, steps, guidance) come from the model.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import __version__
from .backends.base import Backend, InvalidRequestError, ProgressCallback
from .registry import ModelSpec, resolve_model
from .devices import pick_device
from .errors import DeviceUnavailableError

BACKEND_CLASSES = {
    "tiny": "i2v.backends.tiny:TinyBackend",
    "svd": "i2v.backends.svd:SVDBackend",
    "animatediff": "i2v.backends.animatediff:AnimateDiffBackend",
    "wan": "i2v.backends.wan:WanBackend",
    "cogvideox": "i2v.backends.cogvideox:CogVideoXBackend",
    "ltx": "i2v.backends.ltx:LTXBackend",
    "hunyuan": "i2v.backends.hunyuan:HunyuanBackend",
}


@dataclass
class GenerationRequest:
    """One generation, in the project's vocabulary. ``None`` means "the model's default"."""

    image: str | Path | Image.Image | np.ndarray
    prompt: str = ""
    negative_prompt: str = ""
    num_frames: int | None = None
    fps: float | None = None
    height: int | None = None
    width: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    motion_strength: float | None = None
    last_image: str | Path | Image.Image | np.ndarray | None = None  # last frame (Wan FLF2V, LTX conditions)
    decode_chunk_size: int | None = None  # frames decoded at once (Stable Video Diffusion)


@dataclass
class GenerationResult:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    settings: dict  # everything needed to reproduce the clip; saved with the file
    notices: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def save(self, path: str | Path, fps: float | None = None) -> Path:
        from .video_io import write_video

        fps = self.fps if fps is None else fps
        return write_video(self.frames, path, fps=fps, metadata={**self.settings, "fps": fps})

    def to_pil(self) -> list[Image.Image]:
        return [Image.fromarray(f) for f in self.frames]


def load_backend(spec: ModelSpec, device: str, dtype: str | None = None, **options) -> Backend:
    """Build the family's backend. ``options`` (offload, vae_tiling, vae_slicing, loras, scheduler)
    go to backends that accept them; unset ones (None/False/empty) are dropped."""
    module_name, class_name = BACKEND_CLASSES[spec.family].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    options = {k: v for k, v in options.items() if v not in (None, False, (), [])}
    if options and not getattr(cls, "accepts_options", False):
        raise InvalidRequestError(f"{spec.name} does not take {', '.join(sorted(options))}")
    return cls(spec, device, dtype, **options)


class ImageToVideoGenerator:
    """Loads one model once and generates many clips with it.

    Args:
        model_name: a registered name (``i2v models``) or a local model folder; default: the
            embedded ``i2v-tiny`` model shipped with the package.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``None``/``"auto"``.
        dtype: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``None`` (the model's own).
        show_progress: draw a progress bar on stderr while denoising.
    """

    def __init__(self, model_name: str | None = None, device: str | None = None, dtype: str | None = None,
                 show_progress: bool = False, *, offload: str | None = None, vae_tiling: bool = False,
                 vae_slicing: bool = False, loras: list | None = None, scheduler: str | None = None,
                 profile: str | None = None, cache: str | None = None, compile: bool = False,
                 fp8_storage: bool = False, quantize: str | None = None, forward_chunk: bool = False,
                 cfg_cache: bool | int = False, cache_interval: int | None = None):
        t0 = time.perf_counter()
        self.spec = resolve_model(model_name)
        self.device = pick_device(device)
        # diffusers models: offload "auto"/none/model/sequential/group, VAE tiling/slicing, LoRAs
        # ("path.safetensors[:scale]"), scheduler (a class name from the model's compatibles; the
        # embedded model's sampler), profile ("speed"/"memory") and the speed/memory switches of
        # i2v.acceleration (cache, cache_interval, cfg_cache, compile, fp8_storage, quantize, forward_chunk)
        self.backend = load_backend(self.spec, self.device, dtype, offload=offload, vae_tiling=vae_tiling,
                                    vae_slicing=vae_slicing, loras=loras, scheduler=scheduler, profile=profile,
                                    cache=cache, compile=compile, fp8_storage=fp8_storage, quantize=quantize,
                                    forward_chunk=forward_chunk, cfg_cache=cfg_cache, cache_interval=cache_interval)
        self.show_progress = show_progress
        self.load_seconds = time.perf_counter() - t0
        self.last_result: GenerationResult | None = None

    @property
    def defaults(self):
        return self.spec.defaults

    def run(self, request: GenerationRequest, callback: ProgressCallback | None = None) -> GenerationResult:
        """Generate one clip from a request; unset fields come from the model's defaults."""
        from .imaging import fit_image, load_image

        timings: dict[str, float] = {}
        notices: list[str] = []
        last_image = getattr(request, "last_image", None)
        if last_image is not None and not getattr(self.backend, "supports_last_image", False):
            raise InvalidRequestError(f"{self.spec.name} cannot take a last image (last_image); "
                                      "Wan and LTX-Video models can")
        settings = self.backend.resolve(request, notices)  # validates before any heavy work
        t0 = time.perf_counter()
        image = load_image(request.image)
        image, fit = fit_image(image, settings.width, settings.height)
        if fit.changed:
            notices.append(fit.message)
        extra_inputs = {}
        if last_image is not None:  # fitted to the same size as the first frame
            last, last_fit = fit_image(load_image(last_image), settings.width, settings.height)
            if last_fit.changed:
                notices.append(f"last image: {last_fit.message}")
            extra_inputs["last_image"] = last
        timings["load_image"] = time.perf_counter() - t0
        frames = self.backend.generate(settings, image, callback, timings, self.show_progress, **extra_inputs)
        record = {
            "model": self.spec.name,
            "model_source": self.spec.source,
            "image": str(request.image) if isinstance(request.image, (str, Path)) else None,
            **({"last_image": str(last_image) if isinstance(last_image, (str, Path)) else "<in-memory image>"}
               if last_image is not None else {}),
            **asdict(settings),
            "i2v_version": __version__,
        }
        record.pop("extras", None)
        record.update(settings.extras)
        result = GenerationResult(frames=frames, fps=settings.fps, settings=record, notices=notices, timings=timings)
        self.last_result = result
        return result

    def generate(
        self,
        image_path: str | Path | None = None,
        prompt: str = "",
        *,
        image: Image.Image | np.ndarray | None = None,
        negative_prompt: str = "",
        num_frames: int | None = None,
        fps: float | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        motion_strength: float | None = None,
        callback: ProgressCallback | None = None,
        last_image: str | Path | Image.Image | np.ndarray | None = None,
        decode_chunk_size: int | None = None,
    ) -> np.ndarray:
        """The brief's call: returns frames (T, H, W, 3) uint8. Pass ``image_path`` or ``image``."""
        if (image_path is None) == (image is None):
            raise ValueError("pass exactly one of image_path or image")
        request = GenerationRequest(
            image=image_path if image_path is not None else image, prompt=prompt, negative_prompt=negative_prompt,
            num_frames=num_frames, fps=fps, height=height, width=width, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, seed=seed, motion_strength=motion_strength, last_image=last_image,
            decode_chunk_size=decode_chunk_size,
        )
        return self.run(request, callback=callback).frames

    def save_video(self, frames: Any, path: str | Path, fps: float | None = None) -> Path:
        """Write frames to ``path`` (format from the extension); fps defaults to the generation's.

        When ``frames`` are the last generated clip, its settings travel with the file.
        """
        from .video_io import as_frame_array, write_video

        last = self.last_result
        is_last = last is not None and frames is last.frames
        if fps is None:
            fps = last.fps if is_last else self.defaults.fps
        metadata = {**last.settings, "fps": fps} if is_last else {"model": self.spec.name, "fps": fps,
                                                                 "i2v_version": __version__}
        return write_video(as_frame_array(frames), path, fps=fps, metadata=metadata)
