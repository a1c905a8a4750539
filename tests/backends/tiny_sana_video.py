"""A tiny seeded SANA-Video image-to-video pipeline, built offline in-process.

The transformer, VAE and scheduler follow diffusers' own fast test (tests/pipelines/sana_video/
test_sana_video_i2v.py, ``get_dummy_components``): a two-block ``SanaVideoTransformer3DModel``
(``sample_size=8``, patch ``(1, 2, 2)``), the tiny ``AutoencoderKLWan`` (8x in space, 4x in time, like
the released Wan 2.1 VAE) and ``FlowMatchEulerDiscreteScheduler``. Differences, each for a reason:

- the scheduler's ``shift`` is 8.0, what diffusers' conversion script (scripts/convert_sana_video_to_
  diffusers.py) gives the I2V scheduler ("flow-euler", ``flow_shift = 8.0``); the fast test keeps 1.0.
- the text side needs no download: the fast test loads ``hf-internal-testing/dummy-gemma``; here the
  ``GemmaTokenizer`` is built from an in-memory vocabulary (SentencePiece-style ``\u2581`` words for
  ``WORDS``, single letters, and the 256 byte-fallback tokens), and the ``Gemma2Model`` is the fast
  test's tiny config with the tokenizer's vocabulary size.

``build_sana_video_t2v_folder`` is the layout the released ``Efficient-Large-Model/SANA-Video_2B_480p_
diffusers`` has: the same components saved as a ``SanaVideoPipeline`` with a flow DPM-Solver scheduler
(the conversion script's default ``flow-dpm_solver``, ``flow_shift=8.0``), which diffusers' docs load
with ``SanaImageToVideoPipeline`` and a ``FlowMatchEulerDiscreteScheduler``.
"""

from __future__ import annotations

import torch

from .tiny_components import WORDS

TEXT_HIDDEN = 8  # Gemma2's width = the transformer's caption_channels
SHIFT = 8.0  # the I2V scheduler's flow shift (diffusers' conversion script)
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]


def gemma_tokenizer():
    """A Gemma (SentencePiece-style BPE with byte fallback) tokenizer: the specials, the 256 byte tokens,
    single letters, and every word of WORDS (with its leading \u2581) as one token."""
    from transformers import GemmaTokenizer

    vocab = {token: i for i, token in enumerate(GEMMA_SPECIALS)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in "\u2581abcdefghijklmnopqrstuvwxyz0123456789,.:'":
        vocab.setdefault(c, len(vocab))
    merges = []
    for w in WORDS:  # "\u2581word" built by merging left to right
        pieces = ["\u2581"] + list(w)
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            if (a, b) not in merges:
                merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    return GemmaTokenizer(vocab=vocab, merges=merges)


def _components():
    from diffusers import AutoencoderKLWan, SanaVideoTransformer3DModel
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    tokenizer = gemma_tokenizer()
    torch.manual_seed(0)
    text_encoder = Gemma2Model(Gemma2Config(
        head_dim=16, hidden_size=TEXT_HIDDEN, initializer_range=0.02, intermediate_size=64,
        max_position_embeddings=8192, model_type="gemma2", num_attention_heads=2, num_hidden_layers=1,
        num_key_value_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, attn_implementation="eager"))
    torch.manual_seed(0)
    transformer = SanaVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
        caption_channels=TEXT_HIDDEN, mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=8,
        patch_size=(1, 2, 2), norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return dict(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                transformer=transformer.eval())


def build_sana_video(shift: float = SHIFT):
    """SANA-Video I2V with tiny seeded components, saved as a ``SanaImageToVideoPipeline``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaImageToVideoPipeline

    return SanaImageToVideoPipeline(**_components(), scheduler=FlowMatchEulerDiscreteScheduler(shift=shift))


def build_sana_video_t2v_folder(shift: float = SHIFT):
    """The same components as the released folder holds them: a ``SanaVideoPipeline`` with the conversion
    script's default flow DPM-Solver scheduler."""
    from diffusers import DPMSolverMultistepScheduler, SanaVideoPipeline

    scheduler = DPMSolverMultistepScheduler(flow_shift=shift, use_flow_sigmas=True, prediction_type="flow_prediction")
    return SanaVideoPipeline(**_components(), scheduler=scheduler)
