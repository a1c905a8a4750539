"""A named shape's move, read from the prompt and found in the first frame.

A warping denoiser plans one motion for the whole frame (``I2VPipeline.motion_plan``): camera moves
and still shots. An object moving over a photograph is a local motion it follows too weakly. For a
model that ships a prompt reader (``models.prompt_reader``, a ``reader`` folder), the run reads the
prompt (the motion, the object's colour and shape), finds that object in the first frame (connected
regions of the world's palette colour, the one whose outline best fits the shape) and moves it in a
straight line, or grows or shrinks it, as the world's objects do, the rest of the frame still: a trajectory the denoiser
holds, as ``--trajectory`` is held, recorded in the output's metadata (``prompt_motion``). A prompt
that names no shape ("the dog runs", "the camera pans left"), or a shape the frame does not show,
gets no plan: the model plans as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..world.scenes import COLOURS, OBJECT_DIRECTIONS, SCALE_RANGE, SHAPES, TRAVEL_RANGE
from .trajectory import Trajectory

# a pixel is of a palette colour within this distance (per channel, 0-255): anti-aliased rims and the
# autoencoder's round trip stay inside, a photo's muted tones outside
PALETTE_TOLERANCE = 40
# an object's area, as a share of the frame: the world's shapes are 0.5% to 5% of it at 128x128
MIN_AREA, MAX_AREA = 0.002, 0.12
# each shape's area over its bounding box's (axis-aligned: the world draws them upright)
FILL_RATIO = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}
TRAVEL = sum(TRAVEL_RANGE) / 2  # the world's mean move, in lengths of the frame's shorter side
GROWTH = float(np.sqrt(SCALE_RANGE[0] * SCALE_RANGE[1]))  # the world's mean size change (its inverse: shrink)
# the reader's least probability for a decision: below it the prompt is not read as an object's move
MIN_CONFIDENCE = 0.5


def load_reader(folder: Path):
    """The model folder's prompt reader (``reader/``, safetensors), or None where it has none."""
    if not (folder / "reader" / "config.json").is_file():
        return None
    from ..models.prompt_reader import PromptReader

    return PromptReader.from_pretrained(folder / "reader", use_safetensors=True).eval()


def plans_object(motion: str, shape: str) -> bool:
    """Whether a read (motion, shape) asks a shape to move, grow or shrink: one of the world's shapes (or
    "the red one") named with one of those motions."""
    return (motion.startswith("move_") or motion in ("grow", "shrink")) and shape != "none"


@dataclass(frozen=True)
class FoundObject:
    colour: str
    shape: str  # the best-fitting shape of its outline
    centre: tuple[float, float]  # normalised (x, y)
    half_size: tuple[float, float]  # normalised half width and height of its bounding box
    area: float  # share of the frame


def find_objects(image: np.ndarray, colours: list[str] | None = None) -> list[FoundObject]:
    """The world's objects in an (H, W, 3) uint8 frame: connected regions of a palette colour of about
    an object's size, each with the shape its fill ratio fits best."""
    h, w = image.shape[:2]
    pixels = image.astype(np.int16)
    found = []
    for name in colours or list(COLOURS):
        near = np.abs(pixels - np.array(COLOURS[name], np.int16)).max(-1) <= PALETTE_TOLERANCE
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
        for k in range(1, count):
            x, y, bw, bh, area = stats[k]
            share = area / (h * w)
            if not MIN_AREA <= share <= MAX_AREA or max(bw, bh) > 3 * min(bw, bh):
                continue
            fill = area / (bw * bh)
            shape = min(SHAPES, key=lambda s: abs(FILL_RATIO[s] - fill))
            found.append(FoundObject(name, shape, (float(centroids[k][0] / w), float(centroids[k][1] / h)),
                                     (bw / 2 / w, bh / 2 / h), float(share)))
    return found


def pick_object(found: list[FoundObject], colour: str, shape: str) -> FoundObject | None:
    """The object a prompt names: of its colour (any, for colour ``none``) and shape (any, for
    ``any``); where several fit, the named shape first, then the largest. None: nothing fits."""
    fits = [o for o in found if colour in ("none", o.colour) and shape in ("any", o.shape)]
    if not fits and colour != "none" and shape != "any":
        fits = [o for o in found if o.colour == colour]  # a colour that picks out one object: its outline is rough
    if not fits:
        return None
    return max(fits, key=lambda o: (o.shape == shape, o.area))


def object_move(found: FoundObject, direction: str, height: int, width: int) -> tuple[tuple[float, float],
                                                                                   tuple[float, float]]:
    """(start, end) of a straight move of ``found`` in ``direction`` (a key of OBJECT_DIRECTIONS) in a
    ``height x width`` frame: the world's mean travel, cut short so the object stays inside the frame."""
    dx, dy = OBJECT_DIRECTIONS[direction]
    (x, y), (hw, hh) = found.centre, found.half_size
    side = min(height, width)  # travel in lengths of the shorter side, the same in pixels along x and y
    ex = float(np.clip(x + TRAVEL * dx * side / width, hw + 0.01, 1 - hw - 0.01))
    ey = float(np.clip(y + TRAVEL * dy * side / height, hh + 0.01, 1 - hh - 0.01))
    return (x, y), (ex, ey)


def object_growth(found: FoundObject, motion: str) -> float:
    """The size factor of a ``grow`` or ``shrink``: the world's mean, a growth cut short at the frame's edge."""
    if motion == "shrink":
        return 1 / GROWTH
    (x, y), (hw, hh) = found.centre, found.half_size
    room = min((min(x, 1 - x) - 0.01) / hw, (min(y, 1 - y) - 0.01) / hh) if hw and hh else GROWTH
    return float(np.clip(room, 1.0, GROWTH))


def plan_from_prompt(reader, text_encoder, prompt: str, image: np.ndarray) -> Trajectory | None:
    """The named object's straight move (a ``Trajectory`` of two points), or None: the prompt names no
    shape's move, or the frame (H, W, 3) uint8 shows no such object."""
    if not prompt.strip():
        return None
    text = text_encoder.encode([prompt])
    read = reader.read(text.states, text.mask)[0]
    (motion, p_motion), (colour, p_colour), (shape, p_shape) = read["motion"], read["colour"], read["shape"]
    if not plans_object(motion, shape) or min(p_motion, p_shape) < MIN_CONFIDENCE:
        return None
    if p_colour < MIN_CONFIDENCE:
        colour = "none"
    found = pick_object(find_objects(image), colour, shape)
    if found is None:
        return None
    name = f"{found.colour} {found.shape}"
    if motion in ("grow", "shrink"):
        return Trajectory(name, ((None, *found.centre), (None, *found.centre)), (None, object_growth(found, motion)))
    start, end = object_move(found, motion[len("move_"):], *image.shape[:2])
    return Trajectory(name, ((None, *start), (None, *end)))
