"""CogVideoX image-to-video (``CogVideoXImageToVideoPipeline``): CogVideoX 1.0 5B-I2V and 1.5 5B-I2V.

Rules from the CogVideoX cards and the pipeline: ``num_frames = 8n + 1`` (1.0: 49 frames at 8 fps;
1.5: 81 at 16 fps); sides a multiple of ``vae_scale_factor_spatial * patch_size`` (16). CogVideoX
1.0's transformer has *learned* positional embeddings for 480x720 (``sample_height/width``), so
it generates that size only: another size is refused before loading, at most ``sample_frames``
(49) frames. CogVideoX 1.5 takes any size with the short side at 768 (the card's rule); its
latent frames are padded to the temporal patch by the pipeline itself.
``use_dynamic_cfg`` (the cosine guidance ramp of the CogVideoX repo) is on, as in the diffusers
example.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image


class CogVideoXBackend(DiffusersBackend):
    family = Family(
        name="cogvideox",
        models=(
            ModelSpec(
                name="cogvideox-5b-i2v", family="cogvideox", source="THUDM/CogVideoX-5b-I2V",
                description="CogVideoX 1.0 5B image-to-video (49 frames at 8 fps, 480x720 only)",
                defaults=ModelDefaults(num_frames=49, height=480, width=720, fps=8.0, num_inference_steps=50,
                                       guidance_scale=6.0, size_multiple=16, frame_rule="8n+1, at most 49",
                                       frame_step=8, frame_offset=1, min_frames=9, max_frames=49, size_policy="fixed"),
                extras={"use_dynamic_cfg": True, "max_sequence_length": 226, "dtype": "bf16", "version_15": False},
            ),
            ModelSpec(
                name="cogvideox1.5-5b-i2v", family="cogvideox", source="THUDM/CogVideoX1.5-5B-I2V",
                description="CogVideoX 1.5 5B image-to-video (81 frames at 16 fps, min side 768)",
                defaults=ModelDefaults(num_frames=81, height=768, width=1360, fps=16.0, num_inference_steps=50,
                                       guidance_scale=6.0, size_multiple=16, frame_rule="8n+1 (81 or 161 trained)",
                                       frame_step=8, frame_offset=1, min_frames=9, size_policy="orient"),
                extras={"use_dynamic_cfg": True, "max_sequence_length": 226, "dtype": "bf16", "version_15": True},
            ),
        ),
        pipeline_classes=("CogVideoXImageToVideoPipeline",),
        inputs=frozenset({"init_video"}),
        caches=("pab", "fastercache"), speed_cache="pab",
        # the VAE decodes 2 latent frames at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, 2 * temporal),
        # AutoencoderKLCogVideoX tiles at half its sample size each way
        tile_pixels=lambda vae: (vae.get("sample_height", 480) // 2) * (vae.get("sample_width", 720) // 2),
        order=40,
    )
    pipeline_class = "CogVideoXImageToVideoPipeline"

    @classmethod
    def check_inputs(cls, spec: ModelSpec, request: GenerationRequest) -> None:
        super().check_inputs(spec, request)
        if request.init_video is not None and spec.extras.get("version_15"):
            raise InvalidRequestError(f"{spec.name}: video-to-video (init_video) runs on CogVideoX 1.0 "
                                      "(cogvideox-5b-i2v); 1.5 pads its latent frames in a way a given start cannot "
                                      "follow")

    @staticmethod
    def encode_init_video(pipe, frames):
        """Video-to-video: the init video's latents as ``CogVideoXVideoToVideoPipeline`` makes them."""
        from .video_to_video import cogvideox_video_latents

        return cogvideox_video_latents(pipe, frames)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local CogVideoX I2V folder, from its transformer and VAE configs."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae = read_config(path, "transformer"), read_config(path, "vae")
        scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
        height = int(transformer.get("sample_height", 60)) * scale
        width = int(transformer.get("sample_width", 90)) * scale
        frames = int(transformer.get("sample_frames", 49))
        learned = bool(transformer.get("use_learned_positional_embeddings", False))
        version_15 = transformer.get("patch_size_t") is not None
        overrides = dict(height=height, width=width, num_frames=frames,
                         size_multiple=scale * int(transformer.get("patch_size", 2)),
                         fps=16.0 if version_15 else 8.0)
        if learned:  # CogVideoX 1.0 I2V: one size, at most the trained frame count
            overrides.update(size_policy="fixed", max_frames=frames, frame_rule=f"8n+1, at most {frames}")
        else:
            overrides.update(size_policy="orient", max_frames=None, frame_rule="8n+1")
        # the prompt is padded to the transformer's text length (226 for the released models)
        extras = {"max_sequence_length": int(transformer.get("max_text_seq_length", 226)), "version_15": version_15}
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras=extras, **overrides)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        extras = self.spec.extras
        settings.extras.update(use_dynamic_cfg=bool(extras.get("use_dynamic_cfg", True)),
                               max_sequence_length=int(extras.get("max_sequence_length", 226)))

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        return dict(image=image, prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                    height=settings.height, width=settings.width, num_frames=settings.num_frames,
                    guidance_scale=settings.guidance_scale, use_dynamic_cfg=e["use_dynamic_cfg"],
                    max_sequence_length=e["max_sequence_length"])
