"""A tiny seeded Motif-Video image-to-video pipeline (``MotifVideoImage2VideoPipeline``), built offline in-process.

The configs mirror diffusers' own fast test (tests/pipelines/motif_video/
test_motif_video_image2video.py, ``get_dummy_components``): Wan's tiny VAE (8x space, 4x time), a
T5Gemma2 encoder with a tiny SigLIP vision tower (the pipeline embeds the first frame with
``text_encoder.vision_tower``), the SigLIP image processor, Euler flow matching at shift 7 and the
Adaptive Projected Guidance guider. Two departures, both towards the released Motif-Video-2B: the
transformer has the released 2x2 patch (the fast test uses 1, so the size multiple here is the
released 16) and its three kinds of blocks (dual-stream, single-stream with the shared text
cross-attention, and a DDT decoder block), two of each stream. The tokenizer is ``tiny_components``'
in-memory T5 tokenizer (the fast test downloads ``hf-internal-testing/tiny-random-t5``).

``build_motif_video()`` returns the pipeline; ``BUILDERS`` names it for the test fixtures.
"""

from __future__ import annotations

import torch

from .tiny_components import t5_tokenizer

SHIFT = 7.0  # the fast test's scheduler shift
GUIDANCE_SCALE = 7.5  # AdaptiveProjectedGuidance's default, saved in the folder's guider config


def build_motif_video(guidance_scale: float = GUIDANCE_SCALE, shift: float = SHIFT):
    """Motif-Video I2V: 16 latent + 16 condition + 1 mask channels in, the image embedded by SigLIP."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, MotifVideoImage2VideoPipeline
    from diffusers.guiders import AdaptiveProjectedGuidance
    from diffusers.models.transformers.transformer_motif_video import MotifVideoTransformer3DModel
    from transformers import (SiglipImageProcessor, SiglipVisionConfig, T5Gemma2Encoder, T5Gemma2EncoderConfig,
                              T5Gemma2TextConfig)

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    text_config = T5Gemma2TextConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                     vocab_size=128, max_position_embeddings=128, head_dim=16, num_key_value_heads=2,
                                     dropout_rate=0.0)
    vision_config = SiglipVisionConfig(hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                       image_size=16, patch_size=4, num_channels=3)
    text_encoder = T5Gemma2Encoder(T5Gemma2EncoderConfig(text_config=text_config, vision_config=vision_config))
    feature_extractor = SiglipImageProcessor(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                                             size={"height": 16, "width": 16})
    torch.manual_seed(0)
    transformer = MotifVideoTransformer3DModel(in_channels=33, out_channels=16, num_attention_heads=2,
                                               attention_head_dim=12, num_layers=2, num_single_layers=2,
                                               num_decoder_layers=1, mlp_ratio=4.0, patch_size=2, patch_size_t=1,
                                               qk_norm="rms_norm", text_embed_dim=32, image_embed_dim=4,
                                               rope_axes_dim=(4, 4, 4), enable_text_cross_attention_single=True)
    return MotifVideoImage2VideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift), vae=vae, text_encoder=text_encoder.eval(),
        tokenizer=tokenizer, transformer=transformer.eval(),
        guider=AdaptiveProjectedGuidance(guidance_scale=guidance_scale),
        feature_extractor=feature_extractor,
    )


BUILDERS = {"motif_video": build_motif_video}
