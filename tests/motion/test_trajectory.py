"""Trajectories: parsing, checks, per-frame positions and the object region under a point."""

import numpy as np
import pytest

from i2v.errors import InvalidRequestError
from i2v.motion.trajectory import Trajectory, object_region, resolve_trajectories


def test_text_json_and_dict_give_the_same_trajectories():
    text = "red ball: 0.3,0.5 -> 0.7,0.5; the boat: 0s 0.2,0.8 -> 1s 0.2,0.6"
    as_json = '{"red ball": [[0.3, 0.5], [0.7, 0.5]], "the boat": [[0, 0.2, 0.8], [1, 0.2, 0.6]]}'
    as_dict = {"red ball": [[0.3, 0.5], [0.7, 0.5]], "the boat": [[0, 0.2, 0.8], [1, 0.2, 0.6]]}
    results = [resolve_trajectories(v, 16, 8) for v in (text, as_json, as_dict)]
    assert results[0] == results[1] == results[2]
    assert results[0][0] == "red ball: 0.3,0.5 -> 0.7,0.5; the boat: 0s 0.2,0.8 -> 1s 0.2,0.6"
    assert resolve_trajectories(results[0][0], 16, 8) == results[0]


def test_unnamed_paths_get_a_name():
    _, (t,) = resolve_trajectories("0.1,0.1 -> 0.9,0.9", 16, 8)
    assert t.name == "object 1"


def test_points_without_times_spread_over_the_video_and_times_hold_after_the_last():
    even = Trajectory("a", ((None, 0.0, 0.0), (None, 1.0, 0.5)))
    np.testing.assert_allclose(even.positions(16, 8)[[0, 15]], [[0, 0], [1, 0.5]])
    np.testing.assert_allclose(even.positions(16, 8)[5], [1 / 3, 1 / 6])
    timed = Trajectory("a", ((0.0, 0.2, 0.2), (1.0, 0.6, 0.2)))
    positions = timed.positions(16, 8)
    np.testing.assert_allclose(positions[4], [0.4, 0.2])
    np.testing.assert_allclose(positions[8:], [[0.6, 0.2]] * 8)


@pytest.mark.parametrize("value, message", [
    ("a: 0.3,0.5", "at least two points"),
    ("a: 0.3,0.5 -> 1.2,0.5", "outside the frame"),
    ("a: 0.3 0.5 -> 0.6,0.5", "cannot read the point"),
    ("a: 0s 0.3,0.5 -> 0.6,0.5", "a time on every point or on none"),
    ("a: 0.5s 0.3,0.5 -> 1s 0.6,0.5", "first point is where the object is"),
    ("a: 0s 0.3,0.5 -> 1s 0.6,0.5 -> 0.5s 0.6,0.6", "times must rise"),
    ("a: 0s 0.3,0.5 -> 5s 0.6,0.5", "after the video ends"),
    ("a: 0.1,0.1 -> 0.2,0.2; a: 0.5,0.5 -> 0.6,0.6", "two paths are named"),
    ("{\"a\": [[0.1]]}", "a point is"),
    ("{\"a\": 3}", "needs a list of points"),
    ("{bad", "not valid JSON"),
    (7, "a dict"),
])
def test_bad_trajectories_are_refused_with_the_reason(value, message):
    with pytest.raises(InvalidRequestError, match=message):
        resolve_trajectories(value, 16, 8)


def test_the_region_is_the_object_under_the_point():
    image = np.full((64, 64, 3), 120, np.uint8)
    image[10:20, 30:44] = (200, 30, 30)  # a red box
    region = object_region(image, (37 / 64, 15 / 64))
    ys, xs = np.nonzero(region)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (9, 20, 29, 44)  # the box and its one-pixel rim


def test_a_point_on_texture_falls_back_to_a_small_disc():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    region = object_region(image, (0.5, 0.5))
    assert region[32, 32] and 9 <= region.sum() < 0.05 * 64 * 64


def test_sizes_read_from_text_and_json_carry_and_change_geometrically():
    text, (t,) = resolve_trajectories("ball: 0.3,0.5 -> 0.5,0.5 x2 -> 0.7,0.5", 9, 8)
    assert text == "ball: 0.3,0.5 -> 0.5,0.5 x2 -> 0.7,0.5" and t.sizes == (None, 2.0, None)
    assert resolve_trajectories('{"ball": [[null, 0.3, 0.5, null], [null, 0.5, 0.5, 2], [0.7, 0.5]]}', 9, 8)[0] == text
    assert resolve_trajectories([t], 9, 8)[0] == text
    np.testing.assert_allclose(t.scales(9, 8), [1, 2**0.25, 2**0.5, 2**0.75, 2, 2, 2, 2, 2])
    assert Trajectory("a", ((None, 0.1, 0.1), (None, 0.2, 0.2))).scales(4, 8).tolist() == [1, 1, 1, 1]
    assert resolve_trajectories("ball: 0s 0.3,0.5 -> 1s 0.3,0.5 x0.5", 9, 8)[0] == "ball: 0s 0.3,0.5 -> 1s 0.3,0.5 x0.5"


@pytest.mark.parametrize("value, message", [("a: 0.3,0.5 -> 0.6,0.5 x5", "sizes are factors"),
                                            ("a: 0.3,0.5 -> 0.6,0.5 x0", "sizes are factors"),
                                            ("a: 0.3,0.5 x2 -> 0.6,0.5", "first point has size"),
                                            ('{"a": [[null, 0.3, 0.5, "big"], [0.6, 0.5]]}', "must be a number"),
                                            ("a: 0.3,0.5 -> 0.6,0.5 2", "cannot read the point")])
def test_bad_sizes_are_refused(value, message):
    with pytest.raises(InvalidRequestError, match=message):
        resolve_trajectories(value, 16, 8)


def test_a_trajectory_with_fewer_sizes_than_points_is_refused():
    with pytest.raises(InvalidRequestError, match="3 points and 2 sizes"):  # refused when it is made
        resolve_trajectories([Trajectory("a", ((None, 0.1, 0.1), (None, 0.2, 0.2), (None, 0.3, 0.3)), (None, 2.0))],
                             16, 8)
