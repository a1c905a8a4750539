"""The embedded model's procedural world: seeded scenes rendered to videos with ground truth.

A scene is 1-3 solid shapes over a background; one motion is named by the caption (see
``captions.py``). Everything is an analytic function of *world* coordinates, so camera pans
and zooms are a change of coordinates and the renderer is a few vectorised torch ops.

Coordinates: world units are fractions of the frame width at frame 0; ``x`` grows to the
right, ``y`` grows downwards (image convention). Pixel centre ``(i, j)`` of frame ``t`` sits at
``camera_center[t] + ((j + 0.5) / W - 0.5, (i + 0.5) / H - 0.5) / camera_zoom[t]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 128
NUM_FRAMES = 16
FPS = 8

# Object colours: the names a prompt may use. Backgrounds never use these (see BACKGROUND_COLOURS),
# so an object can always be found by its colour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 50),
    "blue": (40, 70, 230),
    "yellow": (245, 220, 30),
    "orange": (250, 140, 20),
    "purple": (150, 40, 190),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND_KINDS = ("solid", "gradient", "noise")
# Muted background tones, each far (in RGB) from every object colour.
BACKGROUND_COLOURS: tuple[tuple[int, int, int], ...] = (
    (110, 110, 110), (150, 150, 150), (90, 100, 120), (120, 110, 90), (100, 125, 115),
    (135, 120, 140), (85, 95, 85), (160, 145, 125), (115, 130, 150), (130, 100, 105),
)

OBJECT_DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up_left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "up_right": (math.sqrt(0.5), -math.sqrt(0.5)),
    "down_left": (-math.sqrt(0.5), math.sqrt(0.5)),
    "down_right": (math.sqrt(0.5), math.sqrt(0.5)),
}
# "Camera pans left" = the camera turns left, so the picture content slides right.
CAMERA_PANS: dict[str, tuple[float, float]] = {
    "pan_left": (-1.0, 0.0),
    "pan_right": (1.0, 0.0),
    "pan_up": (0.0, -1.0),
    "pan_down": (0.0, 1.0),
}
CAMERA_ZOOMS = ("zoom_in", "zoom_out")
OBJECT_SCALES = ("grow", "shrink")

# Motion kinds and how often training sees each (the benchmark draws them evenly per category).
MOTION_WEIGHTS: dict[str, float] = {
    **{f"move_{d}": 0.45 / len(OBJECT_DIRECTIONS) for d in OBJECT_DIRECTIONS},
    "grow": 0.08, "shrink": 0.08, "still": 0.06,
    **{p: 0.16 / len(CAMERA_PANS) for p in CAMERA_PANS},
    "zoom_in": 0.06, "zoom_out": 0.06, "static": 0.05,
}
MOTION_CATEGORIES: dict[str, str] = {
    **{f"move_{d}": "object_direction" for d in OBJECT_DIRECTIONS},
    "grow": "object_scale", "shrink": "object_scale", "still": "still", "static": "still",
    **{p: "camera_pan" for p in CAMERA_PANS},
    "zoom_in": "camera_zoom", "zoom_out": "camera_zoom",
}

TRAVEL_RANGE = (0.30, 0.42)  # object travel over the clip, in frame widths
PAN_RANGE = (0.25, 0.35)  # camera travel over the clip, in frame widths
ZOOM_RANGE = (1.5, 1.8)  # final zoom factor (its inverse for zoom out)
SCALE_RANGE = (1.7, 2.1)  # final size factor (its inverse for shrink)


@dataclass
class SceneObject:
    shape: str
    colour: str
    x: float  # centre at frame 0, world units
    y: float
    radius: float  # half-size at frame 0, world units


@dataclass
class Scene:
    """Everything needed to render one clip and to score a model against it."""

    objects: list[SceneObject]
    background: str
    background_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    background_angle: float  # gradient direction, radians
    noise_seed: int
    motion: str  # a key of MOTION_WEIGHTS
    target: int | None  # index of the moving / named object, None for camera or static
    amount: float  # travel (widths), final scale factor, or final zoom factor
    num_frames: int = NUM_FRAMES
    meta: dict = field(default_factory=dict)

    @property
    def category(self) -> str:
        return MOTION_CATEGORIES[self.motion]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Scene":
        data = dict(data)
        data["objects"] = [SceneObject(**o) for o in data["objects"]]
        data["background_colours"] = tuple(tuple(c) for c in data["background_colours"])
        return cls(**data)

    # ---- ground truth --------------------------------------------------------------------
    def progress(self) -> np.ndarray:
        """(T,) fraction of the motion done at each frame: 0 at the first, 1 at the last."""
        return np.linspace(0.0, 1.0, self.num_frames)

    def camera(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, 2) camera centres and (T,) zoom factors in world units."""
        s = self.progress()
        centre = np.tile(np.array([[0.5, 0.5]]), (self.num_frames, 1))
        zoom = np.ones(self.num_frames)
        if self.motion in CAMERA_PANS:
            centre = centre + np.outer(s, CAMERA_PANS[self.motion]) * self.amount
        elif self.motion in CAMERA_ZOOMS:
            zoom = self.amount ** s  # geometric, so the apparent speed is constant
        return centre, zoom

    def object_tracks(self) -> tuple[np.ndarray, np.ndarray]:
        """(T, N, 2) object centres and (T, N) radii in world units."""
        s = self.progress()[:, None]
        centres = np.stack([np.array([[o.x, o.y]] * self.num_frames) for o in self.objects], 1)
        radii = np.array([[o.radius for o in self.objects]] * self.num_frames)
        if self.target is not None:
            if self.motion.startswith("move_"):
                d = np.array(OBJECT_DIRECTIONS[self.motion[5:]])
                centres[:, self.target] += s * d * self.amount
            elif self.motion in OBJECT_SCALES:
                radii[:, self.target] *= self.amount ** s[:, 0]
        return centres, radii

    def screen_tracks(self, size: int = SIZE) -> np.ndarray:
        """(T, N, 2) object centres in pixel coordinates (x, y) of each frame."""
        centres, _ = self.object_tracks()
        cam, zoom = self.camera()
        return ((centres - cam[:, None]) * zoom[:, None, None] + 0.5) * size


# ---- sampling scenes -------------------------------------------------------------------------
def _draw_objects(rng: np.random.Generator, n: int, motion: str, amount: float) -> tuple[list[SceneObject], int]:
    """Place n objects with distinct colours so that no two overlap during the clip."""
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    for _ in range(200):
        objs, target = [], int(rng.integers(n))
        for k in range(n):
            radius = float(rng.uniform(0.07, 0.12))
            if motion == "grow" and k == target:
                radius = float(rng.uniform(0.06, 0.08))
            margin = radius + 0.04
            lo, hi = np.full(2, margin), np.full(2, 1.0 - margin)
            if motion.startswith("move_") and k == target:
                # keep start and end inside the frame
                d = np.array(OBJECT_DIRECTIONS[motion[5:]]) * amount
                lo, hi = np.maximum(lo, lo - d), np.minimum(hi, hi - d)
            if motion == "grow" and k == target:
                lo, hi = lo + radius, hi - radius  # room to grow
            if motion in CAMERA_ZOOMS or motion in CAMERA_PANS:
                lo, hi = np.maximum(lo, 0.25), np.minimum(hi, 0.75)  # stay visible
            if np.any(hi <= lo):
                break
            x, y = rng.uniform(lo, hi)
            objs.append(SceneObject(str(rng.choice(SHAPES)), str(colours[k]), float(x), float(y), radius))
        if len(objs) == n and not _overlaps(objs, target, motion, amount):
            return objs, target
    if n > 1:  # a crowded draw (large shapes, long travel): one object fewer always fits
        return _draw_objects(rng, n - 1, motion, amount)
    raise RuntimeError(f"could not place an object for motion {motion!r}")


def _overlaps(objs: list[SceneObject], target: int, motion: str, amount: float) -> bool:
    probe = Scene(objs, "solid", ((0, 0, 0), (0, 0, 0)), 0.0, 0, motion, target, amount)
    centres, radii = probe.object_tracks()
    for a in range(len(objs)):
        for b in range(a + 1, len(objs)):
            dist = np.linalg.norm(centres[:, a] - centres[:, b], axis=-1)
            if np.any(dist < (radii[:, a] + radii[:, b]) * 1.5 + 0.02):
                return True
    return False


def sample_scene(seed: int, motion: str | None = None, num_objects: int | None = None,
                 travel_range: tuple[float, float] = TRAVEL_RANGE) -> Scene:
    """Draw one scene from its seed (same seed -> same scene).

    ``travel_range`` bounds an object move's length (frame widths); training may draw shorter
    moves than the benchmark so that where an object starts does not give away its direction.
    """
    rng = np.random.default_rng(seed)
    if motion is None:
        names, weights = list(MOTION_WEIGHTS), np.array(list(MOTION_WEIGHTS.values()))
        motion = str(rng.choice(names, p=weights / weights.sum()))
    if motion not in MOTION_WEIGHTS:
        raise ValueError(f"unknown motion {motion!r}; expected one of {sorted(MOTION_WEIGHTS)}")
    amount = {
        "object_direction": rng.uniform(*travel_range),
        "camera_pan": rng.uniform(*PAN_RANGE),
    }.get(MOTION_CATEGORIES[motion], 0.0)
    if motion in OBJECT_SCALES:
        amount = rng.uniform(*SCALE_RANGE) ** (1 if motion == "grow" else -1)
    elif motion in CAMERA_ZOOMS:
        amount = rng.uniform(*ZOOM_RANGE) ** (1 if motion == "zoom_in" else -1)
    n = num_objects or int(rng.integers(1, 4))
    objects, target = _draw_objects(rng, n, motion, float(amount))
    background = str(rng.choice(BACKGROUND_KINDS))
    i, j = rng.choice(len(BACKGROUND_COLOURS), size=2, replace=False)
    named = motion.startswith("move_") or motion in OBJECT_SCALES or motion == "still"
    return Scene(
        objects=objects,
        background=background,
        background_colours=(BACKGROUND_COLOURS[i], BACKGROUND_COLOURS[j]),
        background_angle=float(rng.uniform(0, 2 * math.pi)),
        noise_seed=int(rng.integers(2**31)),
        motion=motion,
        target=target if named else None,
        amount=float(amount),
    )


# ---- rendering -------------------------------------------------------------------------------
def _sdf(shape: str, px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance (world units) to a shape of half-size r centred at the origin."""
    if shape == "circle":
        return torch.sqrt(px**2 + py**2) - r
    if shape == "square":
        return torch.maximum(px.abs(), py.abs()) - r
    # equilateral triangle pointing up (Inigo Quilez's sdEquilateralTriangle, y flipped)
    k = math.sqrt(3.0)
    x = px.abs() - r
    y = -py + r / k
    fold = (x + k * y) > 0
    x, y = torch.where(fold, (x - k * y) / 2, x), torch.where(fold, (-k * x - y) / 2, y)
    x = x - torch.clamp(x, -2 * r, torch.zeros_like(r))
    return -torch.sqrt(x**2 + y**2) * torch.sign(y)


def _background(scene: Scene, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) background colour in [0, 1] at world coordinates."""
    c0, c1 = (torch.tensor(c, dtype=torch.float32) / 255 for c in scene.background_colours)
    if scene.background == "solid":
        return c0.expand(*wx.shape, 3).clone()
    if scene.background == "gradient":
        a = scene.background_angle
        u = (wx - 0.5) * math.cos(a) + (wy - 0.5) * math.sin(a)
        w = torch.clamp(u / 1.2 + 0.5, 0, 1)[..., None]
    else:
        # smooth value noise: a small random grid, bicubic-sampled over world [-1, 2]^2
        g = torch.Generator().manual_seed(scene.noise_seed)
        grid = torch.rand(1, 1, 10, 10, generator=g)
        coords = torch.stack([(wx - 0.5) / 1.5, (wy - 0.5) / 1.5], -1).reshape(1, -1, 1, 2)
        w = F.grid_sample(grid, coords.clamp(-1, 1), mode="bicubic", align_corners=True)
        w = w.reshape(*wx.shape, 1).clamp(0, 1)
    return c0 * (1 - w) + c1 * w


# World units on each side of the [0, 1] frame that a pan or a zoom out can show (pans travel at
# most 0.35, zoom out shows 1.8x): a photo background covers [-PHOTO_MARGIN, 1 + PHOTO_MARGIN].
PHOTO_MARGIN = 0.45


def _photo_background(photo: np.ndarray, window: tuple[float, float, float], wx: torch.Tensor, wy: torch.Tensor,
                      size: int) -> torch.Tensor:
    """(T, H, W, 3) in [0, 1]: ``photo`` (H, W, 3) uint8 where the world square [0, 1] is the photo
    window ``(centre x, centre y, side)`` in photo pixels. The region the clip can show is first
    area-resampled to the finest scale a zoom in needs (bilinear sampling alone would alias when
    shrinking a large photo), then sampled bilinearly at every output pixel."""
    import cv2

    cx, cy, side = window
    span = side * (1 + 2 * PHOTO_MARGIN)  # photo pixels of world [-margin, 1 + margin]
    left, top = int(max(0, np.floor(cx - span / 2))), int(max(0, np.floor(cy - span / 2)))
    right = int(min(photo.shape[1], np.ceil(cx + span / 2) + 1))
    bottom = int(min(photo.shape[0], np.ceil(cy + span / 2) + 1))
    region = photo[top:bottom, left:right]  # (h, w, 3)
    scale = min(1.0, ZOOM_RANGE[1] * size / side)  # resampled pixels per photo pixel
    if scale < 1:
        region = cv2.resize(region, (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))),
                            interpolation=cv2.INTER_AREA)
    sx, sy = region.shape[1] / (right - left), region.shape[0] / (bottom - top)
    tex = torch.from_numpy(np.ascontiguousarray(region)).permute(2, 0, 1)[None].float() / 255  # (1, 3, h, w)
    qx = (cx + (wx - 0.5) * side - left) * sx  # continuous coordinates in the resampled region
    qy = (cy + (wy - 0.5) * side - top) * sy
    grid = torch.stack([qx / region.shape[1] * 2 - 1, qy / region.shape[0] * 2 - 1], -1).reshape(1, -1, 1, 2)
    out = F.grid_sample(tex, grid.float(), mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(3, *wx.shape).permute(1, 2, 3, 0)  # (T, H, W, 3)


def render(scene: Scene, size: int = SIZE, photo: np.ndarray | None = None) -> np.ndarray:
    """Render a scene to (T, H, W, 3) uint8 frames; a scene over a photo (``background == "photo"``,
    window in ``scene.meta["photo_window"]``) needs that ``photo`` (H, W, 3) uint8."""
    cam, zoom = scene.camera()
    pix = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5  # (W,)
    cx, cy = (torch.tensor(cam[:, k], dtype=torch.float32)[:, None, None] for k in (0, 1))
    z = torch.tensor(zoom, dtype=torch.float32)[:, None, None]
    wx = cx + pix[None, None, :] / z  # (T, 1, W)
    wy = cy + pix[None, :, None] / z  # (T, H, 1)
    wx, wy = torch.broadcast_tensors(wx, wy)  # (T, H, W)
    if scene.background == "photo":
        if photo is None:
            raise ValueError("this scene is over a photo: pass the photo to render()")
        img = _photo_background(photo, tuple(scene.meta["photo_window"]), wx, wy, size)
    else:
        img = _background(scene, wx, wy)
    centres, radii = scene.object_tracks()
    pixel_world = 1.0 / (size * z)  # world units per pixel, (T, 1, 1)
    for k, obj in enumerate(scene.objects):
        ox = torch.tensor(centres[:, k, 0], dtype=torch.float32)[:, None, None]
        oy = torch.tensor(centres[:, k, 1], dtype=torch.float32)[:, None, None]
        r = torch.tensor(radii[:, k], dtype=torch.float32)[:, None, None]
        d = _sdf(obj.shape, wx - ox, wy - oy, r.expand_as(wx)) / pixel_world  # signed px
        alpha = torch.clamp(0.5 - d, 0, 1)[..., None]  # one-pixel anti-aliased edge
        colour = torch.tensor(COLOURS[obj.colour], dtype=torch.float32) / 255
        img = img * (1 - alpha) + colour * alpha
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def scene_flow(scene: Scene, size: int = SIZE) -> np.ndarray:
    """(2, T, size, size) ground-truth backward flow: for each pixel of frame t, where the point it
    shows was in frame 0, minus where it is, in ``grid_sample``'s normalised units (2 = the frame's
    width; channel 0 x, channel 1 y).

    A pixel inside an object follows that object (its move or its growth); any other pixel shows
    the world, which only the camera moves. Background newly uncovered by an object was hidden in
    frame 0, so it has no source there: its flow is NaN (unknown).
    """
    cam, zoom = scene.camera()
    pix = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    cx, cy = (torch.tensor(cam[:, k], dtype=torch.float32)[:, None, None] for k in (0, 1))
    z = torch.tensor(zoom, dtype=torch.float32)[:, None, None]
    wx, wy = torch.broadcast_tensors(cx + pix[None, None, :] / z, cy + pix[None, :, None] / z)  # (T, H, W)
    sx, sy = wx.clone(), wy.clone()  # the world point each pixel shows, as it was at frame 0
    centres, radii = scene.object_tracks()
    on_object = torch.zeros_like(wx, dtype=torch.bool)
    hidden = torch.zeros_like(wx, dtype=torch.bool)  # world points under an object at frame 0
    for k, obj in enumerate(scene.objects):  # in drawing order: the last drawn is on top
        ox = torch.tensor(centres[:, k, 0], dtype=torch.float32)[:, None, None]
        oy = torch.tensor(centres[:, k, 1], dtype=torch.float32)[:, None, None]
        r = torch.tensor(radii[:, k], dtype=torch.float32)[:, None, None]
        inside = _sdf(obj.shape, wx - ox, wy - oy, r.expand_as(wx)) < 0
        ratio = float(radii[0, k]) / r
        sx = torch.where(inside, float(centres[0, k, 0]) + (wx - ox) * ratio, sx)
        sy = torch.where(inside, float(centres[0, k, 1]) + (wy - oy) * ratio, sy)
        on_object |= inside
        hidden |= _sdf(obj.shape, wx - float(centres[0, k, 0]), wy - float(centres[0, k, 1]),
                       torch.full_like(wx, float(radii[0, k]))) < 0
    z0, (c0x, c0y) = float(zoom[0]), cam[0]
    flow_x = 2 * (sx - c0x) * z0 - 2 * pix[None, None, :]
    flow_y = 2 * (sy - c0y) * z0 - 2 * pix[None, :, None]
    flow = torch.stack([flow_x, flow_y])
    flow[:, hidden & ~on_object] = float("nan")
    return flow.numpy()


# ---- splits ----------------------------------------------------------------------------------
# Scenes: training draws seeds below HELDOUT_SEED_START; the held-out split starts there.
HELDOUT_SEED_START = 1_000_000_000


def heldout_seed(index: int) -> int:
    return HELDOUT_SEED_START + index


_MIRROR = {"left": "right", "right": "left", "up_left": "up_right", "up_right": "up_left",
           "down_left": "down_right", "down_right": "down_left", "pan_left": "pan_right", "pan_right": "pan_left"}


def extend_scene(scene: Scene, num_frames: int) -> Scene:
    """The scene over ``num_frames`` frames at the same speed: its motion goes on past its last frame (an
    object may leave the frame), so the first ``scene.num_frames`` frames are the scene's own. A long clip
    to train continuing a video from its last frames on."""
    if num_frames < 2:
        raise ValueError(f"a scene needs at least 2 frames, got {num_frames}")
    span = (num_frames - 1) / (scene.num_frames - 1)  # the motion's length over the longer clip
    grows = scene.motion in CAMERA_ZOOMS or scene.motion in OBJECT_SCALES  # factors compound geometrically
    amount = scene.amount ** span if grows else scene.amount * span
    return replace(scene, amount=float(amount), num_frames=num_frames, meta=dict(scene.meta))


# a motion played backwards: the opposite way, the inverse zoom or size change
REVERSED_MOTION: dict[str, str] = {
    **{f"move_{d}": "move_" + next(e for e, v in OBJECT_DIRECTIONS.items() if v == (-dx, -dy))
       for d, (dx, dy) in OBJECT_DIRECTIONS.items()},
    **{p: next(q for q, v in CAMERA_PANS.items() if v == (-dx, -dy)) for p, (dx, dy) in CAMERA_PANS.items()},
    "zoom_in": "zoom_out", "zoom_out": "zoom_in", "grow": "shrink", "shrink": "grow", "still": "still", "static": "static",
}


def frames_in_view(scene: Scene) -> int:
    """How many of the scene's first frames show its moving object whole inside the frame (all of them
    for a scene whose objects stay put: camera moves, growing, still shots); a scene going on past its
    clip (``extend_scene``) may move it out."""
    if scene.target is None or not scene.motion.startswith("move_"):
        return scene.num_frames
    centres, radii = scene.object_tracks()  # world units: frame widths, as the camera is still
    c, r = centres[:, scene.target], radii[:, scene.target, None]  # (T, 2), (T, 1)
    inside = np.all((c - r >= 0) & (c + r <= 1), axis=1)  # (T,)
    return int(np.argmin(inside)) if not inside.all() else scene.num_frames


def mirror_scene(scene: Scene) -> Scene:
    """The scene reflected left-right (what a horizontally flipped clip shows).

    Every shape in the world is left-right symmetric, so the reflection is again a scene of
    the world; training uses it to reuse one rendered clip as two.
    """
    motion = scene.motion
    if motion.startswith("move_"):
        motion = "move_" + _MIRROR.get(motion[5:], motion[5:])
    else:
        motion = _MIRROR.get(motion, motion)
    objects = [SceneObject(o.shape, o.colour, 1.0 - o.x, o.y, o.radius) for o in scene.objects]
    return Scene(objects, scene.background, scene.background_colours, math.pi - scene.background_angle,
                 scene.noise_seed, motion, scene.target, scene.amount, scene.num_frames, dict(scene.meta))


def over_photo(scene: Scene, photo_index: int, photo_shape: tuple[int, ...], rng: np.random.Generator) -> Scene:
    """The scene with a photo background: the world square [0, 1] is a random square window of the
    photo, small enough that everything a pan or a zoom out can show stays inside it."""
    height, width = photo_shape[:2]
    largest = min(height, width) / (1 + 2 * PHOTO_MARGIN)
    side = float(rng.uniform(0.6, 1.0) * largest)
    half = side * (0.5 + PHOTO_MARGIN)
    cx, cy = float(rng.uniform(half, width - half)), float(rng.uniform(half, height - half))
    meta = {**scene.meta, "photo": int(photo_index), "photo_window": [cx, cy, side]}
    return Scene(**{**scene.__dict__, "background": "photo", "meta": meta})
