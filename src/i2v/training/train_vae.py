"""Stage 1: train the embedded model's autoencoder on frames of the procedural world, and photographs.

    python -m i2v.training.train_vae --output-dir runs/vae --max-steps 6000
    python -m i2v.training.train_vae --output-dir runs/vae-photos --photos data/photos \
        --init-from src/i2v/weights/i2v-tiny/vae --anchor-weight 1.0 --learning-rate 1e-4

With ``--photos`` (a folder gathered by ``make photos``) every batch mixes crops of the shapes
world, windows of the training photographs at random scales, and procedural images with natural
statistics (``--mix``). ``--init-from`` fine-tunes an existing autoencoder; ``--anchor-weight``
then keeps its latents of shapes-world frames where they were (an L2 pull of the encoder's means
towards the initial encoder's, in units of the latents' spread), so that a denoiser trained on the
old latents keeps working on the shapes world while the autoencoder learns photographs.

The shared loop (``loop.py``) on random crops of rendered frames; at the end the autoencoder,
its latent scaling factor calibrated on world frames, is saved to ``OUTPUT_DIR/final``.
Runs unchanged under ``accelerate launch`` (one process per device). Checkpoints every
``--checkpoint-every`` steps; ``--resume latest`` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingSetupError
from ..models.autoencoder import build_autoencoder, load_autoencoder
from ..validate import check_output_folder
from ..world.batches import frame_crops
from .loop import LoopConfig, Stage, make_accelerator, train

PRESETS = {
    # name: (autoencoder preset, scenes per step, crops per scene, crop size, learning rate)
    "small": dict(vae="small", scenes=8, per_scene=4, crop=64, lr=4e-4),
    "photo": dict(vae="photo", scenes=8, per_scene=4, crop=64, lr=2e-3),
    "test": dict(vae="test", scenes=2, per_scene=2, crop=32, lr=1e-3),
    "patch-test": dict(vae="patch-test", scenes=2, per_scene=2, crop=32, lr=1e-3),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--photos", default=None, metavar="DIR", help="gathered photographs (make photos) to mix in")
    p.add_argument("--mix", default="0.25,0.6,0.15", metavar="S,P,Q",
                   help="with --photos: shares of shapes-world crops, photo windows and procedural images")
    p.add_argument("--init-from", default=None, metavar="VAE_DIR", help="fine-tune this autoencoder folder")
    p.add_argument("--anchor-weight", type=float, default=0.0,
                   help="with --init-from: keep shapes-world latents near the initial encoder's")
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"])
    p.add_argument("--stop-at-step", type=int, default=None, help="exit after this step as if killed (tests)")
    return p.parse_args(argv)


def mix_counts(mix: str, total: int) -> tuple[int, int, int]:
    """``"S,P,Q"`` shares -> crop counts (shapes, photos, procedural) summing to ``total``."""
    try:
        shares = [float(x) for x in mix.split(",")]
    except ValueError:
        shares = []
    if len(shares) != 3 or min(shares) < 0 or sum(shares) <= 0:
        raise TrainingSetupError(f"--mix must be three non-negative shares S,P,Q, got {mix!r}")
    counts = [int(round(total * x / sum(shares))) for x in shares]
    counts[1] += total - sum(counts)  # rounding goes to the photos
    return counts[0], counts[1], counts[2]


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (recon - target).abs().mean() + ((recon - target) ** 2).mean()


def main(argv=None) -> dict:
    from diffusers.optimization import get_scheduler

    args = parse_args(argv)
    preset = PRESETS[args.preset]
    lr = preset["lr"] if args.learning_rate is None else args.learning_rate
    if not (math.isfinite(lr) and lr > 0) or args.warmup_steps < 0 or not (math.isfinite(args.anchor_weight)
                                                                         and args.anchor_weight >= 0):
        raise TrainingSetupError(f"--learning-rate must be a finite number > 0, --warmup-steps >= 0 and "
                                 f"--anchor-weight a finite number >= 0; got {lr}, {args.warmup_steps} and "
                                 f"{args.anchor_weight}")
    out = Path(args.output_dir)
    check_output_folder(out, [args.init_from])  # before anything is written
    accelerator = make_accelerator(args.mixed_precision)

    # ---- model: a fresh autoencoder of the preset, or the one to fine-tune (and a frozen copy as anchor) ----
    torch.manual_seed(args.seed)
    if args.anchor_weight and not args.init_from:
        raise TrainingSetupError("--anchor-weight keeps the latents of an --init-from autoencoder; give --init-from")
    if args.init_from:
        vae = load_autoencoder(args.init_from, torch_dtype=torch.float32)
    else:
        vae = build_autoencoder(preset["vae"])
    if args.anchor_weight and not hasattr(vae, "quant_conv"):
        raise TrainingSetupError("--anchor-weight keeps the latents of an AutoencoderKL; this one is a "
                                 f"{type(vae).__name__}")
    anchor = None
    if args.anchor_weight:
        anchor = copy.deepcopy(vae.encoder).requires_grad_(False).eval().to(accelerator.device)
        anchor_quant = copy.deepcopy(vae.quant_conv).requires_grad_(False).eval().to(accelerator.device)

    # ---- batch: crops of rendered frames, and with --photos photo windows and procedural images ----
    total = preset["scenes"] * preset["per_scene"]
    photos = None
    if args.photos:
        from ..world.photos.batches import load_photos, photo_crops, procedural_crops

        n_shapes, n_photos, n_procedural = mix_counts(args.mix, total)
        photos = load_photos(args.photos, "train")
        accelerator.print(f"{len(photos)} training photos; per step {n_shapes} shapes-world crops, {n_photos} photo "
                          f"windows, {n_procedural} procedural images")
    else:
        n_shapes, n_photos, n_procedural = total, 0, 0

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        parts = []
        if n_shapes:
            per_scene = preset["per_scene"]
            parts.append(frame_crops(rng, -(-n_shapes // per_scene), per_scene, preset["crop"], 128)[:n_shapes])
        if n_photos:
            parts.append(photo_crops(rng, photos, n_photos, preset["crop"]))
        if n_procedural:
            parts.append(procedural_crops(rng, n_procedural, preset["crop"]))
        return torch.cat(parts).to(accelerator.device), n_shapes  # (N, 3, crop, crop); shapes crops first

    # ---- a fresh patch autoencoder starts from the principal components of its data's patches ----
    if hasattr(vae, "fit_linear_path") and not args.init_from and not args.resume:
        rng = np.random.default_rng(args.seed + 54321)
        if args.photos:  # photographs set the basis: the shapes world's flat colours need little of it
            pixels = torch.cat([photo_crops(rng, photos, 64, preset["crop"]) for _ in range(10)])
        else:
            pixels = torch.cat([batch(rng)[0].cpu() for _ in range(10)])
        kept = vae.fit_linear_path(pixels)
        accelerator.print(f"linear code fitted on {len(pixels)} crops: keeps {kept:.2%} of the patch variance")

    # ---- loss: reconstruction plus a small KL, and the anchor on shapes-world latents ----
    def loss(model, batch: tuple[torch.Tensor, int], gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        x, n_world = batch
        vae = accelerator.unwrap_model(model)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
        recon = vae.decode(z).sample
        with torch.autocast(x.device.type, enabled=False):  # the loss terms outside mixed precision
            rec = reconstruction_loss(recon.float(), x)
            kl = posterior.kl().mean() / x[0].numel()
            mse = ((recon.detach().float() - x) ** 2).mean()  # for the progress line's PSNR
            total_loss = rec + args.kl_weight * kl
            extras = {"recon": rec.detach(), "kl": kl.detach(), "mse": mse}
            if anchor is not None and n_world:
                with torch.no_grad():
                    target = anchor_quant(anchor(x[:n_world])).chunk(2, dim=1)[0].float()  # (n, C, h, w) means
                drift = ((posterior.mean[:n_world].float() - target) ** 2).mean() / target.var().clamp_min(1e-6)
                total_loss = total_loss + args.anchor_weight * drift
                extras["anchor"] = drift.detach()
            return total_loss, extras

    # ---- export: the autoencoder with its latent scale, after the last step ----
    def finish(weights) -> None:
        if accelerator.is_main_process:
            final = accelerator.unwrap_model(weights.model)
            if not args.anchor_weight:  # an anchored fine-tune keeps the latent scale its denoiser knows
                calibrate_scaling_factor(final, seed=args.seed, photos=photos)
            final.save_pretrained(out / "final")

    stage = Stage(
        model=vae,
        checkpoint_name="vae",
        optimizer=lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=0.0),
        lr_schedule=lambda optimizer: get_scheduler("cosine", optimizer, num_warmup_steps=args.warmup_steps,
                                                    num_training_steps=args.max_steps),
        batch=batch,
        loss=loss,
        log_columns={"recon": ".6f", "kl": ".4f", **({"anchor": ".5f"} if anchor is not None else {})},
        report=lambda extras: f" psnr {-10 * math.log10(float(extras['mse']) / 4 + 1e-12):.2f} dB",
        finish=finish,
    )
    return train(accelerator, stage, LoopConfig.from_args(args))


@torch.no_grad()
def calibrate_scaling_factor(vae, seed: int = 0, num_scenes: int = 16, photos: list | None = None) -> float:
    """Set ``scaling_factor`` so that scaled latents have unit standard deviation (SD's recipe), over
    frames of the shapes world and, when given, as many windows of the photographs. A patch
    autoencoder also gets each channel's mean and standard deviation (``latents_mean`` /
    ``latents_std``): its channels differ too much for one factor."""
    from ..world.batches import video_batch

    rng = np.random.default_rng(seed + 12345)
    videos, _ = video_batch(rng, num_scenes, 128)
    frames = videos.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
    if photos:
        from ..world.photos.batches import photo_crops

        frames = torch.cat([frames, photo_crops(rng, photos, len(frames), 128)])
    latents = torch.cat([vae.encode(chunk.to(vae.device)).latent_dist.mean for chunk in frames.split(64)])
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    if "latents_std" in vae.config:  # (N, C, h, w): per channel over every frame and position
        vae.register_to_config(latents_mean=latents.mean(dim=(0, 2, 3)).tolist(),
                               latents_std=latents.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())
    return factor


if __name__ == "__main__":
    main()
