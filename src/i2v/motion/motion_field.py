"""MotionField: a motion decided before denoising, as the flow a warping denoiser holds.

A warping denoiser (``SpaceTimeUNet(prediction="warp")``) moves the first frame by a flow. It
plans that flow from the prompt (``I2VPipeline.motion_plan``); a camera path or trajectories decide
it instead, wholly (a camera path) or where objects move (trajectories: the model's plan keeps the
rest of the frame). Flows follow ``models.latent_warp``: backward, ``grid_sample``'s normalised
units, at the output's pixel size, so an object's edge stays sharp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..models.latent_warp import base_grid, camera_flow
from .camera_path import CameraKeyframe, content_path
from .trajectory import Trajectory, object_region


FILL_MARGIN = 8  # pixels: two patches of the photo autoencoder


@dataclass
class MotionField:
    """flow (1, 2, T, H, W): for each output pixel, where in the first frame it comes from (minus
    where it is); cover (1, 1, T, H, W) in [0, 1]: where the flow holds, None: everywhere."""

    flow: torch.Tensor
    cover: torch.Tensor | None = None
    # (1, 1, T, H, W) 1 where the flow fills in a place an object left (no true content there), None: nowhere
    filled: torch.Tensor | None = None
    # (1, 1, T, H, W) 1 where objects move (where they are and where they left), None: no object moves
    objects: torch.Tensor | None = None

    def over(self, planned: torch.Tensor) -> torch.Tensor:
        """This field where it holds, ``planned`` (1, 2, T, h, w), the model's own flow, elsewhere."""
        if self.cover is None:
            return self.flow
        size = self.flow.shape[-2:]
        planned = F.interpolate(planned[0].transpose(0, 1).float(), size=size, mode="bilinear",
                                align_corners=False).transpose(0, 1)[None]  # (1, 2, T, H, W)
        return self.cover * self.flow + (1 - self.cover) * planned

    def residual_keep(self, height: int, width: int) -> torch.Tensor | None:
        """(1, 1, T, height, width) at the latent size: 0 wherever the field holds over the model's plan, or
        an object moves (on any pixel of a latent's patch), 1 elsewhere; None: keep the whole residual (a
        camera path alone: the residual corrects the warp of the whole frame)."""
        held = self.cover if self.cover is not None else self.objects
        if held is None:
            return None
        covered = F.adaptive_max_pool2d(held[0].transpose(0, 1), (height, width))  # (T, 1, h, w)
        return (1 - covered).transpose(0, 1)[None]


def camera_motion(keyframes: Sequence[CameraKeyframe], num_frames: int, fps: float, height: int,
                  width: int, window: tuple[int, int] | None = None) -> MotionField:
    """The whole frame follows the camera path. ``window`` (start frame, the video's frames): the run is
    that stretch of a longer video (a chained window starting from its frame ``start``), so it follows the
    path's motion from there on."""
    start, total = window or (0, num_frames)
    path = content_path(keyframes, max(total, start + num_frames), fps, height, width)[start:start + num_frames]  # (T, 3)
    # relative to the window's first frame: p_t = (z_t / z_s) (p_s - c) + c + d_t - (z_t / z_s) d_s
    ratio = path[:, 0] / path[0, 0]
    path = np.stack([ratio, path[:, 1] - ratio * path[0, 1], path[:, 2] - ratio * path[0, 2]], axis=1)
    return MotionField(camera_flow(torch.from_numpy(path).float()[None], height, width))


def trajectory_motion(image: np.ndarray, trajectories: Sequence[Trajectory], num_frames: int, fps: float,
                      background: MotionField | None = None, window: tuple[int, int] | None = None,
                      anchored: bool = False) -> MotionField:
    """Each object (the region under its first point in ``image``, (H, W, 3) uint8) follows its path, in screen
    positions, at its path's sizes (scaled about its centre); the place it leaves (where the background's flow
    would still show it) shows the background around it, mirrored. Elsewhere ``background`` (a camera path)
    holds, or, without one, the model's own plan (the field's cover). Every object's place is filled before any
    object is drawn, so an object moving onto another's old place is not painted over. ``window`` (start frame,
    the video's frames): the run is that stretch of a longer video; ``image`` is the video's frame ``start``,
    where each object is found at its path's position then; with ``anchored``, ``image`` is the video's first
    frame and the run's frame 0 (the stretch's frames 1.. move it along the paths from there).
    """
    h, w = image.shape[:2]
    grid = base_grid(h, w)[0]  # (H, W, 2) pixel centres, normalised (x, y)
    flow = torch.zeros(1, 2, num_frames, h, w) if background is None else background.flow.clone()
    # where each output pixel's content sits in frame 0 under the background motion alone
    pixels = flow[0].permute(1, 2, 3, 0)  # (T, H, W, 2), a view: writing it writes the flow
    behind = grid[None] + pixels.clone()  # (T, H, W, 2)
    left = torch.zeros(num_frames, h, w, dtype=torch.bool)
    moves = []
    start, total = window or (0, num_frames)
    shown = np.arange(start, start + num_frames)  # the video's frame each of the run's frames shows
    if anchored:
        shown[0] = 0
    for trajectory in trajectories:
        positions = trajectory.positions(total, fps)  # over the video; a window running past its end holds
        positions = np.concatenate([positions, positions[-1:].repeat(max(0, start + num_frames - total), 0)])[shown]
        sizes = trajectory.scales(total, fps)
        sizes = np.concatenate([sizes, sizes[-1:].repeat(max(0, start + num_frames - total))])[shown]
        sizes = torch.from_numpy(sizes / sizes[0]).float()  # (T,) relative to the run's first frame
        region = object_region(image, tuple(positions[0]))  # (H, W) bool, in the run's first frame
        shift = torch.from_numpy((positions - positions[0]) * 2).float()  # (T, 2), normalised units
        centre = grid[torch.from_numpy(region)].mean(0)  # (2,) the region's centroid, which a size change keeps
        # the place it leaves, and the rim its colour bleeds into (the warp moves the autoencoder's linear
        # picture, where an edge bleeds over a patch or two): the nearest pixel a margin outside it
        rim = ndimage.binary_dilation(region, iterations=FILL_MARGIN // 2)
        margin = ndimage.binary_dilation(region, iterations=FILL_MARGIN)
        _, (iy, ix) = ndimage.distance_transform_edt(margin, return_indices=True)
        # the background mirrored across the margin's edge (texture goes on; the nearest pixel alone streaks),
        # or that nearest pixel where the mirror falls back inside the object or off the frame
        my, mx = 2 * iy - np.arange(h)[:, None], 2 * ix - np.arange(w)[None, :]
        outside = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
        outside[outside] = ~margin[my[outside], mx[outside]]
        sy, sx = np.where(outside, my, iy), np.where(outside, mx, ix)
        maps = torch.cat([torch.from_numpy(rim)[None].float(), grid[torch.from_numpy(sy), torch.from_numpy(sx)]
                          .permute(2, 0, 1)])  # (3, H, W): rim, then the fill's source (x, y)
        seen = F.grid_sample(maps[None].expand(num_frames, -1, -1, -1), behind, mode="nearest", padding_mode="zeros",
                             align_corners=False)  # (T, 3, H, W): the maps where each pixel looks in frame 0
        vacated = seen[:, 0] > 0.5
        pixels[vacated] = seen[:, 1:].permute(0, 2, 3, 1)[vacated] - grid.expand(num_frames, -1, -1, -1)[vacated]
        left |= vacated
        # where the object is in frame t: the region scaled about its centre and moved by the shift (sampled
        # as the warp samples); each of its pixels looks back to where it was in frame 0
        source = centre + (grid[None] - centre - shift[:, None, None, :]) / sizes[:, None, None, None]  # (T, H, W, 2)
        moved = F.grid_sample(torch.from_numpy(region)[None, None].float().expand(num_frames, 1, h, w), source,
                              mode="nearest", padding_mode="zeros", align_corners=False)[:, 0] > 0.5  # (T, H, W)
        moves.append((moved, source))
    drawn = torch.zeros(num_frames, h, w, dtype=torch.bool)
    for moved, source in moves:
        pixels[moved] = (source - grid[None])[moved]
        drawn |= moved
    left[0] = drawn[0] = False  # frame 0 is the image
    flow[:, :, 0] = 0 if background is None else background.flow[:, :, 0]
    filled = (left & ~drawn).float()[None, None]  # (1, 1, T, H, W)
    objects = (left | drawn).float()[None, None]
    return MotionField(flow, None if background is not None else objects, filled, objects)


def still_background(num_frames: int, height: int, width: int) -> MotionField:
    """A camera that does not move: the whole frame held where it is."""
    return MotionField(torch.zeros(1, 2, num_frames, height, width))


def requested_motion(extras: dict, image: np.ndarray, num_frames: int, fps: float) -> MotionField | None:
    """The run's camera path and trajectories (resolved settings' ``extras``: their canonical text) as one
    field at the size of ``image`` (H, W, 3) uint8, the first frame; None when the run has neither."""
    from .camera_path import resolve_camera_path
    from .trajectory import resolve_trajectories

    camera, trajectory = extras.get("camera_path"), extras.get("trajectory")
    if camera is None and trajectory is None:
        return None
    h, w = image.shape[:2]
    field = None
    window = extras.get("motion_window")  # a chained window of a longer video: (its start frame, the video's frames)
    if camera is not None:
        length = num_frames if window is None else window[1]
        field = camera_motion(resolve_camera_path(camera, length, fps)[1], num_frames, fps, h, w,
                              window=None if window is None else tuple(window))
    if trajectory is not None:
        length = num_frames if window is None else window[1]
        field = trajectory_motion(image, resolve_trajectories(trajectory, length, fps)[1], num_frames, fps,
                                  background=field, window=None if window is None else tuple(window))
    return field


def render_motion(image: np.ndarray, field: MotionField) -> tuple[np.ndarray, np.ndarray]:
    """The first frame (H, W, 3) uint8 moved by the field alone (still where it does not cover): frames
    (T, H, W, 3) uint8, and (T, H, W) bool where they show true content (not a revealed border or the
    place an object left): a control video for models that fill in the rest."""
    flow = field.flow if field.cover is None else field.flow * field.cover  # (1, 2, T, H, W)
    t, h, w = flow.shape[2:]
    grid = base_grid(h, w) + flow[0].permute(1, 2, 3, 0).float()  # (T, H, W, 2)
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().expand(t, -1, -1, -1)
    frames = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = F.grid_sample(torch.ones(t, 1, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    known = inside[:, 0] > 0.999
    if field.filled is not None:
        known &= field.filled[0, 0] < 0.5
    return frames.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy(), known.numpy()
