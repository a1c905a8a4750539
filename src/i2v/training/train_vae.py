"""Stage 1: train the embedded model's autoencoder on frames of the procedural world.

    python -m i2v.training.train_vae --output-dir runs/vae --max-steps 6000

The shared loop (``loop.py``) on random crops of rendered frames; at the end the autoencoder,
its latent scaling factor calibrated on world frames, is saved to ``OUTPUT_DIR/final``.
Runs unchanged under ``accelerate launch`` (one process per device). Checkpoints every
``--checkpoint-every`` steps; ``--resume latest`` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from ..models.autoencoder import build_autoencoder
from ..world.batches import frame_crops
from .loop import LoopConfig, Stage, make_accelerator, train

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
    from diffusers.optimization import get_scheduler

    args = parse_args(argv)
    preset = PRESETS[args.preset]
    out = Path(args.output_dir)
    accelerator = make_accelerator(args.mixed_precision)

    # ---- model ----
    torch.manual_seed(args.seed)
    vae = build_autoencoder(preset["vae"])

    # ---- batch: crops of rendered frames; loss: reconstruction plus a small KL ----
    def batch(rng: np.random.Generator) -> torch.Tensor:
        x = frame_crops(rng, preset["scenes"], preset["per_scene"], preset["crop"], 128)
        return x.to(accelerator.device)  # (N, 3, crop, crop)

    def loss(model, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        vae = accelerator.unwrap_model(model)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(x.device)
        recon = vae.decode(z).sample
        with torch.autocast(x.device.type, enabled=False):  # the loss terms outside mixed precision
            rec = reconstruction_loss(recon.float(), x)
            kl = posterior.kl().mean() / x[0].numel()
            mse = ((recon.detach().float() - x) ** 2).mean()  # for the progress line's PSNR
            return rec + args.kl_weight * kl, {"recon": rec.detach(), "kl": kl.detach(), "mse": mse}

    # ---- export: the autoencoder with its latent scale, after the last step ----
    def finish(weights) -> None:
        if accelerator.is_main_process:
            final = accelerator.unwrap_model(weights.model)
            calibrate_scaling_factor(final, seed=args.seed)
            final.save_pretrained(out / "final")

    stage = Stage(
        model=vae,
        checkpoint_name="vae",
        optimizer=lambda params: torch.optim.AdamW(params, lr=preset["lr"], weight_decay=0.0),
        lr_schedule=lambda optimizer: get_scheduler("cosine", optimizer, num_warmup_steps=200,
                                                    num_training_steps=args.max_steps),
        batch=batch,
        loss=loss,
        log_columns={"recon": ".6f", "kl": ".4f"},
        report=lambda extras: f" psnr {-10 * math.log10(float(extras['mse']) / 4 + 1e-12):.2f} dB",
        finish=finish,
    )
    return train(accelerator, stage, LoopConfig.from_args(args))


@torch.no_grad()
def calibrate_scaling_factor(vae, seed: int = 0, num_scenes: int = 16) -> float:
    """Set ``scaling_factor`` so that scaled latents have unit standard deviation (SD's recipe)."""
    from ..world.batches import video_batch

    videos, _ = video_batch(np.random.default_rng(seed + 12345), num_scenes, 128)
    frames = videos.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, 3, H, W)
    latents = torch.cat([vae.encode(chunk.to(vae.device)).latent_dist.mean for chunk in frames.split(64)])
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


if __name__ == "__main__":
    main()
