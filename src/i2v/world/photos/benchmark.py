"""``i2v benchmark --world photos``: camera moves over held-out photographs, scored against their motion.

Case k is a held-out photo (``make photos``), a camera motion, a frame size and a held-out phrasing,
all fixed by k: the model gets the first frame of the true clip (a window of the photo) and the
prompt; ``scoring.score_photo_case`` checks the motion, the first frame and the warp fidelity.
Writes ``report.json``, ``summary.md`` and ``contact_sheet.png`` to ``--out``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import load_photos
from .camera import CAMERA_MOTIONS, CameraMove, render_camera_clip, sample_camera_move
from .captions import caption_camera
from .scoring import QUALITY_BAR, summarise

# (height, width) of the cases, cycled: square at both trained sizes, and 16:9
SIZES = ((128, 128), (256, 256), (144, 256))
CASE_SEED = 20_261_206  # the held-out cases' own random stream


@dataclass(frozen=True)
class PhotoCase:
    index: int
    photo: int  # index into the sorted held-out photos
    move: CameraMove
    prompt: str


def photo_cases(photos: list[np.ndarray], n: int, first_case: int = 0) -> list[PhotoCase]:
    """Cases ``first_case .. first_case + n - 1``; case k is the same whatever ``n`` is."""
    cases = []
    for k in range(first_case, first_case + n):
        kind = CAMERA_MOTIONS[k % len(CAMERA_MOTIONS)]
        photo = k % len(photos)
        size = SIZES[(k // len(CAMERA_MOTIONS)) % len(SIZES)]
        rng = np.random.default_rng([CASE_SEED, k])
        move = sample_camera_move(rng, photos[photo].shape, size, kind=kind)
        cases.append(PhotoCase(k, photo, move, caption_camera(kind, rng, "heldout")))
    return cases


def run_photo_benchmark(model: str | None = None, photos_dir: str | Path = "data/photos", cases: int = 42,
                        out: str | Path | None = None, seed: int = 0, first_case: int = 0,
                        num_inference_steps: int | None = None, device: str | None = None,
                        dtype: str | None = None, log=print) -> dict:
    from ...api import GenerationRequest, ImageToVideoGenerator
    from ...io.reports import write_benchmark
    from .scoring import score_photo_case

    photos = load_photos(photos_dir, "heldout")
    gen = ImageToVideoGenerator(model_name=model, device=device, dtype=dtype)
    results, rows = [], []
    for case in photo_cases(photos, cases, first_case):
        first = render_camera_clip(photos[case.photo], case.move, num_frames=1)[0]  # (h, w, 3)
        h, w = case.move.size
        t0 = time.perf_counter()
        result = gen.run(GenerationRequest(image=first, prompt=case.prompt, seed=seed + case.index, height=h, width=w,
                                           num_inference_steps=num_inference_steps))
        seconds = time.perf_counter() - t0
        score = score_photo_case(result.frames, case.move.kind, image=first)
        score.update(case=case.index, photo=case.photo, prompt=case.prompt, seconds=seconds, requested_size=[h, w],
                     move=case.move.to_dict())
        results.append(score)
        rows.append((result.frames, f"{'PASS' if score['passed'] else 'fail'} {case.move.kind} {w}x{h}: "
                                    f"{case.prompt}"))
        log(f"[{case.index + 1 - first_case}/{cases}] {case.move.kind:<10} {w}x{h} "
            f"{'pass' if score['passed'] else 'FAIL'}  warp {score['warp_fidelity']:.1f} dB  {case.prompt}")
    summary = summarise(results)
    summary.update(model=gen.spec.name, first_case=first_case, world="photos",
                   seconds_per_video=float(np.mean([r["seconds"] for r in results])) if results else None)
    report = {"summary": summary, "cases": results}
    if out is not None:
        write_benchmark(out, report, summary_markdown(summary), rows)
    return report


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def summary_markdown(summary: dict) -> str:
    bar = summary["meets_bar"]

    def mark(key: str) -> str:
        return {True: "yes", False: "NO", None: "n/a"}[bar.get(key)]

    rates = summary["rates"]
    lines = [
        f"## Photo benchmark: {summary.get('model')}, {summary['cases']} held-out cases",
        "",
        "| measure | score | target | met |",
        "|---|---|---|---|",
        f"| camera moves (pan, tilt, zoom) | {_fmt(summary['camera'], '.0%')} | >= {QUALITY_BAR['camera']:.0%} "
        f"| {mark('camera')} |",
        f"| pans / tilts / zooms | {_fmt(rates['camera_pan'], '.0%')} / {_fmt(rates['camera_tilt'], '.0%')} / "
        f"{_fmt(rates['camera_zoom'], '.0%')} | | |",
        f"| still | {_fmt(rates['still'], '.0%')} | >= {QUALITY_BAR['still']:.0%} | {mark('still')} |",
    ]
    for size, value in summary["first_frame_psnr_by_size"].items():
        lines.append(f"| first-frame PSNR {size} | {_fmt(value, '.2f')} dB | | |")
    lines += [
        f"| first-frame PSNR at 128 / 256 | | >= {QUALITY_BAR['first_frame_psnr_128']:g} / "
        f"{QUALITY_BAR['first_frame_psnr_256']:g} dB "
        f"| {mark('first_frame_psnr_128')} / {mark('first_frame_psnr_256')} |",
        f"| warp fidelity | {_fmt(summary['warp_fidelity'], '.2f')} dB | >= {QUALITY_BAR['warp_fidelity']:g} dB "
        f"| {mark('warp_fidelity')} |",
        f"| flicker | {_fmt(summary['flicker'], '.4f')} | >= {QUALITY_BAR['flicker']:g} | {mark('flicker')} |",
        f"| seconds per video | {_fmt(summary.get('seconds_per_video'), '.2f')} | | |",
    ]
    return "\n".join(lines) + "\n"
