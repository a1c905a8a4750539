"""Camera-motion class (VBench edge rules on a tracked grid) on clips with known camera motion."""

import numpy as np
import pytest

from i2v.world.scenes import render, sample_scene
from i2v.metrics import CAMERA_CLASSES, camera_motion_class
from i2v.metrics.camera import classify_edges, dominant_motion, grid_points

from .synthetic import pan_clip, static_clip, zoom_clip


# i2v convention: the camera pans left = the content slides right
@pytest.mark.parametrize("content_motion, expected", [
    ((2.0, 0.0), "pan_left"), ((-2.0, 0.0), "pan_right"), ((0.0, 2.0), "pan_up"), ((0.0, -2.0), "pan_down"),
])
def test_textured_pans(content_motion, expected):
    result = camera_motion_class(pan_clip(*content_motion))
    assert result["label"] == expected
    assert result["classes"] == [expected]
    assert result["coverage"] == 1.0
    # every edge point moved by the whole pan, 7 steps of 2 px
    for vector in result["edges"].values():
        np.testing.assert_allclose(vector, np.multiply(content_motion, 7), atol=0.7)


def test_diagonal_pan_names_both_directions():
    result = camera_motion_class(pan_clip(2.0, 2.0))
    assert result["label"] == "pan_left+pan_up"
    assert {"pan_left", "pan_up"} <= set(result["classes"])


@pytest.mark.parametrize("rate, expected", [(1.04, "zoom_in"), (1 / 1.04, "zoom_out")])
def test_textured_zooms(rate, expected):
    result = camera_motion_class(zoom_clip(rate))
    assert result["label"] == expected and expected in result["classes"]


def test_static_clip_is_static():
    result = camera_motion_class(static_clip())
    assert result["label"] == "static" and result["classes"] == ["static"]
    assert all(v == [0.0, 0.0] for v in result["edges"].values())


@pytest.mark.parametrize("seed, motion, opposite", [(0, "pan_left", "pan_right"), (1, "pan_up", "pan_down"),
                                                    (3, "zoom_in", "zoom_out")])
def test_ground_truth_procedural_clips_and_their_reversal(seed, motion, opposite):
    # the world's own camera motions (flat or smooth backgrounds: tracked through the shapes)
    frames = render(sample_scene(seed, motion=motion), size=64)
    assert camera_motion_class(frames)["label"] == motion
    # played backwards, the camera moves the other way
    assert camera_motion_class(np.ascontiguousarray(frames[::-1]))["label"] == opposite


def test_vbench_edge_tables():
    r, left, up, down, still = (3, 0), (-3, 0), (0, -3), (0, 3), (0, 0)
    assert classify_edges(r, r, r, r, 1.0) == ["pan_left"]
    assert classify_edges(left, left, left, left, 1.0) == ["pan_right"]
    assert classify_edges(down, down, down, down, 1.0) == ["pan_up"]
    assert classify_edges(up, down, left, r, 1.0) == ["zoom_in"]
    assert classify_edges(down, up, r, left, 1.0) == ["zoom_out"]
    assert classify_edges(still, still, still, still, 1.0) == ["static"]
    assert classify_edges((0.5, 0), (0.5, 0), (0.5, 0), (0.5, 0), 1.0) == ["static"]  # below threshold
    assert classify_edges(r, left, still, still, 1.0) == ["static"]  # VBench: the static left/right pair decides
    assert classify_edges(r, left, up, down, 1.0) == []  # a rotation: no pair fits the tables
    assert dominant_motion(r, r, r, r, 1.0) == ["pan_left"]
    assert dominant_motion((3, 2), (3, 2), (3, 2), (3, 2), 1.0) == ["pan_left", "pan_up"]
    assert dominant_motion((3, 0.5), (3, 0.5), (3, 0.5), (3, 0.5), 0.2) == ["pan_left"]  # 0.5 < half of 3


def test_grid_is_cotrackers():
    pts = grid_points(64, 64)
    assert pts.shape == (100, 2)
    np.testing.assert_allclose(pts[0], [1.0, 1.0])  # margin = W / 64
    np.testing.assert_allclose(pts[-1], [63.0, 63.0])
    assert pts[1, 0] > pts[0, 0] and pts[1, 1] == pts[0, 1]  # row by row
    assert set(CAMERA_CLASSES) == {"pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "static"}
