"""Stage 1: train the embedded model's autoencoder on frames of the procedural world.

    python -m i2v.training.train_vae --output-dir runs/vae --max-steps 6000

Runs unchanged under ``accelerate launch`` (one process per device). Checkpoints every
``--checkpoint-every`` steps; ``--resume latest`` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..models.autoencoder import build_autoencoder
from .accelerate_state import reset_accelerate_state
from .checkpoint import latest_checkpoint, load_checkpoint, rng_for_step, save_checkpoint, truncate_log
from ..world.batches import frame_crops

PRESETS = {
    # name: (autoencoder preset, scenes per step, crops per scene, crop size, learning rate)
    "small": dict(vae="small", scenes=8, per_scene=4, crop=64, lr=4e-4),
    "test": dict(vae="test", scenes=2, per_scene=2, crop=32, lr=1e-3),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"])
    p.add_argument("--stop-at-step", type=int, default=None, help="exit after this step as if killed (tests)")
    return p.parse_args(argv)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (recon - target).abs().mean() + ((recon - target) ** 2).mean()


def main(argv=None) -> dict:
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler

    args = parse_args(argv)
    preset = PRESETS[args.preset]
    out = Path(args.output_dir)
    mp = args.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() or _cpu_has_bf16() else "no"
    reset_accelerate_state()
    accelerator = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())

    # ---- model, optimiser, schedule ----
    torch.manual_seed(args.seed)
    vae = build_autoencoder(preset["vae"])
    optimizer = torch.optim.AdamW(vae.parameters(), lr=preset["lr"], weight_decay=0.0)
    lr_scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=200, num_training_steps=args.max_steps)

    # ---- resume ----
    step = 0
    ckpt = latest_checkpoint(out / "checkpoints") if args.resume == "latest" else args.resume
    if ckpt:
        state, states = load_checkpoint(ckpt, {"vae": vae})
        optimizer.load_state_dict(states["optimizer"])
        lr_scheduler.load_state_dict(states["lr_scheduler"])
        step = state["step"]
        accelerator.print(f"resumed from {ckpt} at step {step}")
    vae, optimizer = accelerator.prepare(vae, optimizer)

    # ---- loop ----
    log_path = out / "loss_log.csv"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, step, header="step,loss,recon,kl,lr,seconds\n")
    losses = {}
    t0 = time.time()
    while step < args.max_steps:
        gen, np_seed = rng_for_step(args.seed, step, accelerator.process_index)
        x = frame_crops(np.random.default_rng(np_seed), preset["scenes"], preset["per_scene"], preset["crop"], 128)
        x = x.to(accelerator.device)
        with accelerator.autocast():
            posterior = accelerator.unwrap_model(vae).encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
            recon = accelerator.unwrap_model(vae).decode(z).sample
        rec = reconstruction_loss(recon.float(), x)
        kl = posterior.kl().mean() / x[0].numel()
        loss = rec + args.kl_weight * kl
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}; no checkpoint written")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses[step] = loss.item()

        if accelerator.is_main_process:
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow([step, f"{loss.item():.6f}", f"{rec.item():.6f}", f"{kl.item():.4f}",
                                        f"{lr_scheduler.get_last_lr()[0]:.3e}", f"{time.time() - t0:.1f}"])
            if step % 50 == 0:
                psnr = -10 * math.log10(((recon.float() - x) ** 2).mean().item() / 4 + 1e-12)
                accelerator.print(f"step {step} loss {loss.item():.4f} psnr {psnr:.2f} dB")
            if step % args.checkpoint_every == 0 or step == args.max_steps:
                save_checkpoint(out / "checkpoints", step, {"vae": accelerator.unwrap_model(vae)},
                                {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()})
        accelerator.wait_for_everyone()
        if args.stop_at_step is not None and step >= args.stop_at_step:
            return losses

    if accelerator.is_main_process:
        final = accelerator.unwrap_model(vae)
        calibrate_scaling_factor(final, seed=args.seed)
        final.save_pretrained(out / "final")
    return losses


@torch.no_grad()
def calibrate_scaling_factor(vae, seed: int = 0, num_scenes: int = 16) -> float:
    """Set ``scaling_factor`` so that scaled latents have unit standard deviation (SD's recipe)."""
    from ..world.batches import video_batch

    videos, _ = video_batch(np.random.default_rng(seed + 12345), num_scenes, 128)
    frames = videos.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
    latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in frames.split(64)])
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


if __name__ == "__main__":
    main()
