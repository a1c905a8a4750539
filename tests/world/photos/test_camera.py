import numpy as np
import pytest

from i2v.world.photos.camera import (
    CAMERA_MOTIONS,
    STATIC,
    CameraMove,
    camera_path,
    render_camera_clip,
    sample_camera_move,
    window_inside,
)
from i2v.world.photos.procedural import fractal_noise
from i2v.world.scenes import CAMERA_PANS, CAMERA_ZOOMS, PAN_RANGE, ZOOM_RANGE, sample_scene

SIZES = [(128, 128), (256, 256), (144, 256), (256, 144)]
H, W = 600, 900


def _dots(points, height=H, width=W, sigma=5.0) -> np.ndarray:
    """(H, W, 3) uint8 photo: soft white dots on black at photo points (x, y)."""
    y, x = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    img = sum(np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma**2)) for px, py in points)
    return np.repeat((np.clip(img, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _centroid(frame: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(x, y) intensity centroid in output-pixel coordinates (pixel centres at +0.5)."""
    g = frame[..., 0].astype(float)
    g[g < 4] = 0  # ignore interpolation dust
    if mask is not None:
        g = g * mask
    y, x = np.mgrid[0:g.shape[0], 0:g.shape[1]] + 0.5
    return np.array([(g * x).sum(), (g * y).sum()]) / g.sum()


def _project(move: CameraMove, point, t: int, num_frames: int = 16) -> np.ndarray:
    """Where a photo point appears in output frame t (x, y)."""
    cx, cy, ww, wh = move.windows(num_frames)[t]
    h, w = move.size
    return np.array([(point[0] - (cx - ww / 2)) * w / ww, (point[1] - (cy - wh / 2)) * h / wh])


def test_motion_names_are_the_shapes_worlds():
    assert set(CAMERA_MOTIONS) == {*CAMERA_PANS, *CAMERA_ZOOMS, STATIC}
    assert sample_scene(0, motion=STATIC).motion == STATIC  # "static" is a motion of that world too


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", sorted(CAMERA_PANS))
def test_pan_moves_content_the_planned_way_and_amount(kind, size):
    h, w = size
    move = CameraMove(kind, 0.3, (W / 2, H / 2), 300.0, size)
    dot = (W / 2, H / 2)
    clip = render_camera_clip(_dots([dot]), move)
    assert clip.shape == (16, h, w, 3) and clip.dtype == np.uint8
    path = camera_path(move)
    c0 = _centroid(clip[0])
    np.testing.assert_allclose(c0, _project(move, dot, 0), atol=0.25)
    for t in (5, 15):
        shift = _centroid(clip[t]) - c0
        np.testing.assert_allclose(shift, path[t, 1:], atol=0.3)
    assert np.allclose(path[:, 0], 1.0)
    # "pan left" = the camera turns left = the content slides RIGHT, as in the shapes world
    expected = -np.asarray(CAMERA_PANS[kind]) * 0.3 * np.array([w, h])
    np.testing.assert_allclose(path[-1, 1:], expected, atol=1e-9)


def test_pan_convention_matches_the_shapes_world_ground_truth():
    scene = sample_scene(3, motion="pan_left")
    tracks = scene.screen_tracks(128)  # (T, N, 2) pixels
    scene_shift = tracks[-1, 0] - tracks[0, 0]
    move = CameraMove("pan_left", scene.amount, (450.0, 300.0), 200.0, (128, 128))
    np.testing.assert_allclose(camera_path(move)[-1, 1:], scene_shift, atol=1e-6)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind,amount", [("zoom_in", 1.7), ("zoom_out", 1 / 1.6)])
def test_zoom_scales_content_by_the_planned_factor(kind, amount, size):
    h, w = size
    centre = (W / 2, H / 2)
    a, b = (centre[0] - 40, centre[1] - 20), (centre[0] + 40, centre[1] + 20)
    move = CameraMove(kind, amount, centre, 360.0, size)
    clip = render_camera_clip(_dots([a, b], sigma=4.0), move)
    path = camera_path(move)
    left = np.zeros((h, w))
    left[:, : w // 2] = 1

    def spread(frame):
        return np.linalg.norm(_centroid(frame, 1 - left) - _centroid(frame, left))

    for t in (7, 15):
        assert spread(clip[t]) / spread(clip[0]) == pytest.approx(path[t, 0], rel=0.01)
        np.testing.assert_allclose(_centroid(clip[t], left), _project(move, a, t), atol=0.35)
    assert path[-1, 0] == pytest.approx(amount)
    assert np.allclose(path[:, 1:], 0.0)
    assert np.all(np.diff(np.log(path[:, 0])) == pytest.approx(np.log(amount) / 15))  # constant speed


def test_static_is_identical_frames():
    photo = fractal_noise(0, 300, 400)
    move = CameraMove(STATIC, 0.0, (200.5, 150.25), 301.7, (144, 256))
    clip = render_camera_clip(photo, move, num_frames=8)
    assert clip.shape == (8, 144, 256, 3)
    assert all(np.array_equal(clip[0], f) for f in clip)
    assert np.allclose(camera_path(move, 8), [[1.0, 0.0, 0.0]] * 8)


def test_a_window_the_size_of_the_photo_is_the_photo_resized():
    import cv2

    photo = fractal_noise(1, 256, 384)
    move = CameraMove(STATIC, 0.0, (192.0, 128.0), 384.0, (128, 192))
    frame = render_camera_clip(photo, move, num_frames=1)[0]
    expected = cv2.resize(photo, (192, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 1.0


def test_revealed_content_is_the_photos():
    photo = fractal_noise(2, 400, 600)
    # one photo pixel per output pixel and a 64-pixel travel: first and last frames are plain crops
    move = CameraMove("pan_right", 0.25, (250.0, 200.0), 256.0, (256, 256))
    clip = render_camera_clip(photo, move)
    np.testing.assert_array_equal(clip[0], photo[72:328, 122:378])
    np.testing.assert_array_equal(clip[-1], photo[72:328, 186:442])  # content from right of the first view


def test_output_aspect_must_match_the_window():
    move = CameraMove(STATIC, 0.0, (100.0, 100.0), 100.0, (128, 128))
    with pytest.raises(ValueError, match="aspect"):
        render_camera_clip(fractal_noise(0, 200, 200), move, size=(144, 256))
    assert render_camera_clip(fractal_noise(0, 200, 200), move, size=(256, 256), num_frames=2).shape == (2, 256, 256, 3)


def test_bad_moves_are_clear_errors():
    with pytest.raises(ValueError, match="unknown camera motion"):
        CameraMove("dolly_zoom", 1.0, (0.0, 0.0), 1.0, (8, 8))
    with pytest.raises(ValueError, match="zoom factor"):
        CameraMove("zoom_in", 0.5, (0.0, 0.0), 1.0, (8, 8))
    with pytest.raises(ValueError, match="unknown camera motion"):
        sample_camera_move(np.random.default_rng(0), (100, 100), (8, 8), kind="spin")


def _check_sampled(move: CameraMove, photo_shape, size) -> None:
    assert move.kind in CAMERA_MOTIONS and move.size == size
    assert window_inside(move, photo_shape, 16) and window_inside(move, photo_shape, 3)
    if move.kind in CAMERA_PANS:
        assert PAN_RANGE[0] <= move.amount <= PAN_RANGE[1]
    elif move.kind == "zoom_in":
        assert ZOOM_RANGE[0] <= move.amount <= ZOOM_RANGE[1]
    elif move.kind == "zoom_out":
        assert ZOOM_RANGE[0] <= 1 / move.amount <= ZOOM_RANGE[1]
    win = move.windows(16)
    assert np.allclose(win[:, 3] / win[:, 2], size[0] / size[1])  # the photo is never stretched


def test_sampled_moves_stay_inside_the_photo():
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(300):
        photo_shape = (int(rng.integers(200, 2049)), int(rng.integers(200, 2049)), 3)
        size = SIZES[int(rng.integers(len(SIZES)))]
        move = sample_camera_move(rng, photo_shape, size)
        _check_sampled(move, photo_shape, size)
        kinds.add(move.kind)
    assert kinds == set(CAMERA_MOTIONS)


def test_sampled_move_is_a_function_of_the_generator_state():
    a = sample_camera_move(np.random.default_rng(5), (700, 1000, 3), (144, 256))
    b = sample_camera_move(np.random.default_rng(5), (700, 1000, 3), (144, 256))
    assert a == b and CameraMove.from_dict(a.to_dict()) == a


def test_sampled_clip_renders_at_every_size():
    photo = fractal_noise(4, 720, 1280)
    rng = np.random.default_rng(1)
    for size in SIZES:
        for kind in CAMERA_MOTIONS:
            clip = render_camera_clip(photo, sample_camera_move(rng, photo.shape, size, kind=kind), num_frames=4)
            assert clip.shape == (4, *size, 3) and clip.dtype == np.uint8
            assert clip.std() > 5


def test_window_inside_property():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=200, deadline=None)
    @hypothesis.given(seed=st.integers(0, 2**32 - 1), photo_h=st.integers(64, 3000), photo_w=st.integers(64, 3000),
                      size=st.sampled_from(SIZES), kind=st.sampled_from(CAMERA_MOTIONS),
                      num_frames=st.integers(2, 40))
    def check(seed, photo_h, photo_w, size, kind, num_frames):
        move = sample_camera_move(np.random.default_rng(seed), (photo_h, photo_w, 3), size, kind=kind)
        _check_sampled(move, (photo_h, photo_w), size)
        assert window_inside(move, (photo_h, photo_w), num_frames)

    check()
