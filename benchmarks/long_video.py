"""Long videos against issue "beyond 2-4 seconds"'s targets, beside the native-length run.

    python benchmarks/long_video.py                          # the embedded model, 4 cases, 160 frames
    python benchmarks/long_video.py --model M --cases 8 --frames 160 --window 16
    python benchmarks/long_video.py --world photos           # named shapes over held-out photographs

Each case is a held-out procedural scene with one named object (``world.scoring.heldout_cases``; with
``--world photos``, the photo benchmark's shapes over held-out photographs) and
a prompt schedule that turns the object back every ``--segment`` seconds (its scene's direction, then
the opposite, in the held-out phrasings, or with ``--phrasing train`` the training ones). The long run
makes ``--frames`` frames (``--window``: chained windows; leave it
out for a model with its own long-video pipeline); the native run makes the model's default length
from the same image and the first prompt. Each run is a subprocess, so its peak memory (resident set)
is its own. Printed, long beside native:

- flicker (VBench temporal flickering; target >= 0.97),
- colour drift: CIE76 Delta E between the tracked object's mean Lab colour in the first and the
  last second (target <= 5),
- motion held: segments whose object displacement lies within 45 degrees of the asked direction
  (target >= 85%),
- seams: the largest frame-to-frame change at a window border over the median change (target <= 1.5),
- peak memory, and its ratio to the native run's (target <= 1.2); and that of the same long run
  streamed into an mp4 (``generate_to_file``, as the CLI writes), which never holds all its frames.

``--plans N`` also scores the motion held by the plans alone of N cases (the first ``--cases`` among
them), made without generating: a model that plans a video whole (``prompt_motion.plan_video``) follows
its plan to 0.002 of the width (``benchmarks/motion_control.py``), so the planned path stands for the
tracked one, and N can be large enough for the rate to mean something (a handful of cases moves it by
several points).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "up_left": "down_right",
            "down_right": "up_left", "up_right": "down_left", "down_left": "up_right"}


def generate(spec: dict) -> None:
    """Child process: one generation; frames to ``spec["out"]`` (npy) or streamed into the video
    ``spec["file"]``, peak RSS to stdout (JSON)."""
    import resource

    from i2v import GenerationRequest, ImageToVideoGenerator

    gen = ImageToVideoGenerator(spec["model"], device="cpu")
    image = np.load(spec["image"])
    request = GenerationRequest(image=image, prompt=spec["prompt"], num_frames=spec["frames"], window=spec["window"],
                                seed=spec["seed"])
    if "file" in spec:
        result = gen.generate_to_file(request, spec["file"])
    else:
        result = gen.run(request)
        np.save(spec["out"], result.frames)
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "chain": result.settings.get("chain"), "fps": result.fps}))


def run_child(spec: dict) -> tuple[np.ndarray | None, dict]:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"generation failed:\n{done.stderr[-2000:]}")
    frames = np.load(spec["out"]) if "out" in spec else None
    return frames, json.loads(done.stdout.strip().splitlines()[-1])


def schedule_for(scene, segments: int, seconds: float,
                 phrasing: str = "heldout") -> tuple[str, list[tuple[float, float]]]:
    """A schedule that turns the scene's named object back every ``seconds`` (its scene's own direction,
    which the object has room for, then the opposite, and so on), in held-out phrasings (or ``"train"``:
    the training phrasings), and each segment's asked direction (screen x right, y down)."""
    from i2v.world.captions import caption_scene
    from i2v.world.scenes import OBJECT_DIRECTIONS

    parts, directions = [], []
    rng = np.random.default_rng(scene.meta.get("seed", 0))
    own = scene.motion.removeprefix("move_")
    for k in range(segments):
        turn = own if k % 2 == 0 else OPPOSITE[own]
        parts.append(f"{k * seconds:g}s: {caption_scene(replace(scene, motion=f'move_{turn}'), rng, phrasing)}")
        directions.append(OBJECT_DIRECTIONS[turn])
    return "; ".join(parts), directions


def benchmark_cases(world: str, n: int, photos_dir: str) -> list:
    """The first ``n`` cases (scene, photo or None): held-out shapes-world scenes with a named object that
    moves, or the photo benchmark's shapes over held-out photographs."""
    from i2v.world.scoring import heldout_cases

    if world == "photos":
        from i2v.world.photos.batches import load_photos
        from i2v.world.photos.benchmark import SHAPES, photo_cases

        photos = load_photos(photos_dir, "heldout")
        return [(c.scene, photos[c.photo]) for c in photo_cases(photos, n, kinds=(SHAPES,))]
    return [(s, None) for s, _ in heldout_cases(8 * n) if s.motion.startswith("move_")][:n]


def planned_held(source: Path, cases: list, frames: int, fps: float, seconds: float,
                 phrasing: str = "heldout") -> float | None:
    """The share of segments whose planned path (``prompt_motion.plan_video``) moves the named object more
    than 2 pixels within 45 degrees of the asked way, as ``score`` tracks it; None: the model plans no
    video whole (it has no prompt reader)."""
    from i2v.backends.tiny import warps
    from i2v.conditioning import MiniLMTextEncoder
    from i2v.motion.prompt_motion import load_reader, plan_video
    from i2v.prompt_schedule import resolve_schedule
    from i2v.world.scenes import render

    reader = load_reader(source) if warps(source) else None  # as the backend loads it
    if reader is None:
        return None
    text_encoder, held = MiniLMTextEncoder(), []
    per = round(seconds * fps)
    for scene, photo in cases:
        image = render(scene, photo=photo)[0]
        schedule, directions = schedule_for(scene, max(1, math.ceil(frames / per)), seconds, phrasing)
        plan = plan_video(reader, text_encoder, resolve_schedule(schedule, frames, fps)[1], image, frames, fps)
        colour = scene.objects[scene.target].colour
        path = next((t for t in (plan.trajectories if plan else ()) if t.name.split()[0] == colour), None)
        for k, way in enumerate(directions):
            if path is None:
                held.append(False)
                continue
            times = [t for t, _, _ in path.points]
            a, b = (np.array([np.interp(f / fps, times, [p[i] for p in path.points]) for i in (1, 2)])
                    * image.shape[1::-1] for f in (k * per, min(frames - 1, (k + 1) * per - 1)))
            held.append(holds_way(b - a, way))
    return float(np.mean(held))


def holds_way(move: np.ndarray, way) -> bool:
    """Whether a displacement (pixels, x right, y down) moves more than 2 pixels within 45 degrees of ``way``."""
    length = float(np.linalg.norm(move))
    return length > 2 and float(move @ np.array(way)) > math.cos(math.radians(45)) * length


def mean_lab(frames: np.ndarray, masks: np.ndarray) -> np.ndarray | None:
    import cv2

    pixels = [cv2.cvtColor(f, cv2.COLOR_RGB2LAB)[m] for f, m in zip(frames, masks) if m.any()]
    if not pixels:
        return None
    lab = np.concatenate(pixels).astype(np.float64)
    return np.array([lab[:, 0] * 100 / 255, lab[:, 1] - 128, lab[:, 2] - 128]).mean(axis=1)  # L*, a*, b*


def score(frames: np.ndarray, fps: float, rgb, directions, seconds: float, borders: list[int]) -> dict:
    from i2v.metrics.fidelity import temporal_flicker
    from i2v.world.tracking import colour_masks, track_object

    second = max(1, round(fps))
    masks = colour_masks(frames, [rgb])[0]
    first, last = mean_lab(frames[:second], masks[:second]), mean_lab(frames[-second:], masks[-second:])
    drift = float(np.linalg.norm(first - last)) if first is not None and last is not None else math.nan
    track = track_object(frames, rgb)
    held = []
    per = round(seconds * fps)
    for k, (dx, dy) in enumerate(directions):
        a, b = k * per, min(len(frames) - 1, (k + 1) * per - 1)
        if b <= a or np.isnan(track.centroids[[a, b]]).any():
            held.append(False)
            continue
        held.append(holds_way(track.centroids[b] - track.centroids[a], (dx, dy)))
    steps = np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    seam = max((steps[i - 1: i + 1].max() for i in borders if 0 < i < len(steps)), default=math.nan)
    return {"flicker": temporal_flicker(frames), "colour_drift": drift, "motion_held": float(np.mean(held)),
            "seam_ratio": float(seam / (np.median(steps) + 1e-9))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model name or folder (default: the embedded model)")
    p.add_argument("--cases", type=int, default=4)
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--window", type=int, default=16, help="chained windows; 0: one pass or the model's own pipeline")
    p.add_argument("--segment", type=float, default=5.0, help="seconds between turns")
    p.add_argument("--world", choices=("shapes", "photos"), default="shapes",
                   help="photos: the shapes over held-out photographs of `i2v benchmark --world photos` (make photos)")
    p.add_argument("--photos-dir", default="data/photos")
    p.add_argument("--plans", type=int, default=0, metavar="N",
                   help="also score the motion held by N cases' plans alone (no generation; models that plan a "
                        "video whole)")
    p.add_argument("--phrasing", choices=("heldout", "train"), default="heldout",
                   help="the schedules' phrasings: held-out (default), or the training phrasings (what the chaining "
                        "holds where every word is one the prompt reader learnt)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        generate(json.loads(args.child))
        return 0
    from i2v.registry import resolve_model
    from i2v.world.scenes import COLOURS, render

    spec = resolve_model(args.model)
    cases = benchmark_cases(args.world, max(args.cases, args.plans), args.photos_dir)
    planned = (planned_held(Path(spec.source), cases[: args.plans], args.frames, spec.defaults.fps, args.segment,
                            args.phrasing) if args.plans else None)
    cases = cases[: args.cases]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (scene, photo) in enumerate(cases):
            image = render(scene, photo=photo)[0]
            np.save(Path(tmp) / "image.npy", image)
            segments = max(1, math.ceil(args.frames / (args.segment * spec.defaults.fps)))
            schedule, directions = schedule_for(scene, segments, args.segment, args.phrasing)
            rgb = COLOURS[scene.objects[scene.target].colour]
            common = {"model": args.model, "image": str(Path(tmp) / "image.npy"), "seed": i}
            long, info = run_child({**common, "prompt": schedule, "frames": args.frames,
                                    "window": args.window or None, "out": str(Path(tmp) / "long.npy")})
            _, streamed_info = run_child({**common, "prompt": schedule, "frames": args.frames,
                                          "window": args.window or None, "file": str(Path(tmp) / "long.mp4")})
            native, native_info = run_child({**common, "prompt": schedule.split("; ")[0].split(": ", 1)[1],
                                             "frames": None, "window": None, "out": str(Path(tmp) / "native.npy")})
            chain = info["chain"] or {}
            borders = np.cumsum(chain.get("kept_frames", []))[:-1].tolist()
            long_score = score(long, info["fps"], rgb, directions, args.segment, borders)
            native_score = score(native, native_info["fps"], rgb, directions[:1], len(native) / native_info["fps"], [])
            long_score["peak_rss"], native_score["peak_rss"] = info["peak_rss"], native_info["peak_rss"]
            long_score["streamed_peak_rss"] = streamed_info["peak_rss"]
            rows.append((long_score, native_score))
            print(f"[{i + 1}/{len(cases)}] {len(long)} frames: flicker {long_score['flicker']:.4f} "
                  f"(native {native_score['flicker']:.4f}), drift {long_score['colour_drift']:.2f}, motion held "
                  f"{long_score['motion_held']:.0%}, seams {long_score['seam_ratio']:.2f}x, memory "
                  f"{info['peak_rss'] / native_info['peak_rss']:.2f}x (streamed "
                  f"{streamed_info['peak_rss'] / native_info['peak_rss']:.2f}x)", flush=True)

    def mean(key, side=0):
        return float(np.nanmean([r[side][key] for r in rows]))

    memory = float(np.mean([r[0]["peak_rss"] / r[1]["peak_rss"] for r in rows]))
    streamed = float(np.mean([r[0]["streamed_peak_rss"] / r[1]["peak_rss"] for r in rows]))
    print(f"\n## Long videos: {spec.name}, {args.frames} frames (window {args.window or 'none'}), {len(rows)} cases "
          f"({'shapes over held-out photographs' if args.world == 'photos' else 'the shapes world'})\n")
    print("| measure | long | native | target |\n|---|---|---|---|")
    print(f"| flicker | {mean('flicker'):.4f} | {mean('flicker', 1):.4f} | >= 0.97 |")
    print(f"| colour drift (Delta E, first vs last second) | {mean('colour_drift'):.2f} | "
          f"{mean('colour_drift', 1):.2f} | <= 5 |")
    print(f"| motion held (segments) | {mean('motion_held'):.0%} | {mean('motion_held', 1):.0%} | >= 85% |")
    if args.plans and planned is None:
        print(f"| motion held by the plans | {spec.name} plans no video whole (no prompt reader) | | |")
    elif planned is not None:
        print(f"| motion held by the plans of {args.plans} cases (no generation) | {planned:.0%} | | >= 85% |")
    print(f"| seams (largest change at a border / median) | {mean('seam_ratio'):.2f} | | <= 1.5 |")
    print(f"| peak memory | {mean('peak_rss') / 2**30:.2f} GiB | {mean('peak_rss', 1) / 2**30:.2f} GiB | "
          f"ratio {memory:.2f} (<= 1.2) |")
    print(f"| peak memory, streamed into an mp4 | {mean('streamed_peak_rss') / 2**30:.2f} GiB | | "
          f"ratio {streamed:.2f} (<= 1.2) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
