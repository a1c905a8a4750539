"""A disk cache of autoencoder latents for procedural training clips.

Encoding 16 frames through the autoencoder costs more than a denoiser training step, so the
video stage encodes each training clip once. The cache is a folder of shards
(``shard_00000.safetensors`` with ``latents`` (N, C, T, h, w) fp16, plus ``shard_00000.json``
with the scenes); building resumes shard by shard.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..world.batches import frames_to_tensor
from ..world.scenes import HELDOUT_SEED_START, TRAVEL_RANGE, Scene, render, sample_scene


@torch.no_grad()
def encode_video(vae, video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> (B, C, T, h, w) scaled latents (posterior means)."""
    b, _, t = video.shape[:3]
    frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
    z = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in frames.split(64)])
    z = z * vae.config.scaling_factor
    return z.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4)


def build_latent_cache(vae, folder: str | Path, num_videos: int, seed: int = 0, shard_size: int = 256,
                       travel_range: tuple[float, float] = TRAVEL_RANGE, log=print) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seeds = rng.integers(HELDOUT_SEED_START, size=num_videos)  # training scenes only
    for shard, start in enumerate(range(0, num_videos, shard_size)):
        path = folder / f"shard_{shard:05d}.safetensors"
        if path.exists():
            continue
        scenes = [sample_scene(int(s), travel_range=travel_range) for s in seeds[start:start + shard_size]]
        latents = []
        for chunk in range(0, len(scenes), 8):
            video = torch.stack([frames_to_tensor(render(s)) for s in scenes[chunk:chunk + 8]])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=video.device.type == "cpu"):
                latents.append(encode_video(vae, video).float())
        (folder / f"shard_{shard:05d}.json").write_text(json.dumps([s.to_dict() for s in scenes]))
        tmp = path.with_suffix(".tmp")
        save_file({"latents": torch.cat(latents).half().contiguous()}, str(tmp))
        os.replace(tmp, path)  # the .safetensors appears last: a shard is complete or absent
        log(f"latent cache: shard {shard} ({start + len(scenes)}/{num_videos} clips)")
    return folder


def load_latent_cache(folder: str | Path) -> tuple[torch.Tensor, list[Scene]]:
    folder = Path(folder)
    latents, scenes = [], []
    for path in sorted(folder.glob("shard_*.safetensors")):
        latents.append(load_file(str(path))["latents"])
        scenes += [Scene.from_dict(d) for d in json.loads(path.with_suffix(".json").read_text())]
    if not latents:
        raise FileNotFoundError(f"no latent shards in {folder}")
    return torch.cat(latents), scenes
