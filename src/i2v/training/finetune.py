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
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingSetupError
from .export import ema_weights
from .loop import CAPTION_DROPOUT, LoopConfig, Stage, is_sharded, make_accelerator, train

LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


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
    from ..registry import resolve_model
    from ..validate import check_output_folder

    data = Path(args.data).expanduser()  # a folder of videos would take the run's samples in next time
    check_output_folder(args.output_dir, [resolve_model(args.model).source, data if data.is_dir() else None])


def load_trainable(args, device):
    """The model to train, from ``--model``: its family's trainable (``Family.trainable``), if it has one."""
    import importlib

    from ..registry import backend_class, resolve_model

    spec = resolve_model(args.model)
    path = backend_class(spec.family).family.trainable
    if path is None:
        raise TrainingSetupError(f"{spec.name} ({spec.family}): fine-tuning {spec.family} models is not supported; "
                                 "i2v trains its own models and Stable Video Diffusion")
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name).from_args(spec, args, device)


def main(argv=None) -> dict[int, float]:
    from diffusers.optimization import get_scheduler

    from ..data.video_dataset import VideoClipDataset
    from ..lora import add_lora, save_lora
    from .clip_cache import ClipCache, build_clip_cache

    args = parse_args(argv)
    out = Path(args.output_dir)
    lora = args.lora_rank is not None
    use_ema = (not lora) if args.ema is None else args.ema
    if args.report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError as exc:
            raise TrainingSetupError("--report-to tensorboard needs `pip install tensorboard`") from exc
    accelerator = make_accelerator(args.mixed_precision, cpu_bf16=False,  # auto: bf16 on GPUs only
                                   gradient_accumulation_steps=args.gradient_accumulation_steps,
                                   log_with="tensorboard" if args.report_to == "tensorboard" else None,
                                   project_dir=str(out / "logs"))
    device = accelerator.device
    # FSDP / DeepSpeed shard weights or optimizer state: no EMA (a full copy), exports gather the weights
    sharded = is_sharded(accelerator)
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
            from ..backends.diffusers.svd import TEXT_PROJ_FOLDER

            if args.text_conditioning and not (trainable.folder / TEXT_PROJ_FOLDER).is_dir():
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
        fingerprint = dict(model=str(trainable.folder.resolve()), preset=args.preset, family=trainable.family,
                           data=str(Path(args.data).resolve()), num_frames=num_frames, stride=args.frame_stride,
                           size=[height, width], buckets=args.aspect_buckets, clips_per_video=args.clips_per_video)
        cache_dir = Path(args.cache_dir or out / "clip_cache")
        if accelerator.is_main_process:
            build_clip_cache(trainable, dataset, cache_dir, args.clips_per_video, fingerprint, device,
                             log=accelerator.print)
        accelerator.wait_for_everyone()
        cache = ClipCache(cache_dir, fingerprint)

    def batch(rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], list[str]]:
        if cache is not None:
            cond, captions = cache.sample(rng, args.batch_size)
            cond = {k: v.to(device) for k, v in cond.items()}
        else:
            video, captions, idx = dataset.sample_batch(rng, args.batch_size)  # (B, 3, T, H, W)
            fps = torch.tensor([dataset.records[i].fps / args.frame_stride for i in idx], device=device)
            cond = trainable.encode_video(video.to(device), fps)
        captions = ["" if rng.random() < CAPTION_DROPOUT else c for c in captions]
        return cond, captions

    def loss(model, batch, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        cond, captions = batch
        return trainable.loss(model, cond, captions, gen), {}

    # ---- 3. the result in OUTPUT_DIR: the model folder (EMA weights) or the LoRA; validation videos ----
    export_copy = copy.deepcopy(model).cpu() if sharded else None  # full weights are gathered into it to export

    def export(weights) -> None:
        """Called on every process: gathering sharded weights is collective."""
        if sharded:
            full = accelerator.get_state_dict(weights.model)
            if not accelerator.is_main_process:
                return
            export_copy.load_state_dict(full, strict=False)
            target = export_copy
        elif not accelerator.is_main_process:
            return
        else:
            target = accelerator.unwrap_model(weights.model)
        if lora:
            save_lora(getattr(target, "unet", target), out)  # SVDDenoiser.unet or the i2v denoiser itself
            return
        with ema_weights(weights.ema, weights.params):
            trainable.save_model(target, out)

    def after_step(step: int, checkpointed: bool, weights) -> None:
        validate_now = not args.no_validation and (step == args.max_steps or (args.validation_every and
                                                                              step % args.validation_every == 0))
        if checkpointed or validate_now:
            export(weights)
        if validate_now and accelerator.is_main_process:
            path = write_validation(args, dataset, out, step)
            accelerator.print(f"validation video: {path}")

    # ---- 4. the loop ----
    if args.report_to == "tensorboard" and accelerator.is_main_process:
        accelerator.init_trackers("i2v-train", config={k: v for k, v in vars(args).items()
                                                       if isinstance(v, (int, float, str, bool))})
    stage = Stage(
        model=model,
        checkpoint_name="trainable",
        optimizer=lambda params: torch.optim.AdamW(params, lr=args.learning_rate or (1e-4 if lora else 2e-5),
                                                   weight_decay=args.weight_decay),
        lr_schedule=lambda optimizer: get_scheduler(args.lr_scheduler, optimizer,
                                                    num_warmup_steps=args.lr_warmup_steps,
                                                    num_training_steps=args.max_steps),
        batch=batch,
        loss=loss,
        after_step=after_step,
        trainable_only=True,
        checkpoint_info={"num_processes": accelerator.num_processes, "lora_rank": args.lora_rank,
                         "model": args.model, "family": trainable.family},
        ema_decay=args.ema_decay if use_ema else None,
        ema_warmup=True,
    )
    return train(accelerator, stage, LoopConfig.from_args(args, keep_checkpoints=args.keep_checkpoints,
                                                          max_grad_norm=args.max_grad_norm, print_every=10))


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


if __name__ == "__main__":
    main()
