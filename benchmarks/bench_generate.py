"""End-to-end speed of a default generation with the embedded model, from the CLI.

    .venv/bin/python benchmarks/bench_generate.py [--runs 3] [--model i2v-tiny]

Each run is a fresh `i2v generate` process (cold: imports + model load + generation + write),
16 frames at 128x128 with the model's default steps. Prints the per-stage breakdown of every
run and the median, against the 5 s target, and the import floor: the time a fresh interpreter takes
to import torch and the diffusers classes the runtime is built on.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 5.0
STAGES = ("load", "encode", "denoise", "decode", "write", "total")


def one_run(model: str | None, image: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "i2v.cli", "generate", str(image), "--prompt", "the red circle moves to the right",
           "--seed", "0", "--timings", "-q", "-o", str(out)]
    if model:
        cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    stages = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", proc.stdout)}
    stages["process"] = wall  # includes interpreter start-up and imports
    stages["imports+startup"] = wall - stages.get("total", wall)
    return stages


def import_floor() -> float:
    """Wall time of a fresh interpreter that only imports what the embedded model's runtime is built
    on (torch, diffusers' ModelMixin, AutoencoderKL and DiffusionPipeline): every diffusers-based
    tool pays it before it loads a weight."""
    code = ("import torch; from diffusers import AutoencoderKL, DiffusionPipeline; "
            "from diffusers.models.modeling_utils import ModelMixin; import os; os._exit(0)")  # no teardown, as i2v
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--model", default=None)
    p.add_argument("--image", default=str(ROOT / "src/i2v/assets/sample.png"))
    args = p.parse_args()
    cols = ("imports+startup",) + STAGES + ("process",)
    print("run  " + "  ".join(f"{c:>15}" for c in cols))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            r = one_run(args.model, Path(args.image), Path(tmp) / f"run{i}.mp4")
            runs.append(r)
            print(f"{i:<4} " + "  ".join(f"{r.get(c, float('nan')):>14.2f}s" for c in cols))
    med = {c: statistics.median(r.get(c, float("nan")) for r in runs) for c in cols}
    print("med  " + "  ".join(f"{med[c]:>14.2f}s" for c in cols))
    floor = statistics.median(import_floor() for _ in range(args.runs))
    print(f"end-to-end (process wall time, median): {med['process']:.2f} s; target <= {TARGET_S:.0f} s; "
          f"ratio to target {med['process'] / TARGET_S:.2f}")
    print(f"of which the import floor (a fresh python importing torch + diffusers' AutoencoderKL, DiffusionPipeline "
          f"and ModelMixin, median): {floor:.2f} s; i2v's own part: {med['process'] - floor:.2f} s")


if __name__ == "__main__":
    main()
