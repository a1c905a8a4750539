"""Model folders out of training: the EMA weights, a fine-tune's result, the assembled model.

    python -m i2v.training.export --vae runs/vae/final --unet runs/video/ema_unet \
        --out src/i2v/weights/i2v-tiny [--dtype fp16] [--shift S]

assembles the two stages' parts into a model folder that ``i2v generate --model`` (and the
package) loads. The sampling time shift defaults to the one the denoiser was trained with, which
``train_video`` records beside ``ema_unet`` as ``scheduler/scheduler_config.json``.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from ..io.temps import partial_sibling, remove_stale_temps


@contextmanager
def ema_weights(ema, params: list[torch.nn.Parameter]):
    """Inside the block ``params`` hold the EMA weights (what generation uses); the training weights
    come back after it. ``ema=None``: the training weights as they are."""
    if ema is None:
        yield
        return
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)


def export_ema(unet: torch.nn.Module, ema, folder: str | Path) -> None:
    """save_pretrained the EMA weights without disturbing the training weights."""
    with ema_weights(ema, list(unet.parameters())):
        unet.save_pretrained(folder)


def write_model_folder(save: Callable[[Path], None], folder: str | Path) -> None:
    """Run ``save(tmp)`` into a temporary folder, then move its entries into ``folder``.

    ``model_index.json`` moves last, so a folder that has one holds a complete model; other
    entries of ``folder`` (checkpoints, logs, samples) are left alone."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)  # what a killed export was writing
    with partial_sibling(folder / "model", directory=True) as tmp:
        save(tmp)
        index = tmp / "model_index.json"
        (folder / "model_index.json").unlink(missing_ok=True)
        for entry in sorted(tmp.iterdir()):
            if entry == index:
                continue
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            entry.replace(target)
        index.replace(folder / "model_index.json")


def training_shift(unet_dir: str | Path) -> float:
    """The noise-level shift the run that wrote ``unet_dir`` trained with (1.0 if it recorded none)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    recorded = Path(unet_dir).parent / "scheduler"
    if not (recorded / "scheduler_config.json").is_file():
        return 1.0
    return float(FlowMatchEulerDiscreteScheduler.from_pretrained(recorded).config.shift)


def export_model(vae_dir: str | Path, unet_dir: str | Path, out: str | Path, shift: float | None = None,
                 dtype: str = "fp32") -> Path:
    """Save an I2VPipeline folder; ``shift=None`` samples with the training run's shift."""
    from ..pipelines.pipeline_i2v import I2VPipeline

    out = Path(out)
    shift = training_shift(unet_dir) if shift is None else shift
    pipe = I2VPipeline.from_parts(unet_dir, vae_dir, shift=shift, text_encoder=False)
    if dtype == "fp16":  # halves the shipped size; loaded back as fp32 by default
        pipe.unet.to(torch.float16)
        pipe.vae.to(torch.float16)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent)
    with partial_sibling(out, directory=True) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True)
    p.add_argument("--unet", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--shift", type=float, default=None,
                   help="sampling time shift stored in the scheduler config (default: the training run's, "
                        "read from the scheduler/ folder beside --unet, else 1)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    args = p.parse_args(argv)
    print(export_model(args.vae, args.unet, args.out, args.shift, args.dtype))


if __name__ == "__main__":
    main()
