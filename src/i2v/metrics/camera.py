"""Camera-motion class of a clip (pan left/right/up/down, zoom in/out, static) from a tracked grid.

Follows VBench's ``camera_motion`` (VBench++ I2V suite): a 10x10 grid of points is tracked
through the clip; the middle of the grid's top row, bottom row, left column and right column
(the mean of its two middle points; VBench takes one, 5% off-centre) each gets a direction from
its first-to-last displacement (``left``/``right`` and ``up``/``down`` past ``0.005 * min(H, W)``
pixels, else ``static``); then the pair (top, bottom) and the pair (left, right) are read with
VBench's table: both edges moving right = ``pan_left``, top up + bottom down = ``zoom_in``, and so
on. Besides VBench's set of matching classes, ``label`` names the dominant motion alone. VBench tracks with CoTracker; here each grid point
follows the OpenCV flow (``flow.optical_flow``) where it sits on texture and passes the
forward-backward check, and otherwise moves with that step's global similarity transform, fitted
by RANSAC to every reliable flow vector of the frame (points in flat regions or outside the frame
still move with the camera).

i2v's convention, shared with the procedural world: "the camera pans left" = the camera turns
left, so the picture content slides right. VBench's ``tilt_up`` / ``tilt_down`` are named
``pan_up`` / ``pan_down`` here. A clip whose only texture is one moving object reads that object's
motion as the camera's: without background texture the two look the same; with two or three
objects on a flat background, one moving, the fitted similarity may read as a zoom.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .flow import _as_video, occlusion_mask, texture_strength, video_flow

CAMERA_CLASSES = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "static")
GRID_SIZE = 10  # VBench: CoTracker grid_size=10
EDGE_FACTOR = 0.005  # VBench: an edge moves if its displacement exceeds 0.5% of min(H, W)
MIN_TEXTURE = 1e-4  # texture_strength below this: the local flow is not trusted

# VBench camera_motion tables, "<first edge>_<second edge>" -> class (tilt_* renamed pan_*)
_TOP_BOTTOM = {"left_left": "pan_right", "right_right": "pan_left", "down_down": "pan_up", "up_up": "pan_down",
               "up_down": "zoom_in", "down_up": "zoom_out", "static_static": "static"}
_LEFT_RIGHT = {"left_left": "pan_right", "right_right": "pan_left", "down_down": "pan_up", "up_up": "pan_down",
               "left_right": "zoom_in", "right_left": "zoom_out", "static_static": "static"}


def grid_points(height: int, width: int, grid_size: int = GRID_SIZE) -> np.ndarray:
    """(grid_size^2, 2) pixel ``(x, y)`` of CoTracker's query grid, row by row (top row first):
    evenly spaced from ``width / 64`` in from each border."""
    margin = width / 64.0
    ys = np.linspace(margin, height - margin, grid_size)
    xs = np.linspace(margin, width - margin, grid_size)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], -1)


def _sample(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) float32 field at (N, 2) pixel points -> (N, C)."""
    if len(pts) == 0:
        return np.zeros((0, field.shape[-1]), np.float32)
    map_x = pts[:, 0].astype(np.float32).reshape(-1, 1)
    map_y = pts[:, 1].astype(np.float32).reshape(-1, 1)
    out = cv2.remap(field, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(pts), -1)


def _global_step(flow: np.ndarray, reliable: np.ndarray, max_points: int = 4000):
    """RANSAC similarity (2x3) mapping frame-t pixels to frame t+1, from the reliable flow."""
    ys, xs = np.nonzero(reliable)
    if len(xs) < 8:
        return None
    stride = max(1, len(xs) // max_points)
    ys, xs = ys[::stride], xs[::stride]
    src = np.stack([xs, ys], -1).astype(np.float32)
    dst = src + flow[ys, xs]
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0,
                                       maxIters=2000, confidence=0.99)
    return m


def track_grid(frames, grid_size: int = GRID_SIZE, flows=None, backward_flows=None,
               method: str = "farneback") -> dict:
    """Track ``grid_points`` through the clip. Returns ``tracks`` (T, N, 2) pixel ``(x, y)``,
    ``step_measured`` (T-1,) bool: the step had reliable flow to fit a global transform to."""
    frames = _as_video(frames)
    t, h, w = frames.shape[:3]
    if flows is None:
        flows = video_flow(frames, method=method)
    if backward_flows is None:
        backward_flows = video_flow(frames, backward=True, method=method)
    pts = grid_points(h, w, grid_size)
    tracks = [pts.copy()]
    measured = np.zeros(max(t - 1, 0), dtype=bool)
    for k in range(t - 1):
        fw = np.asarray(flows[k], np.float32)
        reliable = (texture_strength(frames[k]) > MIN_TEXTURE) & ~occlusion_mask(fw, backward_flows[k])
        m = _global_step(fw, reliable)
        measured[k] = m is not None
        # each point: its own flow where reliable, else the frame's global motion
        xi = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
        own = inside & reliable[yi, xi]
        new = pts.copy()
        new[own] = pts[own] + _sample(fw, pts[own])
        if m is not None:
            new[~own] = pts[~own] @ m[:, :2].T + m[:, 2]
        pts = new
        tracks.append(pts.copy())
    return {"tracks": np.stack(tracks), "step_measured": measured}


def _direction(vector: np.ndarray, threshold: float) -> list[str]:
    """VBench's transform_class: horizontal and vertical words past the threshold, else static."""
    x, y = vector
    out = []
    if x > threshold:
        out.append("right")
    elif x < -threshold:
        out.append("left")
    if y > threshold:
        out.append("down")
    elif y < -threshold:
        out.append("up")
    return out or ["static"]


def classify_edges(top, bottom, left, right, threshold: float) -> list[str]:
    """VBench's camera_classify on the four edge displacements ``(dx, dy)``: sorted classes,
    ``["static"]`` when nothing moves, ``[]`` when the edges fit no class."""
    d_top, d_bottom, d_left, d_right = (_direction(np.asarray(v, float), threshold) for v in (top, bottom, left, right))
    found = {_TOP_BOTTOM[f"{a}_{b}"] for a in d_top for b in d_bottom if f"{a}_{b}" in _TOP_BOTTOM}
    found |= {_LEFT_RIGHT[f"{a}_{b}"] for a in d_left for b in d_right if f"{a}_{b}" in _LEFT_RIGHT}
    if len(found) > 1:
        found.discard("static")
    return sorted(found)


def dominant_motion(top, bottom, left, right, threshold: float) -> list[str]:
    """The main camera motion(s) read from the four edge displacements ``(dx, dy)``.

    Three components in pixels: horizontal pan (mean ``dx`` of the edges; content sliding right
    = ``pan_left``), vertical pan (mean ``dy``; content sliding down = ``pan_up``) and zoom (half
    the growth of the right-minus-left plus bottom-minus-top spans; growth = ``zoom_in``). Each
    component past ``threshold`` and at least half the largest one is kept, the largest first;
    ``["static"]`` when none passes.
    """
    top, bottom, left, right = (np.asarray(v, dtype=float) for v in (top, bottom, left, right))
    pan_x = float(np.mean([top[0], bottom[0], left[0], right[0]]))
    pan_y = float(np.mean([top[1], bottom[1], left[1], right[1]]))
    zoom = 0.5 * float((right[0] - left[0]) + (bottom[1] - top[1]))
    parts = [(abs(pan_x), "pan_left" if pan_x > 0 else "pan_right"),
             (abs(pan_y), "pan_up" if pan_y > 0 else "pan_down"),
             (abs(zoom), "zoom_in" if zoom > 0 else "zoom_out")]
    biggest = max(size for size, _ in parts)
    kept = [name for size, name in sorted(parts, reverse=True) if size > threshold and size >= 0.5 * biggest]
    return kept or ["static"]


def camera_motion_class(frames, grid_size: int = GRID_SIZE, factor: float = EDGE_FACTOR, number_points: int = 2,
                        flows=None, backward_flows=None, method: str = "farneback") -> dict:
    """Camera-motion class of a clip from a tracked grid. Returns a dict:

    - ``classes``: VBench's reading (``classify_edges``): every class the edge pairs match,
      sorted; ``["static"]`` when no edge moves, ``[]`` when they fit no class. VBench counts a
      clip as correct when the prompted class is among them;
    - ``label``: the dominant motion (``dominant_motion``): one of ``CAMERA_CLASSES``, or two
      or three of them joined by ``+`` when comparable (a diagonal pan: ``pan_left+pan_up``);
    - ``edges``: first-to-last displacement ``[dx, dy]`` in pixels of the ``top``, ``bottom``,
      ``left`` and ``right`` edge points; ``threshold``: pixels (``factor * min(H, W)``);
    - ``coverage``: fraction of frame steps with enough reliable flow for a global transform.

    ``number_points`` middle points of each grid edge are averaged (VBench's parameter; it uses
    1, the 6th of 10 points, 5% off-centre, so that a zoom also moves the "top" point sideways
    and reads as a pan as well; 2 averages the two middle points, centred on the edge).
    """
    frames = _as_video(frames)
    h, w = frames.shape[1:3]
    tracked = track_grid(frames, grid_size, flows, backward_flows, method)
    grid = tracked["tracks"].reshape(len(frames), grid_size, grid_size, 2)  # (T, rows, cols, 2)
    motion = grid[-1] - grid[0]
    mid = grid_size // 2
    lo, hi = math.ceil(mid - number_points / 2.0), math.ceil(mid + number_points / 2.0)  # VBench get_edge_point
    edges = {
        "top": motion[0, lo:hi].mean(0), "bottom": motion[-1, lo:hi].mean(0),
        "left": motion[lo:hi, 0].mean(0), "right": motion[lo:hi, -1].mean(0),
    }
    threshold = min(h, w) * factor
    classes = classify_edges(edges["top"], edges["bottom"], edges["left"], edges["right"], threshold)
    label = dominant_motion(edges["top"], edges["bottom"], edges["left"], edges["right"], threshold)
    measured = tracked["step_measured"]
    return {
        "label": "+".join(label),
        "classes": classes,
        "edges": {k: [float(v[0]), float(v[1])] for k, v in edges.items()},
        "threshold": threshold,
        "coverage": float(measured.mean()) if len(measured) else 0.0,
    }
