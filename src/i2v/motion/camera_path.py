"""Camera paths: where the camera looks, keyframed over time (``--camera``).

On the command line a path is one string of ``TIME: MOVES`` keyframes separated by ``;``::

    --camera "1s: pan right 0.25; 1.5s: zoom in 1.5"
    --camera "0.5s: tilt up 0.1; 1s: pan -0.2 tilt 0"

A keyframe says where the camera is at that time, relative to the first frame (which is the input
image): ``pan`` is the camera's sideways travel as a fraction of the frame's width (positive: right),
``tilt`` its vertical travel as a fraction of the height (positive: up), ``zoom`` the magnification
(1: none; above 1: in). Directions may be words (``pan left 0.2`` is ``pan -0.2``; ``zoom out 2`` is
``zoom 0.5``; a word takes a number without a sign). What a keyframe leaves out keeps its value from the keyframe before; the camera
moves linearly between keyframes (zoom geometrically) and holds after the last. In the API a path
may also be a list of ``{"time": 1.0, "pan": 0.25}`` dicts, or that list as JSON text.

``resolve_camera_path`` checks a path against the video's length before any weights load and
returns its canonical text (what the output's metadata records); ``content_path`` turns it into
the per-frame motion of the picture that ``models.latent_warp.camera_flow`` warps by.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidRequestError

AXES = ("pan", "tilt", "zoom")
ZOOM_RANGE = (0.25, 4.0)  # beyond these the picture is a few pixels, or mostly invented border
TRAVEL_LIMIT = 2.0  # frames of travel, sideways or up and down
# a keyframe's "pan left 0.2" / "zoom 1.5" / "tilt -0.1"
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"  # no exponent: the canonical text never writes one
_MOVE = re.compile(r"(pan|tilt|zoom)\s*(left|right|up|down|in|out)?\s*(" + NUMBER + ")", re.I)
_KEYFRAME = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*:(.*)$", re.DOTALL)
_WORDS = {"pan": {"left": -1, "right": 1}, "tilt": {"up": 1, "down": -1}, "zoom": {"in": 1, "out": -1}}


@dataclass(frozen=True)
class CameraKeyframe:
    """Where the camera is at ``time`` seconds; None: as at the keyframe before."""

    time: float
    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None


def format_number(value: float) -> str:
    """A number as the canonical texts write it: positional, at most 6 decimals (``parse_*`` reads it)."""
    return np.format_float_positional(value, precision=6, unique=True, trim="-")


def number(value, what: str) -> float:
    """A finite float from a user's number (not a bool, a string or None), or an InvalidRequestError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{what} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise InvalidRequestError(f"{what} must be a finite number, got {value!r}")
    return value


def load_json(text: str, what: str):
    """``json.loads`` with every failure (bad syntax, numbers too long, nesting too deep) as an
    InvalidRequestError naming ``what``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidRequestError(f"{what}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise InvalidRequestError(f"{what}: cannot read the JSON ({e})") from None


def parse_camera_text(text: str) -> list[CameraKeyframe]:
    """``"1s: pan right 0.25; 1.5s: zoom 1.5"`` (or a JSON list) -> keyframes, unchecked."""
    if text.lstrip().startswith("["):
        return _keyframes_from_list(load_json(text, "camera path"))
    keyframes = []
    for part in filter(str.strip, text.split(";")):
        match = _KEYFRAME.match(part)
        if match is None:
            raise InvalidRequestError(f"camera path: {part.strip()!r} does not start with a time (write keyframes as "
                                      "'1s: pan right 0.25; 1.5s: zoom in 1.5')")
        body, values = match.group(2), {}
        for axis, word, digits in _MOVE.findall(body):
            axis, value = axis.lower(), float(digits)
            if axis in values:
                raise InvalidRequestError(f"camera path: {axis} is given twice at {match.group(1)}s")
            if word:
                sign = _WORDS[axis].get(word.lower())
                if sign is None:
                    raise InvalidRequestError(f"camera path: {axis} goes {' or '.join(_WORDS[axis])}, not {word!r}")
                if digits[0] in "+-" or (axis == "zoom" and value <= 1 and value != 0):
                    raise InvalidRequestError(f"camera path: '{axis} {word} {digits}' says the direction twice; write "
                                              f"{'a factor above 1' if axis == 'zoom' else 'the amount without a sign'}")
                value = (value if sign > 0 else 1 / value if value else math.inf) if axis == "zoom" else sign * value
            values[axis] = value
        leftover = _MOVE.sub("", body).strip(" ,")
        if leftover or not values:
            raise InvalidRequestError(f"camera path: cannot read {body.strip()!r} at {match.group(1)}s; a keyframe is "
                                      "pan / tilt / zoom and a number, e.g. 'pan left 0.2 zoom 1.3'")
        keyframes.append(CameraKeyframe(float(match.group(1)), **values))
    if not keyframes:
        raise InvalidRequestError("camera path: no keyframes")
    return keyframes


def _keyframes_from_list(items) -> list[CameraKeyframe]:
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)) or not items:
        raise InvalidRequestError("camera path: a list of keyframes, e.g. [{\"time\": 1, \"pan\": 0.25}]")
    keyframes = []
    for item in items:
        if isinstance(item, CameraKeyframe):
            item = {key: value for key, value in vars(item).items() if value is not None}
        if not isinstance(item, dict) or "time" not in item or set(item) - {"time", *AXES} or len(item) < 2:
            raise InvalidRequestError(f"camera path: each keyframe is a time and some of {', '.join(AXES)}; got {item!r}")
        values = {key: number(value, f"camera path: {key}") for key, value in item.items()}
        keyframes.append(CameraKeyframe(values.pop("time"), **values))
    return keyframes


def format_camera_path(keyframes: Sequence[CameraKeyframe]) -> str:
    """The canonical text of a path (what ``parse_camera_text`` reads back)."""
    parts = []
    for k in keyframes:
        moves = " ".join(f"{axis} {format_number(getattr(k, axis))}" for axis in AXES if getattr(k, axis) is not None)
        parts.append(f"{format_number(k.time)}s: {moves}")
    return "; ".join(parts)


def resolve_camera_path(path, num_frames: int, fps: float) -> tuple[str, tuple[CameraKeyframe, ...]]:
    """A request's camera path (text, or a list) -> (text to record, keyframes), checked against the video.

    Refuses: negative times, times that do not rise or fall after the video's end, a keyframe at 0s that
    moves the camera (the first frame is the input image), zooms outside ``ZOOM_RANGE``, travel beyond
    ``TRAVEL_LIMIT`` frames. The keyframes returned are the recorded text's, read back and checked
    again: what runs is what the metadata says, and running that again is the same run."""
    keyframes = parse_camera_text(path) if isinstance(path, str) else _keyframes_from_list(path)
    _check_keyframes(keyframes, num_frames, fps)
    text = format_camera_path(keyframes)
    keyframes = parse_camera_text(text)
    _check_keyframes(keyframes, num_frames, fps)
    return text, tuple(keyframes)


def _check_keyframes(keyframes: Sequence[CameraKeyframe], num_frames: int, fps: float) -> None:
    duration = (num_frames - 1) / fps
    for k in keyframes:
        values = [k.time] + [v for v in (k.pan, k.tilt, k.zoom) if v is not None]
        if not all(math.isfinite(v) for v in values):
            raise InvalidRequestError(f"camera path: the keyframe at {k.time:g}s has a value that is not a finite number")
        if k.zoom is not None and not ZOOM_RANGE[0] <= k.zoom <= ZOOM_RANGE[1]:
            raise InvalidRequestError(f"camera path: zoom {k.zoom:g} at {k.time:g}s is outside {ZOOM_RANGE[0]:g} to "
                                      f"{ZOOM_RANGE[1]:g}")
        for axis in ("pan", "tilt"):
            value = getattr(k, axis)
            if value is not None and abs(value) > TRAVEL_LIMIT:
                raise InvalidRequestError(f"camera path: {axis} {value:g} at {k.time:g}s is more than "
                                          f"{TRAVEL_LIMIT:g} frames of travel")
    if keyframes[0].time < 0:
        raise InvalidRequestError(f"camera path: the keyframe at {keyframes[0].time:g}s is before the video starts")
    for before, after in zip(keyframes, keyframes[1:]):
        if after.time <= before.time:
            raise InvalidRequestError(f"camera path: times must rise; {after.time:g}s comes after {before.time:g}s")
    first = keyframes[0]
    if first.time == 0 and (first.pan or first.tilt or (first.zoom is not None and first.zoom != 1)):
        raise InvalidRequestError("camera path: the first frame is the input image, so the camera at 0s is at pan 0, "
                                  "tilt 0, zoom 1; give the moves at later times")
    if keyframes[-1].time > duration + 1e-9:
        raise InvalidRequestError(f"camera path: the keyframe at {keyframes[-1].time:g}s is after the video ends "
                                  f"({num_frames} frames at {fps:g} fps end at {duration:g}s); ask for more frames "
                                  "or move it earlier")


def camera_values(keyframes: Sequence[CameraKeyframe], num_frames: int, fps: float) -> np.ndarray:
    """(T, 3) per frame (pan, tilt, zoom): (0, 0, 1) at frame 0; each keyframe's values, an axis it
    leaves out as at the keyframe before; linear between keyframes (zoom in log space), held after
    the last."""
    marks, rows, current = [0.0], [(0.0, 0.0, 0.0)], [0.0, 0.0, 1.0]
    for k in keyframes:
        current = [current[i] if getattr(k, axis) is None else getattr(k, axis) for i, axis in enumerate(AXES)]
        if k.time > 0:
            marks.append(k.time * fps)
            rows.append((current[0], current[1], math.log(current[2])))
    frames = np.arange(num_frames, dtype=np.float64)
    values = np.stack([np.interp(frames, marks, column) for column in zip(*rows)], axis=1)
    values[:, 2] = np.exp(values[:, 2])
    return values


def content_path(keyframes: Sequence[CameraKeyframe], num_frames: int, fps: float, height: int,
                 width: int) -> np.ndarray:
    """(T, 3) per frame (scale, dx, dy): the picture's motion in output pixels, in the convention of
    ``models.latent_warp.camera_flow`` (a point at p in frame 0 is at ``scale * (p - c) + c + (dx, dy)``).
    The camera turning right slides the picture left; tilting up slides it down."""
    pan, tilt, zoom = camera_values(keyframes, num_frames, fps).T
    return np.stack([zoom, -zoom * pan * width, zoom * tilt * height], axis=1)


STILL_BELOW = 0.02  # travel (fraction of the frame) or zoom change below which a stretch is still


def segment_classes(keyframes: Sequence[CameraKeyframe], num_frames: int, fps: float) -> list[tuple[int, int, str]]:
    """Each stretch between keyframes (frame 0 to the first, then keyframe to keyframe) as (first
    frame, last frame, class): the dominant move in the names of ``world.photos.camera``
    (``pan_left`` ... ``zoom_out``, ``static``)."""
    values = camera_values(keyframes, num_frames, fps)
    marks = sorted({0, *(min(num_frames - 1, round(k.time * fps)) for k in keyframes)})
    out = []
    for a, b in zip(marks, marks[1:]):
        d_pan, d_tilt = values[b, 0] - values[a, 0], values[b, 1] - values[a, 1]
        d_zoom = values[b, 2] / values[a, 2] - 1
        size, name = max((abs(d_pan), "pan_right" if d_pan > 0 else "pan_left"),
                         (abs(d_tilt), "pan_up" if d_tilt > 0 else "pan_down"),
                         (abs(d_zoom), "zoom_in" if d_zoom > 0 else "zoom_out"))
        out.append((a, b, name if size >= STILL_BELOW else "static"))
    return out
