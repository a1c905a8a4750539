"""Model names -> backend loader + verified defaults.

``resolve_model`` accepts a registered name or a local model folder; folders are recognised
by the ``_class_name`` in their ``model_index.json`` (diffusers' own convention).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from .errors import UnknownModelError

DEFAULT_MODEL = "i2v-tiny"
WEIGHTS_DIR = Path(__file__).parent / "weights"


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
    family: str  # backend module under i2v.backends
    description: str
    source: str  # local folder or hub id
    defaults: ModelDefaults
    extras: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        row = {"name": self.name, "family": self.family, "source": self.source, **asdict(self.defaults)}
        if self.extras:
            row["extras"] = dict(self.extras)
        return row


# Frames the embedded pipeline decodes at once (bounds the decoder's activations; --memory: 2).
TINY_DECODE_CHUNK = 16

TINY_DEFAULTS = ModelDefaults(
    num_frames=16, height=128, width=128, fps=8.0, num_inference_steps=10, guidance_scale=3.0,
    size_multiple=32, frame_rule="any >= 2 (trained on 16)",
)

MODELS: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        family="tiny",
        description="i2v's embedded latent video diffusion model (procedural shapes world, 128x128, 16 frames, 8 fps)",
        source=str(WEIGHTS_DIR / DEFAULT_MODEL),
        defaults=TINY_DEFAULTS,
    ),
}

# model_index.json _class_name -> backend family
FOLDER_CLASSES: dict[str, str] = {"I2VPipeline": "tiny"}


def resolve_model(name_or_path: str | Path | None) -> ModelSpec:
    """A registered name, or a local folder holding a model_index.json i2v knows."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    key = str(name_or_path)
    if key in MODELS:
        return MODELS[key]
    path = Path(key).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise UnknownModelError(f"{path} has no model_index.json; expected a diffusers-style model folder")
        try:
            class_name = json.loads(index.read_text()).get("_class_name")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnknownModelError(f"{index} is not valid JSON: {exc}") from exc
        family = FOLDER_CLASSES.get(class_name) if isinstance(class_name, str) else None  # a list: custom code
        if family is None:
            raise UnknownModelError(
                f"{path}: pipeline class {class_name!r} is not supported; supported: {sorted(FOLDER_CLASSES)}"
            )
        if family != "tiny":  # a diffusers pipeline folder: the backend module reads its configs
            import importlib

            return importlib.import_module(f"i2v.backends.{family}").folder_spec(path, class_name)
        defaults = MODELS[DEFAULT_MODEL].defaults
        return ModelSpec(name=path.name, family=family, description=f"local {class_name} folder",
                         source=str(path), defaults=_folder_defaults(path, defaults))
    raise UnknownModelError(
        f"unknown model {key!r}: not a registered name ({', '.join(sorted(MODELS))}) nor a local model folder"
    )


def _folder_defaults(path: Path, base: ModelDefaults) -> ModelDefaults:
    """Defaults of an embedded-model folder: frames and size from its own unet/vae configs."""
    try:
        unet = json.loads((path / "unet" / "config.json").read_text())
        vae = json.loads((path / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnknownModelError(f"{path}: unreadable unet/vae config ({exc})") from exc
    scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0])) - 1)
    size = unet.get("sample_size", 32) * scale
    multiple = scale * unet.get("patch_size", 1) * 2 ** (len(unet.get("block_out_channels", [0])) - 1)
    return ModelDefaults(**{**asdict(base), "num_frames": unet.get("num_frames", base.num_frames),
                            "height": size, "width": size, "size_multiple": multiple})


# ---------------------------------------------------------------------------------------------
# Open image-to-video models (diffusers pipelines). Every number below is from the model's own
# card or the diffusers docs/pipeline for it; `i2v models` prints this table.
# ---------------------------------------------------------------------------------------------

_WAN_NEGATIVE = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
                 "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
                 "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
                 "fused fingers, still picture, messy background, three legs, many people in the background, "
                 "walking backwards")
_LTX_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


def _svd(name: str, source: str, frames: int, description: str, **extras) -> ModelSpec:
    # SVD: 576x1024 (card), 25 steps, guidance ramps min 1.0 -> max 3.0 over the frames, fps 7
    # (the UNet is micro-conditioned on fps-1), motion_bucket_id 127, noise_aug_strength 0.02.
    return ModelSpec(
        name=name, family="svd", description=description, source=source,
        defaults=ModelDefaults(num_frames=frames, height=576, width=1024, fps=7.0, num_inference_steps=25,
                               guidance_scale=3.0, size_multiple=64, frame_rule=f"any >= 2 (trained on {frames})",
                               uses_prompt=False, size_policy="orient"),
        extras={"min_guidance_scale": 1.0, "motion_bucket_id": 127, "noise_aug_strength": 0.02,
                "decode_chunk_size": 8, "dtype": "fp16", "variant": "fp16", **extras},
    )


# The UniPC flow shift of each Wan model at 480p / 720p. Wan's generate.py: I2V 3.0 at 480x832, else
# 5.0; FLF2V 16 ("elif 'flf2v' in args.task: args.sample_shift = 16"). Wan 2.2 configs
# (wan_i2v_A14B.py, wan_ti2v_5B.py): sample_shift = 5.0 at every size.
FLOW_SHIFTS: dict[str, dict[str, float]] = {
    "wan2.1-i2v": {"flow_shift_480p": 3.0, "flow_shift_720p": 5.0},
    "wan2.1-flf2v": {"flow_shift_480p": 16.0, "flow_shift_720p": 16.0},
    "wan2.2-i2v-a14b": {"flow_shift_480p": 5.0, "flow_shift_720p": 5.0},
    "wan2.2-ti2v-5b": {"flow_shift_480p": 5.0, "flow_shift_720p": 5.0},
}


def _wan(name: str, source: str, height: int, width: int, description: str, *, frames: int = 81, fps: float = 16.0,
         steps: int = 50, guidance: float = 5.0, multiple: int = 16, **extras) -> ModelSpec:
    # Wan: 4n+1 frames (81 at 16 fps), max area of 480x832 or 720x1280 at the image's aspect ratio,
    # sizes a multiple of vae_scale_factor_spatial * patch_size; UniPC flow shift per model and size
    # (Wan's generate.py / configs): Wan 2.1 I2V 3.0 at 480p, 5.0 at 720p; Wan 2.1 FLF2V 16 (any
    # size); Wan 2.2 I2V-A14B and TI2V-5B 5.0 (any size).
    return ModelSpec(
        name=name, family="wan", description=description, source=source,
        defaults=ModelDefaults(num_frames=frames, height=height, width=width, fps=fps, num_inference_steps=steps,
                               guidance_scale=guidance, size_multiple=multiple, frame_rule="4n+1",
                               frame_step=4, frame_offset=1, min_frames=5, size_policy="aspect"),
        extras={**FLOW_SHIFTS["wan2.1-i2v"], "negative_prompt": _WAN_NEGATIVE,
                "max_sequence_length": 512, "dtype": "bf16", "fp32_components": ["vae", "image_encoder"],
                **extras},
    )


_DIFFUSERS_MODELS = [
    _svd("svd", "stabilityai/stable-video-diffusion-img2vid", 14,
         "Stable Video Diffusion (14 frames, 576x1024); image only, no text"),
    _svd("svd-xt", "stabilityai/stable-video-diffusion-img2vid-xt", 25,
         "Stable Video Diffusion XT (25 frames, 576x1024); image only, no text"),
    _svd("svd-xt-1.1", "stabilityai/stable-video-diffusion-img2vid-xt-1-1", 25,
         "Stable Video Diffusion XT 1.1 (25 frames; fine-tuned at 6 fps conditioning, motion bucket 127)"),
    ModelSpec(
        name="animatediff-sparsectrl-rgb", family="animatediff", source="SG161222/Realistic_Vision_V5.1_noVAE",
        description="AnimateDiff v1.5.3 + SparseCtrl RGB on frame 0 over an SD 1.5 base; motion LoRAs for camera moves",
        defaults=ModelDefaults(num_frames=16, height=512, width=512, fps=8.0, num_inference_steps=25,
                               guidance_scale=7.5, size_multiple=8, frame_rule="any 2..32 (trained on 16)",
                               max_frames=32, size_policy="aspect"),
        extras={"motion_adapter": "guoyww/animatediff-motion-adapter-v1-5-3",
                "controlnet": "guoyww/animatediff-sparsectrl-rgb", "vae": "stabilityai/sd-vae-ft-mse",
                "scheduler_overrides": {"beta_schedule": "linear", "algorithm_type": "dpmsolver++",
                                        "use_karras_sigmas": True},
                "scheduler_class": "DPMSolverMultistepScheduler", "controlnet_conditioning_scale": 1.0,
                "negative_prompt": "low quality, worst quality, letterboxed", "dtype": "fp16"},
    ),
    _wan("wan2.1-i2v-14b-480p", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", 480, 832,
         "Wan 2.1 image-to-video 14B, 480p (81 frames, 16 fps)"),
    _wan("wan2.1-i2v-14b-720p", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", 720, 1280,
         "Wan 2.1 image-to-video 14B, 720p (81 frames, 16 fps)"),
    _wan("wan2.1-flf2v-14b-720p", "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", 720, 1280,
         "Wan 2.1 first-last-frame-to-video 14B, 720p (--last-image)", guidance=5.5, first_last_frame=True,
         **FLOW_SHIFTS["wan2.1-flf2v"]),
    _wan("wan2.2-i2v-a14b", "Wan-AI/Wan2.2-I2V-A14B-Diffusers", 480, 832,
         "Wan 2.2 image-to-video A14B (two experts), 480p default, 720p supported", steps=40, guidance=3.5,
         first_last_frame=True, **FLOW_SHIFTS["wan2.2-i2v-a14b"]),
    _wan("wan2.2-ti2v-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", 704, 1280,
         "Wan 2.2 text+image-to-video 5B, 720p (121 frames, 24 fps)", frames=121, fps=24.0, multiple=32,
         expand_timesteps=True, fp32_components=["vae"], **FLOW_SHIFTS["wan2.2-ti2v-5b"]),
    ModelSpec(
        name="cogvideox-5b-i2v", family="cogvideox", source="THUDM/CogVideoX-5b-I2V",
        description="CogVideoX 1.0 5B image-to-video (49 frames at 8 fps, 480x720 only)",
        defaults=ModelDefaults(num_frames=49, height=480, width=720, fps=8.0, num_inference_steps=50,
                               guidance_scale=6.0, size_multiple=16, frame_rule="8n+1, at most 49",
                               frame_step=8, frame_offset=1, min_frames=9, max_frames=49, size_policy="fixed"),
        extras={"use_dynamic_cfg": True, "max_sequence_length": 226, "dtype": "bf16"},
    ),
    ModelSpec(
        name="cogvideox1.5-5b-i2v", family="cogvideox", source="THUDM/CogVideoX1.5-5B-I2V",
        description="CogVideoX 1.5 5B image-to-video (81 frames at 16 fps, min side 768)",
        defaults=ModelDefaults(num_frames=81, height=768, width=1360, fps=16.0, num_inference_steps=50,
                               guidance_scale=6.0, size_multiple=16, frame_rule="8n+1 (81 or 161 trained)",
                               frame_step=8, frame_offset=1, min_frames=9, size_policy="orient"),
        extras={"use_dynamic_cfg": True, "max_sequence_length": 226, "dtype": "bf16"},
    ),
    ModelSpec(
        name="ltx-video", family="ltx", source="Lightricks/LTX-Video",
        description="LTX-Video 2B image-to-video (161 frames at 24 fps, 704x480; any size /32 under 720x1280)",
        defaults=ModelDefaults(num_frames=161, height=480, width=704, fps=24.0, num_inference_steps=50,
                               guidance_scale=3.0, size_multiple=32, frame_rule="8n+1, at most 257",
                               frame_step=8, frame_offset=1, min_frames=9, max_frames=257, size_policy="aspect"),
        extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 128, "dtype": "bf16"},
    ),
    ModelSpec(
        name="ltx-video-0.9.5", family="ltx", source="Lightricks/LTX-Video-0.9.5",
        description="LTX-Video 0.9.5 with LTXConditionPipeline (first/last frame conditions), 768x512, 24 fps",
        defaults=ModelDefaults(num_frames=161, height=512, width=768, fps=24.0, num_inference_steps=40,
                               guidance_scale=3.0, size_multiple=32, frame_rule="8n+1, at most 257",
                               frame_step=8, frame_offset=1, min_frames=9, max_frames=257, size_policy="aspect"),
        extras={"negative_prompt": _LTX_NEGATIVE, "max_sequence_length": 256, "dtype": "bf16",
                "pipeline": "LTXConditionPipeline"},
    ),
    ModelSpec(
        name="hunyuanvideo-i2v", family="hunyuan", source="hunyuanvideo-community/HunyuanVideo-I2V",
        description="HunyuanVideo I2V 13B (token-replace, 16 ch): 129 frames at 720x1280, embedded guidance 6.0",
        defaults=ModelDefaults(num_frames=129, height=720, width=1280, fps=24.0, num_inference_steps=50,
                               guidance_scale=6.0, size_multiple=16, frame_rule="4n+1",
                               frame_step=4, frame_offset=1, min_frames=5, size_policy="aspect"),
        extras={"true_cfg_scale": 1.0, "dtype": "fp16", "transformer_dtype": "bf16", "max_sequence_length": 256,
                "image_condition_type": "token_replace"},
    ),
    ModelSpec(
        name="hunyuanvideo-i2v-33ch", family="hunyuan", source="hunyuanvideo-community/HunyuanVideo-I2V-33ch",
        description="HunyuanVideo I2V 13B (latent-concat, 33 ch): 129 frames at 720x1280, guidance 1.0",
        defaults=ModelDefaults(num_frames=129, height=720, width=1280, fps=24.0, num_inference_steps=50,
                               guidance_scale=1.0, size_multiple=16, frame_rule="4n+1",
                               frame_step=4, frame_offset=1, min_frames=5, size_policy="aspect"),
        extras={"true_cfg_scale": 1.0, "dtype": "fp16", "transformer_dtype": "bf16", "max_sequence_length": 256,
                "image_condition_type": "latent_concat"},
    ),
]
MODELS.update({spec.name: spec for spec in _DIFFUSERS_MODELS})

# model_index.json _class_name of the diffusers pipelines above -> backend family
FOLDER_CLASSES.update({
    "StableVideoDiffusionPipeline": "svd",
    "AnimateDiffSparseControlNetPipeline": "animatediff",
    "WanImageToVideoPipeline": "wan",
    "WanPipeline": "wan",  # Wan 2.2 TI2V-5B (expand_timesteps); text-only Wan folders are refused by the backend
    "CogVideoXImageToVideoPipeline": "cogvideox",
    "LTXImageToVideoPipeline": "ltx",
    "LTXConditionPipeline": "ltx",
    "LTXPipeline": "ltx",
    "HunyuanVideoImageToVideoPipeline": "hunyuan",
})


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())
