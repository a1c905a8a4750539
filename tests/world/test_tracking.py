"""Colour tracking and camera-motion estimation against the procedural world's ground truth."""

import math

import numpy as np
import pytest

from i2v.world.scenes import (BACKGROUND_COLOURS, BACKGROUND_KINDS, COLOURS, SIZE, Scene, SceneObject, render,
                            sample_scene)
from i2v.world.tracking import colour_masks, estimate_camera_motion, track_colour, track_objects

NAMES = list(COLOURS)


def _scene(objects, background, colours, motion="static", target=None, amount=0.0, num_frames=1, seed=7):
    return Scene(objects, background, colours, 0.7, seed, motion, target, amount, num_frames)


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_every_colour_over_every_background_is_found_exactly(kind):
    # every object colour over every background tone of this kind (3 objects per background),
    # checked against the analytic centre; colours not in the scene must match nothing
    for b in range(len(BACKGROUND_COLOURS)):
        bg = (BACKGROUND_COLOURS[b], BACKGROUND_COLOURS[(b + 3) % len(BACKGROUND_COLOURS)])
        names = [NAMES[(3 * b + k) % len(NAMES)] for k in range(3)]
        shapes = ("circle", "square", "triangle")
        objects = [SceneObject(shapes[(b + k) % 3], c, 0.2 + 0.3 * k, 0.3 + 0.2 * k, 0.08) for k, c in enumerate(names)]
        scene = _scene(objects, kind, bg, seed=b)
        frames = render(scene)
        truth = scene.screen_tracks()
        for k, name in enumerate(names):
            centroids, areas = track_colour(frames, COLOURS[name])
            # the mask's centroid is the shape's centre (the triangle's SDF origin is its centroid)
            np.testing.assert_allclose(centroids, truth[:, k], atol=0.75, err_msg=f"{name} over {kind} {bg}")
            r_px = 0.08 * SIZE
            # analytic areas; the triangle's side is 2r
            expected = {"circle": math.pi * r_px**2, "square": 4 * r_px**2,
                        "triangle": math.sqrt(3) * r_px**2}[objects[k].shape]
            assert np.all(np.abs(areas / expected - 1) < 0.12), (name, objects[k].shape, areas, expected)
        absent = [name for name in NAMES if name not in names]
        assert not colour_masks(frames, [COLOURS[n] for n in absent]).any(), f"{absent} matched over {kind} {bg}"


def test_tracks_follow_moving_objects_and_report_absence():
    for seed, motion in [(11, "move_down_right"), (12, "grow"), (13, "pan_left"), (14, "zoom_in")]:
        scene = sample_scene(seed, motion=motion, num_objects=3)
        frames = render(scene)
        truth = scene.screen_tracks()
        tracks = track_objects(frames, [COLOURS[o.colour] for o in scene.objects])
        for k, track in enumerate(tracks):
            ok = (track.areas > 0) & ~track.touches_border  # clipped objects' centroids shift inward
            assert ok.sum() >= 4
            np.testing.assert_allclose(track.centroids[ok], truth[ok, k], atol=0.75)
    absent = next(c for c in NAMES if c not in {o.colour for o in scene.objects})
    centroids, areas = track_colour(frames, COLOURS[absent])
    assert centroids.shape == (len(frames), 2) and np.isnan(centroids).all() and (areas == 0).all()


def test_similar_colours_side_by_side_stay_apart():
    objects = [SceneObject("square", "orange", 0.35, 0.5, 0.1), SceneObject("circle", "yellow", 0.62, 0.5, 0.1),
               SceneObject("square", "red", 0.5, 0.2, 0.08)]
    scene = _scene(objects, "solid", (BACKGROUND_COLOURS[7], BACKGROUND_COLOURS[0]))
    frames = render(scene)
    truth = scene.screen_tracks()
    for k, obj in enumerate(objects):
        centroids, _ = track_colour(frames, COLOURS[obj.colour])
        np.testing.assert_allclose(centroids, truth[:, k], atol=0.75)


def test_stray_pixels_do_not_pull_the_centroid():
    scene = _scene([SceneObject("circle", "red", 0.3, 0.3, 0.1)], "solid", (BACKGROUND_COLOURS[0],) * 2, num_frames=2)
    frames = render(scene).copy()
    frames[:, 120:122, 120:122] = COLOURS["red"]  # a 4-pixel speck far away
    centroids, _ = track_colour(frames, COLOURS["red"])
    np.testing.assert_allclose(centroids, scene.screen_tracks()[:, 0], atol=0.75)


def _three_shapes(motion, amount, background="gradient"):
    objects = [SceneObject("square", "red", 0.35, 0.35, 0.08), SceneObject("triangle", "blue", 0.65, 0.4, 0.08),
               SceneObject("circle", "white", 0.45, 0.66, 0.08)]
    return _scene(objects, background, (BACKGROUND_COLOURS[1], BACKGROUND_COLOURS[4]), motion, None, amount, 16)


@pytest.mark.parametrize("motion", ["pan_left", "pan_right", "pan_up", "pan_down"])
def test_camera_pan_gives_content_shift_opposite_to_the_pan(motion):
    scene = _three_shapes(motion, 0.3)
    est = estimate_camera_motion(render(scene))
    centre, _ = scene.camera()
    expected = -(centre[-1] - centre[0]) * SIZE  # pan left -> content moves right (+x)
    assert est["ok"]
    np.testing.assert_allclose([est["dx"], est["dy"]], expected, atol=0.1 * 0.3 * SIZE)
    assert est["scale"] == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize("motion,amount", [("zoom_in", 1.6), ("zoom_out", 1 / 1.6)])
def test_camera_zoom_gives_scale(motion, amount):
    est = estimate_camera_motion(render(_three_shapes(motion, amount, background="solid")))
    assert est["scale"] == pytest.approx(amount, rel=0.1)
    assert abs(est["dx"]) < 3 and abs(est["dy"]) < 3


def test_camera_static_and_featureless():
    frames = render(_three_shapes("static", 0.0, background="noise"))
    est = estimate_camera_motion(frames)
    assert est["ok"] and est["dx"] == pytest.approx(0, abs=0.2) and est["dy"] == pytest.approx(0, abs=0.2)
    assert est["scale"] == pytest.approx(1.0, abs=0.01)
    flat = np.full((8, 64, 64, 3), 120, dtype=np.uint8)  # nothing to track at all
    est = estimate_camera_motion(flat)
    assert (est["dx"], est["dy"], est["scale"], est["ok"], est["coverage"]) == (0.0, 0.0, 1.0, False, 0.0)
    est = estimate_camera_motion(frames[:1])
    assert (est["dx"], est["dy"], est["scale"], est["ok"]) == (0.0, 0.0, 1.0, False)
