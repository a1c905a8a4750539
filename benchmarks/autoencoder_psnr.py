"""Reconstruction PSNR of an autoencoder on the held-out photos and on shapes-world frames.

    python benchmarks/autoencoder_psnr.py --vae src/i2v/weights/i2v-tiny/vae --photos data/photos
    python benchmarks/autoencoder_psnr.py --vae runs/vae/checkpoints/step_00001000 --preset photo --photos data/photos

A photo is seen as a user's photo reaches the model: resized (Lanczos) so its short side is 128 or
256 pixels, centre-cropped square. ``--vae`` is a saved autoencoder folder, or a training checkpoint
folder (``vae.safetensors``) with the ``--preset`` it was built from. The issue's target: >= 30 dB
on held-out photos at 128 and at 256.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def load_vae(path: Path, preset: str | None):
    from safetensors.torch import load_file

    from i2v.models.autoencoder import build_autoencoder, load_autoencoder

    if (path / "vae.safetensors").is_file():  # a training checkpoint
        if preset is None:
            raise SystemExit("--preset is needed to build a checkpoint's autoencoder")
        vae = build_autoencoder(preset)
        vae.load_state_dict(load_file(str(path / "vae.safetensors")))
        return vae.eval()
    return load_autoencoder(path, torch_dtype=torch.float32).eval()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean() / 4))  # values in [-1, 1]: peak-to-peak 2


@torch.no_grad()
def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    return vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)


def photo_view(path: Path, side: int) -> torch.Tensor:
    """(1, 3, side, side) in [-1, 1]: the photo at ``side`` pixels on its short side, centre-cropped."""
    image = Image.open(path).convert("RGB")
    scale = side / min(image.size)
    image = image.resize((max(side, round(image.width * scale)), max(side, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    arr = np.asarray(image.crop((left, top, left + side, top + side)))  # (side, side, 3) uint8
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True, type=Path)
    p.add_argument("--preset", default=None, help="the autoencoder preset of a checkpoint folder")
    p.add_argument("--photos", default="data/photos", type=Path, help="a folder gathered by `make photos`")
    p.add_argument("--split", default="heldout")
    args = p.parse_args()
    from i2v.world.batches import video_batch

    vae = load_vae(args.vae, args.preset)
    manifest = json.loads((args.photos / "manifest.json").read_text())
    files = sorted(args.photos / e["file"] for e in manifest["images"] if e["split"] == args.split)
    for side in (128, 256):
        scores = [psnr(reconstruct(vae, x), x) for x in (photo_view(f, side) for f in files)]
        print(f"{args.split} photos at {side}: mean {np.mean(scores):.2f} dB, min {np.min(scores):.2f} dB "
              f"({len(scores)} photos)")
    videos, _ = video_batch(np.random.default_rng(999), 4, 128)  # four shapes-world clips
    frames = videos.permute(0, 2, 1, 3, 4).flatten(0, 1)[::4]  # (16, 3, 128, 128)
    print(f"shapes world at 128: {psnr(reconstruct(vae, frames), frames):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
