"""``i2v benchmark --world photos``: camera moves and moving shapes over held-out photographs.

Case k is a held-out photo (``make photos``), a camera motion (or a named shape moving over the
photo), a frame size and a held-out phrasing, all fixed by k: the model gets the first frame of
the true clip and the prompt. ``scoring.score_photo_case`` checks a camera motion, the first frame
and the warp fidelity; the shapes world's ``score_case`` checks a shape's direction.
Writes ``report.json``, ``summary.md`` and ``contact_sheet.png`` to ``--out``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..captions import caption_scene
from ..scenes import NUM_FRAMES, OBJECT_DIRECTIONS, SIZE, Scene, heldout_seed, over_photo, render, sample_scene
from ..scoring import score_case
from .batches import load_photos
from .camera import CAMERA_MOTIONS, CameraMove, render_camera_clip, sample_camera_move
from .captions import caption_camera
from .scoring import QUALITY_BAR, summarise

# (height, width) of the cases, cycled: square at both trained sizes, and 16:9
SIZES = ((128, 128), (256, 256), (144, 256))
CASE_SEED = 20_261_206  # the held-out cases' own random stream


# Every case kind in turn: the camera motions, then a named shape moving over the photo.
SHAPES = "shapes"
CASE_KINDS = (*CAMERA_MOTIONS, SHAPES)


@dataclass(frozen=True)
class PhotoCase:
    index: int
    photo: int  # index into the sorted held-out photos
    prompt: str
    move: CameraMove | None = None  # a camera motion over the photo
    scene: Scene | None = None  # or a shapes-world scene over it (128x128)

    @property
    def kind(self) -> str:
        return self.move.kind if self.move is not None else SHAPES

    @property
    def size(self) -> tuple[int, int]:
        return self.move.size if self.move is not None else (SIZE, SIZE)

    def frames(self, photos: list[np.ndarray], num_frames: int | None = None) -> np.ndarray:
        """The true clip (T, h, w, 3) uint8, or its first ``num_frames``."""
        if self.move is not None:
            return render_camera_clip(photos[self.photo], self.move, num_frames=num_frames or NUM_FRAMES)
        return render(self.scene, photo=photos[self.photo])[:num_frames]


def photo_cases(photos: list[np.ndarray], n: int, first_case: int = 0,
                kinds: tuple[str, ...] | None = None) -> list[PhotoCase]:
    """Cases ``first_case .. first_case + n - 1``; case k is the same whatever ``n`` is. With ``kinds`` (of
    CASE_KINDS), the first ``n`` cases from ``first_case`` on of those kinds (each still case k)."""
    if kinds is not None and (not kinds or set(kinds) - set(CASE_KINDS)):
        raise ValueError(f"kinds must be some of {CASE_KINDS}, got {kinds}")
    cases = []
    k = first_case - 1
    while len(cases) < n:
        k += 1
        kind = CASE_KINDS[k % len(CASE_KINDS)]
        if kinds is not None and kind not in kinds:
            continue
        photo = (k + k // len(CASE_KINDS)) % len(photos)  # every kind meets every photo over the cycles
        rng = np.random.default_rng([CASE_SEED, k])
        if kind == SHAPES:
            cases.append(shapes_case(k, photo, photos, rng))
            continue
        size = SIZES[(k // len(CASE_KINDS)) % len(SIZES)]
        move = sample_camera_move(rng, photos[photo].shape, size, kind=kind)
        cases.append(PhotoCase(k, photo, caption_camera(kind, rng, "heldout"), move=move))
    return cases


def shapes_case(k: int, photo: int, photos: list[np.ndarray], rng: np.random.Generator) -> PhotoCase:
    """A held-out shapes-world scene (a named object moving in one of 8 directions) over the photo, and
    its held-out caption. Scenes whose true clip the colour tracker cannot score (an object's colour
    is too common in that part of the photo) are drawn again: every case can be passed."""
    directions = sorted(OBJECT_DIRECTIONS)
    for attempt in range(20):
        seed = heldout_seed(10_000_000 + 97 * k + attempt)
        scene = sample_scene(seed, motion=f"move_{directions[k // len(CASE_KINDS) % len(directions)]}")
        scene = over_photo(scene, photo, photos[photo].shape, rng)
        truth = render(scene, photo=photos[photo])
        if score_case(truth, scene, truth[0])["passed"]:
            return PhotoCase(k, photo, caption_scene(scene, np.random.default_rng(seed), "heldout"), scene=scene)
    raise RuntimeError(f"case {k}: no scorable scene over photo {photo} in 20 draws")


def run_photo_benchmark(model: str | None = None, photos_dir: str | Path = "data/photos", cases: int = 42,
                        out: str | Path | None = None, seed: int = 0, first_case: int = 0,
                        num_inference_steps: int | None = None, device: str | None = None,
                        dtype: str | None = None, scheduler: str | None = None, guidance_scale: float | None = None,
                        log=print, kinds: tuple[str, ...] | None = None) -> dict:
    from ...api import GenerationRequest, ImageToVideoGenerator
    from ...io.reports import write_benchmark
    from ...metrics.fidelity import temporal_flicker
    from .scoring import score_photo_case

    photos = load_photos(photos_dir, "heldout")
    if cases < 1 or first_case < 0:
        raise ValueError(f"cases must be >= 1 and first_case >= 0, got {cases} and {first_case}")
    gen = ImageToVideoGenerator(model_name=model, device=device, dtype=dtype, scheduler=scheduler)
    results, rows = [], []
    for case in photo_cases(photos, cases, first_case, kinds):
        truth = case.frames(photos, num_frames=gen.spec.defaults.num_frames)  # (T, h, w, 3) the true clip
        first = truth[0]
        h, w = case.size
        t0 = time.perf_counter()
        result = gen.run(GenerationRequest(image=first, prompt=case.prompt, seed=seed + case.index, height=h, width=w,
                                           num_inference_steps=num_inference_steps, guidance_scale=guidance_scale))
        seconds = time.perf_counter() - t0
        if case.move is not None:
            score = score_photo_case(result.frames, case.kind, image=first)
            score.update(move=case.move.to_dict(), warp=f"warp {score['warp_fidelity']:.1f} dB",
                         true_flicker=temporal_flicker(truth))
        else:  # the shapes world's own scorer: the named object's track against the scene's
            score = score_case(result.frames, case.scene, first)
            score.update(category="shapes_direction", kind=SHAPES, size=[h, w], scene=case.scene.to_dict(), warp="")
        score.update(case=case.index, photo=case.photo, prompt=case.prompt, seconds=seconds, requested_size=[h, w],
                     prompt_motion=result.settings.get("prompt_motion"))  # a move the model's reader planned
        results.append(score)
        rows.append((result.frames, f"{'PASS' if score['passed'] else 'fail'} {case.kind} {w}x{h}: {case.prompt}"))
        log(f"[{len(results)}/{cases}] case {case.index}: {case.kind:<10} {w}x{h} "
            f"{'pass' if score['passed'] else 'FAIL'}  {score.pop('warp')}  {case.prompt}")
    summary = summarise(results)
    summary.update(model=gen.spec.name, first_case=first_case, world="photos", kinds=list(kinds) if kinds else None,
                   seconds_per_video=float(np.mean([r["seconds"] for r in results])) if results else None)
    report = {"summary": summary, "cases": results}
    if out is not None:
        write_benchmark(out, report, summary_markdown(summary), rows)
    return report


def _fmt(value, spec: str) -> str:
    """``value`` in ``spec`` ("%" and unit suffixes after a space allowed: ".2f dB"), or n/a."""
    if value is None:
        return "n/a"
    number, _, unit = spec.partition(" ")
    return format(value, number) + (f" {unit}" if unit else "")


def summary_markdown(summary: dict) -> str:
    bar = summary["meets_bar"]

    def mark(key: str) -> str:
        return {True: "yes", False: "NO", None: "n/a"}[bar.get(key)]

    rates = summary["rates"]
    lines = [
        f"## Photo benchmark: {summary.get('model')}, {summary['cases']} held-out cases"
        + (f" ({', '.join(summary['kinds'])} only)" if summary.get("kinds") else ""),
        "",
        "| measure | score | target | met |",
        "|---|---|---|---|",
        f"| camera moves (pan, tilt, zoom) | {_fmt(summary['camera'], '.0%')} | >= {QUALITY_BAR['camera']:.0%} "
        f"| {mark('camera')} |",
        f"| pans / tilts / zooms | {_fmt(rates['camera_pan'], '.0%')} / {_fmt(rates['camera_tilt'], '.0%')} / "
        f"{_fmt(rates['camera_zoom'], '.0%')} | | |",
        f"| still | {_fmt(rates['still'], '.0%')} | >= {QUALITY_BAR['still']:.0%} | {mark('still')} |",
        f"| shapes over photos, direction | {_fmt(rates['shapes_direction'], '.0%')} "
        f"| >= {QUALITY_BAR['shapes_direction']:.0%} | {mark('shapes_direction')} |",
    ]
    for size, value in summary["first_frame_psnr_by_size"].items():
        lines.append(f"| first-frame PSNR {size} | {_fmt(value, '.2f dB')} | | |")
    lines += [
        f"| first-frame PSNR at 128 / 256 | | >= {QUALITY_BAR['first_frame_psnr_128']:g} / "
        f"{QUALITY_BAR['first_frame_psnr_256']:g} dB "
        f"| {mark('first_frame_psnr_128')} / {mark('first_frame_psnr_256')} |",
        f"| warp fidelity (over the {summary['warp_fidelity_cases']} camera moves that passed) "
        f"| {_fmt(summary['warp_fidelity'], '.2f dB')} | >= {QUALITY_BAR['warp_fidelity']:g} dB "
        f"| {mark('warp_fidelity')} |",
        f"| flicker, still shots | {_fmt(summary['flicker'], '.4f')} | >= {QUALITY_BAR['flicker']:g} "
        f"| {mark('flicker')} |",
        f"| flicker, camera moves (their true clips) | {_fmt(summary.get('flicker_moves'), '.4f')} "
        f"({_fmt(summary.get('flicker_moves_true'), '.4f')}) | | |",
        f"| seconds per video | {_fmt(summary.get('seconds_per_video'), '.2f')} | | |",
    ]
    return "\n".join(lines) + "\n"
