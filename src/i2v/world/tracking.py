"""Measuring motion in clips of the procedural world, without a learned tracker.

Objects in the world are solid shapes in named colours (``COLOURS``) and backgrounds only use
muted tones far from all of them (``BACKGROUND_COLOURS``), so an object is found by its colour:
``track_colour`` thresholds the per-pixel RGB distance to the object colour. Camera motion is
measured with OpenCV: Shi-Tomasi corners tracked by pyramidal Lucas-Kanade between consecutive
frames, a RANSAC similarity transform per step, composed over the clip
(``estimate_camera_motion``).

Coordinates are pixels of the frames: ``x`` to the right, ``y`` downwards (image convention).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .scenes import COLOURS

# Default colour tolerance (Euclidean RGB distance). The closest background tone, or blend of
# two, is >= 96 away from every object colour, so 60 keeps backgrounds out with margin, while
# an anti-aliased edge pixel counts once it is more than ~40-65% object (depending on contrast).
DEFAULT_TOL = 60.0


class ObjectTrack(NamedTuple):
    """One object's per-frame measurements (``T`` frames)."""

    centroids: np.ndarray  # (T, 2) float pixel (x, y); NaN where the object is absent
    areas: np.ndarray  # (T,) pixel counts (0 where absent)
    touches_border: np.ndarray  # (T,) bool: the object's mask reaches the frame edge (clipped)


def _as_video(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def colour_masks(frames, rgbs, tol: float = DEFAULT_TOL, exclusive: bool = True) -> np.ndarray:
    """(N, T, H, W) bool: for each of N colours, the pixels within ``tol`` (RGB distance) of it.

    With ``exclusive`` a pixel must also be nearer to that colour than to every other colour
    asked for and every other named object colour (``COLOURS``), so that e.g. orange and yellow
    (81 apart) never claim the same blurry pixel. One pass over the clip for all colours.
    """
    frames = _as_video(frames)
    targets = np.asarray(rgbs, dtype=np.float32).reshape(-1, 3)
    others = [c for c in COLOURS.values() if not any(np.allclose(c, t) for t in targets)] if exclusive else []
    palette = np.concatenate([targets, np.asarray(others, dtype=np.float32).reshape(-1, 3)])  # (K, 3)
    # squared distances to every palette colour at once: |p|^2 - 2 p.c + |c|^2
    pix = frames.reshape(-1, 3).astype(np.float32)  # (T*H*W, 3)
    dist2 = (pix**2).sum(1, keepdims=True) - 2.0 * pix @ palette.T + (palette**2).sum(1)[None]  # (T*H*W, K)
    near = dist2[:, : len(targets)] <= float(tol) ** 2  # (T*H*W, N)
    if exclusive:
        near &= (dist2.argmin(1)[:, None] == np.arange(len(targets))[None])
    return near.T.reshape(len(targets), *frames.shape[:3])


def colour_mask(frames, rgb, tol: float = DEFAULT_TOL, exclusive: bool = True) -> np.ndarray:
    """(T, H, W) bool: pixels within ``tol`` of ``rgb`` (see ``colour_masks``)."""
    return colour_masks(frames, [rgb], tol, exclusive)[0]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:  # background + at most one blob
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def _track_mask(masks: np.ndarray, min_area: int, largest_component: bool) -> ObjectTrack:
    t = len(masks)
    centroids = np.full((t, 2), np.nan)
    areas = np.zeros(t)
    border = np.zeros(t, dtype=bool)
    for k, m in enumerate(masks):
        if largest_component and m.any():
            m = _largest_component(m)
        area = int(m.sum())
        if area < min_area:
            continue
        ys, xs = np.nonzero(m)
        centroids[k] = (xs.mean() + 0.5, ys.mean() + 0.5)  # pixel centres, like screen_tracks()
        areas[k] = area
        border[k] = bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
    return ObjectTrack(centroids, areas, border)


def track_objects(frames, rgbs, tol: float = DEFAULT_TOL, *, min_area: int = 3,
                  largest_component: bool = True, exclusive: bool = True) -> list[ObjectTrack]:
    """Centroid, area and border contact of the object of each colour in ``rgbs``, every frame.

    An object is the largest connected blob of its colour's pixels (``largest_component``), so
    stray pixels elsewhere do not pull the centroid; fewer than ``min_area`` pixels = absent.
    """
    masks = colour_masks(frames, rgbs, tol, exclusive)
    return [_track_mask(m, min_area, largest_component) for m in masks]


def track_object(frames, rgb, tol: float = DEFAULT_TOL, **kwargs) -> ObjectTrack:
    """``track_objects`` for one colour."""
    return track_objects(frames, [rgb], tol, **kwargs)[0]


def track_colour(frames, rgb, tol: float = DEFAULT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Track the object of colour ``rgb``: ``(centroids (T, 2) with NaN where absent, areas (T,))``.

    Centroids are pixel ``(x, y)`` in the same convention as ``Scene.screen_tracks()``.
    """
    track = track_object(frames, rgb, tol)
    return track.centroids, track.areas


# ---- camera motion ---------------------------------------------------------------------------
def _step_transform(g0: np.ndarray, g1: np.ndarray, max_corners: int, min_points: int):
    """Similarity transform (2x3) taking frame t's pixels to frame t+1's, and the points used."""
    pts = cv2.goodFeaturesToTrack(g0, maxCorners=max_corners, qualityLevel=0.001, minDistance=2, blockSize=5)
    if pts is None or len(pts) < min_points:
        return None, 0
    lk = dict(winSize=(15, 15), maxLevel=3,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(g0, g1, pts, None, **lk)
    back, st_b, _ = cv2.calcOpticalFlowPyrLK(g1, g0, nxt, None, **lk)
    # forward-backward consistency: keep points that track back to where they started
    fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    keep = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < 0.5)
    p0, p1 = pts.reshape(-1, 2)[keep], nxt.reshape(-1, 2)[keep]
    if len(p0) < min_points:
        return None, int(len(p0))
    m, inliers = cv2.estimateAffinePartial2D(p0, p1, method=cv2.RANSAC, ransacReprojThreshold=1.0,
                                             maxIters=2000, confidence=0.99)
    if m is None:
        return None, int(len(p0))
    return m, int(inliers.sum()) if inliers is not None else int(len(p0))


def _phase_shift(g0: np.ndarray, g1: np.ndarray, window: np.ndarray, min_response: float):
    """Whole-frame translation (2x3) by phase correlation, or None if the peak is weak."""
    a, b = g0.astype(np.float32), g1.astype(np.float32)
    if a.std() < 1e-3 or b.std() < 1e-3:  # flat frames: nothing to correlate
        return None
    (sx, sy), response = cv2.phaseCorrelate(a, b, window)
    if not np.isfinite(response) or response < min_response:
        return None
    return np.array([[1.0, 0.0, sx], [0.0, 1.0, sy]])


def estimate_camera_motion(frames, *, max_corners: int = 200, min_points: int = 3,
                           min_phase_response: float = 0.3) -> dict:
    """Global image motion over the clip, from tracked corners (OpenCV).

    Per pair of consecutive frames: Shi-Tomasi corners, pyramidal Lucas-Kanade with a
    forward-backward check, then a RANSAC similarity transform (``estimateAffinePartial2D``).
    Where too few corners survive (smooth backgrounds, shapes leaving the frame), the step
    falls back to a translation from phase correlation of the whole frame; where that has no
    clear peak either, the step counts as identity and is flagged.

    Returns a dict:

    - ``dx, dy``: displacement in pixels, first to last frame, of the picture *content* at the
      frame centre (a camera panning left makes the content slide right: ``dx > 0``);
    - ``scale``: size of the content in the last frame over the first (> 1 = zoom in);
    - ``rotation``: degrees;
    - ``ok``: every step was measured; ``coverage``: fraction of steps that were (unmeasured
      steps, e.g. a flat frame with nothing on it, count as identity);
    - ``step_translation`` (T-1, 2), ``step_scale`` (T-1,), ``step_ok`` (T-1,): per-step values;
      ``step_method``: per step ``"features"``, ``"phase"`` (translation only) or ``"none"``;
    - ``matrix``: the composed 3x3 transform from frame 0 pixels to last-frame pixels;
      ``matrices`` (T, 3, 3): the composed transform from frame 0 to each frame.
    """
    frames = _as_video(frames)
    t, h, w = frames.shape[:3]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    centre = np.array([w / 2.0, h / 2.0, 1.0])
    total = np.eye(3)
    step_translation = np.zeros((max(t - 1, 0), 2))
    step_scale = np.ones(max(t - 1, 0))
    step_ok = np.zeros(max(t - 1, 0), dtype=bool)
    step_method = ["none"] * max(t - 1, 0)
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    points = []
    matrices = [total.copy()]
    for k in range(t - 1):
        m, n = _step_transform(grey[k], grey[k + 1], max_corners, min_points)
        points.append(n)
        step_method[k] = "features"
        if m is None:
            m = _phase_shift(grey[k], grey[k + 1], window, min_phase_response)
            step_method[k] = "phase" if m is not None else "none"
        if m is None:
            matrices.append(total.copy())
            continue
        step = np.vstack([m, [0.0, 0.0, 1.0]])
        total = step @ total
        matrices.append(total.copy())
        step_translation[k] = (step @ centre)[:2] - centre[:2]
        step_scale[k] = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        step_ok[k] = True
    shift = (total @ centre)[:2] - centre[:2]
    return {
        "dx": float(shift[0]),
        "dy": float(shift[1]),
        "scale": float(np.sqrt(abs(np.linalg.det(total[:2, :2])))),
        "rotation": float(np.degrees(np.arctan2(total[1, 0], total[0, 0]))),
        "ok": bool(step_ok.all()) if t > 1 else False,
        "coverage": float(step_ok.mean()) if t > 1 else 0.0,
        "num_points": float(np.mean(points)) if points else 0.0,
        "step_translation": step_translation,
        "step_scale": step_scale,
        "step_ok": step_ok,
        "step_method": step_method,
        "matrix": total,
        "matrices": np.stack(matrices) if t > 0 else np.zeros((0, 3, 3)),
    }
