"""A tiny seeded Kandinsky 5.0 image-to-video pipeline, built offline in-process.

The transformer and scheduler follow diffusers' own fast test (tests/pipelines/kandinsky5/
test_kandinsky5_i2v.py, ``get_dummy_components``): a ``Kandinsky5Transformer3DModel`` with
``visual_cond=True`` (the I2V models' image-condition channels), one text block and two visual blocks,
``attention_type="regular"``, and ``FlowMatchEulerDiscreteScheduler(shift=7.0)``; ``nabla=True`` gives it
the NABLA sparse attention of the reference's HD config instead (PyTorch's flex attention, sides of 128
pixels). The differences, each for a reason:

- the VAE is ``tiny_components``' HunyuanVideo VAE (four 8-channel blocks, 4 latent channels), smaller
  than the fast test's (32/64 channels, 16 latent channels) with the same compression as the released
  one: 8x in space, 4x in time.
- the transformer's zero-initialised modulations (its gates) get small random values, as
  ``tiny_components`` does for ControlNets: a fresh model ignores its text, and the tests check that
  the prompt reaches the video.
- the text side needs no download. ``tokenizer``: the pipeline takes a ``Qwen2VLProcessor`` (its type;
  the fast test loads one), which transformers cannot build without torchvision (its video processor); the pipeline only calls it
  on text (``images=None, videos=None``) and ``decode``s, which the processor hands to its tokenizer, so
  the tiny folder holds that tokenizer itself: a byte-level BPE ``Qwen2Tokenizer`` over an in-memory
  vocabulary with merges for every word of the pipeline's prompt template and of ``WORDS``, so that the
  template is about 200 tokens (Qwen's: the 128 the pipeline's ``prompt_template_encode_start_idx``
  skips) rather than 700 byte tokens that ``max_sequence_length`` would cut into. ``text_encoder``: a
  random tiny ``Qwen2_5_VLForConditionalGeneration`` whose vocabulary is the tokenizer's (the fast test:
  Qwen's 152064 tokens and ``hf-internal-testing`` tokenizers). ``tokenizer_2`` / ``text_encoder_2``:
  ``tiny_components``' in-memory CLIP tokenizer and tiny CLIP text model.
"""

from __future__ import annotations

import re

import torch

from .tiny_components import WORDS, _randomize_zero_init, clip_text_encoder, clip_tokenizer

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_HIDDEN = 16  # the prompt embeddings' width (the transformer's in_text_dim)
CLIP_HIDDEN = 8  # the pooled CLIP embedding's width (the transformer's in_text_dim2)
SHIFT = 7.0  # the fast test's scheduler shift


def template_words() -> list[str]:
    """The words of the installed pipeline's own Qwen prompt template."""
    from diffusers import Kandinsky5I2VPipeline

    template = Kandinsky5I2VPipeline(*[None] * 7).prompt_template  # no components: just the template
    return sorted(set(re.findall(r"[A-Za-z]+", template)) - {"im", "start", "end"})


def qwen_tokenizer():
    """A byte-level BPE Qwen2 tokenizer: every byte, each word of the prompt template and of WORDS (with and
    without a leading space) as one token, and the ChatML specials."""
    from transformers import Qwen2Tokenizer

    from .tiny_hunyuan15 import _byte_chars

    vocab = {c: i for i, c in enumerate(_byte_chars())}
    merges, seen = [], set()
    for word in [*template_words(), *WORDS]:
        for pieces in (["\u0120"] + list(word), list(word)):  # "\u0120word" (after a space) and "word"
            while len(pieces) > 1:
                a, b = pieces[0], pieces[1]
                if (a, b) not in seen:
                    seen.add((a, b))
                    merges.append((a, b))
                vocab.setdefault(a + b, len(vocab))
                pieces = [a + b] + pieces[2:]
    for token in QWEN_SPECIALS:
        vocab[token] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    return tok


def qwen_text_encoder(tokenizer):
    """A random tiny Qwen2.5-VL (two 16-wide layers) over the tokenizer's vocabulary."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": QWEN_HIDDEN, "intermediate_size": QWEN_HIDDEN, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": len(tokenizer),
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.pad_token_id,
                     "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                     "rope_theta": 1000000.0},
        vision_config={"depth": 2, "hidden_size": QWEN_HIDDEN, "intermediate_size": QWEN_HIDDEN, "num_heads": 2,
                       "out_hidden_size": QWEN_HIDDEN},
        hidden_size=QWEN_HIDDEN, vocab_size=len(tokenizer),
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


# NABLA sparse attention as the reference's HD config sets it (configs/k5_pro_i2v_5s_sft_hd.yaml)
NABLA = dict(attention_type="nabla", attention_P=0.8, attention_wT=11, attention_wW=3, attention_wH=3,
             attention_add_sta=True, attention_method="topcdf")


def build_kandinsky5(shift: float = SHIFT, nabla: bool = False):
    """Kandinsky 5.0 I2V with tiny seeded components; ``nabla``: NABLA sparse attention (sides of 128 pixels,
    PyTorch's flex attention), the reference's HD setting."""
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler, Kandinsky5I2VPipeline,
                           Kandinsky5Transformer3DModel)

    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
        temporal_compression_ratio=4, mid_block_add_attention=True,
    )
    torch.manual_seed(0)
    transformer = Kandinsky5Transformer3DModel(
        in_visual_dim=4, in_text_dim=QWEN_HIDDEN, in_text_dim2=CLIP_HIDDEN, time_dim=16, out_visual_dim=4,
        patch_size=(1, 2, 2), model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(1, 1, 2),
        visual_cond=True, **(NABLA if nabla else {"attention_type": "regular"}),
    )
    _randomize_zero_init(transformer)  # its modulations start at zero: the prompt would not reach the output
    tokenizer = qwen_tokenizer()
    text_encoder = qwen_text_encoder(tokenizer)
    text_encoder_2 = clip_text_encoder(hidden_size=CLIP_HIDDEN)
    return Kandinsky5I2VPipeline(transformer=transformer.eval(), vae=vae.eval(), text_encoder=text_encoder,
                                 tokenizer=tokenizer, text_encoder_2=text_encoder_2.eval(),
                                 tokenizer_2=clip_tokenizer(), scheduler=FlowMatchEulerDiscreteScheduler(shift=shift))
