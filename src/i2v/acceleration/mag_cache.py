"""MagCache (diffusers' ``MagCacheConfig``) with per-model calibrated magnitude ratios.

MagCache skips a step's transformer blocks when the accumulated change of their residual,
predicted from a per-step magnitude-ratio curve, stays small. The curve is checkpoint- and
scheduler-specific, so i2v ships none: ``i2v calibrate-cache --model M`` runs one generation with
nothing skipped, records the ratio of each step's residual norm to the previous step's, and saves
the curve beside the model (``i2v_magcache.json`` in a local folder; for a hub model in
``$I2V_HOME/magcache/``, default ``~/.cache/i2v``). ``--cache magcache`` then reads it, and the
curve is resampled to the run's step count (diffusers' nearest interpolation).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from ..errors import InvalidRequestError

RATIOS_FILE = "i2v_magcache.json"


def i2v_home() -> Path:
    return Path(os.environ.get("I2V_HOME") or Path.home() / ".cache" / "i2v")


def ratios_path(spec) -> Path:
    """Where a model's calibrated curve lives: beside a local folder, else under ``$I2V_HOME``."""
    folder = Path(spec.source).expanduser()
    if folder.is_dir():
        return folder / RATIOS_FILE
    return i2v_home() / "magcache" / (re.sub(r"[^A-Za-z0-9._-]+", "--", spec.name) + ".json")


def load_ratios(spec) -> list[float]:
    """The model's calibrated curve; a typed error naming the command that makes one if it has none."""
    path = ratios_path(spec)
    if not path.is_file():
        raise InvalidRequestError(f"cache 'magcache' needs this model's magnitude ratios, and {path} does not exist; "
                                  f"run `i2v calibrate-cache --model {spec.name}` once (one full generation)")
    try:
        ratios = json.loads(path.read_text())["ratios"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequestError(f"{path}: not a MagCache calibration ({exc}); run i2v calibrate-cache again") from exc
    if not isinstance(ratios, list) or len(ratios) < 2 or not all(
            isinstance(r, (int, float)) and math.isfinite(r) and r > 0 for r in ratios):
        raise InvalidRequestError(f"{path}: the ratios must be a list of positive numbers; run i2v calibrate-cache again")
    return [float(r) for r in ratios]


def save_ratios(spec, ratios: list[float], record: dict) -> Path:
    """Write the curve (and what it was measured with) atomically; returns the path."""
    from ..io.temps import partial_sibling

    path = ratios_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with partial_sibling(path) as tmp:
        tmp.write_text(json.dumps({"ratios": ratios, **record}, indent=2))
        os.replace(tmp, path)
    return path


def mag_cache_config(ratios: list[float] | None, steps: int, calibrate: bool = False):
    from diffusers import MagCacheConfig

    if calibrate:
        return MagCacheConfig(calibrate=True, num_inference_steps=steps)
    return MagCacheConfig(mag_ratios=list(ratios), num_inference_steps=steps)


def set_steps(config, ratios: list[float], steps: int) -> None:
    """Point a live config at a new run's step count (the hooks keep a reference to it)."""
    import torch
    from diffusers.hooks.mag_cache import nearest_interp

    config.num_inference_steps = steps
    curve = torch.tensor(ratios)
    config.mag_ratios = curve if len(curve) == steps else nearest_interp(curve, steps)


def tail_hook(denoiser):
    """The hook on the last transformer block: it measures the residual (and, calibrating, its ratio)."""
    from diffusers.hooks import HookRegistry

    for module in denoiser.modules():
        registry = getattr(module, "_diffusers_hook", None)
        for hook in (registry.hooks.values() if isinstance(registry, HookRegistry) else ()):
            if getattr(hook, "is_tail", False) and hasattr(hook, "_perform_calibration_step"):
                return hook
    raise InvalidRequestError(f"MagCache found no transformer blocks in {type(denoiser).__name__}")


def record_calibration(denoiser) -> list[list[float]]:
    """Ratios of a calibrating run, one list per cache context in order of first use (the conditional
    pass first when guidance runs two), copied as they are measured: the pipeline resets the hooks'
    state when it finishes."""
    hook = tail_hook(denoiser)
    measure = hook._perform_calibration_step
    per_state: dict[int, list[float]] = {}

    def recording(state, residual):
        measure(state, residual)
        per_state[id(state)] = list(state.calibration_ratios)

    hook._perform_calibration_step = recording
    return per_state


def calibrate(generator, request) -> tuple[list[float], Path]:
    """Run ``request`` on ``generator`` (an ``ImageToVideoGenerator`` with no cache) with MagCache in
    calibration mode (nothing skipped), save the measured curve beside its model, return it."""
    import torch

    from .. import __version__

    backend = generator.backend
    if backend.acceleration.cache:
        raise InvalidRequestError("calibrate MagCache on a run without a cache: its blocks must all run")
    notices: list[str] = []
    settings = backend.resolve(request, notices)
    _, denoiser = denoiser_of(backend.pipeline)
    denoiser.enable_cache(mag_cache_config(None, settings.num_inference_steps, calibrate=True))
    try:
        recorded = record_calibration(denoiser)
        result = generator.run(request)
        ratios = next(iter(recorded.values()), [])
    finally:
        denoiser.disable_cache()
    if len(ratios) != settings.num_inference_steps or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise RuntimeError(f"MagCache calibration recorded {len(ratios)} ratios for {settings.num_inference_steps} "
                           f"steps ({ratios[:4]}...); please report this")
    record = {k: result.settings.get(k) for k in ("num_inference_steps", "guidance_scale", "height", "width",
                                                   "num_frames", "scheduler", "seed")}
    path = save_ratios(backend.spec, ratios, {"model": backend.spec.name, "measured_with": record,
                                              "i2v_version": __version__, "torch": torch.__version__})
    return ratios, path


def denoiser_of(pipe):
    from . import denoiser_of as find

    return find(pipe)
