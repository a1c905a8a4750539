"""Train or fine-tune on your own videos: i2v's model or Stable Video Diffusion, full or LoRA.

    i2v train --model i2v-tiny --data videos/metadata.csv --output-dir runs/mine --max-steps 2000
    i2v train --model i2v-tiny --preset small --data clips/ --output-dir runs/scratch     # from scratch
    i2v train --model path/to/svd --data clips/ --output-dir runs/svd-lora --lora-rank 16
    i2v train --model path/to/svd --data clips/ --output-dir runs/svd-text --text-conditioning
    accelerate launch --config_file configs/accelerate/ddp.yaml -m i2v.training.finetune --model ...

--data is a CSV/JSONL index (``video,caption``; WebVid ``videoid,name`` works) or a folder of
videos with ``<name>.txt`` captions. The result is a model folder (``i2v generate --model DIR``)
or, with ``--lora-rank``, a diffusers-format LoRA (``i2v generate --model BASE --lora DIR``).

One readable loop on accelerate (devices, processes, mixed precision, gradient accumulation);
the same script runs on one CPU or, under ``accelerate launch``, with DDP / FSDP / DeepSpeed.
Batches and noise are a pure function of (seed, step, process), and checkpoints are written
atomically with the optimizer, schedule and EMA state, so ``--resume latest`` after a kill
repeats the same losses. For the procedural world the embedded model was trained on, see
``i2v train video``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .accelerate_state import reset_accelerate_state
from .checkpoint import (
    STEP_PREFIX,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    rng_for_step,
    save_checkpoint,
    truncate_log,
)

CAPTION_DROPOUT = 0.1  # share of empty prompts, for classifier-free guidance
LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


class TrainingSetupError(ValueError):
    """A bad combination of options or a model that cannot be trained here."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="i2v train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model and data")
    g.add_argument("--model", required=True, help="i2v model (i2v-tiny or a saved i2v folder) or a Stable Video "
                                                  "Diffusion folder / name (svd, svd-xt, ...)")
    g.add_argument("--data", required=True, help="CSV/JSONL index (video,caption) or a folder of videos + .txt")
    g.add_argument("--output-dir", required=True)
    g.add_argument("--preset", default=None, help="i2v model from scratch: a fresh denoiser of this preset "
                                                  "(small, test) with the --model folder's autoencoder")
    g.add_argument("--text-conditioning", action="store_true",
                   help="SVD: add the prompt to the U-Net's cross-attention (trains a text projection)")
    g.add_argument("--lora-rank", type=int, default=None, help="train a LoRA of this rank instead of all weights")
    g.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    g.add_argument("--num-frames", type=int, default=None, help="frames per clip (default: the model's)")
    g.add_argument("--frame-stride", type=int, default=1, help="take every N-th frame of the source video")
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--aspect-buckets", action="store_true", help="keep each video's aspect ratio (size buckets "
                                                                 "of about height*width pixels)")
    g.add_argument("--max-bad-fraction", type=float, default=0.2, help="stop if more of the videos are unreadable")
    g.add_argument("--cache-latents", action="store_true", help="encode each clip once and cache it on disk")
    g.add_argument("--clips-per-video", type=int, default=4, help="cached clips per video (with --cache-latents)")
    g.add_argument("--cache-dir", default=None, help="clip cache folder (default: OUTPUT_DIR/clip_cache)")
    g.add_argument("--motion-bucket-id", type=int, default=127, help="SVD: motion bucket the clips are trained on")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=int, default=1000)
    g.add_argument("--batch-size", type=int, default=1, help="clips per process per micro-step")
    g.add_argument("--gradient-accumulation-steps", type=int, default=1)
    g.add_argument("--learning-rate", type=float, default=None, help="default 1e-4 (LoRA) / 2e-5 (full)")
    g.add_argument("--lr-scheduler", default="constant_with_warmup", choices=LR_SCHEDULES)
    g.add_argument("--lr-warmup-steps", type=int, default=0)
    g.add_argument("--weight-decay", type=float, default=1e-2)
    g.add_argument("--max-grad-norm", type=float, default=1.0)
    g.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"],
                   help="auto: bf16 on GPUs that support it, else no")
    g.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (less memory)")
    g.add_argument("--ema", default=None, action=argparse.BooleanOptionalAction,
                   help="keep an EMA of the weights and save it (default: on for full fine-tuning, off for LoRA)")
    g.add_argument("--ema-decay", type=float, default=0.999)
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("checkpoints, logs, validation")
    g.add_argument("--checkpoint-every", type=int, default=500)
    g.add_argument("--keep-checkpoints", type=int, default=2)
    g.add_argument("--resume", default=None, help="'latest' or a checkpoint folder")
    g.add_argument("--validation-every", type=int, default=0, help="write a validation video every N steps "
                                                                   "(0: only at the end)")
    g.add_argument("--validation-prompt", default=None, help="default: the first video's caption")
    g.add_argument("--validation-steps", type=int, default=None, help="denoising steps of validation videos")
    g.add_argument("--no-validation", action="store_true", help="write no validation video")
    g.add_argument("--report-to", default="csv", choices=["csv", "tensorboard"],
                   help="loss log: OUTPUT_DIR/loss_log.csv always; tensorboard adds OUTPUT_DIR/logs")
    g.add_argument("--stop-at-step", type=int, default=None, help="exit after this step as if killed (tests)")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args) -> None:
    for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "frame_stride",
                 "clips_per_video", "keep_checkpoints"):
        if getattr(args, name) < 1:
            raise TrainingSetupError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.lora_rank is not None and args.lora_rank < 1:
        raise TrainingSetupError(f"--lora-rank must be >= 1, got {args.lora_rank}")
    if not 0 <= args.max_bad_fraction < 1:
        raise TrainingSetupError(f"--max-bad-fraction must be in [0, 1), got {args.max_bad_fraction}")


def load_trainable(args, device):
    """The model to train, from ``--model``: i2v's own (family "tiny") or Stable Video Diffusion."""
    from ..registry import resolve_model

    spec = resolve_model(args.model)
    if spec.family == "tiny":
        if args.text_conditioning:
            raise TrainingSetupError("--text-conditioning is for Stable Video Diffusion; i2v models take text")
        from ..models.unet import UNET_PRESETS
        from .trainable_i2v import I2VTrainable

        if args.preset is not None and args.preset not in UNET_PRESETS:
            raise TrainingSetupError(f"unknown --preset {args.preset!r}; expected one of {sorted(UNET_PRESETS)}")
        return I2VTrainable(spec.source, preset=args.preset, device=device)
    if spec.family == "svd":
        if args.preset:
            raise TrainingSetupError("--preset builds an i2v model from scratch; SVD is fine-tuned from its folder")
        from ..backends.diffusers_common import local_model_folder
        from .trainable_svd import SVDTrainable

        folder = Path(spec.source) if Path(spec.source).is_dir() else local_model_folder(spec.source)
        return SVDTrainable(folder, device=device, text_conditioning=args.text_conditioning,
                            motion_bucket_id=args.motion_bucket_id)
    raise TrainingSetupError(f"{spec.name} ({spec.family}): i2v trains its own models and Stable Video Diffusion; "
                             f"fine-tuning {spec.family} is not supported")


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights being trained (all of them, or only the LoRA matrices)."""
    return {k: v for k, v in model.named_parameters() if v.requires_grad}


def main(argv=None) -> dict[int, float]:
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    from ..data.video_dataset import VideoClipDataset
    from ..lora import add_lora, save_lora
    from .clip_cache import ClipCache, build_clip_cache

    args = parse_args(argv)
    out = Path(args.output_dir)
    lora = args.lora_rank is not None
    use_ema = (not lora) if args.ema is None else args.ema
    mp = args.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if args.report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError as exc:
            raise TrainingSetupError("--report-to tensorboard needs `pip install tensorboard`") from exc
    reset_accelerate_state()
    accelerator = Accelerator(mixed_precision=mp, gradient_accumulation_steps=args.gradient_accumulation_steps,
                              cpu=not torch.cuda.is_available(),
                              log_with="tensorboard" if args.report_to == "tensorboard" else None,
                              project_dir=str(out / "logs"))
    device = accelerator.device
    # FSDP / DeepSpeed shard weights or optimizer state: checkpoints go through accelerate's save_state
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    if sharded and use_ema:
        if args.ema:
            raise TrainingSetupError("--ema keeps a full copy of sharded weights; not supported with FSDP/DeepSpeed")
        use_ema = False
        accelerator.print("note: EMA is off under FSDP/DeepSpeed (pass --no-ema to silence this)")

    # ---- 1. the model: i2v's own or SVD; full weights or a LoRA ----
    trainable = load_trainable(args, device)
    model = trainable.model
    if lora:
        if getattr(model, "text_proj", None) is not None:
            if args.text_conditioning and not (Path(trainable.folder) / "text_proj").is_dir():
                raise TrainingSetupError("--text-conditioning trains a new text projection: run it as a full "
                                         "fine-tune first, then train LoRAs on the result")
            model.text_proj.requires_grad_(False)
        add_lora(trainable.denoiser, args.lora_rank, args.lora_alpha)
    else:
        model.requires_grad_(True)
    if args.gradient_checkpointing:
        trainable.denoiser.enable_gradient_checkpointing()
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    accelerator.print(f"training {sum(p.numel() for p in params) / 1e6:.2f}M parameters "
                      f"({'LoRA rank ' + str(args.lora_rank) if lora else 'full'}) of {trainable.family}")

    # ---- 2. data: the user's videos, decoded live or from the clip cache ----
    num_frames = args.num_frames or trainable.num_frames
    height, width = args.height or trainable.height, args.width or trainable.width
    if height % trainable.size_multiple or width % trainable.size_multiple:
        raise TrainingSetupError(f"--height/--width must be multiples of {trainable.size_multiple} for this model, "
                                 f"got {width}x{height}")
    dataset = VideoClipDataset(args.data, num_frames=num_frames, frame_stride=args.frame_stride, height=height,
                               width=width, aspect_buckets=args.aspect_buckets,
                               size_multiple=trainable.size_multiple, max_bad_fraction=args.max_bad_fraction,
                               log=accelerator.print)
    accelerator.print(f"data: {len(dataset)} videos ({len(dataset.skipped)} skipped), clips of {num_frames} "
                      f"frames, stride {args.frame_stride}, {width}x{height}"
                      + (" with aspect buckets" if args.aspect_buckets else ""))
    cache = None
    if args.cache_latents:
        fingerprint = dict(model=str(Path(trainable.folder).resolve()), preset=args.preset, family=trainable.family,
                           data=str(Path(args.data).resolve()), num_frames=num_frames, stride=args.frame_stride,
                           size=[height, width], buckets=args.aspect_buckets, clips_per_video=args.clips_per_video)
        cache_dir = Path(args.cache_dir or out / "clip_cache")
        if accelerator.is_main_process:
            build_clip_cache(trainable, dataset, cache_dir, args.clips_per_video, fingerprint, device,
                             log=accelerator.print)
        accelerator.wait_for_everyone()
        cache = ClipCache(cache_dir, fingerprint)

    def next_batch(rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], list[str]]:
        if cache is not None:
            cond, captions = cache.sample(rng, args.batch_size)
            cond = {k: v.to(device) for k, v in cond.items()}
        else:
            video, captions, idx = dataset.sample_batch(rng, args.batch_size)  # (B, 3, T, H, W)
            fps = torch.tensor([dataset.records[i].fps / args.frame_stride for i in idx], device=device)
            cond = trainable.encode_video(video.to(device), fps)
        captions = ["" if rng.random() < CAPTION_DROPOUT else c for c in captions]
        return cond, captions

    # ---- 3. resume weights, wrap the model (DDP / FSDP / DeepSpeed), optimiser, schedule, EMA ----
    step = 0
    ckpt = latest_checkpoint(out / "checkpoints") if args.resume == "latest" else args.resume
    ckpt = Path(ckpt) if ckpt else None
    own_format = ckpt is not None and (ckpt / "trainable.safetensors").is_file()
    if own_format:
        state, states = load_checkpoint(ckpt, {"trainable": model}, strict=False)
    export_copy = copy.deepcopy(model).cpu() if sharded else None  # full weights are gathered into it to export
    model = accelerator.prepare(model)  # before the optimiser: FSDP replaces the parameters
    params = [p for p in model.parameters() if p.requires_grad]
    lr = args.learning_rate or (1e-4 if lora else 2e-5)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=args.weight_decay)
    # stepped once per optimiser step by this loop (not prepared: accelerate would step it once per process)
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps,
                                 num_training_steps=args.max_steps)
    ema = EMAModel(params, decay=args.ema_decay, use_ema_warmup=True) if use_ema else None
    if own_format:
        optimizer.load_state_dict(states["optimizer"])
        lr_scheduler.load_state_dict(states["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(states["ema"])
        step = state["step"]
    optimizer = accelerator.prepare(optimizer)
    if ckpt is not None and not own_format:  # written by accelerate's save_state (FSDP / DeepSpeed runs)
        accelerator.load_state(str(ckpt))
        lr_scheduler.load_state_dict(torch.load(ckpt / "lr_scheduler.pt", weights_only=True))
        step = json.loads((ckpt / "state.json").read_text())["step"]
    if ckpt is not None:
        accelerator.print(f"resumed from {ckpt} at step {step}")
    if ema is not None:
        ema.to(device)

    log_path = out / "loss_log.csv"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, step, header="step,loss,lr,seconds\n")
        if args.report_to == "tensorboard":
            accelerator.init_trackers("i2v-train", config={k: v for k, v in vars(args).items()
                                                           if isinstance(v, (int, float, str, bool))})

    def export() -> None:
        """The usable result in OUTPUT_DIR: the model folder (EMA weights) or the LoRA file.
        Called on every process: gathering sharded weights is collective."""
        if sharded:
            full = accelerator.get_state_dict(model)
            if not accelerator.is_main_process:
                return
            export_copy.load_state_dict(full, strict=False)
            target = export_copy
        elif not accelerator.is_main_process:
            return
        else:
            target = accelerator.unwrap_model(model)
        if lora:
            save_lora(getattr(target, "unet", target), out)  # SVDDenoiser.unet or the i2v denoiser itself
            return
        if ema is not None:
            ema.store(params)
            ema.copy_to(params)
        try:
            trainable.save_model(target, out)
        finally:
            if ema is not None:
                ema.restore(params)

    def write_checkpoint(at_step: int) -> None:
        info = {"num_processes": accelerator.num_processes, "lora_rank": args.lora_rank, "model": args.model,
                "family": trainable.family}
        root = out / "checkpoints"
        if sharded:  # accelerate writes each process's shards; the folder is renamed once complete
            tmp = root / f".tmp_{STEP_PREFIX}{at_step:08d}"
            accelerator.save_state(str(tmp))
            if accelerator.is_main_process:
                torch.save(lr_scheduler.state_dict(), tmp / "lr_scheduler.pt")
                (tmp / "state.json").write_text(json.dumps({"step": at_step, **info}, indent=2))
                final = root / f"{STEP_PREFIX}{at_step:08d}"
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
                for old in list_checkpoints(root)[:-args.keep_checkpoints]:
                    shutil.rmtree(old, ignore_errors=True)
        elif accelerator.is_main_process:
            save_checkpoint(root, at_step, {"trainable": trainable_state(accelerator.unwrap_model(model))},
                            {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict(),
                             **({"ema": ema.state_dict()} if ema is not None else {})},
                            info=info, keep=args.keep_checkpoints)

    # ---- 4. loop ----
    losses: dict[int, float] = {}
    t0 = time.time()
    accum = args.gradient_accumulation_steps
    while step < args.max_steps:
        total = 0.0
        for micro in range(accum):
            # a pure function of (seed, step, micro-step, process): resuming repeats the same batches
            gen, np_seed = rng_for_step(args.seed, step * accum + micro, accelerator.process_index)
            cond, captions = next_batch(np.random.default_rng(np_seed))
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss = trainable.loss(model, cond, captions, gen)
                every = accelerator.gather(loss.detach().float().reshape(1))  # (num_processes,)
                if not torch.isfinite(every).all():  # every process stops together, before any update
                    raise FloatingPointError(f"non-finite loss {every.tolist()} at step {step + 1}; no "
                                             "checkpoint written for it (lower --learning-rate, try bf16 "
                                             "instead of fp16, or resume from the last checkpoint)")
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += every.mean().item() / accum
        lr_scheduler.step()
        if ema is not None:
            ema.step(params)
        step += 1
        losses[step] = total

        if accelerator.is_main_process:
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow([step, f"{total:.6f}", f"{lr_scheduler.get_last_lr()[0]:.3e}",
                                        f"{time.time() - t0:.1f}"])
            if args.report_to == "tensorboard":
                accelerator.log({"loss": total, "lr": lr_scheduler.get_last_lr()[0]}, step=step)
            if step % 10 == 0 or step == 1:
                accelerator.print(f"step {step}/{args.max_steps} loss {total:.4f} "
                                  f"({(time.time() - t0) / len(losses):.2f} s/step)")
        last = step == args.max_steps
        checkpoint_now = step % args.checkpoint_every == 0 or last
        validate_now = not args.no_validation and (last or (args.validation_every and
                                                            step % args.validation_every == 0))
        if checkpoint_now:
            write_checkpoint(step)
        if checkpoint_now or validate_now:
            export()
        if validate_now and accelerator.is_main_process:
            path = write_validation(args, dataset, out, step)
            accelerator.print(f"validation video: {path}")
        accelerator.wait_for_everyone()
        if args.stop_at_step is not None and step >= args.stop_at_step:
            break

    check_replicas_in_sync(accelerator, params)
    if accelerator.num_processes > 1:
        # gloo's worker thread frees finished collectives (and their tensors, which needs the GIL) after
        # they complete; tearing DDP's process group down while it still does so deadlocks both threads.
        accelerator.wait_for_everyone()
        time.sleep(0.5)
        del model, optimizer, params
    accelerator.end_training()  # also destroys the process group
    return losses


def write_validation(args, dataset, out: Path, step: int) -> Path:
    """Generate a clip from the exported result through the public API, as a user would."""
    from PIL import Image

    from ..api import GenerationRequest, ImageToVideoGenerator

    first = dataset.load_clip(0, 0)[:, 0]  # (3, H, W) in [-1, 1]
    pixels = ((first.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    if args.lora_rank is not None:
        gen = ImageToVideoGenerator(args.model, device="cpu" if not torch.cuda.is_available() else None,
                                    loras=[str(out)])
    else:
        gen = ImageToVideoGenerator(str(out), device="cpu" if not torch.cuda.is_available() else None)
    prompt = args.validation_prompt if args.validation_prompt is not None else dataset.records[0].caption
    result = gen.run(GenerationRequest(image=Image.fromarray(pixels), prompt=prompt, seed=args.seed,
                                       num_inference_steps=args.validation_steps,
                                       height=pixels.shape[0], width=pixels.shape[1]))
    return result.save(out / "validation" / f"step_{step:08d}.mp4")


def check_replicas_in_sync(accelerator, params: list[torch.Tensor]) -> None:
    """With several processes, every replica must hold the same weights after training."""
    if accelerator.num_processes == 1:
        return
    checksum = torch.stack([p.detach().float().sum() for p in params]).sum().reshape(1)
    every = accelerator.gather(checksum.to(accelerator.device))
    if not torch.allclose(every, every[0].expand_as(every), rtol=1e-5, atol=1e-6):
        raise RuntimeError(f"replicas diverged: weight checksums {every.tolist()}")
    accelerator.print(f"replicas in sync: {accelerator.num_processes} processes, weight checksum "
                      f"{every[0].item():.6f}")


if __name__ == "__main__":
    main()
