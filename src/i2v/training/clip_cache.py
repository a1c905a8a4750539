"""A disk cache of encoded training clips (``i2v train --cache-latents``).

Each clip's frozen-encoder outputs (VAE latents; for SVD also the first frame and its CLIP
embedding) are computed once and stored as ``clip_<video>_<k>.safetensors``; captions go
through the text encoder's own per-prompt cache. ``manifest.json`` (written last, atomically)
lists the clips with their caption and size bucket, plus a fingerprint of the settings that
produced them: a cache built for another model, size or frame count is refused, not reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import DatasetError, StaleCacheError

MANIFEST = "manifest.json"


def build_clip_cache(trainable, dataset, folder: str | Path, clips_per_video: int, fingerprint: dict,
                     device, log=print) -> Path:
    """Encode ``clips_per_video`` evenly spaced clips of every video; resumes file by file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST
    if manifest.exists():
        check_fingerprint(folder, fingerprint)
        return folder
    entries = []
    for i, record in enumerate(dataset.records):
        try:
            starts = dataset.clip_starts(i, clips_per_video)
            for k, start in enumerate(starts):
                name = f"clip_{i:06d}_{k:02d}.safetensors"
                if not (folder / name).exists():
                    video = dataset.load_clip(i, start)[None].to(device)  # (1, 3, T, H, W)
                    fps = torch.tensor([record.fps / dataset.frame_stride], device=device)
                    cond = trainable.encode_video(video, fps)
                    tmp = folder / f".{name}.tmp"
                    save_file({key: v[0].float().contiguous().cpu() for key, v in cond.items()}, str(tmp))
                    os.replace(tmp, folder / name)
                entries.append({"file": name, "caption": record.caption, "size": list(dataset.size_of(i)),
                                "video": str(record.path), "start": start})
        except DatasetError as exc:  # decodes badly although its header probed fine: skip, counted
            log(f"warning: skipping {record.path}: {exc}")
            dataset.skipped.append((record.path, str(exc)))
        if (i + 1) % 50 == 0:
            log(f"clip cache: {i + 1}/{len(dataset.records)} videos")
    if not entries:
        raise StaleCacheError(f"no clip could be encoded into {folder}")
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "clips": entries}, indent=1))
    os.replace(tmp, manifest)
    return folder


def check_fingerprint(folder: Path, fingerprint: dict) -> None:
    found = json.loads((folder / MANIFEST).read_text()).get("fingerprint")
    if found != fingerprint:
        raise StaleCacheError(f"the clip cache in {folder} was built with other settings ({found}); expected "
                              f"{fingerprint}. Delete it or pass another --cache-dir")


class ClipCache:
    """Cached clips grouped by size bucket; ``sample`` draws a batch from one bucket."""

    def __init__(self, folder: str | Path, fingerprint: dict):
        self.folder = Path(folder)
        check_fingerprint(self.folder, fingerprint)
        self.clips = json.loads((self.folder / MANIFEST).read_text())["clips"]
        self.buckets: dict[tuple[int, int], list[int]] = {}
        for i, clip in enumerate(self.clips):
            self.buckets.setdefault(tuple(clip["size"]), []).append(i)
        self.bucket_keys = sorted(self.buckets)

    def __len__(self) -> int:
        return len(self.clips)

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[dict[str, torch.Tensor], list[str]]:
        """A batch that is a pure function of ``rng``: a bucket (by size), then clips from it."""
        weights = np.array([len(self.buckets[k]) for k in self.bucket_keys], dtype=float)
        key = self.bucket_keys[rng.choice(len(self.bucket_keys), p=weights / weights.sum())]
        picks = [self.buckets[key][j] for j in rng.integers(len(self.buckets[key]), size=batch_size)]
        loaded = [load_file(str(self.folder / self.clips[i]["file"])) for i in picks]
        cond = {name: torch.stack([item[name] for item in loaded]) for name in loaded[0]}
        return cond, [self.clips[i]["caption"] for i in picks]
