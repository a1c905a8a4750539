"""TextProjection: MiniLM token states -> extra cross-attention tokens for Stable Video Diffusion.

SVD's U-Net cross-attends to one token, the CLIP image embedding; it takes no text. i2v's
text-guided SVD appends the prompt's MiniLM token states, projected to the U-Net's
``cross_attention_dim``, after that token: ``encoder_hidden_states = [image, text_1..text_L]``.
The projection is trained with the U-Net (``i2v train --model SVD_FOLDER --text-conditioning``)
and saved as the ``text_proj/`` folder of the fine-tuned model.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class TextProjection(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, text_dim: int = 384, cross_attention_dim: int = 1024):
        super().__init__()
        self.norm = nn.LayerNorm(text_dim)
        self.proj = nn.Linear(text_dim, cross_attention_dim)
        nn.init.normal_(self.proj.weight, std=0.02)  # small: new tokens start close to "no text"
        nn.init.zeros_(self.proj.bias)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # states: (B, L, text_dim); mask: (B, L) 1 = real token -> (B, L, cross_attention_dim)
        tokens = self.proj(self.norm(states))
        if mask is not None:  # padding tokens become zero vectors (zero keys and values)
            tokens = tokens * mask[..., None].to(tokens.dtype)
        return tokens


def svd_encoder_states(image_embeds: torch.Tensor, text_tokens: torch.Tensor | None) -> torch.Tensor:
    """(B, 1, D) image embedding [+ (B, L, D) text tokens] -> (B, 1 + L, D) encoder_hidden_states."""
    if text_tokens is None:
        return image_embeds
    return torch.cat([image_embeds, text_tokens.to(image_embeds.dtype)], dim=1)
