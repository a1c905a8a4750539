"""A named shape's move, read from the prompt and found in the first frame.

A warping denoiser plans one motion for the whole frame (``I2VPipeline.motion_plan``): camera moves
and still shots. An object moving over a photograph is a local motion it follows too weakly. For a
model that ships a prompt reader (``models.prompt_reader``, a ``reader`` folder), the run reads the
prompt (the motion, the object's colour and shape), finds that object in the first frame (connected
regions of the world's palette colour, the one whose outline best fits the shape) and moves it in a
straight line, or grows or shrinks it, as the world's objects do, the rest of the frame still: a
trajectory the denoiser holds, as ``--trajectory`` is held, recorded in the output's metadata
(``prompt_motion``). A prompt
that moves something else ("the dog runs left") holds the frame still: a still subject is a better
answer than a smeared one. Camera moves, still shots and a shape the frame does not show get no
plan: the model plans as before. A long video made in windows is planned once, from its first
frame and its prompt schedule (``plan_video``), so its shapes move on across the windows; there a
still shot holds the frame (every window is then made from the first frame), and a camera move in
any segment leaves every window to the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..prompt_schedule import PromptSegment
from ..world.reader_captions import OTHER
from ..world.scenes import COLOURS, FPS, NUM_FRAMES, OBJECT_DIRECTIONS, SCALE_RANGE, SHAPES, TRAVEL_RANGE
from .trajectory import MAX_OBJECTS, REGION_RADIUS, SIZE_RANGE, Trajectory, format_trajectories

# a pixel is of a palette colour within this distance (per channel, 0-255): anti-aliased rims and the
# autoencoder's round trip stay inside, a photo's muted tones outside
PALETTE_TOLERANCE = 32
# an object's area, as a share of the frame: the world's shapes are 0.5% to 5% of it at 128x128
MIN_AREA, MAX_AREA = 0.002, 0.12
# a region's widest box side over its narrowest, and its area over its convex hull's
MAX_ASPECT = 1.6
MIN_SOLIDITY = 0.85
TRAVEL = sum(TRAVEL_RANGE) / 2  # the world's mean move, in lengths of the frame's shorter side
CLIP_SECONDS = (NUM_FRAMES - 1) / FPS  # a world clip, over which its objects travel and grow
GROWTH = float(np.sqrt(SCALE_RANGE[0] * SCALE_RANGE[1]))  # the world's mean size change (its inverse: shrink)
HOLD_STILL = "still (the prompt names no camera move and no shape the model can find)"
UNSURE_WAY = "still (the reader cannot tell which way the prompt moves the shape)"
HELD = (HOLD_STILL, UNSURE_WAY)  # what a plan that moves nothing records
# the reader's least probability that the prompt names one of the world's shapes (or "the red one")
MIN_CONFIDENCE = 0.5
# an object is a candidate where its colour or its shape is read with at least this probability
MIN_MATCH = 0.3
SMOOTHING = 0.05
STILL_MOTIONS = ("still", "static")  # the world's still object and still camera
PREFER_PREVIOUS = 2.0  # how much likelier a schedule's later segment names the object the one before moved
# the least length of the reader's mean move direction (its directions' probabilities on unit vectors, over
# their sum) for a move to be planned: shorter, its readings point several ways (a word it has not learnt)
# and the shape holds (chosen on the reader's own held-out prompts, counting a move the right way +1, a wrong
# one -1 and a hold 0: docs/experiments.md)
MIN_AGREEMENT = 0.6
SLIDE = math.sin(math.radians(22.5))  # a part of a move's way under this is minor: it never stops the move
MIN_MOVE = 0.02  # a later move going less far than this (a share of the frame, too short to see): an edge stops it


def load_reader(folder: Path):
    """The model folder's prompt reader (``reader/``, safetensors), or None where it has none."""
    return read_reader_folder(folder / "reader") if (folder / "reader" / "config.json").is_file() else None


def read_reader_folder(folder: Path):
    """A prompt reader saved in ``folder`` (safetensors, local files only), checked: a broken or foreign
    folder is a ``WeightsError`` naming it."""
    from ..errors import WeightsError
    from ..io.safetensors_header import weights_errors
    from ..models.prompt_reader import LAST_LAYER, PromptReader, readable_layers
    from ..world.reader_captions import MOTIONS

    with weights_errors(folder):
        try:
            reader = PromptReader.from_pretrained(folder, use_safetensors=True, local_files_only=True)
        except TypeError as exc:  # a config without the reader's fields
            raise WeightsError(f"{folder}: not a prompt reader's config ({exc})") from exc
    if not readable_layers(reader.config.layers or [LAST_LAYER]):
        raise WeightsError(f"{folder}: a prompt reader reads MiniLM's hidden layers 0-{LAST_LAYER}, rising to the "
                           f"last; this one reads {reader.config.layers}")
    if reader.config.text_dim != 384 or not set(reader.config.motions) <= set(MOTIONS):
        raise WeightsError(f"{folder}: a prompt reader reads MiniLM's 384-wide states and the world's "
                           f"motions; this one takes {reader.config.text_dim} and {list(reader.config.motions)[:4]}...")
    return reader.eval()


def moves_an_object(motion: str) -> bool:
    """Whether a motion (a key of ``reader_captions.MOTIONS``) moves, grows or shrinks an object."""
    return motion.startswith("move_") or motion in ("grow", "shrink")


def plans_object(motion: str, shape: str) -> bool:
    """Whether a read (motion, shape) asks a shape to move, grow or shrink: one of the world's shapes (or
    "the red one") named with one of those motions."""
    return moves_an_object(motion) and shape != "none"


@dataclass(frozen=True)
class FoundObject:
    colour: str
    shape: str  # the best-fitting shape of its outline
    centre: tuple[float, float]  # normalised (x, y)
    half_size: tuple[float, float]  # normalised half width and height of its bounding box
    area: float  # share of the frame


def find_objects(image: np.ndarray, colours: list[str] | None = None) -> list[FoundObject]:
    """The world's objects in an (H, W, 3) uint8 frame: connected regions of a palette colour of about
    an object's size and outline (compact and convex), each with the shape its outline has. A
    photograph's own dark or bright patches are ragged: they fail the outline; thin bridges to them are
    cut (an opening) before regions are counted."""
    h, w = image.shape[:2]
    pixels = image.astype(np.int16)
    kernel = np.ones((3, 3), np.uint8)
    found = []
    for name in colours or list(COLOURS):
        near = np.abs(pixels - np.array(COLOURS[name], np.int16)).max(-1) <= PALETTE_TOLERANCE
        near = cv2.morphologyEx(near.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(near, connectivity=8)
        for k in range(1, count):
            x, y, bw, bh, area = stats[k]
            if not MIN_AREA <= area / (h * w) <= MAX_AREA or max(bw, bh) > MAX_ASPECT * min(bw, bh):
                continue
            if np.hypot(bw, bh) / 2 > REGION_RADIUS * min(h, w):  # the trajectory's region could not hold all of it
                continue
            contours, _ = cv2.findContours(np.pad(labels[y:y + bh, x:x + bw] == k, 1).astype(np.uint8),
                                           cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            outline = max(contours, key=cv2.contourArea)
            if area < MIN_SOLIDITY * cv2.contourArea(cv2.convexHull(outline)):
                continue
            shape = outline_shape(outline, area / (bw * bh))
            found.append(FoundObject(name, shape, (float(centroids[k][0] / w), float(centroids[k][1] / h)),
                                     (bw / 2 / w, bh / 2 / h), float(area / (h * w))))
    return found


def outline_shape(outline: np.ndarray, fill: float) -> str:
    """The shape a region's outline (an OpenCV contour) is: its corners (a polygon within 8% of its
    perimeter) for three or four, else a circle; a four-cornered region filling under 0.85 of its box
    (a pixelated circle) is a circle."""
    corners = len(cv2.approxPolyDP(outline, 0.08 * cv2.arcLength(outline, True), True))
    if corners == 3:
        return "triangle"
    return "square" if corners == 4 and fill >= 0.85 else "circle"


def pick_object(found: list[FoundObject], colour: dict[str, float], shape: dict[str, float],
                prefer: FoundObject | None = None) -> FoundObject | None:
    """The object a prompt names, given the reader's probabilities of each colour (and ``none``) and shape
    (and ``any``, ``none``): the one most likely named, ``none`` and ``any`` spreading evenly over the
    colours and shapes, each attribute's probability floored at SMOOTHING (a word the reader has not seen,
    "emerald", can be read as a wrong colour with confidence: among the objects the frame shows, the shape
    still finds it). ``prefer``: the object a schedule's segment before moved, PREFER_PREVIOUS times as
    likely (a later segment most often goes on about it: "the golden pyramid" after "the yellow triangle",
    where the reader reads no colour in "golden" and a white triangle stands beside it). None: neither the
    colour nor the shape of any object the frame shows is read."""
    def attributes(o: FoundObject) -> tuple[float, float]:
        return (colour.get(o.colour, 0.0) + colour.get("none", 0.0) / len(COLOURS),
                shape.get(o.shape, 0.0) + shape.get("any", 0.0) / len(SHAPES))

    scored = []
    for i, o in enumerate(found):
        by_colour, by_shape = attributes(o)
        if max(by_colour, by_shape) >= MIN_MATCH:
            prior = PREFER_PREVIOUS if o == prefer else 1.0
            scored.append((prior * (by_colour + SMOOTHING) * (by_shape + SMOOTHING), o.area, i))
    return found[max(scored)[2]] if scored else None


def object_move(found: FoundObject, direction: str | tuple[float, float], height: int, width: int,
                travel: float = TRAVEL, room_share: float = 1.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """(start, end) of a straight move of ``found`` in ``direction`` (a key of OBJECT_DIRECTIONS, or a unit
    vector (dx, dy), y down) in a ``height x width`` frame: ``travel`` lengths of the shorter side (the
    world's mean), cut short along its line where the object would leave the frame: a move down and a
    little right that meets the bottom edge stops there rather than sliding along it (that would be
    another way). A minor part of the way (under SLIDE of it: the drift of a mean reading) never stops the
    move: "up" read with a hair of "right" still goes up beside the right edge. ``room_share``: the share of
    the room up to that edge it may take (a later move the same way keeps the rest)."""
    dx, dy = OBJECT_DIRECTIONS[direction] if isinstance(direction, str) else direction
    (x, y), (hw, hh) = found.centre, found.half_size
    side = min(height, width)  # travel in lengths of the shorter side, the same in pixels along x and y
    axes = [(x, travel * dx * side / width, hw, abs(dx) >= SLIDE),  # (start, step, half size, a major part)
            (y, travel * dy * side / height, hh, abs(dy) >= SLIDE)]

    def room(start: float, step: float, half: float) -> float:
        """How many ``step``s keep the object inside (0: none; never backwards; no step: inf)."""
        if step == 0:
            return math.inf
        edge = 1 - half - 0.01 if step > 0 else half + 0.01
        return float(max((edge - start) / step, 0.0))

    share = min(1.0, room_share * min([room(start, step, half) for start, step, half, major in axes if major]
                                      or [math.inf]))
    end = [start + step * (share if major else min(share, room(start, step, half)))
           for start, step, half, major in axes]
    return (x, y), (end[0], end[1])


def object_growth(found: FoundObject, motion: str, growth: float = GROWTH) -> float:
    """The size factor of a ``grow`` or ``shrink`` by ``growth`` (the world's mean), a growth cut short at
    the frame's edge."""
    if motion == "shrink":
        return 1 / growth
    (x, y), (hw, hh) = found.centre, found.half_size
    room = min((min(x, 1 - x) - 0.01) / hw, (min(y, 1 - y) - 0.01) / hh) if hw and hh else growth
    return float(np.clip(room, 1.0, growth))


def mean_direction(motions: dict[str, float]) -> tuple[float, float] | None:
    """The way a reading of a move points: the mean of the move directions' unit vectors (screen x right, y
    down), weighted by their probabilities (a reading split between "left" and "up_left" points between
    them), as a unit vector; None where that mean is shorter than MIN_AGREEMENT of their total probability
    (the directions read disagree)."""
    moves = {k[len("move_"):]: p for k, p in motions.items() if k.startswith("move_")}
    total = sum(moves.values())
    x = sum(p * OBJECT_DIRECTIONS[d][0] for d, p in moves.items())
    y = sum(p * OBJECT_DIRECTIONS[d][1] for d, p in moves.items())
    length = math.hypot(x, y)
    return (x / length, y / length) if total > 0 and length >= MIN_AGREEMENT * total else None


@dataclass(frozen=True)
class PromptMotion:
    """What the reader decided: named shapes' paths, or (none) to hold the frame still, for a prompt that
    moves a subject the model cannot move ("the dog runs left") or a shape it cannot tell which way."""

    trajectories: tuple[Trajectory, ...] = ()  # empty: hold still
    held: str = HOLD_STILL  # why, where it holds still

    @property
    def trajectory(self) -> Trajectory | None:
        """The one object's path (a single clip's plan moves one), None: hold still."""
        return self.trajectories[0] if self.trajectories else None

    @property
    def text(self) -> str:
        """As recorded in the output's metadata: the trajectories' text, or why it holds still (HELD)."""
        return format_trajectories(self.trajectories) if self.trajectories else self.held


@dataclass(frozen=True)
class Reading:
    """What the reader reads in a prompt: its motion (a key of ``reader_captions.MOTIONS``), and the
    probabilities of each colour and shape it names; for a move, which way (``mean_direction``; None: it
    cannot tell)."""

    motion: str
    colour: dict[str, float]
    shape: dict[str, float]
    direction: tuple[float, float] | None = None

    @property
    def planned(self) -> bool:
        """Whether the plan is decided here (an object's motion, or a subject the model cannot move),
        not by the model (camera moves, still shots)."""
        return moves_an_object(self.motion) or self.motion == OTHER

    def holds_still(self, previous) -> bool:
        """Whether it moves nothing the model can move: another subject, or "it" with nothing before."""
        return self.motion == OTHER or (not self.names_a_shape and previous is None)

    @property
    def unsure_way(self) -> bool:
        """A move whose way it cannot tell (``direction`` None): the shape holds."""
        return self.direction is None and self.motion.startswith("move_")

    @property
    def names_a_shape(self) -> bool:
        return 1 - self.shape.get("none", 0.0) >= MIN_CONFIDENCE

    def target(self, objects: list[FoundObject], previous: tuple[str, str] | None) -> FoundObject | None:
        """The object it names among ``objects``; "it" (no shape named): one of ``previous`` (colour, shape)."""
        if self.names_a_shape:
            return pick_object(objects, self.colour, self.shape)
        return pick_object(objects, {previous[0]: 1.0}, {previous[1]: 1.0})


def read_prompt(reader, text_encoder, prompt: str) -> Reading:
    read = reader.probabilities(*reader.encode(text_encoder, [prompt]))[0]
    motion = max(read["motion"], key=read["motion"].get)
    direction = mean_direction(read["motion"]) if motion.startswith("move_") else None
    return Reading(motion, read["colour"], read["shape"], direction)


def plan_from_prompt(reader, text_encoder, prompt: str, image: np.ndarray,
                     previous: tuple[str, str] | None = None) -> PromptMotion | None:
    """What the prompt asks of the frame (H, W, 3) uint8, where the model should not plan it itself: a named
    shape's straight move, grow or shrink (a two-point trajectory), or a still frame where the prompt moves
    something that is not one of the world's shapes (a still subject beats a smeared one). None: the
    model plans (camera moves, still shots, an empty prompt, or a named shape the frame does not show).
    ``previous`` (colour, shape): the object the window before moved, in a long video made in windows; a
    prompt that names no shape ("0s: the circle moves right; 6s: it moves up") then moves it on."""
    if not prompt.strip():
        return None
    read = read_prompt(reader, text_encoder, prompt)
    if not read.planned:
        return None
    if read.holds_still(previous):
        return PromptMotion()
    found = read.target(find_objects(image), previous)
    if found is None:
        return None
    name = f"{found.colour} {found.shape}"
    if read.motion in ("grow", "shrink"):
        return PromptMotion((Trajectory(name, ((None, *found.centre), (None, *found.centre)),
                                        (None, object_growth(found, read.motion))),))
    if read.unsure_way:
        return PromptMotion(held=UNSURE_WAY)
    start, end = object_move(found, read.direction, *image.shape[:2])
    return PromptMotion((Trajectory(name, ((None, *start), (None, *end))),))


def plan_video(reader, text_encoder, segments: Sequence[PromptSegment], image: np.ndarray, num_frames: int,
               fps: float) -> PromptMotion | None:
    """One plan for a whole video made in windows, from its first frame (H, W, 3) uint8 and its prompt
    schedule (``segments``; one segment for a single prompt), so its objects move on across the windows
    instead of starting and stopping with each: in each segment the named shape (or "it", the one the
    segment before moved) goes on from where the plan has it then, at the world's speed (TRAVEL over a
    world clip) or slower where the frame's edge is nearer, so it moves for the whole segment; where later
    segments move it on the same way before any turns it back, it leaves them their share of the room by
    their lengths (none to one an edge stops anyway: planned again without it), so the second of two moves
    right is not stopped at the edge by the first; grows and shrinks alike (GROWTH over a world clip,
    within the frame and SIZE_RANGE). A still shot, or a segment that moves something else, holds
    everything still; a move whose way the reader cannot tell holds its shape through the segment. None:
    a segment is left to the model (a camera move, a shape the frame does not show): each window then
    plans on its own."""
    end = math.floor((num_frames - 1) / fps * 1e6) / 1e6  # the last frame's time, as the trajectory writes it
    objects = find_objects(image)
    steps = planned_steps(reader, text_encoder, segments, objects, end)
    if steps is None:
        return None
    height, width = image.shape[:2]
    blocked: set[int] = set()  # later moves an edge stops: they are left no room
    while True:
        planned = plan_paths(steps, objects, height, width, blocked)
        if planned is None:  # more objects than a trajectory may move: left to the model
            return None
        paths, moved = planned
        stopped = {k for k, distance in moved.items() if distance < MIN_MOVE} - blocked
        if not stopped:
            break
        blocked |= stopped
    if not paths:
        return PromptMotion(held=UNSURE_WAY if any(s.read.unsure_way for s in steps) else HOLD_STILL)
    return PromptMotion(tuple(Trajectory(name, tuple(p[:3] for p in points),
                                         None if all(p[3] == 1.0 for p in points) else tuple(p[3] for p in points))
                              for name, points in paths.values()))


def plan_paths(steps: list[PlannedStep], objects: list[FoundObject], height: int, width: int, blocked: set[int]
               ) -> tuple[dict[int, tuple[str, list[tuple[float, float, float, float]]]], dict[int, float]] | None:
    """The objects' paths ({object: (name, points (t, x, y, size))}) and how far each move went ({step: distance,
    as a share of the frame}) for ``steps`` in a ``height x width`` frame; a move shares the room ahead with
    its shape's later moves the same way (``same_way_after``), except those in ``blocked``. None: more
    objects than a trajectory may move."""
    paths: dict[int, tuple[str, list[tuple[float, float, float, float]]]] = {}
    moved: dict[int, float] = {}
    for k, step in enumerate(steps):
        if step.stop <= step.start or step.read.unsure_way:
            continue  # no time to act in, or unsure which way: it holds
        _, points = paths.setdefault(step.object, (object_name(objects[step.object], objects),
                                                   [(0.0, *objects[step.object].centre, 1.0)]))
        if len(paths) > MAX_OBJECTS:
            return None
        time, x, y, size = points[-1]
        if time < step.start:  # it holds until its segment starts
            points.append((step.start, x, y, size))
        found = objects[step.object]
        here = replace(found, centre=(x, y), half_size=(found.half_size[0] * size, found.half_size[1] * size))
        share = (step.stop - step.start) / CLIP_SECONDS  # world clips' worth of time
        if step.read.motion in ("grow", "shrink"):
            factor = object_growth(here, step.read.motion, GROWTH ** share)
            points.append((step.stop, x, y, float(np.clip(size * factor, *SIZE_RANGE))))
            continue
        later = [j for j in same_way_after(steps, k) if j not in blocked]
        room_share = (step.stop - step.start) / sum(steps[j].stop - steps[j].start for j in (k, *later))
        _, end = object_move(here, step.read.direction, height, width, TRAVEL * share, room_share)
        moved[k] = math.dist((x, y), end)
        points.append((step.stop, *end, size))
    return paths, moved


@dataclass(frozen=True)
class PlannedStep:
    """A segment that moves, grows or shrinks one of the frame's objects (its index), from ``start`` to
    ``stop`` seconds (equal for a last segment on the last frame: no time to act in); a move whose way the
    reader cannot tell (``read.direction`` None) holds it."""

    start: float
    stop: float
    read: Reading
    object: int


def planned_steps(reader, text_encoder, segments: Sequence[PromptSegment], objects: list[FoundObject],
                  end: float) -> list[PlannedStep] | None:
    """The segments of a schedule (the last ending at ``end`` seconds) that act on one of ``objects``, in
    order; a still shot or a segment moving something else acts on none. None: a segment is left to the
    model (an empty prompt, a camera move, a shape the frame does not show)."""
    steps, previous = [], None  # previous: the object the segment before acted on ("it")
    for k, segment in enumerate(segments):
        start, stop = segment.start, segments[k + 1].start if k + 1 < len(segments) else end
        if not segment.prompt.strip():
            return None
        read = read_prompt(reader, text_encoder, segment.prompt)
        if read.motion in STILL_MOTIONS:
            continue
        if not read.planned:  # a camera move: the model's
            return None
        if read.holds_still(previous):
            continue
        found = pick_object(objects, read.colour, read.shape, prefer=previous) if read.names_a_shape else previous
        if found is None:
            return None
        previous = found
        steps.append(PlannedStep(start, stop, read, objects.index(found)))
    return steps


def same_way_after(steps: list[PlannedStep], k: int) -> list[int]:
    """The later moves (their indices) of step ``k``'s object that go its way (at most 67.5 degrees from it)
    before one turns it back (or the video ends): they share the room ahead with it. A move across (right
    after "up") takes none of that room and does not end the sharing."""
    way = steps[k].read.direction
    later = []
    for j in range(k + 1, len(steps)):
        step = steps[j]
        if step.object != steps[k].object or step.read.direction is None:
            continue
        along = step.read.direction[0] * way[0] + step.read.direction[1] * way[1]  # cosine of the angle between
        if along <= -SLIDE:
            break
        if along >= SLIDE:
            later.append(j)
    return later


def object_name(found: FoundObject, objects: list[FoundObject]) -> str:
    """"red circle", numbered where the frame shows several ("red circle 2")."""
    same = [o for o in objects if (o.colour, o.shape) == (found.colour, found.shape)]
    return f"{found.colour} {found.shape}" + (f" {same.index(found) + 1}" if len(same) > 1 else "")
