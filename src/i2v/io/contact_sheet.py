"""Contact sheets: a grid of frames per clip with its prompt underneath, for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .temps import partial_sibling, remove_stale_temps


def contact_sheet(rows: list[tuple[np.ndarray, str]], path: str | Path, columns: int = 8, label_height: int = 14) -> Path:
    """Write a PNG: one row per clip, ``columns`` evenly spaced frames, the caption below.

    rows: (frames (T, H, W, 3) uint8, caption) pairs; clips may differ in size.
    """
    if not rows:
        raise ValueError("contact_sheet needs at least one clip")
    tiles = []
    for frames, caption in rows:
        frames = np.asarray(frames)
        pick = np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int)
        strip = np.concatenate(list(frames[pick]), axis=1)
        label = Image.new("RGB", (strip.shape[1], label_height), (255, 255, 255))
        ImageDraw.Draw(label).text((2, 1), caption[:160], fill=(0, 0, 0), font=ImageFont.load_default())
        tiles.append(np.concatenate([strip, np.asarray(label)], axis=0))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    with partial_sibling(path) as tmp:
        Image.fromarray(np.concatenate(tiles, axis=0)).save(tmp, format="PNG")
        os.replace(tmp, path)
    return path
