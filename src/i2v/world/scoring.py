"""Scoring a generated clip against the known ground truth of a procedural-world scene.

Backs the product's quality bar on the held-out split (``QUALITY_BAR``): the named object moves
in the prompted direction (net centroid displacement >= 6% of the width, within 45 degrees) in
>= 80% of cases; grow/shrink, still and camera pan/zoom cases each pass >= 70%; objects not
named stay put; first-frame PSNR against the input >= 28 dB; VBench temporal flicker >= 0.95.

Objects are found by colour (``tracking.track_object``), camera motion by tracked corners
(``tracking.estimate_camera_motion``); all distances are in pixels of the generated frames and
thresholds are fractions of their width ``W``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..metrics.fidelity import first_frame_psnr, temporal_flicker
from .captions import caption_scene
from .scenes import (
    CAMERA_PANS,
    COLOURS,
    MOTION_CATEGORIES,
    MOTION_WEIGHTS,
    OBJECT_DIRECTIONS,
    Scene,
    heldout_seed,
    render,
    sample_scene,
)
from .tracking import DEFAULT_TOL, ObjectTrack, estimate_camera_motion, track_objects

CATEGORIES = ("object_direction", "object_scale", "still", "camera_pan", "camera_zoom")

# Thresholds (fractions of the frame width W, degrees, ratios).
MOVE_MIN_FRAC = 0.06  # object_direction / camera_pan: net displacement >= 6% of W
MAX_ANGLE_DEG = 45.0  # ... within 45 degrees of the intended direction
SCALE_AREA_RATIO = 1.3  # grow: area ratio > 1.3; shrink: < 1 / 1.3
SCALE_MAX_DRIFT_FRAC = 0.06  # grow/shrink: the centroid stays within 6% of W
STILL_MAX_FRAC = 0.03  # still/static: every object moves < 3% of W ...
STILL_MAX_AREA_CHANGE = 0.15  # ... and changes area by < 15%
STILL_MAX_CAMERA_SCALE = 1.05  # ... and the camera neither shifts (< 3% of W) nor zooms (< 5%)
ZOOM_RATIO = 1.15  # zoom_in: content scale > 1.15; zoom_out: < 1 / 1.15
OTHERS_MAX_FRAC = 0.04  # objects not named stay within 4% of W
MIN_PRESENCE = 0.5  # a tracked object must be found in at least half the frames
PSNR_CAP = 100.0  # identical first frames (inf dB) count as this in means

QUALITY_BAR: dict[str, float] = {
    "object_direction": 0.80, "object_scale": 0.70, "still": 0.70, "camera_pan": 0.70, "camera_zoom": 0.70,
    "first_frame_psnr": 28.0, "flicker": 0.95,
}


# ---- small measurement helpers ---------------------------------------------------------------
def _endpoints(values: np.ndarray, valid: np.ndarray, k: int = 2):
    """Means of the first k and last k valid entries (k shrinks for short tracks), or None."""
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return None
    k = max(1, min(k, len(idx) // 2))
    return values[idx[:k]].mean(0), values[idx[-k:]].mean(0)


def _net_displacement(track: ObjectTrack):
    """(2,) robust first->last centroid displacement in pixels, or None if never tracked twice."""
    ends = _endpoints(track.centroids, ~np.isnan(track.centroids[:, 0]))
    return None if ends is None else ends[1] - ends[0]


def _area_ratio(track: ObjectTrack):
    ends = _endpoints(track.areas, track.areas > 0)
    return None if ends is None or ends[0] <= 0 else float(ends[1] / ends[0])


def _presence(track: ObjectTrack) -> float:
    return float(np.mean(track.areas > 0))


def _angle_deg(v: np.ndarray, direction) -> float:
    d = np.asarray(direction, dtype=float)
    n = np.linalg.norm(v) * np.linalg.norm(d)
    if n == 0:
        return 180.0
    return float(np.degrees(np.arccos(np.clip(np.dot(v, d) / n, -1.0, 1.0))))


def _visible(track: ObjectTrack) -> np.ndarray:
    """(T,) bool: found and not clipped by the frame edge (its centroid and area are true)."""
    return (track.areas > 0) & ~track.touches_border


def _content_shift(tracks: list[ObjectTrack], camera: dict) -> tuple[np.ndarray, float]:
    """Net content displacement over the clip, summed step by step.

    Each step uses the mean displacement of the objects fully visible in both frames (exact
    on the world's solid shapes) and falls back to the flow estimate where none is. Returns the
    (2,) shift in pixels and the fraction of steps measured on objects.
    """
    steps = camera["step_translation"].copy()
    visible = [_visible(tr) for tr in tracks]
    from_objects = 0
    for k in range(len(steps)):
        moves = [tr.centroids[k + 1] - tr.centroids[k] for tr, vis in zip(tracks, visible) if vis[k] and vis[k + 1]]
        if moves:
            steps[k] = np.mean(moves, axis=0)
            from_objects += 1
    return steps.sum(0), from_objects / max(len(steps), 1)


def _content_scale(tracks: list[ObjectTrack], camera: dict) -> tuple[float, float]:
    """Net content scale (last / first) composed step by step.

    Each step uses the geometric mean of sqrt(area ratio) of the objects fully visible in both
    frames and of the distance ratios between pairs of them; steps with none use the flow's
    scale where corners were tracked (phase-correlation steps carry no scale). Returns the
    scale and the fraction of steps measured on objects.
    """
    n_steps = len(camera["step_scale"])
    visible = [_visible(tr) for tr in tracks]
    log_scale, from_objects = 0.0, 0
    for k in range(n_steps):
        vis = [tr for tr, v in zip(tracks, visible) if v[k] and v[k + 1]]
        logs = [0.5 * math.log(tr.areas[k + 1] / tr.areas[k]) for tr in vis]
        for i in range(len(vis)):
            for j in range(i + 1, len(vis)):
                d0 = np.linalg.norm(vis[i].centroids[k] - vis[j].centroids[k])
                d1 = np.linalg.norm(vis[i].centroids[k + 1] - vis[j].centroids[k + 1])
                if d0 > 0 and d1 > 0:
                    logs.append(math.log(d1 / d0))
        if logs:
            log_scale += float(np.mean(logs))
            from_objects += 1
        elif camera["step_method"][k] == "features":
            log_scale += math.log(camera["step_scale"][k])
    return math.exp(log_scale), from_objects / max(n_steps, 1)


def _vec(v) -> list[float] | None:
    return None if v is None else [float(x) for x in v]


# ---- one case --------------------------------------------------------------------------------
def score_case(frames, scene: Scene, image=None, tol: float = DEFAULT_TOL) -> dict:
    """Score a generated clip ``(T, H, W, 3)`` uint8 against ``scene``'s intended motion.

    ``image`` is the conditioning image the clip was generated from (``(H, W, 3)`` uint8 or
    PIL); ``None`` uses the scene's own rendered first frame. Returns a JSON-friendly dict with
    ``category``, ``motion``, ``passed`` (the motion criterion of the category), ``reason``
    (why it failed, else None), ``others_still`` (objects not named stayed within 4% of W;
    None when the scene names no object or has no others), ``first_frame_psnr``, ``flicker``
    and the measured numbers (pixels of the generated frames; ``*_frac`` are fractions of W).
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"need at least 2 frames to score motion, got {len(frames)}")
    width = frames.shape[2]
    motion, category = scene.motion, scene.category
    tracks = track_objects(frames, [COLOURS[o.colour] for o in scene.objects], tol)
    camera = estimate_camera_motion(frames)
    camera_shift = np.array([camera["dx"], camera["dy"]])
    target = scene.target
    out: dict = {
        "category": category, "motion": motion,
        "target": None if target is None else f"{scene.objects[target].colour} {scene.objects[target].shape}",
        "passed": False, "reason": None,
        "camera": {"dx": camera["dx"], "dy": camera["dy"], "scale": camera["scale"], "coverage": camera["coverage"]},
        "presence": [_presence(tr) for tr in tracks],
    }

    def fail(reason: str) -> None:
        out["passed"], out["reason"] = False, reason

    # 1. The motion criterion of the category
    if category in ("object_direction", "object_scale"):
        tr = tracks[target]
        disp = _net_displacement(tr)
        if _presence(tr) < MIN_PRESENCE or disp is None:
            fail("target not found")
        elif category == "object_direction":
            direction = OBJECT_DIRECTIONS[motion[len("move_"):]]
            mag, angle = float(np.linalg.norm(disp)), _angle_deg(disp, direction)
            out.update(displacement=_vec(disp), displacement_frac=mag / width, angle_error_deg=angle)
            out["passed"] = mag >= MOVE_MIN_FRAC * width and angle <= MAX_ANGLE_DEG
            if not out["passed"]:
                fail("too small a move" if mag < MOVE_MIN_FRAC * width else "wrong direction")
        else:
            ratio, drift = _area_ratio(tr), float(np.linalg.norm(disp))
            out.update(area_ratio=ratio, drift_frac=drift / width, displacement=_vec(disp))
            grew = ratio > SCALE_AREA_RATIO if motion == "grow" else ratio < 1.0 / SCALE_AREA_RATIO
            out["passed"] = bool(grew and drift <= SCALE_MAX_DRIFT_FRAC * width)
            if not out["passed"]:
                fail("size did not change enough" if not grew else "drifted")
    elif category == "still":
        moves, changes = [], []
        for tr in tracks:
            disp, ratio = _net_displacement(tr), _area_ratio(tr)
            ok = _presence(tr) >= MIN_PRESENCE and disp is not None and ratio is not None
            moves.append(float(np.linalg.norm(disp)) / width if ok else float("inf"))
            changes.append(abs(ratio - 1.0) if ok else float("inf"))
        camera_static = None
        if camera["coverage"] > 0:
            camera_static = bool(np.linalg.norm(camera_shift) < STILL_MAX_FRAC * width
                                 and abs(math.log(camera["scale"])) < math.log(STILL_MAX_CAMERA_SCALE))
        out.update(max_move_frac=max(moves), max_area_change=max(changes), camera_static=camera_static)
        objects_still = max(moves) < STILL_MAX_FRAC and max(changes) < STILL_MAX_AREA_CHANGE
        out["passed"] = bool(objects_still and camera_static is not False)
        if not out["passed"]:
            fail("objects moved" if not objects_still else "camera moved")
    elif category == "camera_pan":
        # "camera pans left" = the camera turns left: the content slides right
        expected = -np.asarray(CAMERA_PANS[motion])
        shift, from_objects = _content_shift(tracks, camera)
        mag, angle = float(np.linalg.norm(shift)), _angle_deg(shift, expected)
        out.update(content_shift=_vec(shift), content_shift_frac=mag / width, angle_error_deg=angle,
                   measured_on_objects=from_objects)
        out["passed"] = mag >= MOVE_MIN_FRAC * width and angle <= MAX_ANGLE_DEG
        if not out["passed"]:
            fail("too small a pan" if mag < MOVE_MIN_FRAC * width else "wrong direction")
    elif category == "camera_zoom":
        scale, from_objects = _content_scale(tracks, camera)
        out.update(scale=scale, measured_on_objects=from_objects)
        out["passed"] = scale > ZOOM_RATIO if motion == "zoom_in" else scale < 1.0 / ZOOM_RATIO
        if not out["passed"]:
            fail("too little zoom" if (scale >= 1.0) == (motion == "zoom_in") else "wrong direction")
    else:  # pragma: no cover - MOTION_CATEGORIES has no other values
        raise ValueError(f"unknown category {category!r}")
    out["passed"] = bool(out["passed"])

    # 2. Objects not named stay put (object motions only)
    others = [k for k in range(len(tracks)) if target is not None and k != target]
    if others:
        drifts = []
        for k in others:
            disp = _net_displacement(tracks[k])
            ok = disp is not None and _presence(tracks[k]) >= MIN_PRESENCE
            drifts.append(float(np.linalg.norm(disp)) / width if ok else float("inf"))
        out["others_max_move_frac"] = max(drifts)
        out["others_still"] = bool(max(drifts) < OTHERS_MAX_FRAC)
    else:
        out["others_still"] = None

    # 3. Fidelity
    if image is None:
        image = render(dataclasses.replace(scene, num_frames=1), size=width)[0]
    out["first_frame_psnr"] = first_frame_psnr(frames, image)
    out["flicker"] = temporal_flicker(frames)
    return out


# ---- many cases ------------------------------------------------------------------------------
def _rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def summarise(results: list[dict]) -> dict:
    """Pass rates per category and per motion, others-still rate, mean PSNR / flicker, counts.

    ``meets_bar`` compares each number with ``QUALITY_BAR`` (None where there were no cases).
    Infinite first-frame PSNRs count as ``PSNR_CAP`` dB in the mean.
    """
    per_category = {}
    for cat in CATEGORIES:
        flags = [bool(r["passed"]) for r in results if r["category"] == cat]
        per_category[cat] = {"n": len(flags), "passed": int(sum(flags)), "pass_rate": _rate(flags)}
    per_motion: dict[str, dict] = {}
    for r in results:
        m = per_motion.setdefault(r["motion"], {"n": 0, "passed": 0})
        m["n"] += 1
        m["passed"] += int(bool(r["passed"]))
    for m in per_motion.values():
        m["pass_rate"] = m["passed"] / m["n"]
    others = [bool(r["others_still"]) for r in results if r.get("others_still") is not None]
    psnrs = [min(float(r["first_frame_psnr"]), PSNR_CAP) for r in results if r.get("first_frame_psnr") is not None]
    flicker = [float(r["flicker"]) for r in results if r.get("flicker") is not None]
    # VBench measures flicker on static-camera clips: report those separately too
    flicker_still = [float(r["flicker"]) for r in results if r.get("flicker") is not None and r["category"] == "still"]
    summary = {
        "n": len(results),
        "passed": int(sum(bool(r["passed"]) for r in results)),
        "pass_rate": _rate([bool(r["passed"]) for r in results]),
        "per_category": per_category,
        "per_motion": dict(sorted(per_motion.items())),
        "others_still_rate": _rate(others),
        "others_still_n": len(others),
        "first_frame_psnr": float(np.mean(psnrs)) if psnrs else None,
        "flicker": float(np.mean(flicker)) if flicker else None,
        "flicker_still": float(np.mean(flicker_still)) if flicker_still else None,
    }
    bar = {cat: None if per_category[cat]["pass_rate"] is None else per_category[cat]["pass_rate"] >= QUALITY_BAR[cat]
           for cat in CATEGORIES}
    for key in ("first_frame_psnr", "flicker"):
        bar[key] = None if summary[key] is None else summary[key] >= QUALITY_BAR[key]
    summary["meets_bar"] = bar
    return summary


def _interleaved_kinds() -> list[str]:
    """Every motion kind once, taking the categories round-robin (dir, scale, still, pan, zoom, dir, ...)."""
    queues = [[k for k in MOTION_WEIGHTS if MOTION_CATEGORIES[k] == cat] for cat in CATEGORIES]
    order = []
    while any(queues):
        order += [q.pop(0) for q in queues if q]
    return order


def heldout_cases(n: int, seed_offset: int = 0, phrasing: str = "heldout") -> list[tuple[Scene, str]]:
    """``n`` held-out benchmark cases ``(scene, prompt)``.

    Case ``i`` uses seed ``heldout_seed(seed_offset + i)`` and motion kind number
    ``(seed_offset + i) % len(MOTION_WEIGHTS)`` of a fixed order that takes the categories in
    turn, so every kind appears evenly and even a handful of cases covers every category
    (consecutive offsets continue the cycle); prompts use the held-out phrasings
    (``caption_scene(..., "heldout")``) drawn from the same seed, or with ``phrasing="train"``
    the training phrasings of the same scenes (to measure the paraphrase gap).
    """
    kinds = _interleaved_kinds()
    cases = []
    for i in range(n):
        seed = heldout_seed(seed_offset + i)
        scene = sample_scene(seed, motion=kinds[(seed_offset + i) % len(kinds)])
        scene.meta["seed"] = seed
        cases.append((scene, caption_scene(scene, np.random.default_rng(seed), phrasing)))
    return cases
