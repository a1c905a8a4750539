"""A tiny seeded LTX-2 image-to-video pipeline (``LTX2ImageToVideoPipeline``), built offline in-process.

The transformer, connectors, video VAE, audio VAE, vocoder and scheduler are those of diffusers' own
fast tests (tests/pipelines/ltx2/test_ltx2_image2video.py and test_ltx2_condition.py,
``get_dummy_components``), seeded the same way. The one difference is the text side: the fast tests
download ``hf-internal-testing/tiny-gemma3``; here the Gemma 3 text encoder is a random tiny
``Gemma3ForConditionalGeneration`` (2 text layers of width 32, the connectors' width, a 1-layer SigLIP tower, which the
pipeline never calls) and the tokenizer a ``GemmaTokenizer`` (BPE, byte fallback) over
``tiny_components``' in-memory word list, so nothing is downloaded.

The tiny video VAE compresses 2x in space and time (the released one 32x and 8x), so the released
rules (``num_frames = 8n + 1``, sides a multiple of 32, which the pipeline checks) hold on it too.
The audio VAE and the vocoder run at 16 kHz (the released LTX-2 vocoder: 24 kHz). The vocoder
upsamples each mel frame 160x (8 * 5 * 4; the fast test: 2 * 2), the audio VAE's mel hop, so that the
sound lasts as long as the video, as with the released vocoder (240x from its 16 kHz mel to 24 kHz).

``build_ltx2()`` returns the pipeline; ``BUILDERS`` names it for the test fixtures.
"""

from __future__ import annotations

import torch

from .tiny_components import WORDS

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
SAMPLE_RATE = 16000  # the tiny vocoder's output_sampling_rate (diffusers' fast test)


def gemma_tokenizer():
    """A Gemma (SentencePiece-style BPE) tokenizer: the specials, "▁" and single letters, and every
    word of WORDS with its leading "▁" as one token (merged left to right)."""
    from transformers import GemmaTokenizer

    vocab = {token: i for i, token in enumerate(GEMMA_SPECIALS)}
    for c in "\u2581abcdefghijklmnopqrstuvwxyz0123456789,.'":
        vocab.setdefault(c, len(vocab))
    merges = []
    for w in WORDS:
        pieces = ["\u2581"] + list(w)
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            if (a, b) not in merges:
                merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    return GemmaTokenizer(vocab=vocab, merges=merges)


def gemma3_encoder(vocab_size: int = 256):
    """A random tiny Gemma 3 (the pipeline reads the text model's hidden states of every layer)."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    text = Gemma3TextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024,
                            sliding_window=16, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=16, patch_size=4)
    torch.manual_seed(0)
    return Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4))


def build_ltx2():
    """LTX-2 image-to-video with diffusers' fast-test components (4 latent channels, 2 blocks)."""
    from diffusers import (AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, FlowMatchEulerDiscreteScheduler,
                           LTX2ImageToVideoPipeline, LTX2VideoTransformer3DModel)
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    text_encoder = gemma3_encoder()
    hidden, layers = text_encoder.config.text_config.hidden_size, text_encoder.config.text_config.num_hidden_layers
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, qk_norm="rms_norm_across_heads",
        caption_channels=hidden, rope_double_precision=False, rope_type="split",
    )
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=hidden, text_proj_in_factor=layers + 1, video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=SAMPLE_RATE, mel_hop_length=160, is_causal=True, mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[16, 10, 8], upsample_factors=[8, 5, 4], resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=SAMPLE_RATE,
    )
    return LTX2ImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, audio_vae=audio_vae, text_encoder=text_encoder,
        tokenizer=gemma_tokenizer(), connectors=connectors, transformer=transformer, vocoder=vocoder,
        processor=None, prompt_enhancer=None, duration_head=None,
    )


BUILDERS = {
    "ltx2": build_ltx2,
}
