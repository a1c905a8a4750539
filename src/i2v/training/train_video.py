"""Stage 2: train the embedded video denoiser (SpaceTimeUNet) on the procedural world.

    python -m i2v.training.train_video --vae runs/vae/final --output-dir runs/video --max-steps 20000

The shared loop (``loop.py``) on the network and objective ``i2v train --model i2v-tiny`` trains
too (``trainable_i2v.py``): rectified-flow velocity with frame 0 held clean (it is the input
image), here on cached latents of procedural clips whose captions are drawn afresh every step.
EMA weights, exported to ``OUTPUT_DIR/ema_unet`` at every checkpoint; atomic checkpoints every
``--checkpoint-every`` steps and exact resume with ``--resume latest``; a loss log (CSV) and
sample clips in ``samples/``. The same script runs on a laptop CPU or, unchanged, under
``accelerate launch`` on GPUs. The run records its noise-level shift (the preset's
``sigma_shift``) as a scheduler config in ``OUTPUT_DIR/scheduler``, and the export step samples
with it unless told otherwise:

    python -m i2v.training.export --vae runs/vae/final --unet runs/video/ema_unet --out MODEL
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..backends.tiny import warps
from ..errors import TrainingSetupError
from ..long_video import default_overlap
from ..models.autoencoder import spatial_compression
from ..models.unet import build_unet
from ..validate import check_output_folder
from ..world.captions import caption_scene
from ..world.scenes import NUM_FRAMES, REVERSED_MOTION, TRAVEL_RANGE, frames_in_view, mirror_scene, scene_flow
from .export import export_ema
from .latent_cache import build_latent_cache, build_photo_latent_cache, load_latent_cache, load_shards
from .loop import CAPTION_DROPOUT, LoopConfig, Stage, make_accelerator, train
from .trainable_i2v import I2VTrainable, load_unet

PRESETS = {
    # name: denoiser preset, batch size, learning rate and its warmup steps, cached training clips,
    # object travel of those clips (widths; shorter than the benchmark's so that where an object
    # starts does not give away its direction), noise-level time shift, share of captions naming the
    # target by one attribute (captions.caption_scene's p_partial) and, of the rest, giving it a colour
    # no object has when its shape alone picks it out (p_misnamed_colour)
    "small": dict(unet="small", batch=8, lr=3e-4, warmup=500, clips=6144, travel=(0.12, 0.42), sigma_shift=3.0,
                  partial_reference=0.2, misnamed_colour=0.2),
    "test": dict(unet="test", batch=2, lr=1e-3, warmup=2, clips=8, travel=TRAVEL_RANGE, sigma_shift=1.0,
                 partial_reference=0.2, misnamed_colour=0.2),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True, help="folder of the trained autoencoder (save_pretrained output)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--cooldown-steps", type=int, default=0,
                   help="decay the learning rate linearly to 0 over the last N steps before --max-steps "
                        "(warmup-stable-decay); 0 keeps it constant. Resuming a constant run with this set "
                        "branches it into a cooldown")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--sample-every", type=int, default=1000)
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    p.add_argument("--init-from", default=None,
                   help="start from these denoiser weights (a unet folder, or a model folder such as the shipped "
                        "src/i2v/weights/i2v-tiny) instead of a fresh preset")
    p.add_argument("--cache-dir", default=None, help="latent cache folder (default: OUTPUT_DIR/latents)")
    p.add_argument("--photos", default=None, metavar="DIR",
                   help="gathered photographs (make photos): camera moves over them join the training clips")
    p.add_argument("--photo-share", type=float, default=0.5, help="with --photos: share of each batch from photo clips")
    p.add_argument("--scenes-over-photos", type=float, default=0.3,
                   help="with --photos: share of the cached shapes-world scenes drawn over a photo background")
    p.add_argument("--photo-clips", type=int, default=4096, help="with --photos: camera-move clips to cache")
    p.add_argument("--photo-cache-dir", default=None,
                   help="with --photos: their latent cache (default: OUTPUT_DIR/photo_latents)")
    p.add_argument("--photo-sizes", default="128x128", metavar="WxH,...",
                   help="with --photos: clip sizes (width x height, multiples of 16); the first is the shapes "
                        "world's 128x128, the others (e.g. 256x144,144x256,256x256) are trained on photo-only steps")
    p.add_argument("--large-share", type=float, default=0.25,
                   help="with several --photo-sizes: share of steps on one of the other sizes (batch scaled by area)")
    p.add_argument("--sigma-shift", type=float, default=None,
                   help="time shift of the training noise levels (default: the preset's); saved in "
                        "OUTPUT_DIR/scheduler so the exported model samples where training spent its steps")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate (default: the preset's); a fine-tune from --init-from of weights that "
                        "already went through a cooldown may want less than the preset's from-scratch rate")
    p.add_argument("--warmup-steps", type=int, default=None, help="learning-rate warmup steps (default: the preset's)")
    p.add_argument("--prediction", default=None, choices=["velocity", "warp"],
                   help="the denoiser's output: the velocity, or a flow that moves the first frame plus a residual "
                        "(needs the photo autoencoder; default: --init-from's, else velocity)")
    p.add_argument("--camera-flow", action="store_true",
                   help="with --prediction warp: add the affine camera head (a global camera field per frame "
                        "beside the per-token flow; kept once the weights have it)")
    p.add_argument("--object-flow-weight", type=float, default=1.0,
                   help="with --prediction warp: weight of the flow's error on objects that move on their own "
                        "(where the true flow departs from the frame's camera field)")
    p.add_argument("--flow-weight", type=float, default=1.0,
                   help="with --prediction warp and --photos: weight of the camera clips' flow loss")
    p.add_argument("--history-frames", type=int, default=0, metavar="K",
                   help="train the denoiser to continue a video (a velocity denoiser): half the windows are "
                        "plain clip starts, the others later stretches of a --clip-frames clip (while its moving "
                        "shape is in the frame) or its first window played to and fro (a turn, captioned with the "
                        "motion reversed), their first 1..K frames given clean (the window before's last frames) "
                        "and the clip's first frame as the image (the anchor)")
    p.add_argument("--clip-frames", type=int, default=None,
                   help="with --history-frames: cached clips this long (each scene going on at its speed; "
                        "default: 40, so a window may start where a chained run's third window does)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"])
    p.add_argument("--stop-at-step", type=int, default=None, help="exit after this step as if killed (tests)")
    return p.parse_args(argv)


def learning_rate_schedule(optimizer, max_steps: int, cooldown_steps: int, warmup_steps: int):
    """Warmup, then constant; with ``cooldown_steps`` the last steps decay linearly to 0 (WSD).

    Only the step count is checkpointed, so a resumed run follows whichever schedule it is given.
    """
    if cooldown_steps <= 0:
        from diffusers.optimization import get_scheduler

        return get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=warmup_steps)
    from transformers.optimization import get_wsd_schedule

    return get_wsd_schedule(optimizer, num_warmup_steps=warmup_steps, num_decay_steps=cooldown_steps,
                            num_training_steps=max_steps, decay_type="linear")


def main(argv=None) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from ..conditioning import MiniLMTextEncoder
    from ..models.autoencoder import load_autoencoder

    args = parse_args(argv)
    check_output_folder(args.output_dir, [args.init_from, args.vae])  # before anything is written
    preset = PRESETS[args.preset]
    sigma_shift = preset["sigma_shift"] if args.sigma_shift is None else args.sigma_shift
    lr = preset["lr"] if args.learning_rate is None else args.learning_rate
    warmup = preset["warmup"] if args.warmup_steps is None else args.warmup_steps
    if not lr > 0 or warmup < 0:  # refused before any loading
        raise TrainingSetupError(f"--learning-rate must be > 0 and --warmup-steps >= 0, got {lr} and {warmup}")
    if not (args.flow_weight >= 0 and args.object_flow_weight >= 0):  # a negative weight has no lower bound
        raise TrainingSetupError(f"--flow-weight and --object-flow-weight must be >= 0, got {args.flow_weight} and "
                                 f"{args.object_flow_weight}")
    if args.photos and not (0 < args.photo_share <= 1 and args.photo_clips > 0 and 0 <= args.scenes_over_photos <= 1
                            and 0 <= args.large_share <= 1):
        raise TrainingSetupError(f"--photo-share must be in (0, 1], --photo-clips > 0, --scenes-over-photos and "
                                 f"--large-share in [0, 1], got {args.photo_share}, {args.photo_clips}, "
                                 f"{args.scenes_over_photos} and {args.large_share}")
    sizes = parse_sizes(args.photo_sizes)
    window = NUM_FRAMES
    # long enough for a training window to start where a chain's third window does (windows overlapping by
    # a quarter): the anchor that far back from the held frames
    stride = window - default_overlap(window)
    clip_frames = args.clip_frames or (window + 2 * stride if args.history_frames else window)
    warping = args.prediction == "warp" or (args.prediction is None and args.init_from is not None
                                            and warps(Path(args.init_from)))
    if args.history_frames and (warping or not 1 <= args.history_frames < window or clip_frames < window):
        raise TrainingSetupError(f"--history-frames K trains a velocity denoiser (not --prediction warp) with 1 <= K < "
                                 f"{window} and --clip-frames >= {window}; got K={args.history_frames}, "
                                 f"--clip-frames {clip_frames}")
    if args.clip_frames and not args.history_frames:
        raise TrainingSetupError("--clip-frames is for --history-frames")
    if args.history_frames and args.photos:
        raise TrainingSetupError("--history-frames trains on the shapes world's long clips; leave out --photos")
    if args.cooldown_steps > args.max_steps - warmup:
        raise TrainingSetupError(f"--cooldown-steps {args.cooldown_steps} does not fit in --max-steps "
                                 f"{args.max_steps} after {warmup} warmup steps")
    out = Path(args.output_dir)
    accelerator = make_accelerator(args.mixed_precision)
    device = accelerator.device

    # ---- data: cached latents of training clips; captions drawn afresh every step ----
    vae = load_autoencoder(args.vae).eval().requires_grad_(False)
    cache = Path(args.cache_dir or out / "latents")
    photos = None
    if args.photos:
        from ..world.photos.batches import load_photos

        photos = load_photos(args.photos, "train")
    if accelerator.is_main_process:
        build_latent_cache(vae, cache, preset["clips"], seed=args.seed, travel_range=preset["travel"],
                           photos=photos, photo_share=args.scenes_over_photos, clip_frames=clip_frames,
                           log=accelerator.print)
    photo_cache = Path(args.photo_cache_dir or out / "photo_latents")
    if args.photos and accelerator.is_main_process:  # camera moves over the training photos, one cache per size
        for k, size in enumerate(sizes):
            clips = args.photo_clips if k == 0 else max(1, args.photo_clips // 4)  # larger clips: fewer
            build_photo_latent_cache(vae, photo_cache / size_name(size) if k else photo_cache, photos, clips,
                                     seed=args.seed + k, size=size, log=accelerator.print)
    accelerator.wait_for_everyone()
    all_latents, scenes = load_latent_cache(cache)  # (N, C, T, h, w) fp16
    in_view = [frames_in_view(s) for s in scenes]  # a long clip's frames that show its moving object
    buckets: list[PhotoBucket] = []  # per size: latents, motions and camera paths of its clips
    if args.photos:
        for k, size in enumerate(sizes):
            latents, records = load_shards(photo_cache / size_name(size) if k else photo_cache)
            buckets.append(PhotoBucket.from_records(latents, records, spatial_compression(vae.config)))
    n_photo = round(preset["batch"] * args.photo_share) if args.photos else 0
    text_encoder = MiniLMTextEncoder(device=device)

    # ---- model: a fresh denoiser of the preset (or --init-from), trained at the run's noise-level shift ----
    torch.manual_seed(args.seed)
    if args.init_from:  # a new autoencoder's latent channels get a new patch embedding and output
        unet = load_unet(args.init_from, latent_channels=vae.config.latent_channels, log=accelerator.print,
                         prediction=args.prediction, vae=vae, camera_flow=args.camera_flow or None,
                         history_frames=args.history_frames or None)
    else:
        warp = args.prediction == "warp"
        unet = build_unet(preset["unet"], latent_channels=vae.config.latent_channels,
                          num_frames=window, sample_size=all_latents.shape[-1],
                          prediction=args.prediction or "velocity", history_frames=args.history_frames,
                          **({"vae_patch_size": vae.config.patch_size, "camera_flow": args.camera_flow} if warp else {}))
        if warp:
            unet.warp.set_from_autoencoder(vae)
    warp = unet.config.prediction == "warp"
    trainable = I2VTrainable(unet, vae, FlowMatchEulerDiscreteScheduler(shift=sigma_shift), text_encoder)
    if accelerator.is_main_process:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        trainable.scheduler.save_pretrained(out / "scheduler")

    # ---- batch: cached clips, half of them mirrored, with fresh captions; loss: the trainable's ----
    def batch(rng: np.random.Generator):
        if len(buckets) > 1 and rng.random() < args.large_share:  # a photo-only step at another size
            bucket = buckets[int(rng.integers(1, len(buckets)))]
            area = bucket.latents.shape[-1] * bucket.latents.shape[-2] / (all_latents.shape[-1] * all_latents.shape[-2])
            clips, captions, flows = photo_batch(rng, bucket, max(1, round(preset["batch"] / area)))
            return clips.to(device), trainable.encode_text(captions, device), flows.to(device) if warp else None
        n_world = preset["batch"] - n_photo
        idx = rng.integers(len(scenes), size=n_world)
        flip = rng.random(n_world) < 0.5  # a mirrored clip is another valid clip
        latents = all_latents[idx].float()  # (B, C, T, h, w)
        latents[flip] = latents[flip].flip(-1)
        turned = [False] * n_world
        if args.history_frames:  # windows of the long clips, their history frames given, anchored at frame 0
            latents, held, anchor, turned = history_windows(latents, rng, window, args.history_frames,
                                                            [in_view[i] for i in idx])
        shown = [mirror_scene(scenes[i]) if f else scenes[i] for i, f in zip(idx, flip)]
        shown = [replace(s, motion=REVERSED_MOTION[s.motion]) if t else s for s, t in zip(shown, turned)]
        captions = [
            "" if rng.random() < CAPTION_DROPOUT
            else caption_scene(s, rng, "train", p_partial=preset["partial_reference"],
                               p_misnamed_colour=preset["misnamed_colour"])
            for s in shown
        ]
        if args.history_frames:  # shapes-world clips only (no flow, no photos: refused above)
            return (latents.to(device), trainable.encode_text(captions, device), None, held.to(device),
                    anchor.to(device))
        flows = None
        if warp:  # the shapes world's own flow, at latent resolution
            size = latents.shape[-1]
            flows = torch.from_numpy(np.stack([scene_flow(mirror_scene(scenes[i]) if f else scenes[i], size)
                                               for i, f in zip(idx, flip)]))
        if n_photo:
            photo_latents_batch, photo_captions, photo_flows = photo_batch(rng, buckets[0], n_photo)
            latents = torch.cat([latents, photo_latents_batch])
            captions += photo_captions
            flows = torch.cat([flows, photo_flows]) if warp else None
        return latents.to(device), trainable.encode_text(captions, device), None if flows is None else flows.to(device)

    def loss(model, batch, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        latents, text, flows, *history = batch  # history: the held frames and anchors of history windows
        held, anchor = history or (None, None)
        return trainable.velocity_loss(model, latents, text, gen, flow_target=flows, flow_weight=args.flow_weight,
                                       object_flow_weight=args.object_flow_weight, held=held, anchor=anchor), {}

    # ---- export: the EMA denoiser at every checkpoint; a contact sheet every --sample-every steps ----
    def after_step(step: int, checkpointed: bool, weights) -> None:
        if not accelerator.is_main_process:
            return
        if checkpointed:
            export_ema(accelerator.unwrap_model(weights.model), weights.ema, out / "ema_unet")
        if step % args.sample_every == 0:
            write_samples(out / "ema_unet", args.vae, out / "samples" / f"step_{step:08d}.png", text_encoder,
                          shift=sigma_shift)

    def finish(weights) -> None:  # the last step's EMA weights, also when a resume finds nothing left to train
        if accelerator.is_main_process:
            export_ema(accelerator.unwrap_model(weights.model), weights.ema, out / "ema_unet")

    stage = Stage(
        model=unet,
        checkpoint_name="unet",
        optimizer=lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
        lr_schedule=lambda optimizer: learning_rate_schedule(optimizer, args.max_steps, args.cooldown_steps, warmup),
        batch=batch,
        loss=loss,
        after_step=after_step,
        finish=finish,
        ema_decay=args.ema_decay,
    )
    return train(accelerator, stage, LoopConfig.from_args(args))


def history_windows(clips: torch.Tensor, rng: np.random.Generator, window: int, history: int,
                    in_view: list[int] | None = None, sweeps: int = 10
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training windows for a denoiser that continues a video: from clips (B, C, N, h, w), per clip a window
    of ``window`` frames -> (windows (B, C, window, h, w), held (B, window) bool, anchors (B, C, h, w),
    turned (B,) bool: the window's made frames play the clip backwards, its motion reversed). Anchored at
    the clip's frame 0 (the video's first frame), a window is one of:

    - half: the clip's start, frame 0 held (the first window of a video);
    - a quarter: a later stretch of the clip, its first 1..``history`` frames held (the window before's
      last frames, as a long video hands them over), within the clip's first ``in_view`` frames (those that
      show its moving object; a clip going on past its scene may move it out of the frame);
    - a quarter (all of those when no later stretch is in view): the clip's first ``window`` frames played
      to and fro (a shape moving right, then left, then right: a prompt schedule's turns), the window's
      made frames one sweep of 1..``sweeps``, its held frames the 1..``history`` frames before, so the
      anchor is up to ``sweeps`` windows back, as in a long video's later windows."""
    b, n = clips.shape[0], clips.shape[2]
    in_view = [n] * b if in_view is None else in_view
    sweep = window - 1  # frames 0..sweep, then back: frame i of the to-and-fro is bounce(i)
    windows = torch.empty(*clips.shape[:2], window, *clips.shape[3:])
    held = torch.zeros(b, window, dtype=torch.bool)
    turned = torch.zeros(b, dtype=torch.bool)
    for i in range(b):
        kind, k = rng.random(), int(rng.integers(1, history + 1))
        last_start = min(n, in_view[i]) - window
        if kind < 0.5:
            frames, k = list(range(window)), 1
        elif kind < 0.75 and last_start >= 1:
            start = int(rng.integers(1, last_start + 1))
            frames = list(range(start, start + window))
        else:
            m = int(rng.integers(1, sweeps + 1))  # the sweep the made frames are in
            start = sweep * m + 1 - k + int(rng.integers(0, k))  # its held frames end at or just after the turn
            frames = [bounce(t, sweep) for t in range(start, start + window)]
            turned[i] = bool(m % 2)
        windows[i] = clips[i, :, frames]
        held[i, :k] = True
    return windows, held, clips[:, :, 0], turned


def bounce(t: int, sweep: int) -> int:
    """Frame ``t`` of a clip's frames 0..``sweep`` played to and fro: 0, 1, .., sweep, sweep - 1, .., 0, 1, .."""
    t %= 2 * sweep
    return t if t <= sweep else 2 * sweep - t


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"128x128,256x144"`` (width x height, as everywhere in i2v) -> [(128, 128), (144, 256)] as
    (height, width); the first must be 128x128."""
    try:
        sizes = [tuple(int(v) for v in part.lower().split("x"))[::-1] for part in text.split(",")]
    except ValueError:
        sizes = []
    bad = any(len(s) != 2 or min(s) < 16 or s[0] % 16 or s[1] % 16 for s in sizes)
    if not sizes or bad or sizes[0] != (128, 128):
        raise TrainingSetupError(f"--photo-sizes must be WxH sizes, multiples of 16, starting with 128x128; "
                                 f"got {text!r}")
    return sizes


def size_name(size: tuple[int, int]) -> str:
    """(height, width) -> "WxH", the name of its cache folder."""
    return f"{size[1]}x{size[0]}"


@dataclass
class PhotoBucket:
    """The cached camera clips of one size."""

    latents: torch.Tensor  # (M, C, T, h, w) fp16
    kinds: list[str]  # camera motion of each clip
    paths: torch.Tensor  # (M, T, 3) per frame (scale, dx, dy), dx and dy in latent pixels

    @classmethod
    def from_records(cls, latents: torch.Tensor, records: list[dict], compression: int) -> PhotoBucket:
        from ..world.photos.camera import CameraMove, camera_path

        t = latents.shape[2]
        paths = np.stack([camera_path(CameraMove.from_dict(r["move"]), t) for r in records])
        paths[..., 1:] /= compression
        return cls(latents, [r["move"]["kind"] for r in records], torch.from_numpy(paths).float())


def photo_batch(rng: np.random.Generator, bucket: PhotoBucket, n: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """``n`` cached photo clips (B, C, T, h, w), half mirrored (a mirrored pan left is a pan right), with
    fresh training captions of their camera motion and their flow (B, 2, T, h, w) (``camera_flow``)."""
    from ..models.latent_warp import camera_flow
    from ..world.photos.captions import caption_camera

    kinds = bucket.kinds
    idx = rng.integers(len(kinds), size=n)
    flip = rng.random(n) < 0.5
    batch = bucket.latents[idx].float()
    batch[flip] = batch[flip].flip(-1)
    paths = bucket.paths[idx].clone()
    paths[torch.from_numpy(flip), :, 1] *= -1  # mirrored: content moves the other way along x
    mirrored = {"pan_left": "pan_right", "pan_right": "pan_left"}
    captions = ["" if rng.random() < CAPTION_DROPOUT
                else caption_camera(mirrored.get(kinds[i], kinds[i]) if f else kinds[i], rng, "train")
                for i, f in zip(idx, flip)]
    return batch, captions, camera_flow(paths, *batch.shape[-2:])


def write_samples(unet_dir: Path, vae_dir: str, path: Path, text_encoder, shift: float = 1.0) -> None:
    """A PNG contact sheet of held-out cases generated with the current EMA weights."""
    from ..io.contact_sheet import contact_sheet
    from ..pipelines.pipeline_i2v import I2VPipeline

    pipe = I2VPipeline.from_parts(unet_dir, vae_dir, shift=shift, text_encoder=text_encoder)
    from ..world.scenes import heldout_seed, render, sample_scene

    rows = []
    for k, motion in enumerate(["move_left", "move_up_right", "grow", "pan_right", "zoom_in", "static"]):
        scene = sample_scene(heldout_seed(k), motion=motion)
        prompt = caption_scene(scene, np.random.default_rng(k), "heldout")
        first = render(scene)[0]
        frames = pipe(image=first, prompt=prompt, num_inference_steps=16, seed=k).frames
        rows.append((frames, prompt))
    contact_sheet(rows, path)


if __name__ == "__main__":
    main()
