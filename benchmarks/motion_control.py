"""Trajectories and camera paths against issue "beyond 2-4 seconds"'s targets, beside the prompt alone.

    python benchmarks/motion_control.py                       # i2v-photo, 12 trajectory + 12 camera cases
    python benchmarks/motion_control.py --model M --cases 24 --photos data/photos
    python benchmarks/motion_control.py --long-frames 48     # also camera paths over 6 s in chained windows

Trajectories: held-out shapes-world scenes (one object of each named colour, nothing moving; every
other case over a held-out photo when ``--photos`` has them) and a held-out path for one object:
two or three points inside the frame, with times. The object is tracked by its colour
(``world.tracking``); the score is the mean distance between its tracked and asked positions over
the frames, as a fraction of the width (target <= 0.05). Beside it: the same image with the prompt
alone ("the red circle moves right", the path's main direction), scored against the same path.

Camera paths: held-out photos (or shapes-world scenes without ``--photos``) and a held-out path of
two or three keyframes, each stretch a pan, a tilt, a zoom or a hold. Each stretch's frames are
scored by the photo benchmark's camera scorer for the stretch's class (``world.photos.scoring``);
the score is the fraction of stretches correct (target >= 0.90). Beside it: the prompt alone
("the camera pans right, then zooms in"), scored the same way. ``--long-frames N``: the same over N
frames made in chained windows of 16 (a stretch or a leg of the path every 1.5 s or so), beside a
prompt schedule of the same camera moves, and the prompt alone for trajectories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CASE_SEED = 20_261_207
WORDS = {"pan_left": "the camera pans left", "pan_right": "the camera pans right", "pan_up": "the camera tilts up",
         "pan_down": "the camera tilts down", "zoom_in": "the camera zooms in", "zoom_out": "the camera zooms out",
         "static": "the camera holds still"}
STRETCHES = {"pan_left": "pan left {a:.2f}", "pan_right": "pan right {a:.2f}", "pan_up": "tilt up {a:.2f}",
             "pan_down": "tilt down {a:.2f}", "zoom_in": "zoom {z:.2f}", "zoom_out": "zoom {z:.2f}"}


def direction_words(d: np.ndarray) -> str:
    """The main direction of a move (x right, y down) in the shapes world's words."""
    horizontal = "right" if d[0] > 0 else "left"
    vertical = "down" if d[1] > 0 else "up"
    if abs(d[0]) > 2 * abs(d[1]):
        return f"to the {horizontal}"
    if abs(d[1]) > 2 * abs(d[0]):
        return vertical
    return f"{vertical} and to the {horizontal}"


def trajectory_case(k: int, photos: list[np.ndarray], frames: int = 16):
    """(first frame, object colour rgb, object words, trajectory text, points) of case k. Scenes whose
    object the colour tracker does not find where it is (its colour is common in that photo) are
    drawn again, so that every case can be scored."""
    from i2v.world.scenes import COLOURS, SIZE, heldout_seed, over_photo, render, sample_scene
    from i2v.world.tracking import track_object

    rng = np.random.default_rng([CASE_SEED, k])
    for attempt in range(20):
        scene = sample_scene(heldout_seed(7_000_000 + 97 * k + attempt), motion="still")
        photo = None
        if photos and k % 2:
            index = k % len(photos)
            photo = photos[index]
            scene = over_photo(scene, index, photo.shape, rng)
        first = render(scene, photo=photo)[0]
        target = int(rng.integers(len(scene.objects)))
        rgb = COLOURS[scene.objects[target].colour]
        start = scene.screen_tracks()[0, target] / SIZE  # where the object truly is
        found = track_object(first[None], rgb).centroids[0] / SIZE
        if np.linalg.norm(found - start) < 0.02:
            break
    else:
        raise RuntimeError(f"case {k}: no trackable scene in 20 draws")
    legs = int(rng.integers(1, 3)) if frames <= 16 else max(2, round((frames - 1) / 8 / 1.5))
    points = [start] + [np.clip(start + rng.uniform(-0.35, 0.35, 2), 0.1, 0.9) for _ in range(legs)]
    times = np.linspace(0, (frames - 1) / 8, len(points))
    text = f"{scene.objects[target].colour} {scene.objects[target].shape}: " + " -> ".join(
        f"{t:g}s {p[0]:.3f},{p[1]:.3f}" for t, p in zip(times, points))
    return first, rgb, f"the {scene.objects[target].colour} {scene.objects[target].shape}", text, points


def path_distance(frames: np.ndarray, rgb, text: str) -> float:
    """Mean distance (fraction of the width) between the object's tracked and asked positions."""
    from i2v.motion.trajectory import resolve_trajectories
    from i2v.world.tracking import track_object

    t, h, w = frames.shape[:3]
    _, (trajectory,) = resolve_trajectories(text, t, 8.0)
    asked = trajectory.positions(t, 8.0) * np.array([w, h])
    got = track_object(frames, rgb).centroids  # (T, 2), NaN where lost
    distance = np.linalg.norm(got - asked, axis=1) / w
    return float(np.nanmean(np.where(np.isnan(distance), 1.0, distance)))  # a lost object counts as a miss


def camera_case(k: int, photos: list[np.ndarray], frames: int = 16):
    """(first frame, camera path text, prompt of the same moves) of case k over ``frames`` at 8 fps: 2 or 3
    stretches in 16 frames; in a longer video a stretch every 1.5 s or so, and the prompt a schedule."""
    from i2v.io.images import fit_image
    from i2v.world.scenes import heldout_seed, render, sample_scene

    rng = np.random.default_rng([CASE_SEED, 1000 + k])
    if photos:
        from PIL import Image

        first = np.asarray(fit_image(Image.fromarray(photos[k % len(photos)]), 128, 128)[0])
    else:
        first = render(sample_scene(heldout_seed(8_000_000 + k), motion="static"))[0]
    kinds = list(WORDS)
    duration = (frames - 1) / 8.0
    count = int(rng.integers(2, 4)) if frames <= 16 else max(2, round(duration / 1.5))
    stretches = [kinds[int(i)] for i in rng.integers(len(kinds), size=count)]
    for i in range(1, count):  # no two stretches alike in a row: their border would not be a keyframe
        while stretches[i] == stretches[i - 1]:
            stretches[i] = kinds[int(rng.integers(len(kinds)))]
    times = np.linspace(0, duration, len(stretches) + 1)[1:]
    pan = tilt = 0.0
    zoom = 1.0
    keyframes = []
    for kind, t in zip(stretches, times):
        amount = float(rng.uniform(0.15, 0.3))
        factor = float(rng.uniform(1.3, 1.6))
        if kind in ("pan_left", "pan_right"):
            pan += amount if kind == "pan_right" else -amount
        elif kind in ("pan_up", "pan_down"):
            tilt += amount if kind == "pan_up" else -amount
        elif kind in ("zoom_in", "zoom_out"):
            zoom = zoom * factor if kind == "zoom_in" else zoom / factor
        keyframes.append(f"{t:g}s: pan {pan:.3f} tilt {tilt:.3f} zoom {zoom:.3f}")
    if frames <= 16:
        prompt = ", then ".join(WORDS[kind] for kind in stretches)
    else:  # a prompt schedule: each stretch's words from its start
        prompt = "; ".join(f"{start:g}s: {WORDS[kind]}" for start, kind in zip([0.0, *times[:-1]], stretches))
    return first, "; ".join(keyframes), prompt


def score_camera(frames: np.ndarray, text: str) -> list[bool]:
    from i2v.motion.camera_path import resolve_camera_path, segment_classes
    from i2v.world.photos.scoring import score_photo_case

    _, keyframes = resolve_camera_path(text, len(frames), 8.0)
    return [score_photo_case(frames[a:b + 1], kind)["passed"] for a, b, kind in segment_classes(keyframes, len(frames),
                                                                                                   8.0)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="i2v-photo", help="a model that takes camera paths and trajectories")
    p.add_argument("--cases", type=int, default=12, help="cases of each kind")
    p.add_argument("--photos", default=str(ROOT / "data" / "photos"),
                   help="`make photos`'s folder (its held-out split); missing: shapes-world backgrounds only")
    p.add_argument("--long-frames", type=int, default=0,
                   help="also camera paths over a long video of this many frames in chained windows of 16 "
                        "(beside a prompt schedule of the same moves); 0: skip")
    args = p.parse_args()

    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.world.photos.batches import load_photos

    photos = load_photos(args.photos, "heldout") if (Path(args.photos) / "heldout").is_dir() else []
    gen = ImageToVideoGenerator(args.model, device="cpu")

    def run(image, prompt, seed, frames=16, **motion) -> np.ndarray:
        window = 16 if frames > 16 else None
        return gen.run(GenerationRequest(image=image, prompt=prompt, seed=seed, num_frames=frames, fps=8.0, height=128,
                                         width=128, window=window, **motion)).frames

    distances, prompt_distances = [], []
    for k in range(args.cases):
        first, rgb, words, text, points = trajectory_case(k, photos)
        prompt = f"{words} moves {direction_words(points[-1] - points[0])}"
        distances.append(path_distance(run(first, prompt, k, trajectory=text), rgb, text))
        prompt_distances.append(path_distance(run(first, prompt, k), rgb, text))
        print(f"trajectory {k + 1}/{args.cases}: {distances[-1]:.3f} (prompt alone {prompt_distances[-1]:.3f})  {text}",
              flush=True)

    stretches, prompt_stretches = [], []
    for k in range(args.cases):
        first, text, prompt = camera_case(k, photos)
        stretches += score_camera(run(first, "", k, camera_path=text), text)
        prompt_stretches += score_camera(run(first, prompt, k), text)
        print(f"camera path {k + 1}/{args.cases}: {sum(stretches)}/{len(stretches)} stretches so far (prompt alone "
              f"{sum(prompt_stretches)}/{len(prompt_stretches)})  {text}", flush=True)

    long_distances, long_prompt_distances = [], []
    for k in range(args.cases if args.long_frames else 0):
        first, rgb, words, text, points = trajectory_case(k, photos, args.long_frames)
        prompt = f"{words} moves {direction_words(points[-1] - points[0])}"
        long_distances.append(path_distance(run(first, prompt, k, args.long_frames, trajectory=text), rgb, text))
        long_prompt_distances.append(path_distance(run(first, prompt, k, args.long_frames), rgb, text))
        print(f"long trajectory {k + 1}/{args.cases}: {long_distances[-1]:.3f} (prompt alone "
              f"{long_prompt_distances[-1]:.3f})  {text}", flush=True)

    long_stretches, long_prompt_stretches = [], []
    for k in range(args.cases if args.long_frames else 0):
        first, text, prompt = camera_case(k, photos, args.long_frames)
        long_stretches += score_camera(run(first, "", k, args.long_frames, camera_path=text), text)
        long_prompt_stretches += score_camera(run(first, prompt, k, args.long_frames), text)
        print(f"long camera path {k + 1}/{args.cases}: {sum(long_stretches)}/{len(long_stretches)} stretches so far "
              f"(prompt schedule {sum(long_prompt_stretches)}/{len(long_prompt_stretches)})  {text}", flush=True)

    backgrounds = "shapes world and held-out photos" if photos else "shapes world"
    print(f"\n{args.model}, {args.cases} cases of each kind ({backgrounds}), 16 frames at 128x128:")
    print(f"{'':<44}{'with the path':>14}{'prompt alone':>14}{'target':>10}")
    print(f"{'trajectory: mean distance (of the width)':<44}{np.mean(distances):>14.3f}"
          f"{np.mean(prompt_distances):>14.3f}{'<= 0.05':>10}")
    print(f"{'camera path: stretches of the right class':<44}{np.mean(stretches):>14.0%}"
          f"{np.mean(prompt_stretches):>14.0%}{'>= 90%':>10}")
    if args.long_frames:
        print(f"{f'trajectory over {args.long_frames} frames, windows of 16':<44}{np.mean(long_distances):>14.3f}"
              f"{np.mean(long_prompt_distances):>14.3f}{'<= 0.05':>10}")
        print(f"{f'camera path over {args.long_frames} frames':<44}{np.mean(long_stretches):>14.0%}"
              f"{np.mean(long_prompt_stretches):>14.0%}{'>= 90%':>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
