"""Motion metrics from classical optical flow (OpenCV): no learned weights needed.

Pure functions over uint8 frames ``(T, H, W, 3)``. Flow fields are ``(H, W, 2)`` float32 in
pixels, ``(dx, dy)`` with ``x`` to the right and ``y`` down: ``flow = optical_flow(a, b)``
means ``a[y, x] ~ b[y + dy, x + dx]``.

- ``dynamic_degree_cv``: VBench's *dynamic degree* rule (mean of the top 5% flow magnitudes per
  frame pair, threshold ``6 px * min(H, W) / 256`` scaled for low fps, "moves" if enough pairs
  exceed it) applied to OpenCV flow instead of RAFT. The ``_cv`` suffix says so: its values are
  comparable between i2v runs, not with published VBench numbers.
- ``mean_flow_magnitude``: EvalCrafter's *flow score*, mean ``|flow|`` over pixels and pairs.
- ``motion_smoothness_cv``: VBench's *motion smoothness* with a flow-warping interpolator in
  place of the AMT network: every odd frame is predicted from its two neighbours and scored
  ``(255 - mean |pred - frame|) / 255``.
- ``warping_error``: EvalCrafter's warping error (Lai et al. 2018, "Learning Blind Video
  Temporal Consistency"): frame ``t+1`` warped back onto frame ``t`` by the forward flow, squared
  error in ``[0, 1]`` units over the pixels that the forward-backward check keeps.

Flow is Farneback's polynomial-expansion method run on each RGB channel and blended per pixel by
each channel's local texture (the structure tensor's smaller eigenvalue), so colour edges that
vanish in greyscale (a green shape on a grey background) still count; ``method="dis"`` uses
DIS flow on greyscale instead. Like all classical flow, it reads ~0 inside flat, textureless
regions (the aperture problem), where RAFT would fill in from the context.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("farneback", "dis")

# VBench dynamic_degree: 6 px at a 256 px short side and 8 fps; count 4 pairs per 16 frames.
DYNAMIC_THRESHOLD_PX_AT_256 = 6.0
DYNAMIC_TOP_FRACTION = 0.05


def _as_video(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def _check_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")


# ---- flow ------------------------------------------------------------------------------------
def texture_strength(image: np.ndarray, block_size: int = 5) -> np.ndarray:
    """(H, W) float32: per pixel, the largest over RGB channels of the structure tensor's smaller
    eigenvalue (``cv2.cornerMinEigenVal``). ~1e-7 in flat or smoothly shaded regions, >1e-4 at
    edges and in texture; the same quantity Lucas-Kanade thresholds with ``minEigThreshold``."""
    image = np.asarray(image)
    return np.max([cv2.cornerMinEigenVal(np.ascontiguousarray(image[..., c]), block_size, 3)
                   for c in range(image.shape[-1])], axis=0)


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma: a wide Gaussian window copes
    # with the smooth gradients and low-contrast edges of generated clips
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 21, 3, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)


def optical_flow(a, b, method: str = "farneback") -> np.ndarray:
    """Dense flow from RGB uint8 frame ``a`` to frame ``b``: ``(H, W, 2)`` float32 pixels.

    ``"farneback"``: Farneback flow on each RGB channel, averaged per pixel with weights equal
    to each channel's texture strength (both frames, blurred with sigma 3 px).
    ``"dis"``: OpenCV's DIS flow (medium preset) on greyscale; faster, but it invents large
    motions inside smooth gradients.
    """
    _check_method(method)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"need two uint8 (H, W, 3) frames of the same shape, got {a.dtype} {a.shape} and "
                         f"{b.dtype} {b.shape}")
    if np.array_equal(a, b):  # both solvers leave a few hundredths of a pixel at the borders
        return np.zeros((*a.shape[:2], 2), np.float32)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
    flows, weights = [], []
    for c in range(3):
        ac, bc = np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c])
        flows.append(_farneback(ac, bc))
        w = cv2.cornerMinEigenVal(ac, 5, 3) + cv2.cornerMinEigenVal(bc, 5, 3)
        weights.append(cv2.GaussianBlur(w, (0, 0), 3.0))
    flows_arr, weights_arr = np.stack(flows), np.stack(weights)[..., None]  # (3, H, W, 2), (3, H, W, 1)
    return ((flows_arr * weights_arr).sum(0) / (weights_arr.sum(0) + 1e-12)).astype(np.float32)


def video_flow(frames, step: int = 1, backward: bool = False, method: str = "farneback") -> np.ndarray:
    """Flows between frames ``step`` apart: ``(T - step, H, W, 2)``.

    Entry ``k`` is ``frames[k] -> frames[k + step]``, or ``frames[k + step] -> frames[k]`` with
    ``backward``.
    """
    frames = _as_video(frames)
    pairs = range(len(frames) - step)
    if backward:
        flows = [optical_flow(frames[k + step], frames[k], method) for k in pairs]
    else:
        flows = [optical_flow(frames[k], frames[k + step], method) for k in pairs]
    h, w = frames.shape[1:3]
    return np.stack(flows) if flows else np.zeros((0, h, w, 2), np.float32)


def warp(image, flow) -> tuple[np.ndarray, np.ndarray]:
    """Backward warp: ``out[y, x] = image[y + flow_y, x + flow_x]`` (bilinear), and the (H, W)
    bool mask of pixels whose source lies inside the image (outside ones repeat the border)."""
    flow = np.asarray(flow, dtype=np.float32)
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = gx + flow[..., 0], gy + flow[..., 1]
    out = cv2.remap(np.asarray(image), map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return out, valid


def occlusion_mask(forward, backward) -> np.ndarray:
    """(H, W) bool: pixels of frame t whose forward flow cannot be trusted.

    The test of Lai et al. 2018 (as in EvalCrafter's ``detect_occlusion``): the backward flow
    sampled where the forward flow lands must cancel it, ``|f + b'|^2 <= 0.01 (|f|^2 + |b'|^2)
    + 0.5``; and no motion boundary, ``|grad f|^2 <= 0.01 |f|^2 + 0.002``. Pixels whose forward
    flow leaves the frame are occluded too.
    """
    fw = np.asarray(forward, dtype=np.float32)
    bw_at_target, inside = warp(np.asarray(backward, dtype=np.float32), fw)
    fw_mag2 = (fw**2).sum(-1)
    inconsistent = ((fw + bw_at_target) ** 2).sum(-1) > 0.01 * (fw_mag2 + (bw_at_target**2).sum(-1)) + 0.5
    # forward differences as in Lai et al.'s compute_flow_gradients (last row/column: 0)
    du = np.zeros_like(fw)
    dv = np.zeros_like(fw)
    du[:, :-1] = fw[:, :-1] - fw[:, 1:]
    dv[:-1, :] = fw[:-1, :] - fw[1:, :]
    boundary = (du**2 + dv**2).sum(-1) > 0.01 * fw_mag2 + 0.002
    return inconsistent | boundary | ~inside


# ---- metrics ---------------------------------------------------------------------------------
def _top_fraction_mean(magnitude: np.ndarray, fraction: float) -> float:
    flat = np.sort(magnitude.ravel())[::-1]
    k = max(1, int(flat.size * fraction))
    return float(flat[:k].mean())


def dynamic_degree_cv(frames, fps: float = 8.0, flows=None, method: str = "farneback") -> dict:
    """VBench's dynamic-degree decision on OpenCV flow. Returns a dict:

    - ``dynamic``: True when at least ``count_needed`` frame pairs have a top-5% mean flow
      magnitude above ``threshold``;
    - ``scores``: that top-5% mean per pair (pixels), ``threshold`` (pixels), ``count_needed``.

    As in VBench: a clip above 8 fps is first subsampled to ~8 fps (every ``round(fps / 8)``-th
    frame); ``threshold = max(1, 8 / fps) * 6 * min(H, W) / 256``; ``count_needed = round(4 *
    T_sub / 16)``, here at least 1 (VBench's rule gives 0 for 2-frame clips, i.e. always moving).
    ``flows``: precomputed consecutive forward flows of ``frames`` (used when no subsampling).
    """
    frames = _as_video(frames)
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    interval = max(1, round(fps / 8.0))
    sub = frames[::interval]
    if flows is None or interval != 1:
        flows = video_flow(sub, method=method)
    h, w = frames.shape[1:3]
    threshold = max(1.0, 8.0 / fps) * DYNAMIC_THRESHOLD_PX_AT_256 * (min(h, w) / 256.0)
    count_needed = max(1, round(4 * (len(sub) / 16.0)))
    scores = [_top_fraction_mean(np.linalg.norm(f, axis=-1), DYNAMIC_TOP_FRACTION) for f in flows]
    moving = int(sum(s > threshold for s in scores))
    return {"dynamic": bool(scores) and moving >= count_needed, "scores": scores, "threshold": threshold,
            "count_needed": count_needed, "count": moving, "frame_interval": interval}


def mean_flow_magnitude(frames, flows=None, method: str = "farneback") -> float:
    """Mean flow magnitude in pixels per frame, over all pixels and consecutive pairs
    (EvalCrafter's flow score); 0.0 for a single frame."""
    frames = _as_video(frames)
    if flows is None:
        flows = video_flow(frames, method=method)
    if len(flows) == 0:
        return 0.0
    return float(np.mean([np.linalg.norm(f, axis=-1).mean() for f in flows]))


def interpolate_midframe(a, b, forward=None, backward=None, method: str = "farneback") -> np.ndarray:
    """The frame halfway between uint8 frames ``a`` and ``b``, by flow warping.

    Super SloMo's linear flow approximation at t = 1/2 (Jiang et al. 2018, eq. 4) without its
    refinement network: ``F_{t->0} = (-F_{0->1} + F_{1->0}) / 4``, ``F_{t->1} = (F_{0->1} -
    F_{1->0}) / 4``, and the mean of both warped frames. Returns float32 ``(H, W, 3)``.
    """
    f01 = optical_flow(a, b, method) if forward is None else forward
    f10 = optical_flow(b, a, method) if backward is None else backward
    to_a = 0.25 * (f10 - f01)
    to_b = 0.25 * (f01 - f10)
    warped_a, _ = warp(np.asarray(a, dtype=np.float32), to_a)
    warped_b, _ = warp(np.asarray(b, dtype=np.float32), to_b)
    return 0.5 * (warped_a + warped_b)


def motion_smoothness_cv(frames, method: str = "farneback") -> float | None:
    """VBench motion smoothness with a flow-warping interpolator instead of AMT.

    Every odd frame ``t`` with both neighbours is predicted from frames ``t-1`` and ``t+1``
    (``interpolate_midframe``); the score is ``(255 - mean_t mean |pred_t - frame_t|) / 255``.
    1.0: the motion is exactly what interpolation predicts (static, or constant-velocity);
    jitter, flicker and content that pops in or out lower it. None with fewer than 3 frames.
    """
    frames = _as_video(frames)
    errors = []
    for t in range(1, len(frames) - 1, 2):
        pred = interpolate_midframe(frames[t - 1], frames[t + 1], method=method)
        pred = np.clip(np.round(pred), 0, 255).astype(np.uint8)
        errors.append(float(np.mean(cv2.absdiff(pred, frames[t]))))
    if not errors:
        return None
    return (255.0 - float(np.mean(errors))) / 255.0


def warping_error(frames, flows=None, backward_flows=None, method: str = "farneback") -> float | None:
    """EvalCrafter / Lai et al. warping error (lower is better; 0 for a static clip).

    For each consecutive pair: warp frame ``t+1`` onto frame ``t`` with the forward flow, and
    take the mean of ``(I_t - warp(I_{t+1}))^2`` (RGB in [0, 1]) over the non-occluded pixels
    (``occlusion_mask``) and the 3 channels, i.e. ``sum / (3 * visible pixels)`` as EvalCrafter /
    Lai et al. do (their mask is stacked to 3 channels); then average over pairs. A uniform
    brightness step ``d`` on every channel scores ``d^2``. EvalCrafter halves the resolution
    before RAFT; here the frames are used as given. None for a single frame.
    """
    frames = _as_video(frames)
    if len(frames) < 2:
        return None
    if flows is None:
        flows = video_flow(frames, method=method)
    if backward_flows is None:
        backward_flows = video_flow(frames, backward=True, method=method)
    errors = []
    images = frames.astype(np.float32) / 255.0
    for t in range(len(frames) - 1):
        warped, _ = warp(images[t + 1], flows[t])
        keep = ~occlusion_mask(flows[t], backward_flows[t])
        n = int(keep.sum())
        sq = (images[t] - warped) ** 2  # (H, W, 3)
        errors.append(float(sq[keep].sum() / (n * sq.shape[-1])) if n else 0.0)  # mean over pixels x channels
    return float(np.mean(errors))
