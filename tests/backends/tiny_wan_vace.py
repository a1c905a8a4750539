"""A tiny seeded Wan VACE pipeline (``WanVACEPipeline``), built offline in-process.

The configs mirror diffusers' own fast test (tests/pipelines/wan/test_wan_vace.py,
``get_dummy_components``): Wan's tiny VAE, and a 3-layer ``WanVACETransformer3DModel`` with VACE
blocks at layers 0 and 2 taking 96 control channels (16 + 16 latent channels of the kept and the
generated part of the conditioning video, and 8 x 8 = 64 of the mask). The text side is
``tiny_components``' in-memory T5 tokenizer and tiny T5 encoder, as for Wan. The scheduler is the
one the Wan-AI ``Wan2.1-VACE-*-diffusers`` repositories ship: UniPC with flow sigmas and a flow shift
of 3.0 (diffusers' fast test uses an Euler scheduler at shift 7), so that the model's own shift (16)
only reaches a run if i2v sets it.

``build_wan_vace()`` returns the pipeline; ``BUILDERS`` names it for the test fixtures.
"""

from __future__ import annotations

import torch

from .tiny_components import t5_encoder, t5_tokenizer

# the Wan-AI VACE repositories' scheduler_config.json: UniPC, flow sigmas, flow_shift 3.0
SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000)


def build_wan_vace():
    """Wan 2.1 VACE: 16 latent channels in, VACE hints from layers 0 and 2 (96 control channels)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanVACEPipeline, WanVACETransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                            in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                            num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                            rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    return WanVACEPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32), vae=vae,
                           scheduler=UniPCMultistepScheduler(**SCHEDULER), transformer=transformer)


BUILDERS = {
    "wan_vace": build_wan_vace,
}
