"""Camera clips from one photograph: a crop window moving over it, so every revealed pixel is real.

Motion names and signs are the shapes world's (``scenes.CAMERA_PANS`` / ``CAMERA_ZOOMS``), so one
caption machinery serves both worlds:

- ``pan_left`` / ``pan_right``: the camera turns left / right, so the content slides RIGHT / LEFT
  in the frame. ``pan_up`` / ``pan_down`` (a tilt): the camera turns up / down, so the content
  slides DOWN / UP. ``amount`` is the travel over the clip as a fraction of the frame's extent
  along the motion (its width for pans, its height for tilts; the same thing on square frames,
  where it matches ``Scene.amount``), drawn from ``scenes.PAN_RANGE``.
- ``zoom_in`` (push in: the window shrinks) / ``zoom_out`` (pull back: the window grows) about a
  fixed centre; ``amount`` is the final zoom factor, geometric in time like ``Scene.camera``:
  >1 for zoom in (``scenes.ZOOM_RANGE``), its inverse for zoom out.
- ``static``: the camera holds still (the shapes world's name for "nothing moves").

Coordinates: photo pixels with the origin at the top-left corner of the photo (pixel (i, j) covers
[j, j+1) x [i, i+1)); x grows right, y grows down. The window keeps the output's aspect ratio, so
the photo is never stretched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..scenes import CAMERA_PANS, CAMERA_ZOOMS, NUM_FRAMES, PAN_RANGE, ZOOM_RANGE

STATIC = "static"
CAMERA_MOTIONS: tuple[str, ...] = (*CAMERA_PANS, *CAMERA_ZOOMS, STATIC)
# Windows narrower than this fraction of the largest that fits are not drawn: a tiny window
# would magnify a few photo pixels into a blurry clip.
MIN_WINDOW_FRACTION = 0.6


@dataclass(frozen=True)
class CameraMove:
    """One camera motion over a photo: its kind, amount and the window at the first frame.

    ``centre`` and ``width`` are in photo pixels; the window's height is ``width * aspect`` with
    ``aspect = h / w`` of the output ``size``.
    """

    kind: str  # one of CAMERA_MOTIONS
    amount: float  # pan travel (fraction of the frame), final zoom factor, or 0 for static
    centre: tuple[float, float]  # (x, y) of the window at frame 0
    width: float  # window width at frame 0
    size: tuple[int, int]  # output (h, w) the move was planned for

    def __post_init__(self):
        if self.kind not in CAMERA_MOTIONS:
            raise ValueError(f"unknown camera motion {self.kind!r}; expected one of {CAMERA_MOTIONS}")
        if self.kind in CAMERA_ZOOMS and (self.amount <= 0 or (self.amount > 1) != (self.kind == "zoom_in")):
            wanted = "> 1" if self.kind == "zoom_in" else "in (0, 1)"
            raise ValueError(f"{self.kind} needs a final zoom factor {wanted}, got {self.amount}")

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]

    def windows(self, num_frames: int = NUM_FRAMES) -> np.ndarray:
        """(T, 4) window per frame: centre x, centre y, width, height in photo pixels."""
        s = np.linspace(0.0, 1.0, num_frames)  # fraction of the motion done
        cx = np.full(num_frames, float(self.centre[0]))
        cy = np.full(num_frames, float(self.centre[1]))
        width = np.full(num_frames, float(self.width))
        if self.kind in CAMERA_PANS:
            dx, dy = CAMERA_PANS[self.kind]  # where the camera looks: (-1, 0) is "left"
            cx += s * dx * self.amount * self.width
            cy += s * dy * self.amount * self.width * self.aspect
        elif self.kind in CAMERA_ZOOMS:
            width = width / self.amount**s  # zooming in by z shows 1/z of the width
        return np.stack([cx, cy, width, width * self.aspect], axis=1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CameraMove:
        return cls(data["kind"], float(data["amount"]), tuple(data["centre"]), float(data["width"]),
                   tuple(data["size"]))


def camera_path(move: CameraMove, num_frames: int = NUM_FRAMES, size: tuple[int, int] | None = None) -> np.ndarray:
    """(T, 3) ground truth: per frame (scale, dx, dy) of the content's motion in output pixels.

    A content point at output position ``p`` (x, y) in frame 0 is at
    ``scale * (p - c) + c + (dx, dy)`` in frame t, with ``c = (w / 2, h / 2)`` the frame centre.
    Pans: scale 1, ``dx > 0`` for ``pan_left``. Zooms: dx = dy = 0, scale grows to ``amount``.
    """
    h, w = size or move.size
    win = move.windows(num_frames)
    scale_out = w / win[:, 2]  # output pixels per photo pixel, (T,)
    scale = scale_out / scale_out[0]
    dx = (win[0, 0] - win[:, 0]) * scale_out
    dy = (win[0, 1] - win[:, 1]) * (h / win[:, 3])
    return np.stack([scale, dx, dy], axis=1)


def window_inside(move: CameraMove, photo_shape: tuple[int, ...], num_frames: int = NUM_FRAMES,
                  tol: float = 1e-6) -> bool:
    """Whether every frame's window lies inside the photo."""
    height, width = photo_shape[:2]
    win = move.windows(num_frames)
    x0, x1 = win[:, 0] - win[:, 2] / 2, win[:, 0] + win[:, 2] / 2
    y0, y1 = win[:, 1] - win[:, 3] / 2, win[:, 1] + win[:, 3] / 2
    return bool((x0 >= -tol).all() and (y0 >= -tol).all() and (x1 <= width + tol).all() and (y1 <= height + tol).all())


# ---- sampling ----------------------------------------------------------------------------------
def sample_camera_move(rng: np.random.Generator, photo_shape: tuple[int, ...], size: tuple[int, int],
                       kind: str | None = None) -> CameraMove:
    """A random camera motion (or the given ``kind``) whose window stays inside the photo throughout."""
    height, width = photo_shape[:2]
    aspect = size[0] / size[1]
    if kind is None:
        kind = CAMERA_MOTIONS[int(rng.integers(len(CAMERA_MOTIONS)))]
    if kind not in CAMERA_MOTIONS:
        raise ValueError(f"unknown camera motion {kind!r}; expected one of {CAMERA_MOTIONS}")

    # 1. Amount, and how much larger than one window the whole path is (x and y)
    amount, span_x, span_y = 0.0, 1.0, 1.0
    if kind in CAMERA_PANS:
        amount = float(rng.uniform(*PAN_RANGE))
        dx, dy = CAMERA_PANS[kind]
        span_x, span_y = 1 + abs(dx) * amount, 1 + abs(dy) * amount
    elif kind in CAMERA_ZOOMS:
        zoom = float(rng.uniform(*ZOOM_RANGE))
        amount = zoom if kind == "zoom_in" else 1 / zoom
        span_x = span_y = zoom  # the widest window is zoom times the narrowest

    # 2. The widest window that fits, then a random width between MIN_WINDOW_FRACTION of it and it
    fit = min(width / span_x, height / (span_y * aspect))  # width of the path's smallest window
    smallest = fit * float(rng.uniform(MIN_WINDOW_FRACTION, 1.0))
    # the window at frame 0: the smallest one except for a zoom in (it starts wide) and a pull back
    # (it starts narrow, which is the smallest)
    start_width = smallest * (span_x if kind == "zoom_in" else 1.0)

    # 3. A centre at frame 0 that keeps the whole path inside
    if kind in CAMERA_PANS:
        dx, dy = CAMERA_PANS[kind]
        travel_x, travel_y = dx * amount * smallest, dy * amount * smallest * aspect
        half_x, half_y = smallest / 2, smallest * aspect / 2
        lo_x, hi_x = half_x + max(0.0, -travel_x), width - half_x - max(0.0, travel_x)
        lo_y, hi_y = half_y + max(0.0, -travel_y), height - half_y - max(0.0, travel_y)
    else:
        widest = smallest * span_x
        lo_x, hi_x = widest / 2, width - widest / 2
        lo_y, hi_y = widest * aspect / 2, height - widest * aspect / 2
    centre = (float(rng.uniform(lo_x, max(lo_x, hi_x))), float(rng.uniform(lo_y, max(lo_y, hi_y))))
    return CameraMove(kind, amount, centre, float(start_width), (int(size[0]), int(size[1])))


# ---- rendering ---------------------------------------------------------------------------------
def _render_window(photo: np.ndarray, cx: float, cy: float, ww: float, wh: float, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 view of the window (centre cx, cy; size ww x wh photo pixels).

    Shrinking a window by a large factor with bilinear sampling alone would alias, so a window
    larger than the output is first reduced with INTER_AREA (a box filter) to about the output's
    scale; the exact sub-pixel placement is then one bilinear affine warp.
    """
    sx, sy = w / ww, h / wh  # output pixels per photo pixel
    x0, y0 = cx - ww / 2, cy - wh / 2  # window's top-left corner, photo pixels
    source, ox, oy, ax, ay = photo, 0.0, 0.0, 1.0, 1.0
    if sx < 1 or sy < 1:
        # an integer crop around the window with a margin of ~2 output pixels, then INTER_AREA
        margin = int(np.ceil(2 / min(sx, sy)))
        left, top = max(0, int(np.floor(x0)) - margin), max(0, int(np.floor(y0)) - margin)
        right = min(photo.shape[1], int(np.ceil(x0 + ww)) + margin)
        bottom = min(photo.shape[0], int(np.ceil(y0 + wh)) + margin)
        crop = photo[top:bottom, left:right]
        tw, th = max(1, round(crop.shape[1] * min(sx, 1.0))), max(1, round(crop.shape[0] * min(sy, 1.0)))
        source = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA)
        ox, oy = left, top
        ax, ay = tw / crop.shape[1], th / crop.shape[0]  # the scale the resize really applied
    # output pixel j's centre (j + 0.5) / sx from the window's corner -> source pixel coordinate
    # (cv2 puts pixel centres at integers, hence the -0.5 on both sides)
    m = np.array([
        [ax / sx, 0.0, (x0 - ox + 0.5 / sx) * ax - 0.5],
        [0.0, ay / sy, (y0 - oy + 0.5 / sy) * ay - 0.5],
    ])
    return cv2.warpAffine(source, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def render_camera_clip(photo: np.ndarray, move: CameraMove, size: tuple[int, int] | None = None,
                       num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Render a camera move over an (H, W, 3) uint8 photo to (T, h, w, 3) uint8 frames."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be (H, W, 3) uint8, got {photo.shape} {photo.dtype}")
    h, w = size or move.size
    if abs(h / w - move.aspect) > 0.01 * move.aspect:
        raise ValueError(f"size {h}x{w} has another aspect than the move's window {move.size}: "
                         "the photo would be stretched; sample the move for this size")
    photo = np.ascontiguousarray(photo)
    frames = [_render_window(photo, cx, cy, ww, wh, h, w) for cx, cy, ww, wh in move.windows(num_frames)]
    return np.stack(frames)  # (T, h, w, 3)
