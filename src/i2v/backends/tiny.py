"""The embedded model's backend: a GenerationRequest onto ``I2VPipeline``.

Its ``Family`` registers the shipped ``i2v-tiny`` weights; a local folder of the same pipeline
(``i2v train`` output) gets its frames and size from its own unet/vae configs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..devices import check_dtype_name
from ..errors import InvalidRequestError, TextEncoderUnavailableError, UnknownModelError
from ..lora import check_loras, load_loras
from ..models.autoencoder import spatial_compression
from ..pipelines.defaults import DECODE_CHUNK, DEFAULT_SETTINGS, WARP_GUIDANCE
from ..types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ProgressCallback, ResolvedSettings
from .base import Backend, Family
from .resolve import MAX_MOTION_PIXELS

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MODEL_NAME = "i2v-tiny"
PHOTO_MODEL_NAME = "i2v-photo"
# The options that only the diffusers backends take (the embedded model is small enough not to need them).
DIFFUSERS_ONLY_OPTIONS = ("offload", "vae_tiling", "vae_slicing", "cache", "cache_interval", "cfg_cache", "compile",
                          "fp8_storage", "quantize", "forward_chunk")

TINY_DEFAULTS = ModelDefaults(
    num_frames=16, height=128, width=128, fps=float(DEFAULT_SETTINGS["fps"]),
    num_inference_steps=DEFAULT_SETTINGS["num_inference_steps"], guidance_scale=DEFAULT_SETTINGS["guidance_scale"],
    size_multiple=16, frame_rule="any >= 2 (trained on 16)",
)


def default_dtype(device: str) -> str:
    """The embedded model's fastest dtype that keeps its benchmark scores: bf16 on GPUs and on CPUs with
    native bf16 (measured by benchmarks/bench_embedded.py), fp32 on other CPUs."""
    from ..devices import cpu_has_fast_bf16, cuda_has_bf16

    if device.startswith("cpu"):
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "bf16" if device.startswith("cuda") and cuda_has_bf16() else "fp16"


# (model folder, its files' stamp, device, dtype) -> loaded pipeline: later generators in the process
# reuse it (warm start); a folder rewritten since (a training run's new export) is loaded afresh
_PIPELINE_CACHE: dict[tuple, object] = {}


def folder_stamp(folder: str | Path) -> tuple:
    """(relative path, size, mtime) of every weights and config file under ``folder``."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".json"))
    return tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def shipped_defaults(folder: Path) -> ModelDefaults:
    """A shipped model's defaults from its folder's configs (the shapes model's where they cannot be read:
    a missing folder is then reported when the model loads, not when i2v is imported)."""
    try:
        return folder_defaults(folder, TINY_DEFAULTS)
    except UnknownModelError:
        return TINY_DEFAULTS


def warps(folder: Path) -> bool:
    """Whether the model folder's denoiser moves the first frame by a flow (``prediction="warp"``)."""
    try:
        return json.loads((folder / "unet" / "config.json").read_text()).get("prediction") == "warp"
    except (OSError, json.JSONDecodeError):
        return False


def folder_defaults(path: Path, base: ModelDefaults) -> ModelDefaults:
    """Defaults of an embedded-model folder: frames, size and size policy from its own unet/vae configs."""
    try:
        unet = json.loads((path / "unet" / "config.json").read_text())
        vae = json.loads((path / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnknownModelError(f"{path}: unreadable unet/vae config ({exc})") from exc
    scale = spatial_compression(vae)
    size = unet.get("sample_size", 32) * scale
    multiple = 2 * scale * unet.get("patch_size", 1)  # twice what the pipeline needs: 16 for 4x latents, 2x2 patches
    # the photo autoencoder's models are trained at several sizes and aspects: an unset size follows the
    # image's aspect at the default's area; the shapes world's were trained square only
    policy = "aspect" if vae.get("_class_name") == "PatchAutoencoder" else base.size_policy
    guidance = WARP_GUIDANCE if unet.get("prediction") == "warp" else base.guidance_scale
    return ModelDefaults(**{**asdict(base), "num_frames": unet.get("num_frames", base.num_frames),
                            "height": size, "width": size, "size_multiple": multiple, "size_policy": policy,
                            "guidance_scale": guidance})


class TinyBackend(Backend):
    family = Family(
        name="tiny",
        models=(ModelSpec(
            name=MODEL_NAME, family="tiny",
            description="i2v's first embedded model, for its procedural shapes world only (128x128, 16 frames, "
                        "8 fps)",
            source=str(WEIGHTS_DIR / MODEL_NAME), defaults=TINY_DEFAULTS,
        ), ModelSpec(
            name=PHOTO_MODEL_NAME, family="tiny",
            description="i2v's embedded model (the default): keeps your photo and moves the camera over it as the "
                        "prompt, a camera path or trajectories say, and a shape the prompt names; any aspect at "
                        "128x128's area, 16 frames, 8 fps",
            source=str(WEIGHTS_DIR / PHOTO_MODEL_NAME),
            defaults=shipped_defaults(WEIGHTS_DIR / PHOTO_MODEL_NAME),
        )),
        pipeline_classes=("I2VPipeline",),
        hub_downloads_everything=True,  # a few MB: the folder is loaded like a local one
        denoiser="unet",
        memory_options=frozenset(),
        # camera paths and trajectories: the models with a warping denoiser (``takes_motion``)
        inputs=frozenset({"init_video", "camera_path", "trajectory"}),
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, DECODE_CHUNK),
        trainable="i2v.training.trainable_i2v:I2VTrainable",
        order=0,
    )

    # a chained long video hands a frame over to the next window as latents (``generate(handover=...)``),
    # without a trip through the autoencoder that would shift its colours a little every window
    latent_handover = True
    last_latents = None
    last_object = None  # (colour, shape) the prompt reader last moved: a later window's "it"

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        super().__init__(spec, device, options)
        o = self.options
        diffusers_only = o.set_names(DIFFUSERS_ONLY_OPTIONS)
        if diffusers_only:
            raise InvalidRequestError(f"{spec.name} does not take {', '.join(diffusers_only)} (diffusers models "
                                      "only; the embedded model is small enough not to need them)")
        from ..acceleration import check_profile
        from ..sampling import SAMPLERS

        if o.scheduler is not None and o.scheduler not in SAMPLERS:
            raise InvalidRequestError(f"{spec.name}: unknown sampler {o.scheduler!r}; expected one of "
                                      f"{sorted(SAMPLERS)}")
        check_profile(o.profile)
        # Its defaults already are the speed profile; the memory profile decodes 2 frames at a time.
        self.profile, self.decode_chunk_size = o.profile, 2 if o.profile == "memory" else DECODE_CHUNK
        self.sampler = o.scheduler
        loras = check_loras(o.loras, {})  # checked before loading
        self.dtype = check_dtype_name(o.dtype) or default_dtype(device)
        self.pipeline = self._load(spec.source, device, self.dtype, cached=not loras)
        self.lora_records = load_loras(self.pipeline, loras)
        from ..motion.prompt_motion import load_reader

        self.reader = load_reader(Path(spec.source)) if warps(Path(spec.source)) else None

    @classmethod
    def takes_motion(cls, spec: ModelSpec, name: str) -> bool:
        """Camera paths and trajectories move the first frame by a flow: a warping denoiser's models only."""
        return super().takes_motion(spec, name) and warps(Path(spec.source))

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        base = cls.family.models[0]
        return ModelSpec(name=path.name, family=cls.family.name, description=f"local {class_name} folder",
                         source=str(path), defaults=folder_defaults(path, base.defaults))

    @classmethod
    def load_dtype(cls, spec: ModelSpec, device: str, requested: str | None):
        name = check_dtype_name(requested) or default_dtype(device)
        size = 4 if name == "fp32" else 2
        return name, lambda c: 4 if c == "text_encoder" else size  # the packaged MiniLM always runs in fp32

    @classmethod
    def outside_components(cls, spec: ModelSpec, device: str) -> tuple[list[tuple], tuple[str, ...], list[str]]:
        """The frozen MiniLM text encoder, loaded from its package (``<root>/model/model.safetensors``)."""
        from ..conditioning import minilm_path

        try:
            path = minilm_path()
        except TextEncoderUnavailableError:
            return [], (), ["the MiniLM text encoder package is not installed: its weights are not counted"]
        if device.startswith("cpu"):
            return [(path.parent, "model", "text_encoder", ["transformers", "BertModel"])], (), []
        return ([(path.parent, "model", "text_encoder", ["transformers", "BertModel"])], ("text_encoder",),
                ["the MiniLM text encoder runs on the CPU: its weights are not counted on the device"])

    @staticmethod
    def _load(folder: str, device: str, dtype: str, cached: bool):
        """Load the pipeline, or reuse the one already loaded in this process (never when LoRAs will
        change its weights)."""
        import torch

        from ..devices import torch_dtype
        from ..io.safetensors_header import check_no_meta_tensors, check_weight_files, weights_errors
        from ..pipelines.pipeline_i2v import I2VPipeline

        key = (str(folder), folder_stamp(folder), device, dtype)
        if cached and key in _PIPELINE_CACHE:
            return _PIPELINE_CACHE[key]
        check_weight_files(folder)  # truncated or forged files are named before any loading
        with weights_errors(folder):
            pipe = I2VPipeline.from_folder(folder, torch_dtype=torch_dtype(dtype))
            for part in (pipe.vae, pipe.unet):
                check_no_meta_tensors(part, folder)
            pipe = pipe.to(device)
        if device.startswith("cpu"):  # oneDNN's convolutions are fastest on channels-last 3D tensors
            pipe.unet.to(memory_format=torch.channels_last_3d)
        if cached:
            _PIPELINE_CACHE.clear()  # keep one model warm, not every model ever loaded
            _PIPELINE_CACHE[key] = pipe
        return pipe

    def resolve(self, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        settings = super().resolve(request, notices)
        if self.lora_records:
            settings.extras["loras"] = self.lora_records
        settings.extras["sampler"] = self.sampler or self.pipeline.default_settings["sampler"]
        self.note_long_prompts(settings, notices)
        settings.extras["dtype"] = self.dtype
        return settings

    def note_long_prompts(self, settings: ResolvedSettings, notices: list[str]) -> None:
        """The frozen text encoder reads the first MAX_TOKENS tokens of a prompt: say so when it cuts."""
        from ..conditioning import MAX_TOKENS

        tokenizer = getattr(self.pipeline.text_encoder, "tokenizer", None)
        for name in ("prompt", "negative_prompt"):
            text = getattr(settings, name)
            if tokenizer is not None and text:
                count = len(tokenizer(text).input_ids)
                if count > MAX_TOKENS:
                    notices.append(f"{name} is {count} tokens long; the text encoder reads the first {MAX_TOKENS}")

    def motion_field(self, settings: ResolvedSettings, image: Image.Image, video_to_video: bool = False):
        """The run's camera path and trajectories as the flow the denoiser holds; without either, what its
        prompt reader plans (``i2v.motion.prompt_motion``: a named shape's move, or a still frame; recorded as
        ``extras["prompt_motion"]``); None: the model plans."""
        import numpy as np

        from ..motion.motion_field import requested_motion
        from ..motion.trajectory import resolve_trajectories

        frame = np.asarray(image.convert("RGB"))
        field = requested_motion(settings.extras, frame, settings.num_frames, settings.fps)
        if field is not None or self.reader is None or video_to_video:  # video-to-video: the video drives the motion
            return field
        if settings.num_frames * frame.shape[0] * frame.shape[1] > MAX_MOTION_PIXELS:  # a flow field too large to hold
            return None
        from ..motion.motion_field import still_background, trajectory_motion
        from ..motion.prompt_motion import HELD, plan_from_prompt

        if "video_plan" in settings.extras:  # a window of a video planned whole (``plan_chain``): its stretch
            still = still_background(settings.num_frames, *frame.shape[:2])
            if settings.extras["video_plan"] in HELD:
                return still
            video_frames = settings.extras["motion_window"][1]
            trajectories = resolve_trajectories(settings.extras["video_plan"], video_frames, settings.fps)[1]
            return trajectory_motion(frame, trajectories, settings.num_frames, settings.fps, background=still,
                                     window=tuple(settings.extras["motion_window"]), anchored=True)

        # a later window of a long video made in windows: "it" is the object the window before moved
        previous = self.last_object if settings.extras.get("chain_window", 0) > 0 else None
        planned = plan_from_prompt(self.reader, self.pipeline.text_encoder, settings.prompt, frame, previous)
        self.last_object = tuple(planned.trajectory.name.split(" ", 1)) if planned and planned.trajectory else previous
        if planned is None:
            return None
        settings.extras["prompt_motion"] = planned.text
        still = still_background(settings.num_frames, *frame.shape[:2])
        if planned.trajectory is None:
            return still
        return trajectory_motion(frame, [planned.trajectory], settings.num_frames, settings.fps, background=still)

    def plan_chain(self, settings: ResolvedSettings, windows: list[ResolvedSettings],
                   image: Image.Image) -> str | None:
        """A video made in windows whose prompts the reader plans (named shapes' moves, or holding still)
        gets one plan from its first frame (``prompt_motion.plan_video``; recorded as the video's
        ``prompt_motion``), so motion goes on across windows instead of starting and stopping with each.
        As the rest of the frame holds still, every window is made from the first frame (``anchored``),
        moved along its stretch of the plan: no window inherits the one before's drift. Without a plan (a
        user's camera path or trajectories, a camera prompt in the schedule), each window plans alone."""
        import numpy as np

        from ..motion import MOTION_INPUTS
        from ..motion.prompt_motion import plan_video
        from ..prompt_schedule import PromptSegment

        frame = np.asarray(image.convert("RGB"))
        if (self.reader is None or any(k in settings.extras for k in MOTION_INPUTS)
                or max(w.num_frames for w in windows) * frame.shape[0] * frame.shape[1] > MAX_MOTION_PIXELS):
            return None
        segments = settings.prompt_schedule or (PromptSegment(0.0, settings.prompt),)
        planned = plan_video(self.reader, self.pipeline.text_encoder, segments, frame, settings.num_frames,
                             settings.fps)
        if planned is None:
            return None
        settings.extras["prompt_motion"] = planned.text
        for window in windows:  # each starts from the first frame, moved along its stretch of the plan
            window.extras.update(video_plan=planned.text, anchored=True)
        return ("the motion is planned once for the whole video (prompt_motion in the metadata); every window is "
                "made from the first frame")

    def history_frames(self) -> int:
        return int(self.pipeline.unet.config.get("history_frames", 0))

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None,
                 init_video: np.ndarray | None = None, handover=None, history=None) -> np.ndarray:
        """``handover`` (1, C, h, w): frame 0 as latents, instead of the image's; ``history`` (1, C, k, h, w): a
        long video's window's first k frames (the window before's last), for a denoiser with history frames."""
        self.pipeline.set_progress_bar_config(disable=not show_progress, leave=False, desc="denoising")
        t0 = time.perf_counter()
        out = self.pipeline(
            image=image,
            prompt=settings.prompt,
            negative_prompt=settings.negative_prompt,
            num_frames=settings.num_frames,
            height=settings.height,
            width=settings.width,
            num_inference_steps=settings.num_inference_steps,
            guidance_scale=settings.guidance_scale,
            seed=settings.seed,
            sampler=settings.extras["sampler"],
            decode_chunk_size=self.decode_chunk_size,
            callback=callback,
            timings=timings,
            init_video=init_video,
            strength=settings.strength if init_video is not None else 1.0,
            image_latents=handover,
            history_latents=history,
            return_latents=True,
            motion=self.motion_field(settings, image, video_to_video=init_video is not None),
        )
        self.last_latents = out.latents  # (1, C, T, h, w): a chained window's handover comes from here
        timings.setdefault("pipeline", time.perf_counter() - t0)
        return out.frames
