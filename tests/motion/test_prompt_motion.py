"""A named shape's move from the prompt: finding the world's objects in a frame (over flat backgrounds and
photographs), picking the named one, its straight move, and the plan a reader's decision gives."""

import numpy as np
import pytest
import torch

from i2v.motion.motion_field import still_background, trajectory_motion
from i2v.motion.prompt_motion import (
    CLIP_SECONDS,
    HOLD_STILL,
    TRAVEL,
    FoundObject,
    find_objects,
    object_move,
    pick_object,
    plan_from_prompt,
    plan_video,
    plans_object,
)
from i2v.motion.trajectory import resolve_trajectories
from i2v.prompt_schedule import PromptSegment, resolve_schedule
from i2v.world.scenes import COLOURS, SIZE, Scene, SceneObject, render

PHOTO = np.random.default_rng(0).integers(70, 170, size=(200, 300, 3), dtype=np.uint8)  # muted texture


def _scene(objects, motion="move_right"):
    return Scene(objects=objects, background="noise", background_colours=((110, 110, 110), (150, 150, 150)),
                 background_angle=0.0, noise_seed=3, motion=motion, target=0, amount=0.3)


def test_finds_each_object_with_its_colour_shape_and_centre():
    objects = [SceneObject("circle", "red", 0.25, 0.3, 0.1), SceneObject("square", "blue", 0.7, 0.35, 0.09),
               SceneObject("triangle", "yellow", 0.5, 0.75, 0.11)]
    found = {o.colour: o for o in find_objects(render(_scene(objects))[0])}
    assert set(found) == {"red", "blue", "yellow"}
    for obj in objects:
        f = found[obj.colour]
        assert f.shape == obj.shape
        assert abs(f.centre[0] - obj.x) < 0.03 and abs(f.centre[1] - obj.y) < 0.06  # a triangle's centroid is lower


def test_finds_a_shape_over_a_photograph_and_ignores_the_photo():
    scene = _scene([SceneObject("square", "green", 0.6, 0.4, 0.1)])
    frame = render(scene, photo=PHOTO)[0]
    found = find_objects(frame)
    assert [(o.colour, o.shape) for o in found] == [("green", "square")]
    assert find_objects(np.ascontiguousarray(PHOTO[:128, :128])) == []


def _sure(label: str, labels) -> dict[str, float]:
    return {k: (0.9 if k == label else 0.1 / (len(labels) - 1)) for k in labels}


COLOUR_LABELS = (*COLOURS, "none")
SHAPE_LABELS = ("circle", "square", "triangle", "any", "none")


def test_picks_the_object_most_likely_named():
    found = [FoundObject("red", "circle", (0.2, 0.2), (0.05, 0.05), 0.01),
             FoundObject("blue", "circle", (0.7, 0.7), (0.1, 0.1), 0.03),
             FoundObject("blue", "square", (0.3, 0.7), (0.05, 0.05), 0.01)]

    def pick(colour, shape):
        return pick_object(found, _sure(colour, COLOUR_LABELS), _sure(shape, SHAPE_LABELS))

    assert pick("red", "circle") is found[0]
    assert pick("blue", "any") is found[1]  # the larger of two blue ones
    assert pick("none", "square") is found[2]
    assert pick("blue", "triangle") is found[1]  # the colour picks it out; the outline is rough
    assert pick("green", "triangle") is None  # nothing the frame shows is what the prompt names
    # an unsure colour word finds the one object it can mean among those the frame shows
    unsure = {"white": 0.5, "red": 0.3, **{c: 0.2 / 7 for c in COLOUR_LABELS if c not in ("white", "red")}}
    assert pick_object(found, unsure, _sure("circle", SHAPE_LABELS)) is found[0]
    assert pick_object([], _sure("red", COLOUR_LABELS), _sure("circle", SHAPE_LABELS)) is None


@pytest.mark.parametrize("direction, sign", [("right", (1, 0)), ("left", (-1, 0)), ("up", (0, -1)),
                                             ("down_left", (-1, 1))])
def test_a_move_goes_the_named_way_by_the_worlds_travel_and_stays_inside(direction, sign):
    obj = FoundObject("red", "circle", (0.5, 0.5), (0.08, 0.08), 0.02)
    (x0, y0), (x1, y1) = object_move(obj, direction, 128, 128)
    assert (x0, y0) == (0.5, 0.5)
    assert np.sign(x1 - x0) == sign[0] and np.sign(y1 - y0) == sign[1]
    if sign[1] == 0:
        assert x1 - x0 == pytest.approx(sign[0] * TRAVEL)
    near_edge = FoundObject("red", "circle", (0.85, 0.5), (0.08, 0.08), 0.02)
    (_, _), (x1, _) = object_move(near_edge, "right", 128, 128)
    assert x1 <= 1 - 0.08


def test_travel_is_the_same_in_pixels_along_either_side_of_a_wide_frame():
    obj = FoundObject("red", "circle", (0.5, 0.5), (0.04, 0.07), 0.02)
    (x0, _), (x1, _) = object_move(obj, "right", 144, 256)
    (_, y0), (_, y1) = object_move(obj, "down", 144, 256)
    assert (x1 - x0) * 256 == pytest.approx((y1 - y0) * 144)


def test_only_a_named_shapes_move_or_size_change_is_planned():
    assert plans_object("move_left", "circle") and plans_object("move_up", "any") and plans_object("grow", "square")
    assert not plans_object("move_left", "none")  # "the dog runs left"
    assert not plans_object("pan_left", "none") and not plans_object("still", "circle")


class FakeReader:
    """What a trained reader returns, fixed: each head's label at probability p, the rest spread evenly."""

    def __init__(self, motion, colour, shape, p=0.9):
        from i2v.world.reader_captions import MOTIONS

        def spread(label, labels):
            return {k: (p if k == label else (1 - p) / (len(labels) - 1)) for k in labels}

        self.answer = {"motion": spread(motion, MOTIONS), "colour": spread(colour, COLOUR_LABELS),
                       "shape": spread(shape, SHAPE_LABELS)}

    def encode(self, text_encoder, prompts):
        text = text_encoder.encode(prompts)
        return text.states, text.mask

    def probabilities(self, states, mask):
        return [self.answer]


class FakeEncoder:
    def encode(self, prompts):
        from i2v.conditioning import TextEmbedding
        return TextEmbedding(torch.zeros(1, 3, 384), torch.zeros(1, 384), torch.ones(1, 3))


def test_a_plan_moves_the_found_object_and_nothing_else():
    scene = _scene([SceneObject("circle", "red", 0.3, 0.5, 0.1), SceneObject("square", "blue", 0.7, 0.3, 0.08)])
    frame = render(scene, photo=PHOTO)[0]
    planned = plan_from_prompt(FakeReader("move_right", "red", "circle"), FakeEncoder(), "the red ball rolls right",
                               frame).trajectory
    assert planned.name == "red circle"
    (_, x0, y0), (_, x1, y1) = planned.points
    assert x0 == pytest.approx(0.3, abs=0.02) and x1 == pytest.approx(0.3 + TRAVEL, abs=0.02) and y1 == y0
    field = trajectory_motion(frame, [planned], 8, 8, background=still_background(8, SIZE, SIZE))
    flow = field.flow[0, :, -1]  # (2, H, W) at the last frame
    assert flow[:, 20, 110].abs().max() == 0  # the blue square's place: still
    assert flow[0, 64, int((0.3 + TRAVEL) * SIZE)] < 0  # the circle's new place looks back to the left
    keep = field.residual_keep(16, 16)[0, 0, -1]  # the network's residual is dropped where the object moves
    assert keep.min() == 0 and keep.max() == 1


@pytest.mark.parametrize("reader", [FakeReader("pan_left", "none", "none"), FakeReader("still", "red", "circle"),
                                    FakeReader("zoom_in", "none", "none"), FakeReader("move_left", "green", "square")])
def test_no_plan_for_a_camera_move_a_still_shot_or_an_absent_shape(reader):
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1)]))[0]
    assert plan_from_prompt(reader, FakeEncoder(), "some prompt", frame) is None


@pytest.mark.parametrize("reader", [FakeReader("move_left", "none", "none"), FakeReader("move_left", "red", "none"),
                                    FakeReader("other", "none", "none"), FakeReader("other", "red", "circle"),
                                    FakeReader("move_left", "red", "none", p=0.6)])
def test_a_subject_the_model_cannot_move_holds_the_frame_still(reader):
    """"the dog runs left", "the red car drives left", "the dog runs", "the red ball spins"."""
    from i2v.motion.prompt_motion import HOLD_STILL

    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1)]))[0]
    planned = plan_from_prompt(reader, FakeEncoder(), "some prompt", frame)
    assert planned.trajectory is None and planned.text == HOLD_STILL


def test_an_empty_prompt_is_not_read():
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1)]))[0]
    assert plan_from_prompt(FakeReader("move_left", "red", "circle"), FakeEncoder(), "  ", frame) is None


def test_palette_colours_are_what_it_looks_for():
    frame = np.full((64, 64, 3), 128, np.uint8)
    frame[20:36, 20:36] = COLOURS["purple"]
    (found,) = find_objects(frame)
    assert (found.colour, found.shape) == ("purple", "square")


@pytest.mark.parametrize("motion, grows", [("grow", True), ("shrink", False)])
def test_a_grow_or_shrink_keeps_the_object_in_place_and_changes_its_size(motion, grows):
    from i2v.motion.prompt_motion import GROWTH

    frame = render(_scene([SceneObject("square", "orange", 0.5, 0.5, 0.07)], motion=motion))[0]
    planned = plan_from_prompt(FakeReader(motion, "orange", "any"), FakeEncoder(), "the orange one grows", frame).trajectory
    assert planned.points[0][1:] == planned.points[1][1:]
    assert planned.sizes == (None, pytest.approx(GROWTH if grows else 1 / GROWTH))
    near_edge = FoundObject("red", "circle", (0.15, 0.5), (0.1, 0.1), 0.03)
    from i2v.motion.prompt_motion import object_growth
    assert 1.0 <= object_growth(near_edge, "grow") <= 1.4  # room for 0.14 of the frame: cut short


def test_a_photos_concave_or_thin_patches_of_a_palette_colour_are_not_objects():
    frame = np.full((128, 128, 3), 120, np.uint8)
    frame[20:50, 20:30] = frame[40:50, 20:50] = COLOURS["black"]  # an L-shaped shadow
    frame[70:100, 70:100] = COLOURS["white"]
    frame[76:94, 76:94] = 120  # a bright ring
    frame[80:110, 30:34] = COLOURS["white"]  # a thin bright stripe
    assert find_objects(frame) == []
    small = _scene([SceneObject("triangle", "black", 0.6, 0.6, 0.075)])
    (found,) = find_objects(render(small, photo=PHOTO)[0])
    assert (found.colour, found.shape) == ("black", "triangle")


def test_a_shape_at_the_edge_does_not_move_backwards():
    at_left = FoundObject("red", "circle", (0.05, 0.5), (0.06, 0.06), 0.01)
    (x0, _), (x1, _) = object_move(at_left, "left", 128, 128)
    assert x1 == x0
    at_bottom = FoundObject("red", "triangle", (0.5, 0.92), (0.08, 0.06), 0.01)
    (_, y0), (_, y1) = object_move(at_bottom, "down", 128, 128)
    assert y0 <= y1 <= y0 + 0.02  # what room there is, never up


def test_a_later_window_moves_it_on():
    """"0s: the circle moves right; 6s: it moves up": a later window's prompt names no shape."""
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1), SceneObject("square", "blue", 0.7, 0.3, 0.08)]))[0]
    reader = FakeReader("move_up", "none", "none")
    assert plan_from_prompt(reader, FakeEncoder(), "it moves up", frame).trajectory is None  # alone: held still
    planned = plan_from_prompt(reader, FakeEncoder(), "it moves up", frame, previous=("red", "circle")).trajectory
    (_, x0, y0), (_, x1, y1) = planned.points
    assert planned.name == "red circle" and y1 < y0 - 0.2 and x1 == x0
    assert plan_from_prompt(FakeReader("other", "none", "none"), FakeEncoder(), "it glows", frame,
                            previous=("red", "circle")).trajectory is None


def test_a_broken_reader_folder_is_a_weights_error(tmp_path):
    from i2v.errors import WeightsError
    from i2v.motion.prompt_motion import load_reader

    (tmp_path / "reader").mkdir()
    (tmp_path / "reader" / "config.json").write_text('{"_class_name": "PromptReader", "motions": ["move_left"]}')
    with pytest.raises(WeightsError, match="reader"):
        load_reader(tmp_path)


class ScheduleReader(FakeReader):
    """A reader whose answer depends on the prompt: {prompt: (motion, colour, shape)}."""

    def __init__(self, answers):
        self.answers = {prompt: FakeReader(*answer).answer for prompt, answer in answers.items()}
        self.prompt = None

    def probabilities(self, states, mask):
        return [self.answers[self.prompt]]


class PromptEncoder(FakeEncoder):
    def __init__(self, reader):
        self.reader = reader

    def encode(self, prompts):
        self.reader.prompt = prompts[0]
        return super().encode(prompts)


def _plan_video(answers, schedule, frame, num_frames=160, fps=8.0):
    reader = ScheduleReader(answers)
    text, segments = resolve_schedule(schedule, num_frames, fps)
    return plan_video(reader, PromptEncoder(reader), segments or (PromptSegment(0.0, text),), frame, num_frames, fps)


def test_a_long_videos_plan_moves_the_object_on_from_segment_to_segment():
    """"0s: the red ball rolls right; 5s: it rolls left; 10s: the dog runs; 15s: it rolls up": one path from
    the first frame, each segment moving the object on from where the one before left it, at the world's
    speed or slower (so it moves for the whole segment), inside the frame; the dog's segment holds it."""
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1), SceneObject("square", "blue", 0.7, 0.25, 0.08)]))[0]
    answers = {"the red ball rolls right": ("move_right", "red", "circle"), "it rolls left": ("move_left", "none", "none"),
               "the dog runs": ("other", "none", "none"), "it rolls up": ("move_up", "none", "none")}
    planned = _plan_video(answers, "0s: the red ball rolls right; 5s: it rolls left; 10s: the dog runs; 15s: it rolls up",
                          frame)
    (path,) = planned.trajectories
    assert path.name == "red circle"
    times = [p[0] for p in path.points]
    xs, ys = np.array([p[1] for p in path.points]), np.array([p[2] for p in path.points])
    assert times == [0.0, 5.0, 10.0, 15.0, 19.875]
    assert xs[1] > xs[0] + 0.3 and xs[2] < xs[1] - 0.3  # right, then back left
    assert xs[3] == xs[2] and ys[3] == ys[2]  # the dog's segment holds it
    assert ys[4] < ys[3] - 0.2 and xs[4] == xs[3]  # then up
    assert np.all((xs > 0) & (xs < 1) & (ys > 0) & (ys < 1))
    speeds = np.abs(np.diff(xs[:3])) / 5.0
    assert np.all(speeds <= TRAVEL / CLIP_SECONDS + 1e-9)  # never faster than the world's objects
    # what it records runs as a trajectory of the whole video (read back and checked)
    assert resolve_trajectories(planned.text, 160, 8.0)[0] == planned.text


def test_a_long_videos_plan_is_left_to_the_model_for_camera_moves_and_holds_still_shots():
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.1)]))[0]
    answers = {"the red ball rolls right": ("move_right", "red", "circle"), "the camera pans left": ("pan_left", "none", "none"),
               "nothing moves": ("static", "none", "none"), "the green triangle rolls": ("move_left", "green", "triangle")}
    assert _plan_video(answers, "0s: the red ball rolls right; 5s: the camera pans left", frame) is None
    assert _plan_video(answers, "0s: the camera pans left; 5s: the red ball rolls right", frame) is None
    assert _plan_video(answers, "the camera pans left", frame) is None
    assert _plan_video(answers, "0s: nothing moves; 5s: the camera pans left", frame) is None
    assert _plan_video(answers, "0s: the green triangle rolls; 5s: the red ball rolls right", frame) is None  # not shown
    still = _plan_video(answers, "0s: nothing moves; 5s: the red ball rolls right", frame)
    (path,) = still.trajectories
    assert [p[0] for p in path.points] == [0.0, 5.0, 19.875] and path.points[1][1:] == path.points[0][1:]
    assert _plan_video(answers, "0s: nothing moves; 5s: nothing moves", frame).text == HOLD_STILL


def test_a_long_videos_plan_grows_within_the_size_range_and_ends_at_the_last_frame():
    """A 7 fps video's last frame is at 159/7 s: the plan's last time is written so that it is not after it."""
    frame = render(_scene([SceneObject("square", "blue", 0.5, 0.5, 0.06)]))[0]
    planned = _plan_video({"the blue square grows": ("grow", "blue", "square")}, "the blue square grows", frame, fps=7.0)
    (path,) = planned.trajectories
    assert path.points[0][1:] == path.points[-1][1:] and 1.5 < path.sizes[-1] <= 4.0
    assert resolve_trajectories(planned.text, 160, 7.0)[0] == planned.text


def test_two_objects_alike_get_their_own_paths():
    frame = render(_scene([SceneObject("circle", "red", 0.25, 0.3, 0.08), SceneObject("circle", "red", 0.7, 0.7, 0.1)]))[0]
    answers = {"the red ball rolls right": ("move_right", "red", "circle"), "it rolls up": ("move_up", "none", "none")}
    planned = _plan_video(answers, "0s: the red ball rolls right; 5s: it rolls up", frame)
    (path,) = planned.trajectories  # "it" is the one the segment before moved, not its twin
    assert path.name in ("red circle 1", "red circle 2") and path.points[-1][2] < path.points[1][2] - 0.2


def test_a_later_segment_that_names_no_colour_goes_on_with_the_object_before():
    """"0s: the yellow triangle moves right; 5s: the golden pyramid moves left": the reader reads no colour in
    "golden", so both triangles fit; the one the segment before moved is the likelier (not the larger white
    one). A colour it does read still picks the other."""
    frame = render(_scene([SceneObject("triangle", "yellow", 0.3, 0.3, 0.08),
                           SceneObject("triangle", "white", 0.6, 0.7, 0.11)]))[0]
    answers = {"the yellow triangle moves right": ("move_right", "yellow", "triangle"),
               "the golden pyramid moves left": ("move_left", "none", "triangle"),
               "the white triangle moves left": ("move_left", "white", "triangle")}
    (path,) = _plan_video(answers, "0s: the yellow triangle moves right; 5s: the golden pyramid moves left",
                          frame).trajectories
    assert path.name == "yellow triangle" and path.points[2][1] < path.points[1][1] - 0.2
    both = _plan_video(answers, "0s: the yellow triangle moves right; 5s: the white triangle moves left", frame)
    assert [t.name for t in both.trajectories] == ["yellow triangle", "white triangle"]


def _reading(motions: dict[str, float], colour="red", shape="circle") -> FakeReader:
    """A reader whose motion probabilities are ``motions`` (the rest of the mass spread over the other labels)."""
    from i2v.world.reader_captions import MOTIONS

    reader = FakeReader("move_right", colour, shape)
    rest = (1 - sum(motions.values())) / (len(MOTIONS) - len(motions))
    reader.answer["motion"] = {k: motions.get(k, rest) for k in MOTIONS}
    return reader


def test_a_move_goes_the_mean_way_of_the_directions_read():
    """"to the upper left, the circle heads" read as left 0.54, up-left 0.43: the circle goes between them (within
    45 degrees of both), not straight left; a sure reading goes its own way exactly."""
    from i2v.motion.prompt_motion import mean_direction

    frame = render(_scene([SceneObject("circle", "red", 0.6, 0.6, 0.08)]))[0]
    planned = plan_from_prompt(_reading({"move_left": 0.54, "move_up_left": 0.43}), FakeEncoder(), "p", frame)
    (_, x0, y0), (_, x1, y1) = planned.trajectory.points
    angle = np.degrees(np.arctan2(-(y1 - y0), -(x1 - x0)))  # 0: left, 45: up-left
    assert 10 < angle < 35
    assert np.hypot(x1 - x0, y1 - y0) == pytest.approx(TRAVEL, abs=0.01)  # the world's travel, whichever way
    assert mean_direction({"move_up": 0.9, "grow": 0.1}) == pytest.approx((0.0, -1.0))
    assert mean_direction({"pan_left": 1.0}) is None  # no move read at all


def test_a_move_read_several_ways_holds_the_frame_still():
    """"the scarlet orb is moving skyward" read as down 0.34, left 0.31, right 0.25: the reader cannot tell which
    way, so the circle holds (a wrong-way move would be worse), and the metadata says why."""
    from i2v.motion.prompt_motion import UNSURE_WAY

    frame = render(_scene([SceneObject("circle", "red", 0.5, 0.5, 0.08)]))[0]
    unsure = _reading({"move_down": 0.34, "move_left": 0.31, "move_right": 0.25})
    planned = plan_from_prompt(unsure, FakeEncoder(), "the scarlet orb is moving skyward", frame)
    assert planned.trajectory is None and planned.text == UNSURE_WAY
    assert plan_from_prompt(_reading({"move_down": 0.6, "move_down_left": 0.2}), FakeEncoder(), "p",
                            frame).trajectory is not None  # agreeing readings move


def test_a_long_videos_unsure_segment_holds_the_object_and_the_next_moves_it_on():
    frame = render(_scene([SceneObject("circle", "red", 0.5, 0.5, 0.08)]))[0]
    reader = ScheduleReader({"the red ball moves right": ("move_right", "red", "circle"),
                             "it moves down": ("move_down", "none", "none")})
    reader.answers["it drifts skyward"] = _reading({"move_down": 0.34, "move_left": 0.31, "move_right": 0.25},
                                                   "none", "none").answer
    _, segments = resolve_schedule("0s: the red ball moves right; 5s: it drifts skyward; 10s: it moves down", 160, 8.0)
    (path,) = plan_video(reader, PromptEncoder(reader), segments, frame, 160, 8.0).trajectories
    times = [p[0] for p in path.points]
    at = dict(zip(times, path.points))
    assert at[5.0][1:] == at[10.0][1:]  # held through the unsure segment
    assert at[5.0][1] > 0.6 and path.points[-1][2] > at[10.0][2] + 0.1  # moved right before, down after


def test_a_move_that_meets_an_edge_stops_on_its_line():
    """A move down and a little right that meets the bottom edge stops there: it does not slide along the edge
    (that would be a move right)."""
    near_bottom = FoundObject("red", "circle", (0.5, 0.85), (0.06, 0.06), 0.01)
    (x0, y0), (x1, y1) = object_move(near_bottom, (0.2, 0.98), 128, 128)
    assert y1 == pytest.approx(0.93) and (x1 - x0) / (y1 - y0) == pytest.approx(0.2 / 0.98)
    at_bottom = FoundObject("red", "circle", (0.5, 0.93), (0.06, 0.06), 0.01)
    assert object_move(at_bottom, (0.2, 0.98), 128, 128)[1] == pytest.approx((0.5, 0.93))


def test_a_hair_of_sideways_drift_does_not_stop_a_move_along_an_edge():
    """"0s: the red ball moves right; 5s: it moves up": the first segment takes the ball to the right edge; "up"
    read with a hair of up-right (its mean way a little right of up) still goes up beside the edge."""
    at_right = FoundObject("red", "circle", (0.93, 0.5), (0.06, 0.06), 0.01)
    (x0, y0), (x1, y1) = object_move(at_right, (0.02, -0.9998), 128, 128)
    assert y1 < y0 - 0.2 and x0 <= x1 <= 0.93 + 1e-9
    frame = render(_scene([SceneObject("circle", "red", 0.5, 0.5, 0.06)]))[0]
    reader = ScheduleReader({"the red ball moves right": ("move_right", "red", "circle")})
    reader.answers["it moves up"] = _reading({"move_up": 0.85, "move_up_right": 0.06, "move_up_left": 0.05},
                                             "none", "none").answer
    _, segments = resolve_schedule("0s: the red ball moves right; 5s: it moves up", 160, 8.0)
    (path,) = plan_video(reader, PromptEncoder(reader), segments, frame, 160, 8.0).trajectories
    assert path.points[-1][2] < path.points[-2][2] - 0.3  # up, after reaching the right edge


def test_a_video_whose_only_moves_are_unsure_says_so():
    from i2v.motion.prompt_motion import UNSURE_WAY

    frame = render(_scene([SceneObject("circle", "red", 0.5, 0.5, 0.08)]))[0]
    reader = ScheduleReader({})
    reader.answers["the red ball drifts skyward"] = _reading({"move_down": 0.34, "move_left": 0.31,
                                                              "move_right": 0.25}).answer
    _, segments = resolve_schedule("0s: the red ball drifts skyward", 160, 8.0)
    segments = segments or (PromptSegment(0.0, "the red ball drifts skyward"),)
    planned = plan_video(reader, PromptEncoder(reader), segments, frame, 160, 8.0)
    assert planned.trajectories == () and planned.text == UNSURE_WAY


def test_two_moves_the_same_way_share_the_room_ahead():
    """"0s: the red ball moves right; 5s: it waits (another subject); 10s: it moves right; 15s: it moves up": the
    first move leaves the second half of the room to the edge (their segments are as long), so both move right;
    the move up takes none of it. Alone, one move right takes the ball to the edge."""
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.06)]))[0]
    answers = {"the red ball moves right": ("move_right", "red", "circle"), "it moves right": ("move_right", "none", "none"),
               "the dog runs": ("other", "none", "none"), "it moves up": ("move_up", "none", "none")}
    planned = _plan_video(answers, "0s: the red ball moves right; 5s: the dog runs; 10s: it moves right; 15s: it moves up",
                          frame)
    at = {p[0]: p[1:] for p in planned.trajectories[0].points}
    edge = 1 - 0.06 - 0.01
    assert at[5.0][0] - at[0.0][0] == pytest.approx((edge - at[0.0][0]) / 2, abs=0.01)  # half the room
    assert at[15.0][0] == pytest.approx(edge, abs=0.01) and at[15.0][0] - at[10.0][0] > 0.2  # the rest
    assert at[19.875][1] < at[15.0][1] - 0.2  # then up
    alone = _plan_video(answers, "0s: the red ball moves right; 5s: the dog runs", frame)
    assert alone.trajectories[0].points[1][1] == pytest.approx(edge, abs=0.01)


def test_a_move_back_between_gives_the_later_move_its_own_room():
    """Right, left, right: each move takes what its way has (the turn back makes room again), as before."""
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.06)]))[0]
    answers = {"the red ball moves right": ("move_right", "red", "circle"), "it moves left": ("move_left", "none", "none"),
               "it moves right": ("move_right", "none", "none")}
    planned = _plan_video(answers, "0s: the red ball moves right; 5s: it moves left; 10s: it moves right", frame)
    at = {p[0]: p[1:] for p in planned.trajectories[0].points}
    assert at[5.0][0] == pytest.approx(1 - 0.06 - 0.01, abs=0.01)  # all the way to the edge: the next turns back
    assert at[19.875][0] > at[10.0][0] + 0.3


def test_a_share_of_the_room_scales_a_move_along_its_line():
    obj = FoundObject("red", "circle", (0.3, 0.5), (0.06, 0.06), 0.01)
    _, (x_all, _) = object_move(obj, "right", 128, 128, travel=5.0)
    _, (x_half, y_half) = object_move(obj, "right", 128, 128, travel=5.0, room_share=0.5)
    assert x_all == pytest.approx(0.93) and x_half == pytest.approx((0.3 + 0.93) / 2) and y_half == 0.5
    _, short = object_move(obj, "right", 128, 128, travel=0.1, room_share=0.5)
    assert short == pytest.approx((0.4, 0.5))  # a short move within its share is not cut


def _points(planned, name=None):
    path = next(t for t in planned.trajectories if name is None or t.name == name)
    return {p[0]: p[1:] for p in path.points}


MOVES = {"the red ball moves right": ("move_right", "red", "circle"), "it moves right": ("move_right", "none", "none"),
         "it moves up": ("move_up", "none", "none"), "the blue box moves right": ("move_right", "blue", "square"),
         "the red ball moves right again": ("move_right", "red", "circle"),
         "it moves down right": ("move_down_right", "none", "none")}


def test_the_room_is_shared_by_the_segments_lengths_and_not_with_other_objects_or_moves_across():
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.3, 0.06), SceneObject("square", "blue", 0.3, 0.7, 0.06)]))[0]
    edge = 1 - 0.06 - 0.01
    longer = _points(_plan_video(MOVES, "0s: the red ball moves right; 5s: it moves up; 10s: it moves right", frame))
    assert longer[5.0][0] - longer[0.0][0] == pytest.approx((edge - 0.3) * 5 / (5 + 9.875), abs=0.01)  # by length
    assert longer[10.0][1] < longer[5.0][1] - 0.1 and longer[19.875][0] == pytest.approx(edge, abs=0.01)
    planned = _plan_video(MOVES, "0s: the red ball moves right; 5s: the blue box moves right; "
                                 "10s: the red ball moves right again", frame)
    blue = _points(planned, "blue square")
    assert blue[10.0][0] == pytest.approx(edge, abs=0.01)  # the red ball's later move takes none of its room
    red = _points(planned, "red circle")
    assert red[5.0][0] - red[0.0][0] == pytest.approx((edge - 0.3) * 5 / (5 + 9.875), abs=0.01)


def test_a_later_move_an_edge_blocks_is_left_no_room():
    """At the bottom edge, "right" then "down right": the second cannot move at all, so the first goes to the edge."""
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.93, 0.06)]))[0]
    at = _points(_plan_video(MOVES, "0s: the red ball moves right; 10s: it moves down right", frame))
    assert at[10.0][0] == pytest.approx(1 - 0.06 - 0.01, abs=0.01)


def test_an_unsure_segment_between_two_moves_the_same_way_leaves_both_moving():
    frame = render(_scene([SceneObject("circle", "red", 0.3, 0.5, 0.06)]))[0]
    reader = ScheduleReader(MOVES)
    reader.answers["it drifts skyward"] = _reading({"move_down": 0.34, "move_left": 0.31, "move_right": 0.25},
                                                   "none", "none").answer
    _, segments = resolve_schedule("0s: the red ball moves right; 5s: it drifts skyward; 10s: it moves right", 160, 8.0)
    at = _points(plan_video(reader, PromptEncoder(reader), segments, frame, 160, 8.0))
    assert at[5.0] == at[10.0] and at[5.0][0] > 0.4 and at[19.875][0] > at[10.0][0] + 0.15


def test_an_unsure_last_segment_on_the_last_frame_still_says_why_it_holds():
    from i2v.motion.prompt_motion import UNSURE_WAY

    frame = render(_scene([SceneObject("circle", "red", 0.5, 0.5, 0.08)]))[0]
    reader = ScheduleReader({"the dog runs": ("other", "none", "none")})
    reader.answers["the red ball drifts skyward"] = _reading({"move_down": 0.34, "move_left": 0.31,
                                                              "move_right": 0.25}).answer
    _, segments = resolve_schedule("0s: the dog runs; 19.875s: the red ball drifts skyward", 160, 8.0)
    assert plan_video(reader, PromptEncoder(reader), segments, frame, 160, 8.0).text == UNSURE_WAY


def test_object_move_takes_any_vector_and_returns_floats():
    obj = FoundObject("red", "circle", (0.3, 0.5), (np.float32(0.06), np.float32(0.06)), 0.01)
    start, end = object_move(obj, (0.0, 0.0), 128, 128)
    assert end == start
    _, end = object_move(obj, "right", 128, 128)
    assert all(type(v) is float for v in end)
