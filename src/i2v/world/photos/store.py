"""Writing the gathered photographs: decode, downscale, encode, atomic writes and the manifest."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_SIDE = 2048  # keeps the data set small; clips are 256 pixels and zooms crop at most 1.8x
JPEG_QUALITY = 95
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as stored, read from the header only; None when Pillow cannot read it."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a candidate
        return None


def load_rgb(path: Path, max_side: int = MAX_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W, 3) uint8 RGB, EXIF-transposed, long side at most max_side; and the (width, height) before."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            # transparent pixels show black, as a viewer without a backdrop would
            im = im.convert("RGBA")
            backdrop = Image.new("RGBA", im.size, (0, 0, 0, 255))
            im = Image.alpha_composite(backdrop, im)
        im = im.convert("RGB")
        original = im.size
        scale = max_side / max(im.size)
        if scale < 1:
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        return np.asarray(im), original


def encode_jpeg(image: np.ndarray) -> bytes:
    """High-quality JPEG (4:4:4, no metadata); the same pixels always give the same bytes."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_manifest(out_dir: Path) -> dict | None:
    """The manifest of an earlier run, or None (absent, unreadable or another version)."""
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MANIFEST_VERSION else None


def write_manifest(out_dir: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    write_atomic(Path(out_dir) / MANIFEST, text.encode())
