"""``DiffusersBackend``: what every diffusers family shares.

A request is resolved (defaults, snapping, the family's checks) before any weights are read; the
pipeline is loaded on the first ``generate`` (safetensors only), then the scheduler, LoRAs, VAE
options, speed/memory switches and offload are applied, and every run goes through the family's
``call_kwargs`` with a step callback for progress.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...lora import check_loras, load_loras
from ...types import GenerationRequest, LoadOptions, ModelSpec, ProgressCallback, ResolvedSettings
from ..base import Backend
from .loading import check_model_folder, folder_variant, local_model_folder, read_config
from .options import apply_offload, apply_vae_options, check_offload, pick_dtype
from .progress import StepReporter, to_uint8_frames
from .schedulers import check_scheduler, check_scheduler_name, swap_scheduler

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image


def wanted_variant(spec: ModelSpec, dtype_name: str) -> str | None:
    """The registered weights variant (``"fp16"`` for SVD) when running in the model's own dtype."""
    return spec.extras.get("variant") if dtype_name == spec.extras.get("dtype") else None


class DiffusersBackend(Backend):
    """A diffusers image-to-video pipeline behind i2v's request vocabulary.

    Subclasses declare ``family`` (their ``Family`` descriptor) and ``pipeline_class``, and override
    ``folder_spec`` (defaults from a local folder's configs), ``family_resolve`` (family-specific
    checks and metadata), ``call_kwargs`` (the pipeline's own argument names), and optionally
    ``load_pipeline`` (how components are assembled) / ``active_pipeline`` (which pipeline runs).
    """

    pipeline_class = ""  # the diffusers class used to load and run
    lora_aliases: dict[str, str] = {}
    init_video = None  # the running request's video-to-video start ((T, H, W, 3) uint8), if any
    # video-to-video by SDEdit through the pipeline's ``latents``: (pipeline, (T, H, W, 3) uint8) -> the
    # video's latents as the pipeline takes them (families that take an init video another way: None)
    encode_init_video = None

    def pipeline_latents(self, pipe, latents, settings: ResolvedSettings):
        """Video-to-video's noised latents as the pipeline's ``latents`` argument (most take them as they are)."""
        return latents

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        from ...acceleration import Acceleration, check_acceleration, profile_acceleration

        super().__init__(spec, device, options)
        o = self.options
        family = self.family
        # Everything below is validated now, before any weights are read. A profile fills only
        # what the caller left unset.
        acc = Acceleration(cache=o.cache, cache_interval=o.cache_interval, cfg_cache=o.cfg_cache, compile=o.compile,
                           fp8_storage=o.fp8_storage, quantize=o.quantize, forward_chunk=o.forward_chunk)
        self.acceleration, chosen = profile_acceleration(o.profile, family, device, acc)
        check_acceleration(self.acceleration, family)
        self.profile = o.profile
        dtype = o.dtype or chosen.get("dtype")
        offload = o.offload or chosen.get("offload")
        can_tile, can_slice = "vae_tiling" in family.memory_options, "vae_slicing" in family.memory_options
        vae_tiling = o.vae_tiling or (chosen.get("vae_tiling", False) and can_tile)
        vae_slicing = o.vae_slicing or (chosen.get("vae_slicing", False) and can_slice)
        self.dtype_name, self.torch_dtype = pick_dtype(dtype, device, spec.extras)
        self.offload = check_offload(offload, device)
        if vae_tiling and not can_tile:
            raise InvalidRequestError(f"{spec.name}: {self.vae_help('tiling')}")
        if vae_slicing and not can_slice:
            raise InvalidRequestError(f"{spec.name}: {self.vae_help('slicing')}")
        self.vae_tiling, self.vae_slicing = bool(vae_tiling), bool(vae_slicing)
        if o.loras and not family.loras:
            raise InvalidRequestError(f"{spec.name} ({family.name}) does not support LoRA adapters")
        presets = family.few_step_loras
        self.loras = check_loras(o.loras, {**self.lora_aliases, **{p.name: p.sources for p in presets}})
        self.few_step = None  # (FewStepLora, how it was recognised) when a distillation LoRA is loaded
        if presets and self.loras:
            from ...lora import parse_lora
            from .few_step import recognise

            self.few_step = recognise(self.loras, [parse_lora(x)[0] for x in o.loras], presets)
        if self.few_step is not None:  # its steps and guidance become the defaults
            preset = self.few_step[0]
            self.spec = spec = replace(spec, defaults=replace(spec.defaults, num_inference_steps=preset.steps,
                                                              guidance_scale=preset.guidance_scale))
        self.lora_records: list[dict] = []
        self.folder: Path | None = None
        self.index: dict | None = None
        self.variant: str | None = None  # weights variant ("fp16"), from the folder's file names
        local = Path(spec.source).expanduser()
        if local.is_dir():
            self.folder, self.index = local, check_model_folder(local, self.accepted_classes())
            self.variant = folder_variant(local, self.index, self.wanted_variant())
        self.mag_ratios = None
        if self.acceleration.cache == "magcache":  # the model's calibrated curve, or a typed error, before weights
            from ...acceleration.mag_cache import load_ratios

            self.mag_ratios = load_ratios(spec)
        self.scheduler = scheduler = o.scheduler
        if scheduler is not None:
            if not isinstance(scheduler, str):
                raise InvalidRequestError(f"scheduler must be a class name, got {scheduler!r}")
            if self.folder is not None:  # a local folder: check against its scheduler before any weights
                self.check_folder_scheduler(self.folder)
            else:  # a hub model: the name now, the model's own scheduler once its configs are here (load)
                check_scheduler_name(scheduler)
        self.active = None
        self.acceleration_notes: list[str] = []
        self._pipe = None
        self.load_seconds = 0.0

    @classmethod
    def load_dtype(cls, spec: ModelSpec, device: str, requested: str | None) -> tuple[str, Callable[[str], int]]:
        name, torch_dtype = pick_dtype(requested, device, spec.extras)  # validates the name
        if isinstance(torch_dtype, dict):  # per component (Wan's fp32 VAE, HunyuanVideo's bf16 transformer)
            return name, lambda c: torch_dtype.get(c, torch_dtype["default"]).itemsize
        return name, lambda c: torch_dtype.itemsize

    @classmethod
    def weights_variant(cls, spec: ModelSpec, folder: Path, index: dict, dtype_name: str) -> str | None:
        return folder_variant(folder, index, wanted_variant(spec, dtype_name))

    def accepted_classes(self) -> tuple[str, ...]:
        """The model_index.json classes this model's folder may have."""
        return self.family.pipeline_classes

    def wanted_variant(self) -> str | None:
        return wanted_variant(self.spec, self.dtype_name)

    def check_folder_scheduler(self, folder: Path) -> None:
        """Refuse ``--scheduler`` when the folder's own scheduler cannot be replaced by it."""
        config = read_config(folder, "scheduler")
        if config.get("_class_name"):
            check_scheduler(self.scheduler, config["_class_name"], config)
        else:
            check_scheduler_name(self.scheduler)

    @classmethod
    def vae_help(cls, what: str) -> str:
        return f"this model's VAE has no {what}"

    # -- loading ----------------------------------------------------------------------------

    @property
    def pipeline(self):
        if self._pipe is None:
            self.load()
        return self._pipe

    def fetch(self) -> Path:
        """The model's local folder, downloaded (configs and safetensors only) if it is a hub model,
        and checked; no weights are read."""
        if self.folder is None:
            variant = self.wanted_variant()
            self.folder = local_model_folder(self.spec.source, variant=variant)
            self.index = check_model_folder(self.folder, self.accepted_classes())
            self.variant = folder_variant(self.folder, self.index, variant)
            if self.scheduler is not None:
                self.check_folder_scheduler(self.folder)
        return self.folder

    def load(self):
        """Read the weights (safetensors only), then apply scheduler, LoRA, VAE, acceleration and offload."""
        from ...acceleration import apply_acceleration

        import torch

        from ...io.safetensors_header import check_no_meta_tensors, check_weight_files, weights_errors

        t0 = time.perf_counter()
        folder = self.fetch()
        check_weight_files(folder)  # truncated or forged files are named before any loading
        with weights_errors(folder):
            pipe = self.load_pipeline(folder)
            for name, part in pipe.components.items():
                if isinstance(part, torch.nn.Module):
                    check_no_meta_tensors(part, folder / name)
        if self.scheduler is not None:
            swap_scheduler(pipe, self.scheduler)
        elif self.few_step is not None:  # the noise levels the LoRA was distilled at
            import diffusers

            preset = self.few_step[0]
            config = {**pipe.scheduler.config, **dict(preset.scheduler_config), "flow_shift": preset.shift}
            pipe.scheduler = getattr(diffusers, preset.scheduler).from_config(config)
        self.lora_records = load_loras(pipe, self.loras)
        apply_vae_options(pipe, self.vae_tiling, self.vae_slicing)
        self.acceleration_notes = apply_acceleration(pipe, self.acceleration, self.device, self.mag_ratios)
        if self.offload == "auto":  # no memory plan was followed (a direct caller): keep every weight on the device
            self.offload = "none"
        apply_offload(pipe, self.offload, self.device)
        self._pipe = pipe
        self.load_seconds = time.perf_counter() - t0
        return pipe

    # -- --offload auto: the memory planner decides (i2v.memory, asked by the API before loading) -----------

    def weights_resident(self) -> bool:
        return self._pipe is not None

    def needs_memory_plan(self) -> bool:
        return self.offload == "auto" and self._pipe is None

    def follow_memory_plan(self, options: dict, settings: ResolvedSettings, notices: list[str]) -> None:
        """Take the planner's options for this run: the offload mode and the decode options the user
        left unset, so that the run does what ``--dry-run`` printed."""
        chosen = []
        self.offload = options.get("offload", "none") if self.device.startswith("cuda") else "none"
        chosen.append(f"offload={self.offload}")
        for key in ("vae_tiling", "vae_slicing"):
            if options.get(key) and not getattr(self, key) and key in self.family.memory_options:
                setattr(self, key, True)
                chosen.append(key)
        if options.get("decode_chunk_size") and "decode_chunk_size" in settings.extras:
            settings.extras["decode_chunk_size"] = min(settings.extras["decode_chunk_size"],
                                                       options["decode_chunk_size"])
            chosen.append(f"decode_chunk_size={settings.extras['decode_chunk_size']}")
        settings.extras.update(offload=self.offload, vae_tiling=self.vae_tiling, vae_slicing=self.vae_slicing)
        notices.append(f"memory plan (--offload auto): {', '.join(chosen)}")

    def load_pipeline(self, folder: Path):
        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        return cls.from_pretrained(str(folder), **self.load_kwargs())

    def load_kwargs(self) -> dict:
        """``from_pretrained`` keyword arguments: dtype, safetensors only, the variant if any."""
        import diffusers.utils

        # diffusers renamed torch_dtype -> dtype (the old name warns); use whichever this version has
        key = "dtype" if hasattr(diffusers.utils, "_resolve_dtype") else "torch_dtype"
        kwargs = {key: self.torch_dtype, "use_safetensors": True}
        if self.variant:
            kwargs["variant"] = self.variant
        if self.acceleration.quantize:
            from ...acceleration import quantization_config

            kwargs["quantization_config"] = quantization_config(self.acceleration, self.denoiser_name)
        return kwargs

    @property
    def denoiser_name(self) -> str:
        """The pipeline's denoiser component, from model_index.json (read before any weights load)."""
        return "unet" if "unet" in self.index else "transformer"

    # -- resolving --------------------------------------------------------------------------

    def resolve(self, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        d = self.spec.defaults
        settings = super().resolve(request, notices)
        if d.size_policy == "fixed" and (settings.height, settings.width) != (d.height, d.width):
            raise InvalidRequestError(
                f"{self.spec.name} only generates {d.width}x{d.height} (its positional embeddings are learned for "
                f"that size); got {settings.width}x{settings.height}"
            )
        extras = settings.extras
        if d.uses_prompt:
            default_negative = self.spec.extras.get("negative_prompt")
            if not settings.negative_prompt and default_negative and settings.guidance_scale > 1:  # CFG uses it
                settings.negative_prompt = default_negative
                notices.append("no negative prompt given; using the model card's default negative prompt")
            extras["prompt_used"] = True
        extras.update(dtype=self.dtype_name, offload=self.offload, vae_tiling=self.vae_tiling,
                      vae_slicing=self.vae_slicing,
                      loras=[{"source": s, "scale": k} for s, k in self.loras],
                      scheduler=self.scheduler, profile=self.profile,
                      acceleration={k: v for k, v in self.acceleration.as_dict().items() if v})
        if self.few_step is not None:
            preset, how = self.few_step
            extras["few_step_lora"] = {"name": preset.name, "recognised_by": how, "steps": preset.steps,
                                       "guidance_scale": preset.guidance_scale, "shift": preset.shift}
            if self.scheduler is None:
                extras["scheduler"] = preset.scheduler
            notices.append(f"few-step LoRA ({how}): defaults switched to its {preset.steps} steps, guidance "
                           f"{preset.guidance_scale:g}, Euler ({preset.scheduler}) at shift {preset.shift:g}; now "
                           f"{settings.num_inference_steps} steps, guidance {settings.guidance_scale:g} "
                           "(--num-inference-steps / --guidance-scale / --scheduler override)")
        if settings.strength is not None and self.acceleration.cache == "magcache":
            raise InvalidRequestError("--cache magcache follows a curve calibrated over the whole schedule; "
                                      "video-to-video (init_video) runs only its last steps: use another cache")
        self.family_resolve(request, settings, notices)
        return settings

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        """Family hook: check family-only values, add family defaults to ``settings.extras``."""

    # -- generating -------------------------------------------------------------------------

    def active_pipeline(self, last_image: Image.Image | None):
        """Family hook: the pipeline this request runs on (the loaded one, or one sharing its weights)."""
        return self._pipe

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        """Family hook: the pipeline's ``__call__`` arguments (``self.active`` is the pipeline)."""
        raise NotImplementedError

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None,
                 init_video: np.ndarray | None = None) -> np.ndarray:
        import torch

        if self._pipe is None:
            self.load()
            timings["load"] = self.load_seconds
        self.init_video = init_video  # video-to-video's start, for the family's hooks
        pipe = self.active = self.active_pipeline(last_image)
        pipe.set_progress_bar_config(disable=not show_progress, leave=False, desc="denoising")
        reporter = StepReporter(callback, settings.extras.get("denoising_steps", settings.num_inference_steps))
        kwargs = self.call_kwargs(settings, image, last_image)
        kwargs.update(num_inference_steps=settings.num_inference_steps, output_type="np",
                      generator=torch.Generator("cpu").manual_seed(settings.seed), callback_on_step_end=reporter)
        kwargs.setdefault("callback_on_step_end_tensor_inputs", ["latents"])
        if self.acceleration_notes:
            settings.extras["acceleration_notes"] = self.acceleration_notes
        settings.extras.update(offload=self.offload, scheduler=type(pipe.scheduler).__name__,
                               loras=self.lora_records or settings.extras.get("loras", []))
        steps_run = settings.extras.get("denoising_steps", settings.num_inference_steps)
        if self.acceleration.cache or self.acceleration.cfg_cache:
            from ...acceleration import reset_caches

            reset_caches(pipe, steps_run)
        schedule = contextlib.nullcontext()
        if init_video is not None and self.encode_init_video is not None:  # SDEdit through the pipeline's latents
            from .video_to_video import noised_latents, truncated_schedule

            latents = self.encode_init_video(pipe, init_video)
            noise = torch.Generator("cpu").manual_seed(settings.seed + 1)  # the pipeline's generator stays its own
            kwargs["latents"] = self.pipeline_latents(pipe, noised_latents(
                pipe.scheduler, latents, settings.num_inference_steps, settings.strength, noise, pipe._execution_device),
                settings)
            schedule = truncated_schedule(pipe.scheduler, settings.num_inference_steps, settings.strength)
        with torch.inference_mode(), schedule:
            out = pipe(**kwargs)
        reporter.fill(timings)
        frames = to_uint8_frames(out.frames)
        if len(frames) != settings.num_frames:
            raise RuntimeError(f"{self.pipeline_class} returned {len(frames)} frames for num_frames "
                               f"{settings.num_frames}; please report this")
        return frames
