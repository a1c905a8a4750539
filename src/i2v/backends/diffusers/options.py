"""dtype, offload and VAE switches for a diffusers pipeline: validated before loading, applied after."""

from __future__ import annotations

from typing import Any

from ...devices import DTYPE_NAMES, torch_dtype
from ...errors import InvalidRequestError

OFFLOAD_MODES = ("none", "model", "sequential", "group")


def pick_dtype(requested: str | None, device: str, extras: dict) -> tuple[str, Any]:
    """(dtype name, diffusers ``torch_dtype``): fp32 on CPU; the model's own (bf16/fp16) on a GPU.

    Components listed in ``extras["fp32_components"]`` stay fp32 (Wan's VAE and image encoder, as
    the Wan docs recommend); ``extras["transformer_dtype"]`` overrides the transformer's dtype when
    no dtype was asked for (HunyuanVideo: transformer bf16, the rest fp16).
    """
    if requested is not None and requested not in DTYPE_NAMES:
        raise InvalidRequestError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {requested!r}")
    name = requested or ("fp32" if device == "cpu" else extras.get("dtype", "bf16"))
    if name == "fp32":
        return name, torch_dtype(name)
    per_component = {"default": torch_dtype(name)}
    for component in extras.get("fp32_components", ()):
        per_component[component] = torch_dtype("fp32")
    if requested is None and extras.get("transformer_dtype"):
        per_component["transformer"] = torch_dtype(extras["transformer_dtype"])
    return name, per_component if len(per_component) > 1 else per_component["default"]


def check_offload(mode: str | None, device: str) -> str:
    """Validate ``--offload``; ``None``/``"auto"`` -> ``"none"`` on CPU, else ``"auto"`` (the memory
    planner's choice for the first run, made before the weights load: ``i2v.memory``)."""
    if mode in (None, "auto"):
        return "none" if device == "cpu" else "auto"
    if mode not in OFFLOAD_MODES:
        raise InvalidRequestError(f"offload must be one of auto, {', '.join(OFFLOAD_MODES)}; got {mode!r}")
    if device == "cpu" and mode in ("model", "sequential"):
        raise InvalidRequestError(
            f"offload {mode!r} moves weights between the CPU and an accelerator, but the device is cpu (all "
            "weights already live in RAM); use --offload none, or run on a GPU"
        )
    return mode


def apply_offload(pipe, mode: str, device: str) -> None:
    """Place the pipeline: ``to(device)``, or one of diffusers' three offload strategies."""
    import torch

    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif mode == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=device.startswith("cuda"))
    else:
        pipe.to(device)


def apply_vae_options(pipe, tiling: bool, slicing: bool) -> None:
    vae = pipe.vae
    if tiling:
        if not hasattr(vae, "use_tiling"):
            raise InvalidRequestError(f"{type(vae).__name__} has no tiled decoding (--vae-tiling)")
        vae.enable_tiling()
    if slicing:
        if not hasattr(vae, "use_slicing"):
            raise InvalidRequestError(f"{type(vae).__name__} has no sliced decoding (--vae-slicing)")
        vae.enable_slicing()
