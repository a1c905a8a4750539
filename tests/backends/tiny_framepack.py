"""A tiny seeded FramePack pipeline (``HunyuanVideoFramepackPipeline``), built offline in-process.

The configs mirror diffusers' own fast test (tests/pipelines/hunyuan_video/
test_hunyuan_video_framepack.py, ``get_dummy_components``): a one-block
``HunyuanVideoFramepackTransformer3DModel`` with FramePack's history embedder
(``has_clean_x_embedder``) and SigLIP image projection (``has_image_proj``, ``image_proj_dim`` 32),
HunyuanVideo's tiny VAE (8x space, 4x time), and Euler flow matching at shift 7. The text side is
``tiny_components``' in-memory Llama-3-style tokenizer with a tiny ``LlamaModel``, and its CLIP
tokenizer and text encoder; the SigLIP image encoder is a tiny random ``SiglipVisionModel`` of the
same shape as diffusers' ``hf-internal-testing/tiny-random-SiglipVisionModel`` (hidden size 32,
30x30 images), built here instead of downloaded.

The F1 and the original (inverted anti-drifting) checkpoints share one architecture: they differ in
weights and in how they are sampled, so one folder serves both (saved under a name with "F1" in it,
i2v samples it forward, as for the F1 hub repository).

``build_framepack()`` returns the pipeline; ``BUILDERS`` names it for the test fixtures.
"""

from __future__ import annotations

import torch

from .tiny_components import clip_text_encoder, clip_tokenizer, llama_tokenizer


def siglip_vision(hidden_size: int = 32, image_size: int = 30, patch_size: int = 5):
    """A tiny SigLIP vision tower (FramePack's image encoder is SigLIP from ``lllyasviel/flux_redux_bfl``)."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    config = SiglipVisionConfig(hidden_size=hidden_size, intermediate_size=37, num_attention_heads=4,
                                num_hidden_layers=2, image_size=image_size, patch_size=patch_size)
    return SiglipVisionModel(config)


def siglip_processor(size: int = 30):
    from transformers import SiglipImageProcessor

    return SiglipImageProcessor(size={"height": size, "width": size})


def build_framepack():
    """FramePack on HunyuanVideo: 4 latent channels, patch 2, guidance embedding, history embedder."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler, HunyuanVideoFramepackPipeline,
                           HunyuanVideoFramepackTransformer3DModel)
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    transformer = HunyuanVideoFramepackTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None,
        has_image_proj=True, image_proj_dim=32, has_clean_x_embedder=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    tokenizer = llama_tokenizer()
    torch.manual_seed(0)
    text_encoder = LlamaModel(LlamaConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, hidden_size=16,
        intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
        pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer), hidden_act="gelu"))
    return HunyuanVideoFramepackPipeline(
        text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer, vae=vae, scheduler=scheduler,
        text_encoder_2=clip_text_encoder(hidden_size=8), tokenizer_2=clip_tokenizer(),
        image_encoder=siglip_vision(), feature_extractor=siglip_processor())


BUILDERS = {
    "framepack": build_framepack,
}
