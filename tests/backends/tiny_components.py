"""Tiny seeded diffusers components for every backend family, built offline in-process.

The configs mirror diffusers' own ``get_dummy_components()`` (tests/pipelines/<family>/test_*.py);
the one difference is the text side: diffusers' tests download ``hf-internal-testing`` tokenizers,
here every tokenizer is built from an in-memory vocabulary (transformers v5 tokenizers take
``vocab=``/``merges=`` directly) and every text encoder from a tiny random config.

Each ``build_<family>()`` returns a pipeline; ``save_<family>(folder)`` writes it with
``save_pretrained`` (safetensors) for the backends to load like any downloaded model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from i2v.metrics.fidelity import psnr  # noqa: F401  (the family tests' frame comparisons)


def sidecar(path) -> dict:
    """The settings JSON written next to an output video."""
    return json.loads(open(str(path) + ".json").read())


WORDS = ("a the red green blue yellow ball square circle moves left right up down camera pans zooms in out "
         "slowly quickly cat dog walks runs sky sea tree car blurry static worst quality low jittery").split()


def _seed(seed: int = 0) -> None:
    torch.manual_seed(seed)


def _randomize_zero_init(module: torch.nn.Module, std: float = 0.05) -> None:
    """ControlNets start with zero convolutions, so a fresh one ignores its condition; tests need it live."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)


def save_random_lora(pipe, folder: str | os.PathLike, target_modules: list[str] | str,
                     component: str = "transformer") -> Path:
    """A seeded random rank-2 LoRA on ``pipe.<component>``'s ``target_modules`` (names or a regex), saved
    into ``folder`` as diffusers saves one; returns the ``pytorch_lora_weights.safetensors`` file."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = getattr(pipe, component)
    _seed()
    model.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=target_modules, init_lora_weights=False))
    type(pipe).save_lora_weights(folder, **{f"{component}_lora_layers": get_peft_model_state_dict(model)},
                                 safe_serialization=True)
    return Path(folder) / "pytorch_lora_weights.safetensors"


# ---------------------------------------------------------------------------------------------
# Tokenizers and text encoders
# ---------------------------------------------------------------------------------------------


def t5_tokenizer():
    """A Unigram (SentencePiece-style) T5 tokenizer over a tiny word list, plus single letters."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0 - i * 0.01) for i, w in enumerate(WORDS)]
    vocab += [("\u2581", -5.0)] + [(c, -8.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.'"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def t5_encoder(d_model: int = 32, vocab_size: int = 128):
    from transformers import T5Config, T5EncoderModel

    _seed()
    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0, decoder_start_token_id=0,
                      pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(config)


def clip_tokenizer():
    """A byte-level-free CLIP BPE tokenizer: every word of WORDS is one token, letters the fallback."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789,.'!":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    for w in WORDS:  # build each word by merging left to right: "r e d</w>" -> "re d</w>" -> "red</w>"
        pieces = list(w[:-1]) + [w[-1] + "</w>"]
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    return CLIPTokenizer(vocab=vocab, merges=merges, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                         pad_token="<|endoftext|>", model_max_length=77)


def clip_text_encoder(hidden_size: int = 8, vocab_size: int = 1000, projection_dim: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel

    _seed()
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=1, hidden_size=hidden_size, intermediate_size=37,
                            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, pad_token_id=1,
                            vocab_size=vocab_size, projection_dim=projection_dim, max_position_embeddings=77)
    return CLIPTextModel(config)


def clip_vision(hidden_size: int = 32, projection_dim: int = 32, image_size: int = 32, layers: int = 2,
                patch_size: int = 1):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    _seed()
    config = CLIPVisionConfig(hidden_size=hidden_size, projection_dim=projection_dim, num_hidden_layers=layers,
                              num_attention_heads=4 if hidden_size % 4 == 0 else 2, image_size=image_size,
                              intermediate_size=37, patch_size=patch_size)
    return CLIPVisionModelWithProjection(config)


def clip_image_processor(size: int = 32):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(crop_size=size, size=size)


# ---------------------------------------------------------------------------------------------
# Stable Video Diffusion (tests/pipelines/stable_video_diffusion/test_stable_video_diffusion.py)
# ---------------------------------------------------------------------------------------------


def build_svd(num_frames: int = 4):
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)

    _seed()
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=16, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=8, projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32, num_frames=num_frames,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True,
    )
    _seed()
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                                       latent_channels=4)
    # SVD resizes the conditioning image to 224x224 itself; patch 32 keeps the encoder at 49 tokens
    image_encoder = clip_vision(hidden_size=32, projection_dim=32, image_size=224, layers=2, patch_size=32)
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=clip_image_processor(224))


# ---------------------------------------------------------------------------------------------
# AnimateDiff + SparseCtrl (tests/pipelines/animatediff/test_animatediff_sparsectrl.py)
# ---------------------------------------------------------------------------------------------


def build_animatediff():
    from diffusers import (AnimateDiffSparseControlNetPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter,
                           SparseControlNetModel, UNet2DConditionModel)

    cross_attention_dim, block_out_channels = 8, (8, 8)
    _seed()
    unet = UNet2DConditionModel(block_out_channels=block_out_channels, layers_per_block=2, sample_size=8,
                                in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=cross_attention_dim, norm_num_groups=2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False)
    _seed()
    controlnet = SparseControlNetModel(block_out_channels=block_out_channels, layers_per_block=2, in_channels=4,
                                       conditioning_channels=3, down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
                                       cross_attention_dim=cross_attention_dim, conditioning_embedding_out_channels=(8, 8),
                                       norm_num_groups=1, use_simplified_condition_embedding=False)
    _randomize_zero_init(controlnet)
    _seed()
    vae = AutoencoderKL(block_out_channels=block_out_channels, in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=2)
    text_encoder = clip_text_encoder(hidden_size=cross_attention_dim)
    _seed()
    motion_adapter = MotionAdapter(block_out_channels=block_out_channels, motion_layers_per_block=2,
                                   motion_norm_num_groups=2, motion_num_attention_heads=4)
    return AnimateDiffSparseControlNetPipeline(vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer(),
                                               unet=unet, motion_adapter=motion_adapter, controlnet=controlnet,
                                               scheduler=scheduler, feature_extractor=None, image_encoder=None)


# ---------------------------------------------------------------------------------------------
# Wan 2.1 I2V (tests/pipelines/wan/test_wan_image_to_video.py)
# ---------------------------------------------------------------------------------------------


def build_wan(first_last_frame: bool = False):
    """Wan 2.1 I2V; ``first_last_frame`` adds FLF2V's positional embedding over two CLIP images."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    _seed()
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    # Wan's own default: UniPC with flow sigmas (the Wan-AI repos ship this scheduler config)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    _seed()
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=36, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32, image_dim=4,
                                        pos_embed_seq_len=2 * 65 if first_last_frame else None)
    # patch 4 on 32x32: 64 patches + CLS = 65 image tokens (diffusers' test uses patch 1: 1025 tokens)
    image_encoder = clip_vision(hidden_size=4, projection_dim=4, image_size=32, layers=2, patch_size=4)
    return WanImageToVideoPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32), vae=vae,
                                   scheduler=scheduler, image_processor=clip_image_processor(32),
                                   image_encoder=image_encoder, transformer=transformer)


# ---------------------------------------------------------------------------------------------
# CogVideoX I2V (tests/pipelines/cogvideo/test_cogvideox_image2video.py)
# ---------------------------------------------------------------------------------------------


def build_cogvideox():
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)

    _seed()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    _seed()
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    scheduler = CogVideoXDDIMScheduler(timestep_spacing="trailing")
    return CogVideoXImageToVideoPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32), vae=vae,
                                         transformer=transformer, scheduler=scheduler)


# ---------------------------------------------------------------------------------------------
# LTX-Video (tests/pipelines/ltx/test_ltx_image2video.py, test_ltx_condition.py)
# ---------------------------------------------------------------------------------------------


def build_ltx():
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline,
                           LTXVideoTransformer3DModel)

    _seed()
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    _seed()
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXImageToVideoPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=t5_encoder(32),
                                   tokenizer=t5_tokenizer(), transformer=transformer)


# ---------------------------------------------------------------------------------------------
# HunyuanVideo I2V (tests/pipelines/hunyuan_video/test_hunyuan_image2video.py)
# ---------------------------------------------------------------------------------------------

LLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<image>", "<pad>"]


def llama_tokenizer():
    """A Llama-3-style BPE tokenizer: the chat-template special tokens, <image>, and letters/words."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0}
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,.:'!?-\n\u2581":
        vocab.setdefault(c, len(vocab))
    merges = []
    for w in WORDS:  # "\u2581word" built by merging left to right
        pieces = ["\u2581"] + list(w)
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    for token in LLAMA_SPECIALS:
        vocab[token] = len(vocab)
    tok = LlamaTokenizer(vocab=vocab, merges=merges, unk_token="<unk>", bos_token="<|begin_of_text|>",
                         eos_token="<|end_of_text|>", pad_token="<pad>", add_prefix_space=True)
    tok.add_special_tokens({"additional_special_tokens": LLAMA_SPECIALS[2:6]})
    return tok


def build_hunyuan(image_condition_type: str = "token_replace"):
    """HunyuanVideo I2V: ``token_replace`` is the 16-channel HunyuanVideo-I2V, ``latent_concat`` the 33ch one."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoImageToVideoPipeline, HunyuanVideoTransformer3DModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    concat = image_condition_type == "latent_concat"
    _seed()
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=2 * 4 + 1 if concat else 4, out_channels=4, num_attention_heads=2, attention_head_dim=10,
        num_layers=1, num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1,
        guidance_embeds=not concat, text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
        image_condition_type=image_condition_type,
    )
    _seed()
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    tokenizer = llama_tokenizer()
    text_config = LlamaConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              hidden_size=16, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
                              num_hidden_layers=2, pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer),
                              hidden_act="gelu")
    vision_config = CLIPVisionConfig(hidden_size=8, intermediate_size=37, projection_dim=32, num_attention_heads=4,
                                     num_hidden_layers=2, image_size=224, patch_size=32)
    llava_config = LlavaConfig(vision_config=vision_config, text_config=text_config,
                               pad_token_id=tokenizer.pad_token_id,
                               image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    _seed()
    text_encoder = LlavaForConditionalGeneration(llava_config)
    text_encoder_2 = clip_text_encoder(hidden_size=8)
    image_processor = CLIPImageProcessor(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True,
                                         image_mean=[0.48145466, 0.4578275, 0.40821073],
                                         image_std=[0.26862954, 0.26130258, 0.27577711], resample=3, size=224)
    return HunyuanVideoImageToVideoPipeline(text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                                            vae=vae, scheduler=scheduler, text_encoder_2=text_encoder_2,
                                            tokenizer_2=clip_tokenizer(), image_processor=image_processor)
