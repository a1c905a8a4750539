"""The objects that travel through i2v: what a model is, what a request asks, what a run decided.

    ModelSpec / ModelDefaults   a registered model (or local folder) and its verified defaults
    GenerationRequest           one generation in the project's vocabulary (None = the model's default)
    ResolvedSettings            the request with every field decided, as it runs and is recorded
    LoadOptions                 the loading switches (dtype, offload, VAE, LoRA, scheduler, speed/memory)
    GenerationResult            frames (and sound, if any), fps, settings, notices and timings of one run

The error classes live in ``i2v.errors``. Nothing here imports torch or diffusers.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # numpy and Pillow are for annotations here: importing i2v.types stays light
    import numpy as np
    from PIL import Image

ProgressCallback = Callable[[int, int], None]  # (step, total_steps)


def from_fields(cls, source: Mapping | Namespace, **overrides):
    """Build the dataclass ``cls`` from the same-named entries of a mapping or argparse namespace."""
    values = vars(source) if isinstance(source, Namespace) else dict(source)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names}, **overrides)


@dataclass(frozen=True)
class ModelDefaults:
    """What a request gets for every field it leaves unset, and the model's size rules."""

    num_frames: int
    height: int
    width: int
    fps: float
    num_inference_steps: int
    guidance_scale: float
    size_multiple: int  # height and width are snapped to a multiple of this
    frame_rule: str  # human-readable rule for num_frames ("any >= 2", "4n+1", ...)
    uses_prompt: bool = True
    # The frame rule as numbers: valid counts are frame_offset + k * frame_step, within
    # [min_frames, max_frames]; other counts are snapped to the nearest valid one (reported).
    frame_step: int = 1
    frame_offset: int = 0
    min_frames: int = 2
    max_frames: int | None = None
    # How an unset height/width is chosen: "default" (the size above), "aspect" (the default's
    # pixel area at the input image's aspect ratio), "orient" (the default size, turned to the
    # image's orientation), "fixed" (only the default size runs; anything else is refused).
    size_policy: str = "default"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # the backend family (``i2v.registry.families()``)
    description: str
    source: str  # local folder or hub id
    defaults: ModelDefaults
    extras: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        row = {"name": self.name, "family": self.family, "source": self.source, **asdict(self.defaults)}
        if self.extras:
            row["extras"] = dict(self.extras)
        return row


@dataclass
class GenerationRequest:
    """One generation, in the project's vocabulary. ``None`` means "the model's default"."""

    image: str | Path | Image.Image | np.ndarray
    # text, or a prompt schedule: "0s: ...; 3s: ..." or a list (``i2v.prompt_schedule``)
    prompt: str | Sequence = ""
    negative_prompt: str = ""
    num_frames: int | None = None
    fps: float | None = None
    duration: float | None = None  # seconds: num_frames = round(duration * fps) (instead of num_frames)
    # a long video in chained windows of this many frames (``i2v.long_video``); None: one pass, or the
    # model's own long-video pipeline
    window: int | None = None
    height: int | None = None
    width: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    motion_strength: float | None = None
    last_image: str | Path | Image.Image | np.ndarray | None = None  # last frame (Wan FLF2V, LTX conditions)
    decode_chunk_size: int | None = None  # frames decoded at once (Stable Video Diffusion)
    # video-to-video: the video the run starts from (a file, or (T, H, W, 3) uint8), and how much of it
    # is re-generated (0: kept, 1: all of it; diffusers' ``strength``)
    init_video: str | Path | np.ndarray | None = None
    strength: float | None = None
    # motion decided by the user (``i2v.motion``): a keyframed camera path ("1s: pan right 0.25; 1.5s: zoom
    # 1.5", or a list of keyframe dicts), and objects' paths ("red ball: 0.3,0.5 -> 0.7,0.5", or a dict)
    camera_path: str | Sequence | None = None
    trajectory: str | Mapping | Sequence | None = None


@dataclass
class ResolvedSettings:
    """A request with every field decided: what runs, and what the output metadata records."""

    prompt: str
    negative_prompt: str
    num_frames: int
    fps: float
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    seed: int
    motion_strength: float | None = None
    extras: dict = field(default_factory=dict)
    # a prompt schedule's segments (``prompt`` is then its canonical text); empty: one prompt
    prompt_schedule: tuple = ()
    strength: float | None = None  # video-to-video: how much of the init video is re-generated


@dataclass(frozen=True)
class LoadOptions:
    """How a model is loaded: one object from the CLI / API to the backend. Unset = the model's own.

    ``dtype``: fp32 / bf16 / fp16. The rest are the diffusers backends' switches (the embedded
    model takes ``loras``, ``scheduler`` (its sampler) and ``profile`` only): ``offload`` auto /
    none / model / sequential / group; VAE ``vae_tiling`` / ``vae_slicing``; ``loras``
    ("PATH[:SCALE]" entries); ``scheduler`` (a class from the model's compatibles); ``profile``
    ("speed" / "memory"); and the speed/memory switches of ``i2v.acceleration``.
    """

    dtype: str | None = None
    offload: str | None = None
    vae_tiling: bool = False
    vae_slicing: bool = False
    loras: tuple = ()
    scheduler: str | None = None
    profile: str | None = None
    cache: str | None = None
    cache_interval: int | None = None
    cfg_cache: bool | int = False
    compile: bool = False
    fp8_storage: bool = False
    quantize: str | None = None
    forward_chunk: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "loras", tuple(self.loras or ()))

    def set_names(self, names: tuple[str, ...] | None = None) -> list[str]:
        """The options set away from their defaults (among ``names``, default all), sorted."""
        names = names or tuple(f.name for f in fields(self))
        return sorted(n for n in names if getattr(self, n) not in (None, False, (), [], 0))


@dataclass
class GenerationResult:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    settings: dict  # everything needed to reproduce the clip; saved with the file
    notices: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    audio: np.ndarray | None = None  # (channels, samples) float32 in [-1, 1]: the sound track, if the model makes one
    audio_sample_rate: int | None = None

    def audio_notice(self, path: str | Path) -> str | None:
        """The notice for writing this clip to ``path`` when its sound cannot go into the file."""
        if self.audio is None:
            return None
        from .io.video import audio_path, video_format

        beside = audio_path(path)
        if beside is None:
            return None
        kind = {"gif": "GIF output", "webp": "WebP output", "png": "PNG frames output"}[video_format(path)]
        return (f"{kind} cannot hold sound; the audio track is written beside it as {beside} "
                "(write .mp4 or .webm to keep it in the video)")

    def save(self, path: str | Path, fps: float | None = None) -> Path:
        from .io.video import write_video
        from .validate import check_output_file

        check_output_file(path, [self.settings.get(k) for k in ("image", "last_image", "init_video")],
                          model_folder=self.settings.get("model_source"))
        fps = self.fps if fps is None else fps
        notice = self.audio_notice(path)
        if notice is not None and notice not in self.notices:
            self.notices.append(notice)
        rate = self.audio_sample_rate if self.audio is not None else None
        return write_video(self.frames, path, fps=fps, metadata={**self.settings, "fps": fps}, audio=self.audio,
                           audio_sample_rate=rate)

    def to_pil(self) -> list[Image.Image]:
        from PIL import Image

        return [Image.fromarray(f) for f in self.frames]


def request_record(request: GenerationRequest) -> dict[str, Any]:
    """The request's input files as they are recorded in the output metadata."""
    record: dict[str, Any] = {"image": str(request.image) if isinstance(request.image, (str, Path)) else None}
    if request.last_image is not None:
        last = request.last_image
        record["last_image"] = str(last) if isinstance(last, (str, Path)) else "<in-memory image>"
    if request.init_video is not None:
        video = request.init_video
        record["init_video"] = str(video) if isinstance(video, (str, Path)) else "<in-memory video>"
    return record
