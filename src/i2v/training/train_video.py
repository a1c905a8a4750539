"""Stage 2: train the embedded video denoiser (SpaceTimeUNet) on the procedural world.

    python -m i2v.training.train_video --vae runs/vae/final --output-dir runs/video --max-steps 20000

One readable loop on accelerate: the same script runs on a laptop CPU or, unchanged, under
``accelerate launch`` on GPUs. Rectified-flow objective with frame 0 held clean (it is the
input image); EMA weights; atomic checkpoints every ``--checkpoint-every`` steps and exact
resume with ``--resume latest``; a loss log (CSV) and sample clips in ``samples/``.
The run records its noise-level shift (the preset's ``sigma_shift``) as a scheduler config in
``OUTPUT_DIR/scheduler``, and the export step samples with it unless told otherwise:

    python -m i2v.training.export --vae runs/vae/final --unet runs/video/ema_unet --out MODEL
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from ..world.captions import caption_scene
from ..world.scenes import TRAVEL_RANGE, mirror_scene
from ..models.unet import build_unet
from ..sampling import add_noise, sample_training_sigmas
from .accelerate_state import reset_accelerate_state
from .checkpoint import latest_checkpoint, load_checkpoint, rng_for_step, save_checkpoint, truncate_log
from .latent_cache import build_latent_cache, load_latent_cache

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
CAPTION_DROPOUT = 0.1  # share of empty prompts, for classifier-free guidance


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
    p.add_argument("--sigma-shift", type=float, default=None,
                   help="time shift of the training noise levels (default: the preset's); saved in "
                        "OUTPUT_DIR/scheduler so the exported model samples where training spent its steps")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate (default: the preset's); a fine-tune from --init-from of weights that "
                        "already went through a cooldown may want less than the preset's from-scratch rate")
    p.add_argument("--warmup-steps", type=int, default=None, help="learning-rate warmup steps (default: the preset's)")
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


def flow_matching_loss(unet, latents, text, sigmas, noise) -> torch.Tensor:
    """Velocity MSE on frames 1..T-1; frame 0 stays clean, as it is at generation time."""
    # latents, noise: (B, C, T, h, w); sigmas: (B,)
    x = add_noise(latents, noise, sigmas)
    x[:, :, 0] = latents[:, :, 0]
    v = unet(x, sigmas, latents[:, :, 0], text.states, text.pooled, text.mask)
    target = noise - latents
    return ((v.float() - target) ** 2)[:, :, 1:].mean()


def main(argv=None) -> dict:
    from accelerate import Accelerator
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from diffusers.training_utils import EMAModel

    from ..conditioning import MiniLMTextEncoder
    from .finetune import TrainingSetupError
    from .train_vae import _cpu_has_bf16

    args = parse_args(argv)
    preset = PRESETS[args.preset]
    sigma_shift = preset["sigma_shift"] if args.sigma_shift is None else args.sigma_shift
    lr = preset["lr"] if args.learning_rate is None else args.learning_rate
    warmup = preset["warmup"] if args.warmup_steps is None else args.warmup_steps
    if not lr > 0 or warmup < 0:  # refused before any loading
        raise TrainingSetupError(f"--learning-rate must be > 0 and --warmup-steps >= 0, got {lr} and {warmup}")
    if args.cooldown_steps > args.max_steps - warmup:
        raise TrainingSetupError(f"--cooldown-steps {args.cooldown_steps} does not fit in --max-steps "
                                 f"{args.max_steps} after {warmup} warmup steps")
    out = Path(args.output_dir)
    mp = args.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() or _cpu_has_bf16() else "no"
    reset_accelerate_state()
    accelerator = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())
    device = accelerator.device

    # ---- data: cached latents of training clips; captions drawn afresh every step ----
    vae = AutoencoderKL.from_pretrained(args.vae).eval().requires_grad_(False)
    cache = Path(args.cache_dir or out / "latents")
    if accelerator.is_main_process:
        build_latent_cache(vae, cache, preset["clips"], seed=args.seed, travel_range=preset["travel"],
                           log=accelerator.print)
    accelerator.wait_for_everyone()
    all_latents, scenes = load_latent_cache(cache)  # (N, C, T, h, w) fp16
    text_encoder = MiniLMTextEncoder(device=device)

    # ---- model, EMA, optimiser, schedule ----
    torch.manual_seed(args.seed)
    if args.init_from:
        from ..models.unet import SpaceTimeUNet

        init = Path(args.init_from)
        unet = SpaceTimeUNet.from_pretrained(init / "unet" if (init / "unet").is_dir() else init, use_safetensors=True)
        unet = unet.to(torch.float32)
    else:
        unet = build_unet(preset["unet"], latent_channels=vae.config.latent_channels,
                          num_frames=all_latents.shape[2], sample_size=all_latents.shape[-1])
    ema = EMAModel(unet.parameters(), decay=args.ema_decay, model_cls=type(unet), model_config=unet.config)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
    lr_scheduler = learning_rate_schedule(optimizer, args.max_steps, args.cooldown_steps, warmup)

    # ---- resume ----
    step = 0
    ckpt = latest_checkpoint(out / "checkpoints") if args.resume == "latest" else args.resume
    if ckpt:
        state, states = load_checkpoint(ckpt, {"unet": unet})
        optimizer.load_state_dict(states["optimizer"])
        lr_scheduler.load_state_dict(states["lr_scheduler"])
        ema.load_state_dict(states["ema"])
        step = state["step"]
        accelerator.print(f"resumed from {ckpt} at step {step}")
    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema.to(device)

    log_path = out / "loss_log.csv"
    if accelerator.is_main_process:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, step, header="step,loss,lr,seconds\n")
        FlowMatchEulerDiscreteScheduler(shift=sigma_shift).save_pretrained(out / "scheduler")

    # ---- loop ----
    losses: dict[int, float] = {}
    t0 = time.time()
    while step < args.max_steps:
        # batch: a pure function of (seed, step, process), so resuming repeats it exactly
        gen, np_seed = rng_for_step(args.seed, step, accelerator.process_index)
        rng = np.random.default_rng(np_seed)
        idx = rng.integers(len(scenes), size=preset["batch"])
        flip = rng.random(preset["batch"]) < 0.5  # a mirrored clip is another valid clip
        latents = all_latents[idx].float()
        latents[flip] = latents[flip].flip(-1)
        captions = [
            "" if rng.random() < CAPTION_DROPOUT
            else caption_scene(mirror_scene(scenes[i]) if f else scenes[i], rng, "train",
                               p_partial=preset["partial_reference"],
                               p_misnamed_colour=preset["misnamed_colour"])
            for i, f in zip(idx, flip)
        ]
        text = text_encoder.encode(captions).to(device)
        latents = latents.to(device)
        sigmas = sample_training_sigmas(len(idx), gen, shift=sigma_shift).to(device)
        noise = torch.randn(latents.shape, generator=gen).to(device)

        with accelerator.autocast():
            loss = flow_matching_loss(unet, latents, text, sigmas, noise)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}; no checkpoint written")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(accelerator.unwrap_model(unet).parameters())
        step += 1
        losses[step] = loss.item()

        if accelerator.is_main_process:
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow([step, f"{loss.item():.6f}", f"{lr_scheduler.get_last_lr()[0]:.3e}",
                                        f"{time.time() - t0:.1f}"])
            if step % 50 == 0:
                recent = [losses[s] for s in range(max(1, step - 49), step + 1) if s in losses]
                accelerator.print(f"step {step} loss {np.mean(recent):.4f} ({(time.time() - t0) / len(losses):.2f} s/step)")
            if step % args.checkpoint_every == 0 or step == args.max_steps:
                save_checkpoint(out / "checkpoints", step, {"unet": accelerator.unwrap_model(unet)},
                                {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict(),
                                 "ema": ema.state_dict()})
                export_ema(accelerator.unwrap_model(unet), ema, out / "ema_unet")
            if step % args.sample_every == 0:
                write_samples(out / "ema_unet", args.vae, out / "samples" / f"step_{step:08d}.png", text_encoder,
                              shift=sigma_shift)
        accelerator.wait_for_everyone()
        if args.stop_at_step is not None and step >= args.stop_at_step:
            return losses
    return losses


def export_ema(unet, ema, folder: Path) -> None:
    """save_pretrained the EMA weights (what generation uses) without disturbing training weights."""
    ema.store(unet.parameters())
    ema.copy_to(unet.parameters())
    unet.save_pretrained(folder)
    ema.restore(unet.parameters())


def write_samples(unet_dir: Path, vae_dir: str, path: Path, text_encoder, shift: float = 1.0) -> None:
    """A PNG contact sheet of held-out cases generated with the current EMA weights."""
    from ..contact_sheet import contact_sheet
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
