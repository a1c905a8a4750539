"""Atomic checkpoints with exact resume.

A checkpoint is a folder ``step_00001234/`` holding safetensors weights for each module,
the optimizer / scheduler state (``torch.save`` of tensors and numbers only, read back with
``weights_only=True``) and ``state.json``. It is written to a temporary folder and renamed,
so a run killed mid-save never leaves a half-written checkpoint behind. Runs whose weights are
sharded (FSDP / DeepSpeed) write accelerate's ``save_state`` into the same kind of folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import TrainingSetupError, WeightsError
from ..io.safetensors_header import read_header, weights_errors
from ..io.temps import partial_sibling, remove_stale_temps

STEP_PREFIX = "step_"


def _state_to_tensors(module: torch.nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = module if isinstance(module, dict) else module.state_dict()
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_checkpoint(
    root: str | Path,
    step: int,
    modules: dict[str, torch.nn.Module | dict[str, torch.Tensor]],
    states: dict[str, object],
    info: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write ``root/step_{step}`` atomically; keep the newest ``keep`` checkpoints.

    ``modules`` maps a name to a module (its whole state dict is saved) or to a state dict (for
    example only the trainable LoRA weights)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{STEP_PREFIX}{step:08d}"
    remove_stale_temps(root)  # what a killed run was writing
    with partial_sibling(final, directory=True) as tmp:
        for name, module in modules.items():
            save_file(_state_to_tensors(module), str(tmp / f"{name}.safetensors"))
        for name, state in states.items():
            torch.save(state, tmp / f"{name}.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **(info or {})}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX) and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX):]))


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module],
                    strict: bool = True) -> tuple[dict, dict[str, object]]:
    """Load weights into ``modules``; return (state.json, the other saved states by name).

    ``strict=False`` loads a partial state dict (trainable weights only) into a larger module."""
    path = Path(path)
    if not (path / "state.json").is_file():
        raise TrainingSetupError(f"{path} is not a checkpoint (no state.json)")
    try:
        for name in modules:
            read_header(path / f"{name}.safetensors")  # a truncated file is named, not half-loaded
        with weights_errors(path):
            for name, module in modules.items():
                missing = module.load_state_dict(load_file(str(path / f"{name}.safetensors")), strict=strict)
                if not strict and missing.unexpected_keys:
                    raise KeyError(f"{name} has weights this model lacks: {missing.unexpected_keys[:5]}")
            states = {p.stem: torch.load(p, map_location="cpu", weights_only=True) for p in path.glob("*.pt")}
            state = json.loads((path / "state.json").read_text())
    except (WeightsError, EOFError, pickle.UnpicklingError) as exc:
        earlier = [p.name for p in list_checkpoints(path.parent) if p != path]
        raise TrainingSetupError(f"checkpoint {path} is damaged ({exc}); resume from an earlier one"
                                 + (f" ({', '.join(earlier)})" if earlier else "")) from exc
    return state, states


def checkpoint_to_resume(resume: str | Path | None, root: str | Path) -> Path | None:
    """``--resume``: ``"latest"`` (the newest under ``root``, or none yet), a checkpoint folder, or None."""
    if not resume:
        return None
    if resume == "latest":
        return latest_checkpoint(root)
    path = Path(resume)
    if not path.exists():
        raise TrainingSetupError(f"--resume {path}: no such checkpoint folder (give 'latest' or a folder under "
                                 f"{Path(root)})")
    if not (path / "state.json").is_file():
        raise TrainingSetupError(f"--resume {path} is not a checkpoint (no state.json)")
    return path


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights being trained (all of them, or only the LoRA matrices)."""
    return {k: v for k, v in model.named_parameters() if v.requires_grad}


def save_sharded_checkpoint(accelerator, root: str | Path, step: int, lr_scheduler, info: dict, keep: int) -> None:
    """``root/step_{step}`` for a run with sharded weights or optimizer state; call it on every process.

    accelerate's ``save_state`` writes each process's shards; the folder is renamed once complete."""
    root = Path(root)
    tmp = root / f".tmp_{STEP_PREFIX}{step:08d}"
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        torch.save(lr_scheduler.state_dict(), tmp / "lr_scheduler.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **info}, indent=2))
        final = root / f"{STEP_PREFIX}{step:08d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def load_sharded_checkpoint(accelerator, path: str | Path, lr_scheduler) -> int:
    """Load a ``save_sharded_checkpoint`` folder into the prepared objects (every process); return its step."""
    path = Path(path)
    accelerator.load_state(str(path))
    lr_scheduler.load_state_dict(torch.load(path / "lr_scheduler.pt", weights_only=True))
    return json.loads((path / "state.json").read_text())["step"]
