"""Text-guided Stable Video Diffusion: SVD whose U-Net also cross-attends to the prompt.

A fine-tuned SVD folder with a ``text_proj/`` subfolder (``i2v train --text-conditioning``)
runs on this pipeline: the prompt is encoded by the frozen MiniLM, projected by
``TextProjection`` and appended to SVD's image token, for the conditional and (with the
negative prompt) the unconditional half of classifier-free guidance. Everything else is
diffusers' ``StableVideoDiffusionPipeline``.
"""

from __future__ import annotations

import torch
from diffusers import StableVideoDiffusionPipeline

from ..models.text_projection import svd_encoder_states


class TextGuidedSVDPipeline(StableVideoDiffusionPipeline):
    text_proj = None  # TextProjection, set by from_svd
    text_encoder = None  # MiniLMTextEncoder
    _text_tokens: torch.Tensor | None = None  # (2, L, D): negative, positive; set for one __call__

    @classmethod
    def from_svd(cls, pipe: StableVideoDiffusionPipeline, text_proj, text_encoder) -> "TextGuidedSVDPipeline":
        """Share the loaded SVD components; add the text projection and encoder."""
        new = cls(**pipe.components)
        new.text_proj, new.text_encoder = text_proj, text_encoder
        return new

    @torch.no_grad()
    def encode_prompt_tokens(self, prompt: str, negative_prompt: str = "") -> torch.Tensor:
        text = self.text_encoder.encode([negative_prompt, prompt])  # states (2, L, 384)
        proj = self.text_proj
        return proj(text.states.to(proj.device, proj.dtype), text.mask.to(proj.device))  # (2, L, D)

    def _encode_image(self, image, device, num_videos_per_prompt, do_classifier_free_guidance):
        embeds = super()._encode_image(image, device, num_videos_per_prompt, do_classifier_free_guidance)
        # embeds: (B, 1, D), or (2B, 1, D) = [zeros, image] with guidance
        tokens = self._text_tokens.to(embeds.device, embeds.dtype)
        b = embeds.shape[0] // 2 if do_classifier_free_guidance else embeds.shape[0]
        neg, pos = tokens[:1].expand(b, -1, -1), tokens[1:].expand(b, -1, -1)
        text = torch.cat([neg, pos]) if do_classifier_free_guidance else pos
        return svd_encoder_states(embeds, text)  # (B or 2B, 1 + L, D)

    def __call__(self, image, prompt: str = "", negative_prompt: str = "", **kwargs):
        self._text_tokens = self.encode_prompt_tokens(prompt, negative_prompt)
        try:
            return super().__call__(image, **kwargs)
        finally:
            self._text_tokens = None
