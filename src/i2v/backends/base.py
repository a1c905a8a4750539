"""What every backend is: a ``Family`` descriptor, and a ``Backend`` that turns a request into frames.

A backend is built once per model (weights loaded in ``__init__``, or lazily on the first
``generate`` as the diffusers backends do, so that ``resolve`` can refuse a request before any
weights are read) and then called for many requests. ``resolve`` fills a request's unset fields
from the model's defaults and snaps values to the model's rules, returning human-readable
notices for every change it made.

Each backend class declares its ``Family``: everything i2v knows about the family, in one place.
The registry (model names, folder classes), the API, the speed switches and the memory planner
read it; none of them names a family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import InvalidRequestError
from ..types import GenerationRequest, LoadOptions, ModelSpec, ProgressCallback, ResolvedSettings
from .resolve import fill_size, init_video_frames, resolve_common, resolve_motion, resolve_strength, resolve_window

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

# Optional request inputs a family may take.
INPUTS = ("last_image", "motion_strength", "decode_chunk_size", "prompt_schedule", "init_video", "camera_path",
          "trajectory")
# Memory options a family may take (the planner chooses among them).
MEMORY_OPTIONS = ("offload", "vae_tiling", "vae_slicing", "decode_chunk_size")


def decode_all_frames(num_frames: int, temporal: int, slicing: bool, chunk: int | None) -> int:
    """Frames the VAE decodes at once: all of them (the pipeline decodes the clip in one go)."""
    return num_frames


def denoise_all_frames(spec: ModelSpec, num_frames: int, settings: dict) -> tuple[int, int] | None:
    """The denoiser sees every frame at once (no windows)."""
    return None


def tile_from_sample_size(vae: dict) -> int | None:
    """Pixels of one VAE tile with tiling on: ``AutoencoderKL`` tiles at ``config.sample_size``."""
    size = vae.get("sample_size")
    if isinstance(size, (list, tuple)):
        return int(size[0]) * int(size[-1])
    return int(size) ** 2 if size else None


@dataclass(frozen=True)
class Family:
    """One model family: its models, the pipelines it loads, what it takes and what runs on it."""

    name: str
    models: tuple[ModelSpec, ...]  # registered names with verified defaults; the first is a folder's base
    pipeline_classes: tuple[str, ...] = ()  # model_index.json ``_class_name``s this backend loads
    denoiser: str = "transformer"  # "unet" or "transformer": which caches can run
    caches: tuple[str, ...] = ()  # the caches that run on it (checked on tiny seeded models)
    speed_cache: str | None = None  # the cache of the --speed profile
    batched_guidance: bool = True  # [uncond, cond] in one forward; False: two passes of batch 1
    inputs: frozenset[str] = frozenset()  # optional request inputs it takes (INPUTS)
    memory_options: frozenset[str] = frozenset({"offload", "vae_tiling", "vae_slicing"})
    loras: bool = True
    # (num_frames, VAE temporal factor, VAE slicing on, decode_chunk_size) -> frames decoded at once
    decode_frames: Callable[[int, int, bool, int | None], int] = decode_all_frames
    # VAE config -> pixels of one tile with VAE tiling on (None: the VAE does not tile)
    tile_pixels: Callable[[dict], int | None] = tile_from_sample_size
    # (spec, num_frames, resolved settings as a dict) -> (frames of one window, latent frames of
    # context beside it) for a family that denoises a long video window by window (None: all at once);
    # the memory planner sizes the denoiser by one window
    denoise_window: Callable[[ModelSpec, int, dict], tuple[int, int] | None] = denoise_all_frames
    last_image_help: str = ""  # which models of the family take a last image, for the refusal
    trainable: str | None = None  # "module:Class" that `i2v train --model` fine-tunes (None: not trainable)
    order: int = 100  # where its models are listed by `i2v models` (the embedded model first)
    registry_only_extras: tuple[str, ...] = ()  # extras of registered models a local folder does not inherit
    hub_downloads_everything: bool = False  # a hub id fetches all weights when resolved (small models)
    few_step_loras: tuple = ()  # distillation LoRA presets (backends.diffusers.few_step.FewStepLora)
    sound: bool = False  # its videos come with a sound track

    @property
    def long_video(self) -> bool:
        """Whether it makes long videos window by window (memory flat in the length)."""
        return self.denoise_window is not denoise_all_frames

    def __post_init__(self) -> None:
        unknown = (set(self.inputs) - set(INPUTS)) | (set(self.memory_options) - set(MEMORY_OPTIONS))
        if unknown or self.denoiser not in ("unet", "transformer"):
            raise ValueError(f"family {self.name}: unknown inputs/options {sorted(unknown)} or denoiser "
                             f"{self.denoiser!r}")
        if any(spec.family != self.name for spec in self.models):
            raise ValueError(f"family {self.name}: every model must name it as its family")


class Backend:
    """Base class; subclasses declare ``family`` and implement ``generate``."""

    family: ClassVar[Family]

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        self.spec = spec
        self.device = device
        self.options = options or LoadOptions()

    # -- what the registry and the planner ask of a family, before anything loads ---------------

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """The ModelSpec of a local model folder of this family, from its configs."""
        raise NotImplementedError

    @classmethod
    def load_dtype(cls, spec: ModelSpec, device: str, requested: str | None) -> tuple[str, Callable[[str], int]]:
        """(dtype name the model loads with on ``device``, component name -> bytes per value)."""
        raise NotImplementedError

    @classmethod
    def weights_variant(cls, spec: ModelSpec, folder: Path, index: dict, dtype_name: str) -> str | None:
        """The weights variant (``"fp16"``) the model's folder is loaded with, if any."""
        return None

    @classmethod
    def outside_components(cls, spec: ModelSpec, device: str) -> tuple[list[tuple], tuple[str, ...], list[str]]:
        """Components loaded from outside the model folder, for the memory planner: their
        ``(root, sub-folder, component, index entry)``, the ones that stay in host RAM, and notes."""
        return [], (), []

    # -- one request --------------------------------------------------------------------------

    def resolve(self, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """Fill unset fields from the model's defaults and snap them to its rules (reported)."""
        return self.resolve_for(self.spec, request, notices)

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """``resolve`` without an instance (no weights): what a server checks when a job is submitted."""
        cls.check_inputs(spec, request)
        if request.init_video is not None:
            request, available = init_video_frames(spec.defaults, request, notices)
        request = fill_size(spec.defaults, request, notices)
        settings = resolve_common(spec.defaults, request, notices)
        if request.init_video is not None:
            resolve_strength(request, settings, available, notices)
        if settings.prompt_schedule and "prompt_schedule" not in cls.family.inputs and request.window is None:
            raise InvalidRequestError(f"{spec.name} takes one prompt a pass, not a prompt schedule: make the video "
                                      "in chained windows (--window FRAMES), one prompt each, or use a model that "
                                      "lists \"prompt schedule\" in `i2v models`")
        if request.window is not None:
            resolve_window(cls.family, spec, request, settings, notices)
        resolve_motion(request, settings)
        if settings.motion_strength is not None and "motion_strength" not in cls.family.inputs:
            notices.append(f"motion_strength is not used by {spec.name}; describe the motion in the prompt")
        if request.decode_chunk_size is not None and "decode_chunk_size" not in cls.family.inputs:
            notices.append(f"decode_chunk_size is not used by {spec.name}; ignored")
        return settings

    @classmethod
    def check_inputs(cls, spec: ModelSpec, request: GenerationRequest) -> None:
        """Refuse optional inputs the family does not take."""
        if request.last_image is not None and "last_image" not in cls.family.inputs:
            help_text = cls.family.last_image_help or "the models that can say --last-image in `i2v models`"
            raise InvalidRequestError(f"{spec.name} cannot take a last image (last_image); {help_text}")
        if request.init_video is not None and "init_video" not in cls.family.inputs:
            raise InvalidRequestError(f"{spec.name} cannot start from a video (init_video); the models that can list "
                                      "\"init video\" in `i2v models`")
        if request.strength is not None and request.init_video is None:
            raise InvalidRequestError("strength is how much of an init video is re-generated; give one (init_video)")
        for name, what in (("camera_path", "follow a camera path (camera_path)"),
                           ("trajectory", "move objects along trajectories (trajectory)")):
            if getattr(request, name) is not None and not cls.takes_motion(spec, name):
                raise InvalidRequestError(f"{spec.name} cannot {what}; the models that can list "
                                          f"\"{name.replace('_', ' ')}\" in `i2v models`")

    @classmethod
    def takes_motion(cls, spec: ModelSpec, name: str) -> bool:
        """Whether ``spec`` takes the motion input ``name`` (camera_path, trajectory): its family's say,
        which a family whose models differ (the embedded ones) refines per model."""
        return name in cls.family.inputs

    def weights_resident(self) -> bool:
        """Whether the weights are loaded (the free memory no longer includes them)."""
        return True

    def history_frames(self) -> int:
        """How many frames of the window before a chained window can continue from (``generate(history=...)``,
        their latents, with the video's first frame as its image): a denoiser trained to continue a video;
        0: the window starts from one handover frame."""
        return 0

    def needs_memory_plan(self) -> bool:
        """Whether the next run should ask the memory planner (``--offload auto`` before loading)."""
        return False

    def fetch(self) -> Path | None:
        """The model's files on this machine (downloaded if need be), without reading weights."""
        return None

    def follow_memory_plan(self, options: dict, settings: ResolvedSettings, notices: list[str]) -> None:
        """Take the memory planner's options for the run ``settings`` describes."""

    def plan_chain(self, settings: ResolvedSettings, windows: list[ResolvedSettings],
                   image: Image.Image) -> str | None:
        """Before a video made in chained windows (``settings``: the whole video's, ``windows``: each
        window's, ``image``: the first frame at the output size): a model that plans motion can plan it
        once for the whole video here (into the settings' extras), and say so (a notice); by default
        each window plans alone."""
        return None

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None,
                 init_video: np.ndarray | None = None) -> np.ndarray:
        """Return (T, H, W, 3) uint8 frames; fill ``timings`` with encode/denoise/decode seconds.
        ``init_video``: video-to-video's start, (T, H, W, 3) uint8 at the output size (families that
        take one; ``settings.strength`` says how much of it is re-generated)."""
        raise NotImplementedError
