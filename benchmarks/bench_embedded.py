"""The embedded model's speed, memory and quality: i2v's defaults vs the reference sampler, in one run.

    .venv/bin/python benchmarks/bench_embedded.py [--runs 3] [--cold-runs 3] [--quality-cases 57] [--growth]
    .venv/bin/python benchmarks/bench_embedded.py --model i2v-photo --sizes 128x128,256x144 --cold-runs 0

* warm: one process, after a warm-up; the reference (fp32 weights, Euler, 20 steps: the slow
  sampler the model shipped with) vs the defaults (native bf16 where the CPU has it, channels-last,
  DPM-Solver++(2M), 10 steps), 16 frames at 128x128 (``--sizes``: each size). Target: defaults <= 2 s
  (i2v-photo, the photo issue's: 1.1 s at 128x128, 3 s at 256x144).
* cold: ``i2v generate`` in a fresh process (imports + load + generate + write). Target <= 5 s.
* MFU: model FLOPs per generation (U-Net forwards + VAE decode, PyTorch's FlopCounterMode) over
  the measured time, against this machine's measured peak matmul rate for the dtype.
* quality (``--quality-cases N``): ``i2v benchmark`` motion accuracy of both settings on the same
  held-out cases. Target: defaults within 2 points of the reference.
* growth (``--growth``): time and peak memory vs frames (8, 16, 32, 64) and vs resolution, for the
  defaults and the memory profile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import one_run
from measure import count_flops, matmul_peak_flops, mib, reset_peak_rss, rss_bytes

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "src/i2v/assets/sample.png"
PROMPT = "the red circle moves to the right"
REFERENCE = dict(dtype="fp32", scheduler="euler", num_inference_steps=20)
DEFAULTS = dict(dtype=None, scheduler=None, num_inference_steps=None)  # the model's own


PHOTO = ROOT / "src/i2v/assets/astronaut.jpg"
PHOTO_PROMPT = "the camera slowly pushes in"
# warm targets (seconds) per model and size; the shapes model's is its issue's 2 s at 128x128
TARGETS = {("i2v-photo", 128, 128): 1.1, ("i2v-photo", 144, 256): 3.0}


def generator(settings: dict, profile: str | None = None, model: str | None = None):
    from i2v import ImageToVideoGenerator

    return ImageToVideoGenerator(model, dtype=settings["dtype"], scheduler=settings["scheduler"], profile=profile)


def warm_seconds(gen, steps: int | None, runs: int, image: Path = IMAGE, prompt: str = PROMPT, **size) -> float:
    gen.generate(str(image), prompt, seed=0, num_inference_steps=steps, **size)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        gen.generate(str(image), prompt, seed=0, num_inference_steps=steps, **size)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def generation_flops(gen) -> int:
    """U-Net FLOPs (one CFG-batched forward x steps) + VAE decode FLOPs, for the last generation's settings."""
    import torch

    pipe, s = gen.backend.pipeline, gen.last_result.settings
    unet, vae = pipe.unet, pipe.vae
    b = 2 if s["guidance_scale"] > 1 else 1
    h, w = s["height"] // pipe.vae_scale_factor, s["width"] // pipe.vae_scale_factor
    c, t, dt = unet.config.latent_channels, s["num_frames"], unet.dtype
    x = torch.zeros(b, c, t, h, w, dtype=dt)
    text = pipe.text_encoder.encode(["", PROMPT][-b:]).to(dtype=dt)
    with torch.inference_mode():
        per_step = count_flops(lambda: unet(x, torch.ones(b, dtype=dt), x[:, :, 0], text.states, text.pooled, text.mask))
        decode = count_flops(lambda: vae.decode(torch.zeros(t, c, h, w, dtype=vae.dtype)))
    return per_step * s["num_inference_steps"] + decode


def cold_runs(n: int) -> list[float]:
    """Wall time of ``n`` fresh ``i2v generate`` processes (bench_generate.py's run, same prompt)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [one_run(None, IMAGE, Path(tmp) / f"cold{i}.mp4")["process"] for i in range(n)]


def quality(cases: int) -> dict:
    from i2v.world.benchmark import run_benchmark

    out = {}
    for name, s in (("reference", REFERENCE), ("defaults", DEFAULTS)):
        report = run_benchmark(cases=cases, num_inference_steps=s["num_inference_steps"], dtype=s["dtype"],
                               scheduler=s["scheduler"], log=lambda *_: None)
        out[name] = report["summary"]
    return out


def growth(rows: list[tuple[int, int]]) -> None:
    print(f"{'frames':>6} {'size':>5} | {'defaults s':>10} {'peak':>9} | {'--memory s':>10} {'peak':>9}")
    gens = {"defaults": generator(DEFAULTS), "memory": generator(DEFAULTS, profile="memory")}
    for frames, size in rows:
        cells = []
        for gen in gens.values():
            gen.generate(str(IMAGE), PROMPT, seed=0, num_frames=frames, height=size, width=size, num_inference_steps=2)
            reset_peak_rss()
            before = rss_bytes()
            t0 = time.perf_counter()
            gen.generate(str(IMAGE), PROMPT, seed=0, num_frames=frames, height=size, width=size)
            cells.append((time.perf_counter() - t0, rss_bytes("VmHWM") - before))
        print(f"{frames:>6} {size:>5} | {cells[0][0]:>9.2f}s {mib(cells[0][1]):>9} | {cells[1][0]:>9.2f}s {mib(cells[1][1]):>9}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cold-runs", type=int, default=3)
    p.add_argument("--quality-cases", type=int, default=0, help="held-out cases for the quality check (0: skip)")
    p.add_argument("--growth", action="store_true", help="print the cost-growth tables (frames, resolution)")
    p.add_argument("--model", default="i2v-tiny", help="an embedded model (i2v-tiny, i2v-photo) or its folder")
    p.add_argument("--sizes", default="128x128", help="HxW sizes for the warm runs, comma-separated")
    args = p.parse_args()
    photo = args.model == "i2v-photo"
    image, prompt = (PHOTO, PHOTO_PROMPT) if photo else (IMAGE, PROMPT)

    peaks = {d: matmul_peak_flops(d) for d in ("fp32", "bf16")}
    print(f"measured peak matmul rate: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    gens = {name: generator(s, model=args.model) for name, s in (("reference", REFERENCE), ("defaults", DEFAULTS))}
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.split("x"))
        print(f"\n{args.model}, warm, 16 frames {height}x{width}, median of", args.runs)
        rows = {}
        for name, s in (("reference", REFERENCE), ("defaults", DEFAULTS)):
            gen = gens[name]
            seconds = warm_seconds(gen, s["num_inference_steps"], args.runs, image, prompt, height=height, width=width)
            st = gen.last_result.settings
            flops = generation_flops(gen)
            rows[name] = seconds
            print(f"  {name:<9} {seconds:6.2f} s  ({st['dtype']}, {st['sampler']}, {st['num_inference_steps']} steps; "
                  f"{flops / 1e9:.0f} GFLOP, MFU {flops / seconds / peaks[st['dtype']]:.1%})")
        target = TARGETS.get((args.model, height, width), 2.0)
        print(f"  speed-up {rows['reference'] / rows['defaults']:.2f}x; defaults target <= {target:g} s: "
              f"{'met' if rows['defaults'] <= target else 'NOT met'}")

    if args.cold_runs:
        times = cold_runs(args.cold_runs)
        med = statistics.median(times)
        print(f"\ncold `i2v generate` (fresh process), runs {', '.join(f'{t:.2f}' for t in times)} s; median "
              f"{med:.2f} s; target <= 5 s: {'met' if med <= 5 else 'NOT met'}")

    if args.quality_cases:
        q = quality(args.quality_cases)
        ref, new = q["reference"]["motion_accuracy"], q["defaults"]["motion_accuracy"]
        print(f"\nquality on {args.quality_cases} held-out cases: motion accuracy reference {ref:.1%}, defaults "
              f"{new:.1%} ({(new - ref) * 100:+.1f} points; target within 2); seconds/video "
              f"{q['reference']['seconds_per_video']:.2f} vs {q['defaults']['seconds_per_video']:.2f}")

    if args.growth:
        print("\ncost growth vs frames (128x128), then vs resolution (16 frames); peak = RSS high-water above the "
              "process before the call")
        growth([(8, 128), (16, 128), (32, 128), (64, 128), (16, 64), (16, 192), (16, 256)])


if __name__ == "__main__":
    main()
