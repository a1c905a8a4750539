"""Tiny seeded Cosmos Predict pipelines, built offline in-process.

The configs follow diffusers' own fast tests (tests/pipelines/cosmos/test_cosmos2_video2world.py and
test_cosmos2_5_predict.py, ``get_dummy_components``): a two-block ``CosmosTransformer3DModel`` and the
tiny ``AutoencoderKLWan``. Three differences, each for a reason:

- ``concat_padding_mask=False``: with the released models' ``True`` the transformer resizes its padding
  mask with torchvision, which this environment lacks (i2v refuses such a model without torchvision
  before any weights load, tested in test_cosmos.py); the mask is all zeros in every i2v and stock
  call, so nothing the tests compare depends on it.
- the text side needs no download: Predict2 takes ``tiny_components``' in-memory T5 tokenizer and
  tiny T5 encoder; Predict2.5 a byte-level Qwen2 tokenizer over an in-memory vocabulary with a
  Qwen2-VL-style chat template (the pipeline calls ``apply_chat_template`` with typed content parts)
  and a tiny random ``Qwen2_5_VLForConditionalGeneration`` whose vocabulary is the tokenizer's (the
  fast test downloads ``hf-internal-testing`` tokenizers and uses Qwen's 152064-token vocabulary).
- the folders are saved as diffusers' conversion script (scripts/convert_cosmos_to_diffusers.py)
  saves NVIDIA's: with a safety checker that cannot be saved, so ``model_index.json`` lists
  ``"safety_checker": [null, null]`` and loading the folder builds diffusers' ``CosmosSafetyChecker``
  (the ``cosmos_guardrail`` package) unless one is passed.

``DummyCosmosSafetyChecker`` is the pass-through diffusers' fast tests load the stock pipelines with
(tests/pipelines/cosmos/cosmos_guardrail.py): the stock side of the parity tests passes it, as
those tests do, because ``cosmos_guardrail`` is not installed here.
"""

from __future__ import annotations

import torch

from .tiny_components import WORDS, t5_encoder, t5_tokenizer

# Qwen2-VL's template renders typed content parts ({"type": "text", "text": ...}); ChatML around them
CHAT_TEMPLATE = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
                 "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
                 "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
                 "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Predict2.5's scheduler as scripts/convert_cosmos_to_diffusers.py saves it (save_pipeline_cosmos2_5_predict)
SCHEDULER_25 = dict(use_karras_sigmas=True, use_flow_sigmas=True, prediction_type="flow_prediction",
                    sigma_max=200.0, sigma_min=0.01)


class DummyCosmosSafetyChecker(torch.nn.Module):
    """diffusers' fast tests' pass-through guardrail: every prompt is safe, every video unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_tracker", torch.zeros(1, dtype=torch.float32), persistent=False)

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames

    @property
    def device(self) -> torch.device:
        return self._device_tracker.device

    @property
    def dtype(self) -> torch.dtype:
        return self._device_tracker.dtype


def _unsaveable_checker(*args, **kwargs):
    """What diffusers' conversion script builds NVIDIA's folders with: saved as [null, null]."""
    return None


def _vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _transformer(text_embed_dim: int = 32):
    """diffusers' fast-test transformer (16 latent channels + the condition mask), without the padding mask."""
    from diffusers import CosmosTransformer3DModel

    torch.manual_seed(0)
    return CosmosTransformer3DModel(in_channels=16 + 1, out_channels=16, num_attention_heads=2, attention_head_dim=16,
                                    num_layers=2, mlp_ratio=2, text_embed_dim=text_embed_dim, adaln_lora_dim=4,
                                    max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
                                    concat_padding_mask=False, extra_pos_embed_type="learnable")


def build_cosmos2():
    """Cosmos-Predict2 Video2World: T5 text, Euler flow scheduler with Karras sigmas (diffusers' fast test)."""
    from diffusers import Cosmos2VideoToWorldPipeline, FlowMatchEulerDiscreteScheduler

    vae, transformer = _vae(), _transformer()
    scheduler = FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True)
    return Cosmos2VideoToWorldPipeline(text_encoder=t5_encoder(32), tokenizer=t5_tokenizer(), transformer=transformer,
                                       vae=vae, scheduler=scheduler, safety_checker=_unsaveable_checker)


def qwen_tokenizer():
    """A byte-level BPE Qwen2 tokenizer: every byte, the words of WORDS (with their leading space) as one
    token each, the ChatML specials, and a chat template that renders typed content parts."""
    from transformers import Qwen2Tokenizer

    from .tiny_hunyuan15 import _byte_chars

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


def build_cosmos25():
    """Cosmos-Predict2.5 base: a tiny Qwen2.5-VL text encoder (two layers of 16: 32-wide prompt embeddings)
    and the UniPC flow scheduler diffusers' conversion script saves in NVIDIA's folders (the fast test
    uses UniPC's plain defaults)."""
    from diffusers import Cosmos2_5_PredictBasePipeline, UniPCMultistepScheduler
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vae, transformer = _vae(), _transformer()
    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tokenizer),
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.pad_token_id,
                     "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                     "rope_theta": 1000000.0},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tokenizer),
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    torch.manual_seed(0)
    return Cosmos2_5_PredictBasePipeline(text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                                         vae=vae, scheduler=UniPCMultistepScheduler(**SCHEDULER_25),
                                         safety_checker=_unsaveable_checker)


BUILDERS = {
    "cosmos2": build_cosmos2,
    "cosmos25": build_cosmos25,
}
