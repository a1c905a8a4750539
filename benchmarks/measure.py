"""Measurement helpers shared by the benchmark scripts: peak memory, the CPU's peak matmul rate,
model FLOPs, PSNR and a subprocess runner (each configuration runs in a fresh process so that
one run's allocations never count toward another's peak)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); False where not possible.

    Freed heap memory is first handed back to the OS (glibc ``malloc_trim``), so that memory an
    earlier call freed but the allocator kept does not hide this call's growth."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_bytes(field: str = "VmRSS") -> int:
    """Current RSS (``VmRSS``) or its high-water mark since the last reset (``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_gpu_bytes() -> int | None:
    import torch

    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def matmul_peak_flops(dtype: str = "fp32", sizes: tuple[int, ...] = (512, 1024, 2048), repeats: int = 5) -> float:
    """Measured peak matmul rate (FLOP/s) of this device for ``dtype``: the best n x n x n product
    over ``sizes`` and ``repeats``, after a warm-up. This is the MFU denominator."""
    return max(_matmul_rate(dtype, n, repeats) for n in sizes)


def _matmul_rate(dtype: str, n: int, repeats: int) -> float:
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn()`` as PyTorch's FlopCounterMode counts them (matmuls, convolutions,
    attention; elementwise ops are not counted, as is usual for MFU)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 frame arrays of the same shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def run_child(script: Path, args: list[str]) -> dict:
    """Run ``script --child ARGS`` in a fresh interpreter; it prints one JSON line last."""
    proc = subprocess.run([sys.executable, str(script), "--child", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2 ** 20:.0f} MiB"
