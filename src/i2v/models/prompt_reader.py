"""PromptReader: what a prompt asks to move, read from MiniLM's token states.

Three classifiers share the frozen sentence encoder's token states: the motion (the procedural
world's motions, plus ``other`` for a prompt that asks none of them), the named object's colour
(the world's colours, or ``none``) and its shape (the world's shapes, ``any`` for "the red one",
or ``none`` for anything else: "the dog", "the camera"). Each pools the states with a few learned
queries (attention pooling: the colour head can look at the colour word wherever it stands), then
a linear map. A reader configured with ``layers`` reads a learned mix (per head) of those hidden
layers' states instead of the last layer's alone: the frozen encoder places some words the
training prompts lack near their meaning at an earlier layer only ("skyward" at layers 2-4; the
model card's probe). Trained on the world's captions (``i2v.training.train_reader``); read by
``i2v.motion.prompt_motion``, which finds the object in the first frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

HEADS = ("motion", "colour", "shape")
LAST_LAYER = 6  # MiniLM-L6's last hidden layer (0: its input embeddings)


def readable_layers(layers: list[int]) -> bool:
    """Whether a reader can read these hidden layers: MiniLM's (0 to LAST_LAYER), rising, ending with the
    last (the sentence embedding is its mean)."""
    return (all(isinstance(k, int) and 0 <= k <= LAST_LAYER for k in layers) and list(layers) == sorted(set(layers))
            and layers[-1] == LAST_LAYER)


class AttentionPoolHead(nn.Module):
    """(B, L, D) states, (B, L) mask -> (B, classes) logits through ``queries`` learned attention pools and
    the sentence embedding (the states' normalised mean, what MiniLM was trained to make semantic: a
    paraphrase the heads never saw lands near the words they did)."""

    def __init__(self, dim: int, classes: int, queries: int, layers: int = 1):
        super().__init__()
        # softmax weights of each layer's states; one layer: no mix (the last layer's states as they are)
        self.mix = nn.Parameter(torch.zeros(layers)) if layers > 1 else None
        self.queries = nn.Parameter(torch.randn(queries, dim) * dim**-0.5)
        self.key = nn.Linear(dim, dim)
        self.out = nn.Linear((queries + 1) * dim, classes)

    def forward(self, states: torch.Tensor, mask: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        # states: (B, L, K, D), K layers -> their mix (B, L, D)
        states = states[:, :, -1] if self.mix is None else torch.einsum("blkd,k->bld", states, self.mix.softmax(0))
        scores = torch.einsum("qd,bld->bql", self.queries, self.key(states))  # (B, Q, L)
        scores = scores.masked_fill(mask[:, None] < 0.5, float("-inf"))
        pooled = torch.einsum("bql,bld->bqd", scores.softmax(-1), states)  # (B, Q, D)
        return self.out(torch.cat([pooled.flatten(1), sentence], 1))


class PromptReader(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, motions: list[str], colours: list[str], shapes: list[str], text_dim: int = 384,
                 queries: int = 2, dropout: float = 0.1, layers: list[int] | None = None):
        # layers: the encoder's hidden layers read (0: its input embeddings, 6: its last; the last must be
        # last: the sentence embedding is its mean); None: the last alone
        super().__init__()
        count = len(layers) if layers else 1
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({
            "motion": AttentionPoolHead(text_dim, len(motions), queries, count),
            "colour": AttentionPoolHead(text_dim, len(colours), queries, count),
            "shape": AttentionPoolHead(text_dim, len(shapes), queries, count),
        })

    def encode(self, text_encoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The states this reader reads, (B, L, D) or (B, L, K, D) with ``layers``, and the mask (B, L)."""
        if not self.config.layers:
            text = text_encoder.encode(prompts)
            return text.states, text.mask
        return text_encoder.encode_layers(prompts, list(self.config.layers))

    def labels(self, head: str) -> list[str]:
        return list(getattr(self.config, {"motion": "motions", "colour": "colours", "shape": "shapes"}[head]))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        # states: (B, L, text_dim) MiniLM's last hidden states, or (B, L, K, text_dim) the ``layers``' (the last
        # last); mask: (B, L) 1 on tokens -> {head: (B, classes)}
        states = states.float() if states.dim() == 4 else states.float()[:, :, None]  # (B, L, K, D)
        if states.shape[2] != len(self.config.layers or [LAST_LAYER]):
            raise ValueError(f"this reader reads hidden layers {self.config.layers or [LAST_LAYER]}; got states of "
                             f"{states.shape[2]} layers (read them with reader.encode)")
        mask = mask.float()
        mean = (states[:, :, -1] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D)
        sentence = F.normalize(mean, dim=-1)
        states = self.drop(states)
        return {name: head(states, mask, self.drop(sentence)) for name, head in self.heads.items()}

    @torch.no_grad()
    def probabilities(self, states: torch.Tensor, mask: torch.Tensor) -> list[dict[str, dict[str, float]]]:
        """Per prompt, each head's probability of each label."""
        logits = self.eval()(states, mask)
        out = [{} for _ in range(states.shape[0])]
        for name, value in logits.items():
            probs, labels = F.softmax(value.float(), -1).tolist(), self.labels(name)
            for i, row in enumerate(probs):
                out[i][name] = dict(zip(labels, row))
        return out

    def read(self, states: torch.Tensor, mask: torch.Tensor) -> list[dict[str, tuple[str, float]]]:
        """Per prompt, each head's most likely label and its probability."""
        return [{name: max(p.items(), key=lambda kv: kv[1]) for name, p in row.items()}
                for row in self.probabilities(states, mask)]
