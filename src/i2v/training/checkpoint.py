"""Atomic checkpoints with exact resume.

A checkpoint is a folder ``step_00001234/`` holding safetensors weights for each module,
the optimizer / scheduler state (``torch.save`` of tensors and numbers only, read back with
``weights_only=True``) and ``state.json``. It is written to a temporary folder and renamed,
so a run killed mid-save never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

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
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_", dir=root))
    try:
        for name, module in modules.items():
            save_file(_state_to_tensors(module), str(tmp / f"{name}.safetensors"))
        for name, state in states.items():
            torch.save(state, tmp / f"{name}.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, **(info or {})}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
        raise FileNotFoundError(f"{path} is not a checkpoint (no state.json)")
    for name, module in modules.items():
        missing = module.load_state_dict(load_file(str(path / f"{name}.safetensors")), strict=strict)
        if not strict and missing.unexpected_keys:
            raise KeyError(f"checkpoint {path}: {name} has weights this model lacks: {missing.unexpected_keys[:5]}")
    states = {p.stem: torch.load(p, map_location="cpu", weights_only=True) for p in path.glob("*.pt")}
    return json.loads((path / "state.json").read_text()), states


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
