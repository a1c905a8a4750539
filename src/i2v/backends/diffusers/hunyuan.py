"""HunyuanVideo image-to-video (``HunyuanVideoImageToVideoPipeline``).

Two checkpoints, told apart by the transformer's ``image_condition_type``:

- ``token_replace`` (HunyuanVideo-I2V, 16 channels): guidance-distilled; ``guidance_scale`` is the
  *embedded* guidance (6.0 in the diffusers example), so a negative prompt has no effect and the
  backend says so.
- ``latent_concat`` (HunyuanVideo-I2V-33ch): no embedded guidance; ``guidance_scale`` becomes real
  classifier-free guidance (``true_cfg_scale``, 1.0 = off, the example's value) with the
  negative prompt. This pipeline drops the first 4 decoded frames, so the backend asks it for
  ``num_frames + 4`` to return exactly ``num_frames``.

Rules: ``num_frames = 4n + 1`` (129 by default), sides a multiple of 16, 720x1280 area at the
image's aspect ratio. The text encoder is a LLaVA model that reads the image too, through a
prompt template whose token offsets (``crop_start``, ``image_emb_*``) belong to its tokenizer and
vision tower: the released models use diffusers' ``DEFAULT_PROMPT_TEMPLATE``; other (smaller)
text encoders get the offsets measured from their own tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

DROPPED_FRAMES = 4  # latent_concat: the pipeline drops the first 4 decoded frames


def prompt_template(pipe) -> dict:
    """The LLaVA prompt template with token offsets that fit ``pipe``'s tokenizer and vision tower."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_image2video import DEFAULT_PROMPT_TEMPLATE

    config = pipe.text_encoder.config
    vision = config.vision_config
    image_len = (vision.image_size // vision.patch_size) ** 2  # CLS dropped ("default" feature strategy)
    if getattr(config, "vision_feature_select_strategy", "default") == "full":
        image_len += 1
    if image_len == DEFAULT_PROMPT_TEMPLATE["image_emb_len"]:
        return DEFAULT_PROMPT_TEMPLATE  # the released LLaVA-Llama-3 text encoder
    template = DEFAULT_PROMPT_TEMPLATE["template"]
    prefix_ids = pipe.tokenizer(template.split("{}")[0]).input_ids
    start = prefix_ids.index(config.image_token_index)
    return {"template": template, "crop_start": len(prefix_ids), "image_emb_start": start,
            "image_emb_end": start + image_len, "image_emb_len": image_len}


class HunyuanBackend(DiffusersBackend):
    family = Family(
        name="hunyuan",
        models=(
            ModelSpec(
                name="hunyuanvideo-i2v", family="hunyuan", source="hunyuanvideo-community/HunyuanVideo-I2V",
                description="HunyuanVideo I2V 13B (token-replace, 16 ch): 129 frames at 720x1280, embedded guidance "
                            "6.0",
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
        ),
        pipeline_classes=("HunyuanVideoImageToVideoPipeline",),
        # the I2V pipeline opens no cache context, which First Block Cache and TaylorSeer need
        caches=("pab",), speed_cache="pab",
        batched_guidance=False,  # true CFG: the conditional and unconditional passes run one after the other
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, 16),  # 16-frame windows
        tile_pixels=lambda vae: 256 * 256,
        order=60,
    )
    pipeline_class = "HunyuanVideoImageToVideoPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local HunyuanVideo I2V folder; the 33ch model runs without guidance by default."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer = read_config(path, "transformer")
        concat = transformer.get("image_condition_type") == "latent_concat"
        extras = {"image_condition_type": transformer.get("image_condition_type", "token_replace")}
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras=extras, guidance_scale=1.0 if concat else 6.0)

    def condition_type(self) -> str:
        if self.folder is not None:
            return read_config(self.folder, "transformer").get("image_condition_type", "token_replace")
        return self.spec.extras.get("image_condition_type", "token_replace")

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        concat = self.condition_type() == "latent_concat"
        if concat:  # real CFG with the negative prompt; embedded guidance off
            true_cfg, embedded = settings.guidance_scale, 1.0
            negative_used = true_cfg > 1.0
        else:  # guidance-distilled: guidance_scale is the embedded guidance
            true_cfg, embedded = float(self.spec.extras.get("true_cfg_scale", 1.0)), settings.guidance_scale
            negative_used = true_cfg > 1.0
        if settings.negative_prompt and not negative_used:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale "
                           f"{settings.guidance_scale:g} ({'no CFG at 1.0' if concat else 'guidance is embedded'})")
        settings.extras.update(
            image_condition_type=self.condition_type(), true_cfg_scale=true_cfg, embedded_guidance_scale=embedded,
            negative_prompt_used=negative_used,
            pipeline_num_frames=settings.num_frames + (DROPPED_FRAMES if concat else 0),
            max_sequence_length=int(self.spec.extras.get("max_sequence_length", 256)),
        )

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        if not hasattr(self, "_template"):
            self._template = prompt_template(self.active)
        return dict(image=image, prompt=settings.prompt,
                    negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else None,
                    height=settings.height, width=settings.width, num_frames=e["pipeline_num_frames"],
                    guidance_scale=e["embedded_guidance_scale"], true_cfg_scale=e["true_cfg_scale"],
                    prompt_template=self._template, max_sequence_length=e["max_sequence_length"])
