"""Trajectories: the path an object in the first frame takes (``--trajectory``).

On the command line, one path per object, separated by ``;``: a name, then points ``x,y`` in
normalised coordinates of the frame (0,0 the top-left corner, 1,1 the bottom-right) joined by ``->``::

    --trajectory "red ball: 0.3,0.5 -> 0.7,0.5; the boat: 0.2,0.8 -> 0.2,0.6"
    --trajectory "red ball: 0s 0.3,0.5 -> 1s 0.7,0.5 -> 2s 0.7,0.2"
    --trajectory "red ball: 0.3,0.5 -> 0.5,0.5 x2"     # twice its size at the end


The first point is where the object is in the first frame (the input image): the object is the
region around it (``object_region``). Points without times are spread evenly over the video;
with times (seconds), the object moves linearly between them and stays after the last. A point may
end with ``xS``: the object's size there, a factor of its size in the first frame (0.25 to 4; it
carries to later points, and changes geometrically in between). The name is a label (it names the
object in messages and the output's metadata). In the API a trajectory may also be a dict
``{"red ball": [[0.3, 0.5], [0.7, 0.5]]}`` (points ``[x, y]``, ``[seconds, x, y]``, or
``[seconds or null, x, y, size]``), or that dict as JSON text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from ..errors import InvalidRequestError
from .camera_path import NUMBER, format_number, load_json, number

MAX_OBJECTS = 8
# the region grown from an object's first point: pixels within COLOUR_TOLERANCE of the point's colour
# (per channel, 0-255), connected to it, within REGION_RADIUS of the frame's shorter side; a region
# smaller than a few pixels (the point on an edge, or texture) falls back to a disc of FALLBACK_RADIUS
COLOUR_TOLERANCE = 24
REGION_RADIUS = 0.2
FALLBACK_RADIUS = 0.06
SIZE_RANGE = (0.25, 4.0)  # an object's size factor
_POINT = re.compile(r"^\s*(?:(" + NUMBER + r")\s*s\s+)?(" + NUMBER + r")\s*,\s*(" + NUMBER + r")"
                    r"(?:\s+x\s*(" + NUMBER + r"))?\s*$")


@dataclass(frozen=True)
class Trajectory:
    """One object's path: ``points`` of (seconds or None, x, y), x and y in [0, 1]."""

    name: str
    points: tuple[tuple[float | None, float, float], ...]
    # the size factor given at each point (None: carried from the point before), or None: no sizes at all
    sizes: tuple[float | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.sizes is not None and len(self.sizes) != len(self.points):
            raise InvalidRequestError(f"trajectory: {self.name!r} has {len(self.points)} points and "
                                      f"{len(self.sizes)} sizes")

    @property
    def point_sizes(self) -> tuple[float | None, ...]:
        """The size given at each point, None where none is."""
        return self.sizes or (None,) * len(self.points)

    def _marks(self, num_frames: int, fps: float) -> np.ndarray:
        if self.points[0][0] is None:  # spread evenly, first at frame 0 and last at the last frame
            return np.linspace(0, num_frames - 1, len(self.points))
        return np.array([t * fps for t, _, _ in self.points])

    def positions(self, num_frames: int, fps: float) -> np.ndarray:
        """(T, 2) the object's (x, y) in each frame, normalised."""
        marks, frames = self._marks(num_frames, fps), np.arange(num_frames, dtype=np.float64)
        xs = [p[1] for p in self.points]
        ys = [p[2] for p in self.points]
        return np.stack([np.interp(frames, marks, xs), np.interp(frames, marks, ys)], axis=1)

    def scales(self, num_frames: int, fps: float) -> np.ndarray:
        """(T,) the object's size in each frame, a factor of its size in the first (geometric in between)."""
        given, size = [], 1.0
        for s in self.point_sizes:
            size = size if s is None else s
            given.append(math.log(size))
        marks, frames = self._marks(num_frames, fps), np.arange(num_frames, dtype=np.float64)
        return np.exp(np.interp(frames, marks, given))


def parse_trajectory_text(text: str) -> list[Trajectory]:
    """``"red ball: 0.3,0.5 -> 0.7,0.5; ..."`` (or JSON) -> trajectories, unchecked."""
    if text.lstrip().startswith(("{", "[")):
        return trajectories_from_data(load_json(text, "trajectory"))
    out = []
    for i, part in enumerate(filter(str.strip, text.split(";"))):
        name, _, body = part.rpartition(":")  # no ":": a path without a name
        points, sizes = [], []
        for raw in body.split("->"):
            match = _POINT.match(raw)
            if match is None:
                raise InvalidRequestError(f"trajectory: cannot read the point {raw.strip()!r}; write points as "
                                          "'x,y' or '1.5s x,y' (with ' x2' for twice the size) joined by '->', "
                                          "e.g. 'red ball: 0.3,0.5 -> 0.7,0.5'")
            t = None if match.group(1) is None else float(match.group(1))
            points.append((t, float(match.group(2)), float(match.group(3))))
            sizes.append(None if match.group(4) is None else float(match.group(4)))
        out.append(Trajectory(name.strip() or f"object {i + 1}", tuple(points), _sizes(sizes)))
    if not out:
        raise InvalidRequestError("trajectory: no paths")
    return out


def trajectories_from_data(data) -> list[Trajectory]:
    """``{"name": [[x, y], ...]}`` or ``[{"name": ..., "points": [...]}, ...]`` -> trajectories, unchecked."""
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and all(
            isinstance(d, Trajectory) or (isinstance(d, Mapping) and "points" in d) for d in data):
        items = [(d.name, [(*p, s) for p, s in zip(d.points, d.point_sizes)])
                 if isinstance(d, Trajectory) else (d.get("name", ""), d["points"]) for d in data]
    else:
        raise InvalidRequestError('trajectory: a dict {"name": [[x, y], ...]} or a list of {"name", "points"}; '
                                  f"got {type(data).__name__}")
    out = []
    for i, (name, points) in enumerate(items):
        if not isinstance(points, Sequence) or isinstance(points, (str, bytes)) or not points:
            raise InvalidRequestError(f"trajectory: {name!r} needs a list of points, got {points!r}")
        parsed, sizes = [], []
        for p in points:
            if not isinstance(p, Sequence) or isinstance(p, (str, bytes)) or len(p) not in (2, 3, 4):
                raise InvalidRequestError(f"trajectory: {name!r}: a point is [x, y], [seconds, x, y] or "
                                          f"[seconds or null, x, y, size], got {p!r}")
            p = list(p) if len(p) == 4 else [None, *p, None] if len(p) == 2 else [*p, None]
            what = f"trajectory: {name!r}: a point's coordinate, time or size"
            time, x, y, size = (None if v is None and k in (0, 3) else number(v, what) for k, v in enumerate(p))
            parsed.append((time, x, y))
            sizes.append(size)
        out.append(Trajectory(str(name).strip() or f"object {i + 1}", tuple(parsed), _sizes(sizes)))
    return out


def _sizes(sizes: list[float | None]) -> tuple[float | None, ...] | None:
    return None if all(s is None for s in sizes) else tuple(sizes)


def format_trajectories(trajectories: Sequence[Trajectory]) -> str:
    """The canonical text of trajectories (what ``parse_trajectory_text`` reads back)."""
    def point(p, size):
        time = f"{format_number(p[0])}s " if p[0] is not None else ""
        return (time + f"{format_number(p[1])},{format_number(p[2])}"
                + (f" x{format_number(size)}" if size is not None else ""))

    return "; ".join(f"{t.name}: " + " -> ".join(point(p, s) for p, s in zip(t.points, t.point_sizes))
                     for t in trajectories)


def resolve_trajectories(value, num_frames: int, fps: float) -> tuple[str, tuple[Trajectory, ...]]:
    """A request's trajectory (text, dict or list) -> (text to record, trajectories), checked: points
    inside the frame, at least two per object, times on all points or none, starting at 0s, rising,
    within the video."""
    trajectories = parse_trajectory_text(value) if isinstance(value, str) else trajectories_from_data(value)
    _check_trajectories(trajectories, num_frames, fps)
    text = format_trajectories(trajectories)  # read back and checked again: what runs is what is recorded
    trajectories = parse_trajectory_text(text)
    _check_trajectories(trajectories, num_frames, fps)
    return text, tuple(trajectories)


def _check_trajectories(trajectories: Sequence[Trajectory], num_frames: int, fps: float) -> None:
    if not trajectories:
        raise InvalidRequestError("trajectory: no paths")
    if len(trajectories) > MAX_OBJECTS:
        raise InvalidRequestError(f"trajectory: at most {MAX_OBJECTS} objects, got {len(trajectories)}")
    names = [t.name for t in trajectories]
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"trajectory: two paths are named {next(n for n in names if names.count(n) > 1)!r}")
    duration = (num_frames - 1) / fps
    for t in trajectories:
        if ";" in t.name or "->" in t.name or t.name.startswith(("{", "[")):
            raise InvalidRequestError(f"trajectory: a name cannot hold ';' or '->' or start with '{{' or '[': {t.name!r}")
        if len(t.points) < 2:
            raise InvalidRequestError(f"trajectory: {t.name!r} needs at least two points (where it is, where it goes)")
        for time, x, y in t.points:
            if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
                raise InvalidRequestError(f"trajectory: {t.name!r}: the point {x:g},{y:g} is outside the frame "
                                          "(coordinates are fractions of the width and height, 0 to 1)")
        for size in t.point_sizes:
            if size is not None and not (math.isfinite(size) and SIZE_RANGE[0] <= size <= SIZE_RANGE[1]):
                raise InvalidRequestError(f"trajectory: {t.name!r}: a size of x{size:g}; sizes are factors of the "
                                          f"object's size in the first frame, {SIZE_RANGE[0]:g} to {SIZE_RANGE[1]:g}")
        if t.sizes and t.sizes[0] not in (None, 1.0):
            raise InvalidRequestError(f"trajectory: {t.name!r}: its first point has size x{t.sizes[0]:g}; the first "
                                      "point is the object as the image shows it (x1)")
        times = [p[0] for p in t.points]
        if any(v is None for v in times) and any(v is not None for v in times):
            raise InvalidRequestError(f"trajectory: {t.name!r}: give a time on every point or on none")
        if times[0] is not None:
            if times[0] != 0:
                raise InvalidRequestError(f"trajectory: {t.name!r} starts at {times[0]:g}s; its first point is where "
                                          "the object is in the first frame (0s)")
            for a, b in zip(times, times[1:]):
                if not math.isfinite(b) or b <= a:
                    raise InvalidRequestError(f"trajectory: {t.name!r}: times must rise; {b:g}s comes after {a:g}s")
            if times[-1] > duration + 1e-9:
                raise InvalidRequestError(f"trajectory: {t.name!r} has a point at {times[-1]:g}s, after the video ends "
                                          f"({num_frames} frames at {fps:g} fps end at {duration:g}s)")


def object_region(image: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """(H, W) bool: the object under ``point`` (normalised x, y) in an (H, W, 3) uint8 frame: the
    connected pixels of about its colour near it (a flood fill), or a small disc where that finds
    only a sliver."""
    h, w = image.shape[:2]
    x, y = min(int(point[0] * w), w - 1), min(int(point[1] * h), h - 1)
    radius = REGION_RADIUS * min(h, w)
    yy, xx = np.mgrid[:h, :w]
    near = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    # flood fill on a copy where everything beyond the radius is a wall the fill cannot cross
    mask = np.zeros((h + 2, w + 2), np.uint8)
    mask[1:-1, 1:-1][~near] = 1
    tol = (COLOUR_TOLERANCE,) * 3
    cv2.floodFill(np.array(image, dtype=np.uint8, order="C"), mask, (x, y), 0, tol, tol,
                  4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
    region = mask[1:-1, 1:-1] == 255
    if region.sum() < max(9, 0.002 * h * w):
        region = (xx - x) ** 2 + (yy - y) ** 2 <= (FALLBACK_RADIUS * min(h, w)) ** 2
    # highlights and specks inside the object go with it (closed, holes filled), and so does its anti-aliased rim
    kernel = np.ones((3, 3), np.uint8)
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, kernel, iterations=2).astype(bool)
    region = ndimage.binary_fill_holes(region)
    return cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
