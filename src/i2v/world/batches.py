"""Training batches drawn from the procedural world, as a pure function of a seed.

Batches are made on the fly (rendering a clip takes milliseconds), seeded by the training
step, so there is no loader state to checkpoint and a resumed run sees the same data.
"""

from __future__ import annotations

import numpy as np
import torch

from .captions import caption_scene
from .scenes import HELDOUT_SEED_START, render, sample_scene


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def video_batch(rng: np.random.Generator, batch_size: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """(B, 3, T, H, W) videos in [-1, 1] and their training-split captions."""
    videos, captions = [], []
    for _ in range(batch_size):
        scene = sample_scene(int(rng.integers(HELDOUT_SEED_START)))
        videos.append(frames_to_tensor(render(scene, size)))
        captions.append(caption_scene(scene, rng, "train"))
    return torch.stack(videos), captions


def frame_crops(rng: np.random.Generator, num_scenes: int, per_scene: int, crop: int, size: int) -> torch.Tensor:
    """(num_scenes * per_scene, 3, crop, crop) random crops of random frames in [-1, 1]."""
    videos, _ = video_batch(rng, num_scenes, size)  # (S, 3, T, H, W)
    crops = []
    for v in videos:
        for _ in range(per_scene):
            t = int(rng.integers(v.shape[1]))
            i, j = (int(k) for k in rng.integers(0, size - crop + 1, size=2))
            crops.append(v[:, t, i:i + crop, j:j + crop])
    return torch.stack(crops)
