"""Tiny seeded SkyReels-V2 pipelines, built offline in-process.

The configs mirror diffusers' own fast tests (tests/pipelines/skyreels_v2/
test_skyreels_v2_image_to_video.py and test_skyreels_v2_df_image_to_video.py); the text side is
``tiny_components``' in-memory T5 tokenizer and tiny T5 encoder, as for Wan. The scheduler is the
one diffusers' conversion script (scripts/convert_skyreelsv2_to_diffusers.py) saves in every
Skywork ``*-Diffusers`` repository: UniPC with flow sigmas and no shift of its own (1.0), so the
model's flow shift (5.0) only reaches a run if i2v sets it.

``build_skyreels()``: ``SkyReelsV2ImageToVideoPipeline`` (``first_last_frame`` adds the FLF2V
checkpoints' positional embedding over two CLIP images); ``build_skyreels_df()``:
``SkyReelsV2DiffusionForcingImageToVideoPipeline`` with the fps embedding of SkyReels-V2-DF-1.3B
(``inject_sample_info``), so the frame rate it is told reaches the model.
"""

from __future__ import annotations

import torch

from .tiny_components import clip_image_processor, clip_vision, t5_encoder, t5_tokenizer

# the Skywork repositories' scheduler (diffusers' conversion script): flow_shift left at 1.0
SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000)


def _vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _transformer(in_channels: int, **kwargs):
    from diffusers import SkyReelsV2Transformer3DModel

    torch.manual_seed(0)
    return SkyReelsV2Transformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=in_channels, out_channels=16, text_dim=32, freq_dim=256,
                                        ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, **kwargs)


def build_skyreels(first_last_frame: bool = False):
    """SkyReels-V2 I2V (16 latent + 4 mask + 16 condition channels in, one CLIP image); with
    ``first_last_frame`` the FLF2V checkpoints' positional embedding over two CLIP images."""
    from diffusers import SkyReelsV2ImageToVideoPipeline, UniPCMultistepScheduler

    vae = _vae()
    # patch 4 on 32x32: 64 patches + CLS = 65 image tokens (diffusers' test uses patch 1: 1025 tokens)
    transformer = _transformer(36, image_dim=4, pos_embed_seq_len=2 * 65 if first_last_frame else None)
    image_encoder = clip_vision(hidden_size=4, projection_dim=4, image_size=32, layers=2, patch_size=4)
    return SkyReelsV2ImageToVideoPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32),
                                          image_encoder=image_encoder, image_processor=clip_image_processor(32),
                                          transformer=transformer, vae=vae,
                                          scheduler=UniPCMultistepScheduler(**SCHEDULER))


def build_skyreels_df():
    """SkyReels-V2 diffusion forcing (16 latent channels in; the image is the first latent frame)."""
    from diffusers import SkyReelsV2DiffusionForcingImageToVideoPipeline, UniPCMultistepScheduler

    vae = _vae()
    transformer = _transformer(16, inject_sample_info=True)
    return SkyReelsV2DiffusionForcingImageToVideoPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32),
                                                          transformer=transformer, vae=vae,
                                                          scheduler=UniPCMultistepScheduler(**SCHEDULER))


BUILDERS = {
    "skyreels": build_skyreels,
    "skyreels-flf": lambda: build_skyreels(first_last_frame=True),
    "skyreels-df": build_skyreels_df,
}
