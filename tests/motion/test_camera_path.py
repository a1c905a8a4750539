"""Camera paths: parsing, checks before any weights load, per-frame values and stretch classes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from i2v.errors import InvalidRequestError
from i2v.motion.camera_path import (
    CameraKeyframe,
    camera_values,
    content_path,
    parse_camera_text,
    resolve_camera_path,
    segment_classes,
)


def test_text_with_direction_words_reads_as_signed_values():
    keyframes = parse_camera_text("1s: pan left 0.2 tilt up 0.1; 1.5: zoom out 2; 1.8s: zoom in 1.5 pan right 0.3")
    assert keyframes == [CameraKeyframe(1.0, pan=-0.2, tilt=0.1), CameraKeyframe(1.5, zoom=0.5),
                         CameraKeyframe(1.8, pan=0.3, zoom=1.5)]


def test_canonical_text_reads_back_to_the_same_path():
    text, keyframes = resolve_camera_path("0.5s: pan right 0.25; 1.5s: zoom in 1.4 tilt down 0.1", 16, 8)
    assert text == "0.5s: pan 0.25; 1.5s: tilt -0.1 zoom 1.4"
    assert resolve_camera_path(text, 16, 8) == (text, keyframes)


def test_json_list_and_python_list_give_the_same_path():
    as_json = resolve_camera_path('[{"time": 1, "pan": 0.2}, {"time": 1.5, "zoom": 1.3}]', 16, 8)
    as_list = resolve_camera_path([{"time": 1, "pan": 0.2}, {"time": 1.5, "zoom": 1.3}], 16, 8)
    assert as_json == as_list == ("1s: pan 0.2; 1.5s: zoom 1.3", (CameraKeyframe(1, pan=0.2), CameraKeyframe(1.5, zoom=1.3)))


@pytest.mark.parametrize("path, message", [
    ("pan 0.2", "does not start with a time"),
    ("1s: roll 0.2", "cannot read"),
    ("1s:", "cannot read"),
    ("1s: pan up 0.2", "pan goes left or right"),
    ("1s: pan 0.2; 0.5s: zoom 1.2", "times must rise"),
    ("0s: pan 0.2", "the first frame is the input image"),
    ("3s: pan 0.2", "after the video ends"),
    ("1s: zoom 9", "outside"),
    ("1s: zoom out 0", "not a finite number"),
    ("1s: pan 5", "frames of travel"),
    ("[{\"time\": 1}]", "each keyframe is a time and some of"),
    ("[{\"time\": 1, \"pan\": \"left\"}]", "must be a number"),
    ("[1, 2", "not valid JSON"),
    (42, "a list of keyframes"),
])
def test_bad_paths_are_refused_with_the_reason(path, message):
    with pytest.raises(InvalidRequestError, match=message):
        resolve_camera_path(path, 16, 8)


def test_values_start_at_rest_carry_unset_axes_and_hold_after_the_last_keyframe():
    # 1s (frame 8): pan 0.4; 1.5s (frame 12): zoom 2, pan held at 0.4
    values = camera_values([CameraKeyframe(1.0, pan=0.4), CameraKeyframe(1.5, zoom=2.0)], 16, 8)
    np.testing.assert_allclose(values[0], [0, 0, 1])
    np.testing.assert_allclose(values[4], [0.2, 0, 1])  # half-way to the first keyframe
    np.testing.assert_allclose(values[8], [0.4, 0, 1])  # the zoom has not started
    np.testing.assert_allclose(values[10], [0.4, 0, np.sqrt(2)])  # geometric zoom
    np.testing.assert_allclose(values[12:], [[0.4, 0, 2]] * 4)


def test_content_moves_against_the_camera():
    path = content_path([CameraKeyframe(1.0, pan=0.25, tilt=0.5)], 16, 8, height=64, width=128)
    scale, dx, dy = path[8]
    assert scale == 1 and dx == pytest.approx(-32) and dy == pytest.approx(32)  # pans right: slides left; tilts up: down


def test_each_stretch_between_keyframes_has_the_class_of_its_main_move():
    keyframes = resolve_camera_path("0.5s: pan right 0.3; 1s: pan 0.3 tilt down 0.2; 1.5s: zoom 1.5; 1.875s: zoom 1.5",
                                    16, 8)[1]
    assert segment_classes(keyframes, 16, 8) == [(0, 4, "pan_right"), (4, 8, "pan_down"), (8, 12, "zoom_in"),
                                                 (12, 15, "static")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1.875, allow_subnormal=False), st.sampled_from(["pan", "tilt", "zoom"]),
                          st.floats(-2, 2, allow_subnormal=False)), min_size=1, max_size=6))
def test_what_is_recorded_runs_again_as_the_same_path(keyframes):
    """Any list the checks accept is recorded as text that reads back to the keyframes that ran (tiny and
    long numbers included); anything else is refused with an InvalidRequestError, never another error."""
    items = [{"time": t, axis: (2 ** v if axis == "zoom" else v)} for t, axis, v in keyframes]
    try:
        text, resolved = resolve_camera_path(items, 16, 8)
    except InvalidRequestError:
        return
    assert resolve_camera_path(text, 16, 8) == (text, resolved)
    assert camera_values(resolved, 16, 8).shape == (16, 3)


@pytest.mark.parametrize("value", [1e-05, 1.0000001, 123.456789123, 0.1 + 0.2])
def test_numbers_are_written_without_exponents(value):
    text, (keyframe,) = resolve_camera_path([{"time": 1, "pan": value % 2}], 16, 8)
    assert "e" not in text and resolve_camera_path(text, 16, 8)[1] == (keyframe,)
