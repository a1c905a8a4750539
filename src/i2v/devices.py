"""Devices and dtypes: which device runs, what it can do fast, how much memory it has free.

Shared by every backend (the embedded one and the diffusers adapter), the memory planner and
training, so each question has one answer.
"""

from __future__ import annotations

import os

from .errors import DeviceUnavailableError, InvalidRequestError

DTYPE_NAMES = ("fp32", "bf16", "fp16")


def torch_dtype(name: str):
    """``"fp32"`` / ``"bf16"`` / ``"fp16"`` -> the torch dtype."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def check_dtype_name(name: str | None) -> str | None:
    if name is not None and name not in DTYPE_NAMES:
        raise InvalidRequestError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {name!r}")
    return name


def pick_device(device: str | None) -> str:
    """``None``/``"auto"``: cuda when available, else cpu. A named device must exist here."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise DeviceUnavailableError(f"device must be a name such as cpu, cuda or cuda:0, got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise DeviceUnavailableError(f"device {device!r} is not a device name (expected cpu, cuda, cuda:N, mps "
                                     "or auto)") from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {device!r} requested but CUDA is not available on this machine; "
                                         "use --device cpu (or auto)")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise DeviceUnavailableError(f"device {device!r} requested but this machine has {count} CUDA "
                                         f"device(s): cuda:0..cuda:{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError(f"device {device!r} requested but Apple MPS is not available here")
    elif parsed.type != "cpu":
        backend = getattr(torch, parsed.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise DeviceUnavailableError(f"device {device!r} is not available here (expected cpu, cuda, cuda:N, "
                                         "mps or auto)")
    return device


def device_free_bytes(device: str) -> int:
    """Bytes free for a generation on ``device``: CUDA ``mem_get_info``; cpu (and mps, whose memory
    is the host's) the host's available memory."""
    kind = str(device).split(":")[0]
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"device {device!r}: CUDA is not available on this machine")
        index = torch.device(device).index
        free, _total = torch.cuda.mem_get_info(torch.cuda.current_device() if index is None else index)
        return int(free)
    if kind in ("cpu", "mps"):
        return host_available_bytes()
    raise InvalidRequestError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}")


def host_available_bytes() -> int:
    """``MemAvailable`` from /proc/meminfo; else psutil; else the free pages ``os.sysconf`` reports."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def cuda_has_bf16() -> bool:
    """True when a CUDA device is present and runs bf16."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
