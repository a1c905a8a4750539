"""Wan 2.1 / 2.2 image-to-video (``WanImageToVideoPipeline``), including first-last-frame (FLF2V).

Rules from the Wan docs and pipeline: ``num_frames = 4n + 1`` (81 at 16 fps; Wan 2.2 TI2V-5B:
121 at 24 fps); the output keeps the input image's aspect ratio at the model's pixel area (480x832
or 720x1280), with sides a multiple of ``vae_scale_factor_spatial * patch_size`` (16; 32 for the
5B model's 16x VAE). The UniPC flow shift is the model's own (``FLOW_SHIFTS`` below, from Wan's
generate.py and configs): Wan 2.1 I2V 3.0 at 480p and 5.0 at 720p, Wan 2.1 FLF2V 16, Wan 2.2 5.0.
``last_image`` conditions the last frame. Only some checkpoints can take one: Wan 2.1 FLF2V
(its transformer has positional embeddings for two CLIP images, ``pos_embed_seq_len``) and
Wan 2.2 I2V A14B (no CLIP image tokens at all); the Wan 2.1 I2V models and the Wan 2.2 TI2V-5B
(``expand_timesteps``) cannot, and are refused before loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError, UnknownModelError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .few_step import FewStepLora
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

AREA_720P = 720 * 1280
AREA_480P = 480 * 832

_WAN_NEGATIVE = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
                 "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
                 "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
                 "fused fingers, still picture, messy background, three legs, many people in the background, "
                 "walking backwards")

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


def flow_shift_for(height: int, width: int, extras: dict) -> float:
    """The scheduler's flow shift for a resolution: the 720p value from about 720p up, else the 480p one."""
    midpoint = (AREA_480P + AREA_720P) / 2
    key = "flow_shift_720p" if height * width >= midpoint else "flow_shift_480p"
    return float(extras.get(key, 5.0 if key == "flow_shift_720p" else 3.0))


class WanBackend(DiffusersBackend):
    family = Family(
        name="wan",
        models=(
            _wan("wan2.1-i2v-14b-480p", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", 480, 832,
                 "Wan 2.1 image-to-video 14B, 480p (81 frames, 16 fps)"),
            _wan("wan2.1-i2v-14b-720p", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", 720, 1280,
                 "Wan 2.1 image-to-video 14B, 720p (81 frames, 16 fps)"),
            _wan("wan2.1-flf2v-14b-720p", "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", 720, 1280,
                 "Wan 2.1 first-last-frame-to-video 14B, 720p (--last-image)", guidance=5.5, first_last_frame=True,
                 needs_last_image=True, **FLOW_SHIFTS["wan2.1-flf2v"]),
            _wan("wan2.2-i2v-a14b", "Wan-AI/Wan2.2-I2V-A14B-Diffusers", 480, 832,
                 "Wan 2.2 image-to-video A14B (two experts), 480p default, 720p supported", steps=40, guidance=3.5,
                 first_last_frame=True, **FLOW_SHIFTS["wan2.2-i2v-a14b"]),
            _wan("wan2.2-ti2v-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", 704, 1280,
                 "Wan 2.2 text+image-to-video 5B, 720p (121 frames, 24 fps)", frames=121, fps=24.0, multiple=32,
                 expand_timesteps=True, fp32_components=["vae"], **FLOW_SHIFTS["wan2.2-ti2v-5b"]),
        ),
        # WanPipeline: Wan 2.2 TI2V-5B (expand_timesteps); text-only Wan folders are refused by folder_spec
        pipeline_classes=("WanImageToVideoPipeline", "WanPipeline"),
        caches=("pab", "fbcache", "taylorseer", "magcache"), speed_cache="fbcache",
        batched_guidance=False,  # noise_uncond = current_model(...): a second pass of batch 1
        inputs=frozenset({"last_image", "init_video"}),
        # the causal VAE decodes one latent frame (``temporal`` frames) at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        last_image_help="use wan2.1-flf2v-14b-720p or wan2.2-i2v-a14b for first-last-frame videos",
        order=30,
        few_step_loras=(
            FewStepLora("lightx2v-wan2.1-i2v", "lightx2v step+CFG distillation of Wan 2.1 I2V 14B (rank 128)",
                        ("Kijai/WanVideo_comfy/Lightx2v/lightx2v_I2V_14B_480p_cfg_step_distill_rank128_bf16"
                         ".safetensors",), models=("wan2.1-i2v-14b-480p", "wan2.1-i2v-14b-720p")),
            FewStepLora("lightning-wan2.2-i2v-a14b", "Wan 2.2 Lightning for I2V A14B: one LoRA per expert (Seko V1)",
                        ("lightx2v/Wan2.2-Lightning/Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1/"
                         "high_noise_model.safetensors",
                         "transformer_2:lightx2v/Wan2.2-Lightning/Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1/"
                         "low_noise_model.safetensors"), models=("wan2.2-i2v-a14b",)),
        ),
    )
    pipeline_class = "WanImageToVideoPipeline"

    @staticmethod
    def encode_init_video(pipe, frames):
        """Video-to-video: the init video's latents through Wan's VAE (SDEdit on the pipeline's latents)."""
        from .video_to_video import wan_video_latents

        return wan_video_latents(pipe, frames)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Wan I2V folder, from its model_index.json and transformer/VAE configs."""
        index = check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae = read_config(path, "transformer"), read_config(path, "vae")
        expand = bool(index.get("expand_timesteps"))
        if class_name == "WanPipeline" and not expand:  # only Wan 2.2 TI2V ships as WanPipeline and takes images
            raise UnknownModelError(f"{path}: a Wan text-to-video folder (WanPipeline); i2v needs an image-to-video "
                                    "checkpoint (Wan I2V / FLF2V, or Wan 2.2 TI2V-5B)")
        patch = transformer.get("patch_size", [1, 2, 2])
        multiple = int(vae.get("scale_factor_spatial", 8)) * int(patch[1] if isinstance(patch, list) else patch)
        two_experts = isinstance(index.get("transformer_2"), list) and index["transformer_2"][0] is not None
        overrides: dict = {"size_multiple": multiple}
        # a last frame needs room for two CLIP images (FLF2V) or no CLIP image tokens (Wan 2.2 A14B)
        flf = not expand and (transformer.get("image_dim") is None or transformer.get("pos_embed_seq_len") is not None)
        extras: dict = {"expand_timesteps": expand, "first_last_frame": flf, **FLOW_SHIFTS["wan2.1-i2v"]}
        if expand:  # Wan 2.2 TI2V-5B
            overrides.update(num_frames=121, fps=24.0, height=704, width=1280)
            extras.update(fp32_components=["vae"], **FLOW_SHIFTS["wan2.2-ti2v-5b"])
        elif "720" in path.name:  # the 720p checkpoints differ from 480p only in training data
            overrides.update(height=720, width=1280)
        if two_experts:  # Wan 2.2 I2V A14B
            overrides.update(num_inference_steps=40, guidance_scale=3.5)
            extras.update(FLOW_SHIFTS["wan2.2-i2v-a14b"])
        elif flf and transformer.get("image_dim") is not None:  # Wan 2.1 FLF2V (two CLIP images)
            extras.update(FLOW_SHIFTS["wan2.1-flf2v"], needs_last_image=True)
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras=extras, **overrides)

    def accepted_classes(self) -> tuple[str, ...]:
        # only Wan 2.2 TI2V-5B (expand_timesteps) ships as WanPipeline (text or image to video)
        return self.family.pipeline_classes if self.spec.extras.get("expand_timesteps") else (self.pipeline_class,)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        extras = self.spec.extras
        if request.last_image is not None and not extras.get("first_last_frame"):
            raise InvalidRequestError(
                f"{self.spec.name} cannot condition on a last image (last_image); use wan2.1-flf2v-14b-720p or "
                "wan2.2-i2v-a14b for first-last-frame videos"
            )
        if request.last_image is None and extras.get("needs_last_image"):  # its image embedding takes two CLIP images
            raise InvalidRequestError(f"{self.spec.name} is a first-last-frame model: it needs a last image "
                                      "(--last-image); for a video from one image use a Wan I2V model")
        shift = self.few_step[0].shift if self.few_step else flow_shift_for(settings.height, settings.width, extras)
        settings.extras.update(flow_shift=shift,
                               max_sequence_length=int(extras.get("max_sequence_length", 512)),
                               first_last_frame=request.last_image is not None)

    def set_flow_shift(self, pipe, shift: float) -> None:
        config = pipe.scheduler.config
        key = "flow_shift" if "flow_shift" in config else "shift" if "shift" in config else None
        if key is not None and config[key] != shift:
            pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        self.set_flow_shift(self._pipe, settings.extras["flow_shift"])
        kwargs = dict(image=image, prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      guidance_scale=settings.guidance_scale,
                      max_sequence_length=settings.extras["max_sequence_length"])
        if last_image is not None:
            kwargs["last_image"] = last_image
        return kwargs
