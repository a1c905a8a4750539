"""Tiny seeded Helios pipelines (``HeliosPipeline`` and ``HeliosPyramidPipeline``), built offline in-process.

The configs mirror diffusers' own fast test (tests/pipelines/helios/test_helios.py,
``get_dummy_components``): Wan's tiny VAE (8x space, 4x time, so each chunk of 9 latent frames
decodes to the released 33 frames), a two-block ``HeliosTransformer3DModel`` with the multi-term
memory patches, guidance cross-attention and zero-history timestep of the released checkpoints, and
the one-stage ``HeliosScheduler`` with dynamic shifting. The text side is ``tiny_components``'
in-memory T5 tokenizer and tiny T5 encoder (the fast test downloads ``hf-internal-testing/tiny-random-t5``).

The pyramid pipelines (diffusers has no fast test of them) take the same components with the
three-stage schedulers the Helios-Mid and Helios-Distilled folders are documented with:
``HeliosScheduler`` (three stages, UniPC) with CFG-Zero* for Mid, ``HeliosDMDScheduler`` (three
stages) with ``is_distilled`` for Distilled. Their ``gamma`` (the correlation of the block noise added
when a stage is upsampled) is 0.25 here: with the schedulers' default 1/3 the 2x2 block covariance
``(1 + gamma) I - gamma 11^T`` is singular (its eigenvalue ``1 - 3 gamma`` is 0), and the pipeline's
Cholesky factorisation of it fails on a CPU. (The released folders' value could not be read here.)

``BUILDERS`` names them for the test fixtures: ``helios`` (Base), ``helios-mid``, ``helios-distilled``.
"""

from __future__ import annotations

import torch

from .tiny_components import t5_encoder, t5_tokenizer

GAMMA = 0.25  # the pyramid schedulers' block-noise correlation (see the module docstring)


def _vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _transformer():
    from diffusers import HeliosTransformer3DModel

    torch.manual_seed(0)
    return HeliosTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                    in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                    num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                    rope_dim=(4, 4, 4), has_multi_term_memory_patch=True, guidance_cross_attn=True,
                                    zero_history_timestep=True, is_amplify_history=False)


def build_helios():
    """Helios-Base: ``HeliosPipeline`` with the one-stage ``HeliosScheduler`` (dynamic shifting)."""
    from diffusers import HeliosPipeline, HeliosScheduler

    vae = _vae()
    scheduler = HeliosScheduler(stage_range=[0, 1], stages=1, use_dynamic_shifting=True)
    return HeliosPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32), vae=vae, scheduler=scheduler,
                          transformer=_transformer())


def build_helios_pyramid(distilled: bool = False):
    """Helios-Mid (``distilled=False``: three-stage UniPC ``HeliosScheduler``, CFG-Zero*) or Helios-Distilled
    (``HeliosDMDScheduler``, ``is_distilled``): ``HeliosPyramidPipeline``."""
    from diffusers import HeliosDMDScheduler, HeliosPyramidPipeline, HeliosScheduler

    vae = _vae()
    if distilled:
        scheduler = HeliosDMDScheduler(stages=3, gamma=GAMMA, use_dynamic_shifting=True)
    else:
        scheduler = HeliosScheduler(stages=3, gamma=GAMMA, use_dynamic_shifting=True)
    return HeliosPyramidPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_encoder(32), vae=vae, scheduler=scheduler,
                                 transformer=_transformer(), is_cfg_zero_star=not distilled, is_distilled=distilled)


BUILDERS = {
    "helios": build_helios,
    "helios-mid": build_helios_pyramid,
    "helios-distilled": lambda: build_helios_pyramid(distilled=True),
}
