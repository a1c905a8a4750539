"""A disk cache of autoencoder latents for the training clips: shapes-world scenes and camera moves over photos.

Encoding 16 frames through the autoencoder costs more than a denoiser training step, so the
video stage encodes each training clip once. A cache is a folder of shards
(``shard_00000.safetensors`` with ``latents`` (N, C, T, h, w) fp16, plus ``shard_00000.json``
with what each clip is: its scene, or its photo and camera move); building resumes shard by shard.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import StaleCacheError
from ..models.autoencoder import to_diffusion_latents
from ..world.batches import frames_to_tensor
from ..world.scenes import (
    HELDOUT_SEED_START,
    NUM_FRAMES,
    TRAVEL_RANGE,
    Scene,
    extend_scene,
    over_photo,
    render,
    sample_scene,
)


@torch.no_grad()
def encode_video(vae, video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> (B, C, T, h, w) scaled latents (posterior means)."""
    b, _, t = video.shape[:3]
    frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
    z = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in frames.split(64)])
    z = to_diffusion_latents(vae, z)
    return z.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4)


SETTINGS = "settings.json"


def fingerprint(vae, photos: list[np.ndarray] | None = None) -> dict:
    """Digests of what a cache's latents depend on besides its own settings: the autoencoder's
    weights, and the photos the clips are drawn from."""
    import hashlib

    weights = hashlib.sha256()
    for name, tensor in sorted(vae.state_dict().items()):
        weights.update(name.encode())
        weights.update(tensor.detach().float().cpu().numpy().tobytes())
    for key in ("scaling_factor", "latents_mean", "latents_std"):  # how latents are normalised for the denoiser
        weights.update(json.dumps(getattr(vae.config, key, None)).encode())
    out = {"autoencoder": weights.hexdigest()[:16]}
    if photos:
        pictures = hashlib.sha256()
        for photo in photos:
            pictures.update(str(photo.shape).encode())
            pictures.update(np.ascontiguousarray(photo).tobytes())
        out["photos"] = pictures.hexdigest()[:16]
    return out


def check_settings(folder: Path, settings: dict) -> None:
    """Record how a cache is built; refuse to extend one built otherwise (its shards would mix data)."""
    path = folder / SETTINGS
    settings = json.loads(json.dumps(settings))  # tuples as lists, as they read back
    if path.exists():
        built = json.loads(path.read_text())
        differ = sorted(k for k in built.keys() | settings.keys() if built.get(k) != settings.get(k))
        if differ:
            raise StaleCacheError(f"latent cache {folder} was built with other {', '.join(differ)} "
                                  f"({', '.join(f'{k}: {built.get(k)} -> {settings.get(k)}' for k in differ)}); "
                                  "give a new cache folder or delete this one")
    else:
        path.write_text(json.dumps(settings, indent=1))


def write_shard(folder: Path, shard: int, latents: torch.Tensor, records: list[dict]) -> None:
    """One shard: the records, then the latents; the .safetensors appears last, so a shard is complete or absent."""
    path = folder / f"shard_{shard:05d}.safetensors"
    (folder / f"shard_{shard:05d}.json").write_text(json.dumps(records))
    tmp = path.with_suffix(".tmp")
    save_file({"latents": latents.half().contiguous()}, str(tmp))
    os.replace(tmp, path)


def encode_clips(vae, clips: list[np.ndarray]) -> torch.Tensor:
    """(N, C, T, h, w) latents of N (T, H, W, 3) uint8 clips, eight at a time."""
    latents = []
    for chunk in range(0, len(clips), 8):
        video = torch.stack([frames_to_tensor(c) for c in clips[chunk:chunk + 8]])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=video.device.type == "cpu"):
            latents.append(encode_video(vae, video).float())
    return torch.cat(latents)


def build_latent_cache(vae, folder: str | Path, num_videos: int, seed: int = 0, shard_size: int = 256,
                       travel_range: tuple[float, float] = TRAVEL_RANGE, photos: list[np.ndarray] | None = None,
                       photo_share: float = 0.0, clip_frames: int = NUM_FRAMES, log=print) -> Path:
    """Latents of ``num_videos`` training scenes of the shapes world; with ``photos``, a ``photo_share``
    of them over a random window of a random photo (drawn from ``(seed, scene index)``). ``clip_frames``
    longer than a scene: each scene goes on at its speed to that many frames (``extend_scene``), clips to
    train continuing a video."""
    if clip_frames != NUM_FRAMES and photos and photo_share:
        raise ValueError("longer clips go on past a photo window's margin: no scenes over photos with clip_frames")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    longer = {"clip_frames": clip_frames} if clip_frames != NUM_FRAMES else {}  # older caches keep their settings
    check_settings(folder, {"clips": "scenes", "num_videos": num_videos, "seed": seed, "shard_size": shard_size,
                            "travel_range": list(travel_range), "photo_share": photo_share if photos else 0.0,
                            **longer, **fingerprint(vae, photos if photo_share else None)})
    rng = np.random.default_rng(seed)
    seeds = rng.integers(HELDOUT_SEED_START, size=num_videos)  # training scenes only
    for shard, start in enumerate(range(0, num_videos, shard_size)):
        if (folder / f"shard_{shard:05d}.safetensors").exists():
            continue
        scenes = [sample_scene(int(s), travel_range=travel_range) for s in seeds[start:start + shard_size]]
        if clip_frames != NUM_FRAMES:
            scenes = [extend_scene(scene, clip_frames) for scene in scenes]
        if photos:
            scenes = [_maybe_over_photo(scene, photos, photo_share, np.random.default_rng([seed, start + k]))
                      for k, scene in enumerate(scenes)]
        clips = [render(s, photo=photos[s.meta["photo"]] if s.background == "photo" else None) for s in scenes]
        write_shard(folder, shard, encode_clips(vae, clips), [s.to_dict() for s in scenes])
        log(f"latent cache: shard {shard} ({start + len(scenes)}/{num_videos} clips)")
    return folder


def _maybe_over_photo(scene: Scene, photos: list[np.ndarray], share: float, rng: np.random.Generator) -> Scene:
    if rng.random() >= share:
        return scene
    index = int(rng.integers(len(photos)))
    return over_photo(scene, index, photos[index].shape, rng)


def build_photo_latent_cache(vae, folder: str | Path, photos: list[np.ndarray], num_clips: int, seed: int = 0,
                             size: tuple[int, int] = (128, 128), shard_size: int = 128, log=print) -> Path:
    """Latents of ``num_clips`` camera moves over the training ``photos`` (``world.photos.camera``):
    each clip a random photo, motion and window, drawn from ``(seed, clip index)``."""
    from ..world.photos.camera import render_camera_clip, sample_camera_move

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_settings(folder, {"clips": "camera moves", "num_clips": num_clips, "seed": seed, "size": list(size),
                            "shard_size": shard_size, **fingerprint(vae, photos)})
    for shard, start in enumerate(range(0, num_clips, shard_size)):
        if (folder / f"shard_{shard:05d}.safetensors").exists():
            continue
        clips, records = [], []
        for k in range(start, min(num_clips, start + shard_size)):
            rng = np.random.default_rng([seed, k])
            index = int(rng.integers(len(photos)))
            move = sample_camera_move(rng, photos[index].shape, size)
            clips.append(render_camera_clip(photos[index], move, size))
            records.append({"photo": index, "move": move.to_dict()})
        write_shard(folder, shard, encode_clips(vae, clips), records)
        log(f"photo latent cache: shard {shard} ({start + len(records)}/{num_clips} clips)")
    return folder


def load_shards(folder: str | Path) -> tuple[torch.Tensor, list[dict]]:
    """(N, C, T, h, w) fp16 latents and their records, from every complete shard of a cache."""
    folder = Path(folder)
    latents, records = [], []
    for path in sorted(folder.glob("shard_*.safetensors")):
        latents.append(load_file(str(path))["latents"])
        records += json.loads(path.with_suffix(".json").read_text())
    if not latents:
        raise FileNotFoundError(f"no latent shards in {folder}")
    return torch.cat(latents), records


def load_latent_cache(folder: str | Path) -> tuple[torch.Tensor, list[Scene]]:
    latents, records = load_shards(folder)
    return latents, [Scene.from_dict(d) for d in records]
