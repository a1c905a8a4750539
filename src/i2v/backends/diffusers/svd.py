"""Stable Video Diffusion (``StableVideoDiffusionPipeline``): SVD and SVD-XT.

SVD is conditioned on the image only: it takes **no text**. A prompt is never silently
"used": the backend says so in a notice and records ``"prompt_used": false``. The motion is
steered instead by ``motion_strength`` in [0, 1], mapped linearly onto SVD's
``motion_bucket_id`` (``round(254 * motion_strength)``; 0.5 -> 127, the model's default), and by
the fps micro-conditioning (the UNet was trained on ``fps - 1``; the pipeline subtracts the 1).

A folder fine-tuned by ``i2v train --text-conditioning`` carries a ``text_proj/`` subfolder: it
runs on ``TextGuidedSVDPipeline`` and does use the prompt (``"prompt_used": true``). LoRAs trained
by ``i2v train --lora-rank`` load onto the U-Net (diffusers' SVD pipeline has no LoRA loader).

Guidance ramps linearly over the frames from ``min_guidance_scale`` (1.0) on the first frame to
``guidance_scale`` (the max, 3.0) on the last, as in Stability's sampling script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, native_size, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

TEXT_PROJ_FOLDER = "text_proj"  # written by i2v's text-guided SVD fine-tuning
MOTION_BUCKET_SCALE = 254  # motion_strength 1.0 -> bucket 254; 0.5 -> 127 (the model's default)


def motion_bucket_id(motion_strength: float) -> int:
    if not 0.0 <= motion_strength <= 1.0:
        raise InvalidRequestError(f"motion_strength must be in [0, 1] for Stable Video Diffusion (mapped to "
                                  f"motion_bucket_id 0..{MOTION_BUCKET_SCALE}), got {motion_strength}")
    return round(MOTION_BUCKET_SCALE * motion_strength)


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


def decode_in_chunks(num_frames: int, temporal: int, slicing: bool, chunk: int | None) -> int:
    """SVD's temporal decoder decodes ``decode_chunk_size`` frames at once."""
    return min(num_frames, chunk or num_frames)


class SVDBackend(DiffusersBackend):
    family = Family(
        name="svd",
        models=(
            _svd("svd", "stabilityai/stable-video-diffusion-img2vid", 14,
                 "Stable Video Diffusion (14 frames, 576x1024); image only, no text"),
            _svd("svd-xt", "stabilityai/stable-video-diffusion-img2vid-xt", 25,
                 "Stable Video Diffusion XT (25 frames, 576x1024); image only, no text"),
            _svd("svd-xt-1.1", "stabilityai/stable-video-diffusion-img2vid-xt-1-1", 25,
                 "Stable Video Diffusion XT 1.1 (25 frames; fine-tuned at 6 fps conditioning, motion bucket 127)"),
        ),
        pipeline_classes=("StableVideoDiffusionPipeline",),
        denoiser="unet", caches=("deepcache", "pab"), speed_cache="deepcache",
        inputs=frozenset({"motion_strength", "decode_chunk_size"}),
        # AutoencoderKLTemporalDecoder has no tiling or slicing; it decodes in frame chunks instead
        memory_options=frozenset({"offload", "decode_chunk_size"}),
        loras=True,  # onto the U-Net: the pipeline itself has no LoRA loader
        decode_frames=decode_in_chunks,
        trainable="i2v.training.trainable_svd:SVDTrainable",
        order=10,
        registry_only_extras=("variant",),  # a local folder's variant comes from its file names
    )
    pipeline_class = "StableVideoDiffusionPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local SVD folder: frames from ``unet.num_frames`` (14 SVD, 25 SVD-XT)."""
        check_model_folder(path, cls.family.pipeline_classes)
        unet, vae = read_config(path, "unet"), read_config(path, "vae")
        frames = int(unet.get("num_frames", 25))
        scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
        latent_multiple = 2 ** (len(unet.get("block_out_channels", [0, 0, 0, 0])) - 1)
        side = int(unet.get("sample_size", 96)) * scale
        height, width = native_size((576, 1024), (side, side))
        text_guided = (path / TEXT_PROJ_FOLDER / "config.json").is_file()
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 num_frames=frames,
                                 frame_rule=f"any >= 2 (trained on {frames})",
                                 height=height, width=width, size_multiple=max(8, scale * latent_multiple),
                                 uses_prompt=text_guided, extras={"text_guided": text_guided})

    @classmethod
    def vae_help(cls, what: str) -> str:
        return (f"Stable Video Diffusion's temporal VAE decoder has no {what}; use --decode-chunk-size N to decode "
                "N frames at a time instead")

    @property
    def text_guided(self) -> bool:
        return bool(self.spec.extras.get("text_guided"))

    def load_pipeline(self, folder: Path):
        pipe = super().load_pipeline(folder)
        if not (folder / TEXT_PROJ_FOLDER).is_dir():
            return pipe
        from ...conditioning import MiniLMTextEncoder
        from ...models.text_projection import TextProjection
        from ...pipelines.pipeline_svd_text import TextGuidedSVDPipeline

        kwargs = self.load_kwargs()
        kwargs.pop("variant", None)
        text_proj = TextProjection.from_pretrained(str(folder / TEXT_PROJ_FOLDER), **kwargs).to(self.device)
        return TextGuidedSVDPipeline.from_svd(pipe, text_proj, MiniLMTextEncoder(device=self.device))

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        extras = self.spec.extras
        if self.text_guided:
            settings.extras["prompt_used"] = True
        elif settings.prompt or settings.negative_prompt:
            notices.append("Stable Video Diffusion takes no text: the prompt and negative prompt were NOT used "
                           "(steer the motion with motion_strength and fps instead)")
        strength = 0.5 if settings.motion_strength is None else settings.motion_strength
        bucket = motion_bucket_id(strength) if settings.motion_strength is not None else extras.get(
            "motion_bucket_id", 127)
        if settings.fps != round(settings.fps) or settings.fps < 2:
            notices.append(f"SVD's fps conditioning is a whole number >= 2; conditioning on "
                           f"{max(2, round(settings.fps))} (the file is still written at {settings.fps:g} fps)")
        chunk = request.decode_chunk_size if request.decode_chunk_size is not None else \
            (self.acceleration.decode_chunk_size or extras.get("decode_chunk_size"))
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise InvalidRequestError(f"decode_chunk_size must be a positive integer, got {chunk!r}")
        settings.extras.setdefault("prompt_used", False)
        settings.extras.update(
            motion_bucket_id=bucket, fps_conditioning=max(2, round(settings.fps)),
            noise_aug_strength=extras.get("noise_aug_strength", 0.02),
            min_guidance_scale=min(extras.get("min_guidance_scale", 1.0), settings.guidance_scale),
            max_guidance_scale=settings.guidance_scale,
            decode_chunk_size=min(chunk, settings.num_frames) if chunk else settings.num_frames,
        )

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        text = dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt) if self.text_guided else {}
        return dict(image=image, **text, height=settings.height, width=settings.width, num_frames=settings.num_frames,
                    min_guidance_scale=e["min_guidance_scale"], max_guidance_scale=e["max_guidance_scale"],
                    fps=e["fps_conditioning"], motion_bucket_id=e["motion_bucket_id"],
                    noise_aug_strength=e["noise_aug_strength"], decode_chunk_size=e["decode_chunk_size"])
