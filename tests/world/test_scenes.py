import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from i2v.world.captions import (
    COLOUR_WORDS,
    DIRECTION_WORDS,
    MOVE_VERBS,
    SHAPE_WORDS,
    TEMPLATES,
    all_heldout_words,
    all_training_words,
    caption_scene,
    heldout_words_in,
)
from i2v.world.scenes import (
    CAMERA_PANS,
    COLOURS,
    FPS,
    MOTION_WEIGHTS,
    NUM_FRAMES,
    SIZE,
    extend_scene,
    mirror_scene,
    render,
    sample_scene,
)


def test_world_constants_match_the_design():
    assert (SIZE, NUM_FRAMES, FPS) == (128, 16, 8)


def test_same_seed_same_video():
    a, b = render(sample_scene(7)), render(sample_scene(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (16, 128, 128, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, render(sample_scene(8)))


@pytest.mark.parametrize("motion", sorted(MOTION_WEIGHTS))
def test_every_motion_renders_and_objects_stay_distinct(motion):
    scene = sample_scene(3, motion=motion)
    frames = render(scene)
    assert len({o.colour for o in scene.objects}) == len(scene.objects)
    assert 1 <= len(scene.objects) <= 3
    if scene.category in ("object_direction", "object_scale") or motion == "still":
        assert scene.target is not None
    else:
        assert scene.target is None
    moving = np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean()
    assert (moving > 0.5) == (scene.category != "still")


def test_target_moves_in_its_direction_and_others_stay():
    scene = sample_scene(11, motion="move_left", num_objects=3)
    tracks = scene.screen_tracks()
    dx = tracks[-1, scene.target, 0] - tracks[0, scene.target, 0]
    assert dx < -0.25 * SIZE
    others = [k for k in range(3) if k != scene.target]
    np.testing.assert_allclose(tracks[-1, others], tracks[0, others])
    # the target stays inside the frame for the whole clip
    assert tracks[:, scene.target].min() > 0 and tracks[:, scene.target].max() < SIZE


def test_shorter_travels_let_a_move_start_on_the_side_it_heads_to():
    # full-length moves need the room, so a rightward move never starts past 0.6 of the width;
    # short ones (a training option) may start far right, so the position stops implying the direction
    def starts(travel_range):
        scenes = [sample_scene(s, motion="move_right", travel_range=travel_range) for s in range(60)]
        assert all(travel_range[0] <= s.amount <= travel_range[1] for s in scenes)
        return np.array([s.objects[s.target].x for s in scenes])

    assert starts((0.30, 0.42)).max() < 0.6
    assert starts((0.12, 0.15)).max() > 0.65


def test_camera_pan_left_slides_content_right():
    scene = sample_scene(5, motion="pan_left")
    tracks = scene.screen_tracks()
    assert np.all(tracks[-1, :, 0] - tracks[0, :, 0] > 0.2 * SIZE)
    assert set(CAMERA_PANS) == {"pan_left", "pan_right", "pan_up", "pan_down"}


def test_zoom_in_spreads_objects_from_the_centre():
    scene = sample_scene(5, motion="zoom_in", num_objects=2)
    tracks = scene.screen_tracks()
    spread = lambda t: np.linalg.norm(t[0] - t[1])
    assert spread(tracks[-1]) > 1.4 * spread(tracks[0])


def test_mirrored_scene_renders_the_flipped_video():
    scene = sample_scene(21, motion="move_up_left")
    mirrored = mirror_scene(scene)
    assert mirrored.motion == "move_up_right"
    if scene.background != "noise":  # the noise texture is sampled, not mirrored
        diff = np.abs(render(mirrored).astype(int) - render(scene)[:, :, ::-1].astype(int))
        assert np.percentile(diff, 99) <= 2


def test_colours_are_named_and_distinct():
    rgb = np.array(list(COLOURS.values()))
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert d[~np.eye(len(rgb), dtype=bool)].min() > 60


def test_captions_name_the_object_and_direction():
    scene = sample_scene(4, motion="move_right")
    obj = scene.objects[scene.target]
    for seed in range(20):
        cap = caption_scene(scene, np.random.default_rng(seed))
        assert any(w in cap for w in COLOUR_WORDS[obj.colour][0])
        assert any(w in cap for w in DIRECTION_WORDS["right"][0])


def _named(table: dict, caption: str) -> set[str]:
    """The table's classes (colours or shapes) a caption names with a training synonym."""
    return {name for name, (train, _) in table.items()
            if any(re.search(rf"\b{re.escape(w)}\b", caption) for w in train)}


def test_partial_references_still_pick_out_the_target_alone():
    forms = set()
    for seed in range(300):
        scene = sample_scene(seed)
        if scene.target is None:
            continue
        target = scene.objects[scene.target]
        cap = caption_scene(scene, np.random.default_rng(seed), "train", p_partial=1.0)
        colours, shapes = _named(COLOUR_WORDS, cap), _named(SHAPE_WORDS, cap)
        assert not (colours and shapes), cap  # one attribute, never both
        if colours:
            assert colours == {target.colour}, cap
            forms.add("colour")
        else:
            assert shapes == {target.shape}, cap
            assert sum(o.shape == target.shape for o in scene.objects) == 1, f"{cap!r} is ambiguous"
            forms.add("shape")
    assert forms == {"colour", "shape"}


def test_partial_references_off_leave_captions_unchanged_and_never_reach_heldout():
    for seed in range(50):
        scene = sample_scene(seed)
        assert (caption_scene(scene, np.random.default_rng(seed), "train", p_partial=0.0)
                == caption_scene(scene, np.random.default_rng(seed), "train"))
    with pytest.raises(ValueError, match="training augmentation"):
        caption_scene(sample_scene(2), np.random.default_rng(0), "heldout", p_partial=0.2)


def test_misnamed_colours_name_an_absent_colour_and_the_unique_shape():
    misnamed = kept = 0
    for seed in range(300):
        scene = sample_scene(seed)
        if scene.target is None:
            continue
        target = scene.objects[scene.target]
        cap = caption_scene(scene, np.random.default_rng(seed), "train", p_misnamed_colour=1.0)
        colours, shapes = _named(COLOUR_WORDS, cap), _named(SHAPE_WORDS, cap)
        assert shapes == {target.shape} and len(colours) == 1, cap
        if sum(o.shape == target.shape for o in scene.objects) == 1:
            assert not colours & {o.colour for o in scene.objects}, f"{cap!r} names a colour in the scene"
            misnamed += 1
        else:  # the shape is shared, so only the true colour picks out the target
            assert colours == {target.colour}, cap
            kept += 1
    assert misnamed > 50 and kept > 10


def test_misnamed_colours_off_leave_captions_unchanged_and_never_reach_heldout():
    for seed in range(50):
        scene = sample_scene(seed)
        assert (caption_scene(scene, np.random.default_rng(seed), "train", p_partial=0.2, p_misnamed_colour=0.0)
                == caption_scene(scene, np.random.default_rng(seed), "train", p_partial=0.2))
        assert heldout_words_in(caption_scene(scene, np.random.default_rng(seed), "train", p_misnamed_colour=0.5)) == []
    with pytest.raises(ValueError, match="training augmentation"):
        caption_scene(sample_scene(2), np.random.default_rng(0), "heldout", p_misnamed_colour=0.2)


def test_heldout_phrasings_are_never_used_in_training():
    train_words = all_training_words()
    for table in (COLOUR_WORDS, DIRECTION_WORDS):
        for _, held in table.values():
            assert not set(held) & train_words
    for train, held in TEMPLATES.values():
        assert not set(train) & set(held)
    train_caps = {caption_scene(sample_scene(s), np.random.default_rng(s), "train") for s in range(300)}
    held_caps = {caption_scene(sample_scene(s), np.random.default_rng(s), "heldout") for s in range(300)}
    assert len(held_caps - train_caps) > 0.9 * len(held_caps)


def test_training_captions_move_the_camera_with_object_verbs():
    camera_verbs = set()
    for s in range(600):
        scene = sample_scene(s)
        caption = caption_scene(scene, np.random.default_rng(10_000 + s), "train")  # a stream apart from the scene's
        match = re.fullmatch(r"the camera (\w+) (.+?)\.?", caption, flags=re.IGNORECASE)
        if match and match.group(1) in MOVE_VERBS[0]:
            assert scene.motion.startswith(("pan_", "zoom_")), caption
            camera_verbs.add((scene.motion.split("_")[0], match.group(1)))
    assert {kind for kind, _ in camera_verbs} == {"pan", "zoom"}
    assert len(camera_verbs) > 6


def _words(text: str) -> set[str]:
    return set(re.sub(r"\{\w+\}|[^a-z ]", " ", text.lower().replace("-", " ")).split())


def test_every_heldout_synonym_brings_a_word_training_never_uses():
    templates = [t for train, _ in TEMPLATES.values() for t in train]
    training_vocab = set().union(*map(_words, [*all_training_words(), *templates]))
    for phrase in all_heldout_words():
        assert _words(phrase) - training_vocab, f"held-out {phrase!r} uses only training words"


def test_heldout_words_in_finds_the_heldout_synonyms_a_caption_uses():
    assert sorted(heldout_words_in("We see the Emerald orb as it floats skyward")) == [
        "emerald", "floats", "orb", "skyward"]
    assert heldout_words_in("the dark black tile heads up") == ["dark black", "heads", "tile"]
    assert heldout_words_in("the black square moves up") == []  # "black" alone is a training word
    for s in range(200):
        scene = sample_scene(s)
        assert heldout_words_in(caption_scene(scene, np.random.default_rng(s), "train", p_partial=0.2)) == []
        assert set(heldout_words_in(caption_scene(scene, np.random.default_rng(s), "heldout"))) <= all_heldout_words()


def test_unknown_split_and_motion_raise():
    with pytest.raises(ValueError, match="split"):
        caption_scene(sample_scene(0), np.random.default_rng(0), "test")
    with pytest.raises(ValueError, match="motion"):
        sample_scene(0, motion="teleport")


def test_scenes_over_a_photo_move_the_photo_with_the_camera():
    """A pan over a photo background slides the photo's content the way the camera's ground truth says."""
    import cv2

    from i2v.world.photos.procedural import dead_leaves
    from i2v.world.scenes import over_photo

    photo = dead_leaves(3, 700, 900)
    scene = over_photo(sample_scene(5, motion="pan_left"), 0, photo.shape, np.random.default_rng(0))
    assert scene.background == "photo" and len(scene.meta["photo_window"]) == 3
    with pytest.raises(ValueError, match="pass the photo"):
        render(scene)
    frames = render(scene, photo=photo)
    assert frames.shape == (16, 128, 128, 3) and frames.std() > 10
    assert (render(scene, photo=photo) == frames).all()  # deterministic
    a, b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in (frames[0], frames[1]))
    (dx, dy), _ = cv2.phaseCorrelate(a, b)
    expected = scene.amount * 128 / 15  # per frame: the pan's travel over 15 steps, content to the right
    assert dx == pytest.approx(expected, abs=0.5) and abs(dy) < 0.5


def test_a_still_scene_over_a_photo_shows_the_photo_window():
    from i2v.world.photos.procedural import fractal_noise
    from i2v.world.scenes import over_photo

    photo = fractal_noise(1, 400, 600)
    scene = over_photo(sample_scene(7, motion="static"), 0, photo.shape, np.random.default_rng(2))
    frames = render(scene, photo=photo)
    assert (np.abs(frames.astype(int) - frames[0].astype(int)).max(axis=(1, 2, 3)) <= 1).all()  # nothing moves


@pytest.mark.parametrize("motion", ["move_right", "grow", "pan_left", "zoom_in", "static"])
def test_scene_flow_warps_frame_zero_onto_every_frame(motion):
    """Frame 0 moved by the ground-truth flow is frame t wherever the flow is known; it is unknown
    only where an object uncovered background, which only object moves do."""
    import torch.nn.functional as F

    from i2v.models.latent_warp import base_grid
    from i2v.world.scenes import scene_flow

    scene = sample_scene(7, motion=motion)
    frames = torch.from_numpy(render(scene)).float().permute(0, 3, 1, 2) / 255  # (T, 3, H, W)
    flow = torch.from_numpy(scene_flow(scene))  # (2, T, H, W)
    assert flow.shape == (2, 16, 128, 128) and not flow[:, 0].isnan().any()
    known = ~flow[0].isnan()
    assert known.all() == (motion != "move_right")
    grid = base_grid(128, 128) + flow.nan_to_num(0).permute(1, 2, 3, 0)
    moved = F.grid_sample(frames[:1].expand(16, -1, -1, -1), grid, align_corners=False, padding_mode="border")
    error = (moved - frames).abs().mean(1)[known]  # (known pixels,)
    still = (frames[:1] - frames).abs().mean(1)[known]
    assert error.mean() < 0.01 and (motion == "static" or error.mean() < 0.2 * still.mean())
    mirrored = torch.from_numpy(scene_flow(mirror_scene(scene)))
    torch.testing.assert_close(mirrored[0], -flow[0].flip(-1), equal_nan=True, atol=1e-5, rtol=0)


@pytest.mark.parametrize("motion", ["move_right", "pan_left", "zoom_in", "grow"])
def test_an_extended_scene_plays_the_scene_and_goes_on_at_its_speed(motion):
    from i2v.world.scenes import extend_scene

    scene = sample_scene(11, motion=motion)
    longer = extend_scene(scene, 24)
    frames, more = render(scene), render(longer)
    assert more.shape[0] == 24
    np.testing.assert_allclose(more[:16].astype(int), frames.astype(int), atol=1)  # the scene's own frames
    steps = np.abs(np.diff(more.astype(float), axis=0)).mean(axis=(1, 2, 3))
    assert steps[16:].mean() > 0.3 * steps[:15].mean()  # still moving after the scene's last frame


def test_a_reversed_motion_plays_the_clip_backwards():
    from i2v.world.scenes import MOTION_WEIGHTS, REVERSED_MOTION

    assert set(REVERSED_MOTION) == set(MOTION_WEIGHTS)
    assert all(REVERSED_MOTION[REVERSED_MOTION[m]] == m for m in MOTION_WEIGHTS)
    scene = sample_scene(3, motion="move_up_left")
    backwards = replace(scene, motion=REVERSED_MOTION[scene.motion])
    centres, _ = scene.object_tracks()
    first = replace(backwards, objects=[replace(o, x=float(c[0]), y=float(c[1]))
                                        for o, c in zip(scene.objects, centres[-1])])
    np.testing.assert_allclose(first.object_tracks()[0], centres[::-1], atol=1e-9)  # its frames in reverse
    assert REVERSED_MOTION["zoom_in"] == "zoom_out" and REVERSED_MOTION["static"] == "static"


def test_frames_in_view_count_until_the_moving_object_leaves_the_frame():
    from i2v.world.scenes import frames_in_view

    scene = sample_scene(5, motion="move_right")
    assert frames_in_view(scene) == scene.num_frames  # a world clip keeps its object in the frame
    longer = extend_scene(scene, 200)
    n = frames_in_view(longer)
    assert scene.num_frames <= n < 200
    x = longer.screen_tracks(1)[:, longer.target, 0]
    r = longer.objects[longer.target].radius
    assert x[n - 1] + r <= 1 < x[n] + r  # the first frame it crosses the right edge
    assert frames_in_view(extend_scene(sample_scene(5, motion="pan_left"), 200)) == 200  # nothing leaves
