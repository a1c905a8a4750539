"""Tiny randomly initialised stand-ins for CLIP, DINO (ViT), the StyleGAN-V I3D file and an Inception-v3
classifier.

They prove the loading and plumbing of ``i2v.metrics.learned`` offline; their scores mean
nothing and are never reported as real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def make_tiny_clip(folder: Path) -> Path:
    """A saved CLIPModel (16-d) with a character-level tokenizer and a 32 px image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<|endoftext|>")
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8)
    CLIPModel(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def make_tiny_vit(folder: Path) -> Path:
    """A saved ViTModel (DINO's architecture family), 32 px input, 8 px patches."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)
    ViTModel(config).save_pretrained(folder)
    return folder


class TinyI3D(torch.nn.Module):
    """StyleGAN-V I3D's call signature over a (B, 3, T, H, W) batch; 8-d features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(6, 8)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1.0  # [0, 255] -> [-1, 1]
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 16, 16), mode="trilinear", align_corners=False)
        stats = torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)  # (B, 6)
        features = self.proj(stats)
        if return_features:
            return features
        return features.softmax(-1)


def make_tiny_i3d(path: Path) -> Path:
    """A TorchScript file of ``TinyI3D`` (what ``torch.jit.load`` of i3d_torchscript.pt returns)."""
    torch.jit.script(TinyI3D().eval()).save(str(path))
    return path


class TinyInception(torch.nn.Module):
    """An image classifier's call signature: (B, 3, 299, 299) -> (B, 10) logits from colour statistics."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)  # (B, 6)
        return 4.0 * self.proj(stats)


def make_tiny_inception(path: Path) -> Path:
    torch.jit.script(TinyInception().eval()).save(str(path))
    return path
