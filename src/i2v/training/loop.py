"""The one training loop: the autoencoder stage, the video stage and fine-tuning all run it.

A stage builds its model and its data, then hands ``train`` a ``Stage``: the module to train,
its optimiser and learning-rate schedule, how a batch is drawn, its loss, and what it does
after a step (exports, samples, validation). Everything else happens here, once, in order:

1. resume from ``--resume latest`` or a checkpoint folder: weights, optimiser, schedule, EMA;
2. the loss log ``OUTPUT_DIR/loss_log.csv``, cut back to the resumed step;
3. the steps: batches and noise are a pure function of (seed, step, process), so a resumed
   run repeats the same losses; a non-finite loss stops every process before any update;
4. atomic checkpoints every ``--checkpoint-every`` steps and at the last one.

The same loop runs on one CPU or, unchanged, under ``accelerate launch`` (DDP, FSDP, DeepSpeed).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..devices import cpu_has_fast_bf16, cuda_has_bf16
from ..errors import OutputPathError, TrainingSetupError
from .checkpoint import (
    checkpoint_to_resume,
    latest_checkpoint,
    load_checkpoint,
    load_sharded_checkpoint,
    save_checkpoint,
    save_sharded_checkpoint,
    trainable_state,
)

CAPTION_DROPOUT = 0.1  # share of empty prompts in a stage's batches, for classifier-free guidance


@dataclass
class LoopConfig:
    """How far to train, where to write, how often to save: the flags every stage shares."""

    output_dir: Path
    max_steps: int
    seed: int = 0
    checkpoint_every: int = 250
    resume: str | None = None  # "latest" or a checkpoint folder
    stop_at_step: int | None = None  # return after this step as if killed (tests)
    keep_checkpoints: int = 2
    max_grad_norm: float = 1.0
    print_every: int = 50  # a progress line every N steps (and after the first)

    @classmethod
    def from_args(cls, args, **more) -> LoopConfig:
        """From ``--output-dir --max-steps --seed --checkpoint-every --resume --stop-at-step``."""
        return cls(output_dir=Path(args.output_dir), max_steps=args.max_steps, seed=args.seed,
                   checkpoint_every=args.checkpoint_every, resume=args.resume, stop_at_step=args.stop_at_step,
                   **more)


@dataclass
class Weights:
    """The trained weights as a stage's hooks see them."""

    model: torch.nn.Module  # as accelerate prepared it (wrapped under DDP / FSDP): unwrap_model it to save
    params: list[torch.nn.Parameter]  # the parameters being trained
    ema: object | None  # diffusers' EMAModel of ``params``, when the stage keeps one


@dataclass
class Stage:
    """What a stage supplies to ``train``; the rest is the loop's."""

    model: torch.nn.Module  # the module to train, before accelerate prepares it
    checkpoint_name: str  # its weights' file in a checkpoint: ``{name}.safetensors``
    optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]
    lr_schedule: Callable[[torch.optim.Optimizer], object]  # stepped once per (accumulated) step
    batch: Callable[[np.random.Generator], object]  # drawn outside mixed precision
    # (model, batch, generator) -> (loss, extras: detached scalars by name), under autocast
    loss: Callable[[torch.nn.Module, object, torch.Generator], tuple[torch.Tensor, dict]]
    log_columns: dict[str, str] = field(default_factory=dict)  # extras logged after the loss: name -> format
    report: Callable[[dict], str] | None = None  # more of the progress line, from the last batch's extras
    after_step: Callable[[int, bool, Weights], None] | None = None  # (step, checkpointed, weights), every process
    finish: Callable[[Weights], None] | None = None  # after the last step (not after --stop-at-step)
    trainable_only: bool = False  # checkpoint only the weights that require grad (a LoRA); resume non-strict
    checkpoint_info: dict = field(default_factory=dict)  # more entries for each checkpoint's state.json
    ema_decay: float | None = None  # keep an EMA of the trained weights with this decay
    ema_warmup: bool = False


def train(accelerator, stage: Stage, config: LoopConfig) -> dict[int, float]:
    """Train ``stage`` from its checkpoint (or step 0) to ``config.max_steps``; return this run's {step: loss}."""
    from diffusers.training_utils import EMAModel

    out = Path(config.output_dir)
    root = out / "checkpoints"
    sharded = is_sharded(accelerator)
    if sharded and stage.ema_decay is not None:
        raise TrainingSetupError("EMA keeps a full copy of sharded weights; not supported with FSDP/DeepSpeed")

    # ---- 1. resume: the weights go into the bare module, before accelerate wraps it ----
    ckpt = checkpoint_to_resume(config.resume, root)
    own_format = ckpt is not None and (ckpt / f"{stage.checkpoint_name}.safetensors").is_file()
    if own_format:
        state, states = load_checkpoint(ckpt, {stage.checkpoint_name: stage.model}, strict=not stage.trainable_only)

    # ---- 2. wrap the model (DDP / FSDP / DeepSpeed); optimiser, schedule and EMA on its trained parameters ----
    model = accelerator.prepare(stage.model)  # before the optimiser: FSDP replaces the parameters
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = stage.optimizer(params)
    # stepped once per optimiser step by this loop (not prepared: accelerate would step it once per process)
    lr_scheduler = stage.lr_schedule(optimizer)
    ema = None
    if stage.ema_decay is not None:
        ema = EMAModel(params, decay=stage.ema_decay, use_ema_warmup=stage.ema_warmup)
    step = 0
    if own_format:
        optimizer.load_state_dict(states["optimizer"])
        lr_scheduler.load_state_dict(states["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(states["ema"])
        step = state["step"]
    optimizer = accelerator.prepare(optimizer)
    if ckpt is not None and not own_format:  # written by accelerate's save_state (FSDP / DeepSpeed runs)
        step = load_sharded_checkpoint(accelerator, ckpt, lr_scheduler)
    if ckpt is not None:
        accelerator.print(f"resumed from {ckpt} at step {step}")
        if step >= config.max_steps:
            accelerator.print(f"step {step} is at or past --max-steps {config.max_steps}: nothing to train; "
                              "the final export runs on these weights (raise --max-steps to train on)")
    if ema is not None:
        ema.to(accelerator.device)
    weights = Weights(model, params, ema)

    # ---- 3. the loss log: rows after the resumed step come from a run killed before its next checkpoint ----
    log_path = out / "loss_log.csv"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(log_path, step, header=",".join(["step", "loss", *stage.log_columns, "lr", "seconds"]) + "\n")

    # ---- 4. the steps ----
    losses: dict[int, float] = {}
    t0 = time.time()
    accum = accelerator.gradient_accumulation_steps
    stopped = False
    while step < config.max_steps:
        # forward and backward per micro-batch, each a pure function of (seed, micro-step, process)
        total = 0.0
        for micro in range(accum):
            gen, np_seed = rng_for_step(config.seed, step * accum + micro, accelerator.process_index)
            batch = stage.batch(np.random.default_rng(np_seed))
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss, extras = stage.loss(model, batch, gen)
                every = accelerator.gather(loss.detach().float().reshape(1))  # (num_processes,)
                if not torch.isfinite(every).all():  # every process stops together, before any update
                    raise FloatingPointError(f"non-finite loss {every.tolist()} at step {step + 1}; no checkpoint "
                                             "written for it (lower the learning rate, try bf16 instead of fp16, "
                                             "or resume from the last checkpoint)")
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += every.mean().item() / accum
        lr_scheduler.step()
        if ema is not None:
            ema.step(params)
        step += 1
        losses[step] = total

        # log: a CSV row every step (and tensorboard, if the stage started it), a progress line now and then
        if accelerator.is_main_process:
            lr = lr_scheduler.get_last_lr()[0]
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow([step, f"{total:.6f}",
                                        *(format(float(extras[name]), fmt) for name, fmt in stage.log_columns.items()),
                                        f"{lr:.3e}", f"{time.time() - t0:.1f}"])
            accelerator.log({"loss": total, "lr": lr}, step=step)
            if step % config.print_every == 0 or step == 1:
                recent = [losses[s] for s in range(step - config.print_every + 1, step + 1) if s in losses]
                more = stage.report(extras) if stage.report is not None else ""
                accelerator.print(f"step {step}/{config.max_steps} loss {np.mean(recent):.4f}{more} "
                                  f"({(time.time() - t0) / len(losses):.2f} s/step)")

        # checkpoint every checkpoint_every steps and at the last; then the stage's exports
        checkpointed = step % config.checkpoint_every == 0 or step == config.max_steps
        if checkpointed and sharded:  # every process writes its shards
            save_sharded_checkpoint(accelerator, root, step, lr_scheduler, stage.checkpoint_info,
                                    config.keep_checkpoints)
        elif checkpointed and accelerator.is_main_process:
            module = accelerator.unwrap_model(model)
            try:
                save_checkpoint(root, step, {stage.checkpoint_name: trainable_state(module) if stage.trainable_only
                                             else module},
                                {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict(),
                                 **({"ema": ema.state_dict()} if ema is not None else {})},
                                info=stage.checkpoint_info, keep=config.keep_checkpoints)
            except OSError as exc:  # disk full, folder gone read-only: the partial checkpoint is already removed
                last = latest_checkpoint(root)
                raise OutputPathError(f"{root}: cannot write the step {step} checkpoint ({exc.strerror or exc}); "
                                      + (f"the last complete one is {last.name}: " if last else "")
                                      + "make room, then run again with --resume latest") from exc
        if stage.after_step is not None:
            stage.after_step(step, checkpointed, weights)
        accelerator.wait_for_everyone()
        if config.stop_at_step is not None and step >= config.stop_at_step:  # as if killed here
            stopped = True
            break

    # ---- 5. the end: the stage's final export; replicas checked; processes torn down ----
    if not stopped and stage.finish is not None:
        stage.finish(weights)
    check_replicas_in_sync(accelerator, params)
    if accelerator.num_processes > 1:
        # gloo's worker thread frees finished collectives (and their tensors, which needs the GIL) after
        # they complete; tearing DDP's process group down while it still does so deadlocks both threads.
        accelerator.wait_for_everyone()
        time.sleep(0.5)
        del model, optimizer, params, weights
    accelerator.end_training()  # also destroys the process group
    return losses


def make_accelerator(mixed_precision: str, cpu_bf16: bool = True, **options):
    """A fresh ``Accelerator`` for one run; ``options`` go to it as they are.

    ``mixed_precision="auto"`` is bf16 on a CUDA device that supports it and, with ``cpu_bf16``,
    on a CPU that runs bf16 natively (``devices.cpu_has_fast_bf16``); else no."""
    from accelerate import Accelerator

    if mixed_precision == "auto":
        if torch.cuda.is_available():
            fast = cuda_has_bf16()
        else:
            fast = cpu_bf16 and cpu_has_fast_bf16()
        mixed_precision = "bf16" if fast else "no"
    reset_accelerate_state()
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available(), **options)


def reset_accelerate_state() -> None:
    """accelerate keeps its state in a process-wide singleton: without a reset, a second run in the
    same process (a notebook, the tests) could not use other settings (mixed precision, cpu).
    Left alone under a launcher, where the process group belongs to the whole job."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def is_sharded(accelerator) -> bool:
    """FSDP / DeepSpeed shard the weights or optimizer state: checkpoints go through accelerate's save_state."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def rng_for_step(seed: int, step: int, process_index: int = 0) -> tuple[torch.Generator, int]:
    """A generator (and a numpy seed) that depend only on (seed, step, process): batches and
    noise are a pure function of the step, so a resumed run repeats the same losses."""
    s = (seed * 1_000_003 + step * 7919 + process_index * 104_729) % (2**63 - 1)
    return torch.Generator().manual_seed(s), s % (2**31)


def truncate_log(path: Path, step: int, header: str) -> None:
    """Drop log rows after ``step`` (written by a run that was killed before its next checkpoint)."""
    if not path.exists():
        path.write_text(header)
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [lines[0]] + [ln for ln in lines[1:] if int(ln.split(",")[0]) <= step]
    path.write_text("".join(kept))


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
