"""A tiny seeded HunyuanVideo 1.5 image-to-video pipeline, built offline in-process.

The transformer, VAE, scheduler, text encoder and guider follow diffusers' own fast test
(tests/pipelines/hunyuan_video1_5/test_hunyuan_1_5.py, ``get_dummy_components``; diffusers has no
fast test of the I2V pipeline), with ``task_type="i2v"`` and two transformer blocks (the block
caches need more than one). The I2V-only parts are built the same way: a tiny SigLIP vision tower
whose width is the transformer's ``image_embed_dim`` (12), and its image processor. The VAE
compresses 4x in time like the released one (the fast test uses 2x), so the frame rule is the
real 4n+1; it compresses 4x in space (the released 16x), so the size buckets are multiples of 4;
``target_size=32`` makes the buckets 32x32 in area (the released models: 640 / 960).

The text side, like ``tiny_components``, needs no download: the Qwen2 tokenizer is a byte-level BPE
over an in-memory vocabulary with a ChatML chat template (the pipeline calls
``apply_chat_template``), ByT5's tokenizer needs no files at all, and both encoders are random
tiny configs (the fast test downloads ``hf-internal-testing`` tokenizer and T5 config).
"""

from __future__ import annotations

import torch

from .tiny_components import WORDS, t5_encoder

CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TARGET_SIZE = 32  # the transformer's bucket base size in pixels (released: 640 at 480p, 960 at 720p)
GUIDANCE_SCALE = 6.0  # the guider's default, as in the released 480p / 720p I2V folders


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table (byte-level BPE's alphabet), in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def qwen_tokenizer():
    """A byte-level BPE Qwen2 tokenizer: every byte, the words of WORDS (with their leading space) as one
    token each, the ChatML specials, and a ChatML chat template."""
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(_byte_chars())}
    merges = []
    for w in WORDS:  # "\u0120word" (a leading space) built by merging left to right
        pieces = ["\u0120"] + list(w)
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    for token in QWEN_SPECIALS:
        vocab[token] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_hunyuan15(guidance_scale: float = GUIDANCE_SCALE, shift: float = 5.0):
    """HunyuanVideo 1.5 I2V with tiny seeded components (the released 480p I2V's guider and shift)."""
    from diffusers import (AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideo15ImageToVideoPipeline, HunyuanVideo15Transformer3DModel)
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, SiglipImageProcessor,
                              SiglipVisionConfig, SiglipVisionModel)

    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=2 * 4 + 1, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=32,
        image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=TARGET_SIZE, task_type="i2v",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=4, downsample_match_channel=False,
        upsample_match_channel=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}, rope_theta=1000000.0,
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
    tokenizer_2 = ByT5Tokenizer()
    text_encoder_2 = t5_encoder(d_model=32, vocab_size=len(tokenizer_2))
    torch.manual_seed(0)
    image_encoder = SiglipVisionModel(SiglipVisionConfig(hidden_size=12, intermediate_size=37, num_hidden_layers=2,
                                                         num_attention_heads=2, image_size=16, patch_size=4))
    feature_extractor = SiglipImageProcessor(size={"height": 16, "width": 16})
    guider = ClassifierFreeGuidance(guidance_scale=guidance_scale)
    return HunyuanVideo15ImageToVideoPipeline(
        text_encoder=text_encoder.eval(), tokenizer=tokenizer, transformer=transformer.eval(), vae=vae.eval(),
        scheduler=scheduler, text_encoder_2=text_encoder_2.eval(), tokenizer_2=tokenizer_2, guider=guider,
        image_encoder=image_encoder.eval(), feature_extractor=feature_extractor,
    )
