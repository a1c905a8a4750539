"""Motion fields: the flows a warping denoiser holds for a camera path or trajectories."""

import numpy as np
import torch
import torch.nn.functional as F

from i2v.models.latent_warp import base_grid, camera_flow
from i2v.motion.camera_path import resolve_camera_path
from i2v.motion.motion_field import MotionField, camera_motion, trajectory_motion
from i2v.motion.trajectory import resolve_trajectories

BACKGROUND = (90, 120, 150)
BOX = (230, 40, 40)


def _box_image(size=64):
    image = np.full((size, size, 3), BACKGROUND, np.uint8)
    image[8:18, 8:18] = BOX  # a red box centred on (13, 13)
    return image


def _warp(image: np.ndarray, flow: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 moved by a (1, 2, T, H, W) backward flow -> (T, H, W, 3), nearest sampling."""
    t, h, w = flow.shape[2:]
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float().expand(t, -1, -1, -1)
    grid = base_grid(h, w) + flow[0].permute(1, 2, 3, 0)
    return F.grid_sample(pixels, grid, mode="nearest", padding_mode="border", align_corners=False).permute(
        0, 2, 3, 1).round().byte().numpy()


def test_a_camera_path_moves_the_whole_frame():
    keyframes = resolve_camera_path("1s: pan right 0.25", 16, 8)[1]
    field = camera_motion(keyframes, 16, 8, 32, 64)
    assert field.cover is None and field.residual_keep(8, 16) is None
    assert field.flow.shape == (1, 2, 16, 32, 64)
    # frame 8: the picture slid left by a quarter of the width: each pixel shows the one 16 px to its right
    torch.testing.assert_close(field.flow[0, :, 8], torch.stack([torch.full((32, 64), 0.5), torch.zeros(32, 64)]))
    torch.testing.assert_close(field.flow[0, :, 0], torch.zeros(2, 32, 64))


def test_a_trajectory_moves_the_object_and_fills_the_place_it_left():
    image = _box_image()
    _, trajectories = resolve_trajectories(f"box: {13 / 64},{13 / 64} -> {45 / 64},{45 / 64}", 16, 8)
    field = trajectory_motion(image, trajectories, 16, 8)
    frames = _warp(image, field.flow)
    last = frames[-1]
    box = np.all(last == BOX, axis=-1)
    ys, xs = np.nonzero(box)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (40, 49, 40, 49)  # moved by 32 px right and down
    assert np.all(last[8:18, 8:18] == BACKGROUND)  # no trace where it was
    assert np.array_equal(frames[0], image)
    # the field holds on the object and the place it left; the model's plan keeps the rest
    assert field.cover[0, 0, -1, 45, 45] == 1 and field.cover[0, 0, -1, 13, 13] == 1 and field.cover[0, 0, -1, 30, 55] == 0
    keep = field.residual_keep(16, 16)
    assert keep.shape == (1, 1, 16, 16, 16) and keep[0, 0, -1, 11, 11] == 0 and keep[0, 0, -1, 7, 13] == 1


def test_the_models_plan_fills_what_the_trajectories_leave():
    image = _box_image()
    _, trajectories = resolve_trajectories("box: 0.2,0.2 -> 0.5,0.2", 16, 8)
    field = trajectory_motion(image, trajectories, 16, 8)
    planned = torch.full((1, 2, 16, 16, 16), 0.1)  # the model's own flow at the latent size
    flow = field.over(planned)
    assert flow.shape == (1, 2, 16, 64, 64)
    torch.testing.assert_close(flow[0, :, 5, 60, 60], torch.tensor([0.1, 0.1]))  # away from the object
    torch.testing.assert_close(flow[:, :, 5][field.cover[:, :, 5].expand(-1, 2, -1, -1) > 0],
                               field.flow[:, :, 5][field.cover[:, :, 5].expand(-1, 2, -1, -1) > 0])


def _blobs(frame: np.ndarray, colour) -> int:
    import cv2

    return cv2.connectedComponents(np.all(frame == colour, axis=-1).astype(np.uint8))[0] - 1


def test_trajectories_over_a_camera_path_move_the_object_once():
    """The camera moves the picture; the object goes where its path says, and the place the camera would
    still show it is filled: one object, at the asked place."""
    image = _box_image()
    camera = camera_motion(resolve_camera_path("1.875s: pan right 0.25", 16, 8)[1], 16, 8, 64, 64)
    _, trajectories = resolve_trajectories(f"box: {13 / 64},{13 / 64} -> {45 / 64},{45 / 64}", 16, 8)
    field = trajectory_motion(image, trajectories, 16, 8, background=camera)
    assert field.cover is None
    last = _warp(image, field.flow)[-1]
    ys, xs = np.nonzero(np.all(last == BOX, axis=-1))
    assert _blobs(last, BOX) == 1 and (ys.min(), ys.max(), xs.min(), xs.max()) == (40, 49, 40, 49)
    torch.testing.assert_close(field.flow[0, :, -1, 2, 60], camera.flow[0, :, -1, 2, 60])  # the camera elsewhere
    assert np.array_equal(_warp(image, field.flow)[0], image)


def test_an_object_moving_onto_anothers_old_place_stays_whatever_the_order():
    image = np.full((64, 64, 3), BACKGROUND, np.uint8)
    image[8:18, 8:18] = BOX
    other = (40, 200, 60)
    image[8:18, 40:50] = other
    box_path = f"box: {13 / 64},{13 / 64} -> {45 / 64},{13 / 64}"  # onto the green square's place
    green_path = f"green: {45 / 64},{13 / 64} -> {45 / 64},{45 / 64}"  # which moves away, down
    for text in (f"{box_path}; {green_path}", f"{green_path}; {box_path}"):
        last = _warp(image, trajectory_motion(image, resolve_trajectories(text, 16, 8)[1], 16, 8).flow)[-1]
        assert np.all(last == BOX, axis=-1).sum() == 100 and np.all(last == other, axis=-1).sum() == 100
        assert _blobs(last, BOX) == 1 and np.all(last[40:50, 40:50] == other)


def test_render_motion_shows_the_moved_picture_and_what_it_cannot_know():
    from i2v.motion.motion_field import render_motion

    image = _box_image()
    camera = camera_motion(resolve_camera_path("1.875s: pan right 0.25", 16, 8)[1], 16, 8, 64, 64)
    frames, known = render_motion(image, camera)
    assert frames.shape == (16, 64, 64, 3) and known.shape == (16, 64, 64)
    assert known[0].all() and np.array_equal(frames[0], image)
    assert known[-1][:, :47].all() and not known[-1][:, 49:].any()  # the last 16 columns are revealed
    _, trajectories = resolve_trajectories(f"box: {13 / 64},{13 / 64} -> {45 / 64},{45 / 64}", 16, 8)
    frames, known = render_motion(image, trajectory_motion(image, trajectories, 16, 8))
    assert not known[-1][10:16, 10:16].any() and known[-1][44, 44] and known[-1][30, 5]  # its old place only


def test_a_chained_window_follows_its_stretch_of_the_camera_path():
    """A window starting at the video's frame s shows, at each pixel of its frame j, the content the whole
    path shows there in the video's frame s + j: following the window's flow back to frame s, then the
    video's flow from frame s back to frame 0, lands where the video's flow at s + j lands."""
    keyframes = resolve_camera_path("1s: pan right 0.3 zoom 1.5; 2.5s: tilt up 0.2", 24, 8)[1]
    start, length = 9, 8
    window = camera_motion(keyframes, length, 8, 32, 48, window=(start, 24)).flow[0]  # (2, T, H, W)
    whole = camera_motion(keyframes, 24, 8, 32, 48).flow[0]
    grid = base_grid(32, 48)[0]  # (H, W, 2)
    assert window.shape == (2, length, 32, 48) and not window[:, 0].any()
    for j in range(1, length):
        at_s = grid + window[:, j].permute(1, 2, 0)  # where each pixel's content is in frame s
        back = F.grid_sample(whole[None, :, start], at_s[None], mode="bilinear", align_corners=False)[0]  # affine: exact
        inside = (at_s.abs() < 1 - 1 / 32).all(-1)
        torch.testing.assert_close((at_s + back.permute(1, 2, 0))[inside],
                                   (grid + whole[:, start + j].permute(1, 2, 0))[inside], atol=1e-4, rtol=0)
    # the last window may run past the video's end: the path holds there
    assert camera_motion(keyframes, 6, 8, 32, 48, window=(20, 24)).flow.shape[1:3] == (2, 6)
    assert torch.equal(camera_motion(keyframes, 24, 8, 32, 48, window=(0, 24)).flow,
                       camera_motion(keyframes, 24, 8, 32, 48).flow)


def test_a_chained_window_moves_each_object_from_where_its_path_has_it():
    """A window starting at the video's frame s finds the object at the path's position at s (in its own
    first frame, the video's frame s) and moves it along the rest of the path."""
    image = np.full((64, 64, 3), BACKGROUND, np.uint8)
    image[24:34, 24:34] = BOX  # frame s of the video: the box at (29, 29), where the path has it at s
    _, trajectories = resolve_trajectories(f"box: 0s {5 / 64},{29 / 64} -> 1s {29 / 64},{29 / 64} -> "
                                           f"2s {61 / 64},{29 / 64}", 24, 8)  # from frame 8 on: 4 px a frame, right
    field = trajectory_motion(image, trajectories, 6, 8, window=(8, 24))
    last = _warp(image, field.flow)[-1]
    xs = np.nonzero(np.all(last == BOX, axis=-1))[1]
    assert (xs.min(), xs.max()) == (24 + 20, 33 + 20)  # 5 frames on: 20 pixels right
    assert np.all(last[24:34, 24:30] == BACKGROUND)
    # the last window may run past the video's end: the object stays at the path's last point
    tail = trajectory_motion(image, trajectories, 6, 8, window=(20, 24))
    assert tail.flow.shape[2] == 6 and torch.equal(tail.flow[:, :, 4], tail.flow[:, :, 5])


def test_an_object_grows_and_shrinks_about_its_centre_at_its_paths_sizes():
    image = np.full((64, 64, 3), BACKGROUND, np.uint8)
    image[24:40, 24:40] = BOX  # a 16 px box centred on (32, 32)
    for text, side in (("box: 0.5,0.5 -> 0.5,0.5 x2", 32), ("box: 0.5,0.5 -> 0.5,0.5 x0.5", 8)):
        _, trajectories = resolve_trajectories(text, 9, 8)
        frames = _warp(image, trajectory_motion(image, trajectories, 9, 8).flow)
        ys, xs = np.nonzero(np.all(frames[-1] == BOX, axis=-1))
        assert abs((ys.max() - ys.min() + 1) - side) <= 2 and abs((xs.max() - xs.min() + 1) - side) <= 2
        assert abs(ys.mean() - 31.5) <= 1 and abs(xs.mean() - 31.5) <= 1  # about its centre
        if side < 16:  # the ring it no longer covers shows the background
            assert np.all(frames[-1][24:26, 24:40] == BACKGROUND)
        mid = np.all(frames[4] == BOX, axis=-1).sum()
        assert min(16**2, side**2) < mid < max(16**2, side**2)  # geometric in between


def test_a_still_background_holds_the_frame_and_drops_the_residual_where_objects_move():
    from i2v.motion.motion_field import still_background

    image = _box_image()
    _, trajectories = resolve_trajectories(f"box: {13 / 64},{13 / 64} -> {45 / 64},{13 / 64}", 16, 8)
    field = trajectory_motion(image, trajectories, 16, 8, background=still_background(16, 64, 64))
    assert field.cover is None and field.flow[0, :, -1, 50:, :].abs().max() == 0
    keep = field.residual_keep(16, 16)
    assert keep[0, 0, -1, 3, 11] == 0 and keep[0, 0, -1, 12, 12] == 1


def test_an_anchored_window_moves_the_videos_first_frame_to_its_stretch_of_the_path():
    """An anchored window (a long video whose motion is planned whole) is made from the video's first frame:
    its frame 0 is that frame, and its frames 1.. show the object where the path has it in the video's
    frames start+1.., moved from where the first frame shows it."""
    image = _box_image()  # the video's first frame: the box at (13, 13)
    _, trajectories = resolve_trajectories(f"box: 0s {13 / 64},{13 / 64} -> 4s {45 / 64},{13 / 64}", 40, 8)
    field = trajectory_motion(image, trajectories, 6, 8, window=(20, 40), anchored=True)  # 1 px a frame, right
    frames = _warp(image, field.flow)
    assert np.array_equal(frames[0], image) and torch.equal(field.flow[:, :, 0], torch.zeros(1, 2, 64, 64))
    for j in range(1, 6):
        xs = np.nonzero(np.all(frames[j] == BOX, axis=-1))[1]
        assert (xs.min(), xs.max()) == (8 + 20 + j, 17 + 20 + j)  # the video's frame 20 + j
    assert np.all(frames[-1][8:18, 8:18] == BACKGROUND)  # the place it left, filled
