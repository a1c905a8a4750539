"""The embedded models shipped in the package: load offline and run once."""

from pathlib import Path

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.tiny import WEIGHTS_DIR
from i2v.metrics.fidelity import first_frame_psnr
from i2v.registry import DEFAULT_MODEL, MODELS
from i2v.world.photos.scoring import score_photo_case
from i2v.world.scenes import render, sample_scene


def test_shipped_weights_are_safetensors_and_at_most_40_mb_in_all():
    files = [p for p in WEIGHTS_DIR.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert {Path(MODELS[name].source) for name in ("i2v-tiny", "i2v-photo")} <= set(WEIGHTS_DIR.iterdir())
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20


def test_shipped_model_generates_offline():
    gen = ImageToVideoGenerator()  # no model name: the embedded default
    scene = sample_scene(3, motion="move_right")
    first = render(scene)[0]
    frames = gen.generate(image=first, prompt="the object moves to the right", seed=0, num_inference_steps=4)
    assert frames.shape == (16, 128, 128, 3) and frames.dtype == np.uint8
    assert first_frame_psnr(frames, first) > 26  # frame 0 is the input through the autoencoder


def _photo(height: int, width: int) -> np.ndarray:
    """A smooth, textured stand-in for a photograph (the held-out photos are not in the repository)."""
    y, x = np.mgrid[:height, :width] / 9.0
    rgb = [np.sin(x + 2 * np.sin(y / 3)), np.cos(y * 1.3 + np.sin(x / 2)), np.sin((x + y) / 2)]
    return ((np.stack(rgb, axis=-1) + 1) * 110 + 15).astype(np.uint8)


@pytest.mark.parametrize("height, width", [(128, 128), (144, 256)])
def test_shipped_photo_model_keeps_the_photo_and_follows_a_camera_path(height, width):
    gen = ImageToVideoGenerator("i2v-photo")
    photo = _photo(height, width)
    frames = gen.generate(image=photo, prompt="", seed=0, camera_path="1.875s: pan right 0.25", height=height,
                          width=width)
    assert frames.shape == (16, height, width, 3)
    assert first_frame_psnr(frames, photo) > 27
    score = score_photo_case(frames, "pan_right", image=photo)  # the photo benchmark's camera scorer
    assert score["passed"], score["reasons"]


@pytest.mark.parametrize("motion, prompt", [("move_left", "the red disc slides to the left"),
                                            ("grow", "the red circle gets bigger")])
def test_shipped_photo_model_moves_the_shape_the_prompt_names_over_a_photo(motion, prompt):
    """The shipped prompt reader finds the named shape and the run moves it (the shapes world's scorer)."""
    from i2v.world.scenes import Scene, SceneObject, over_photo
    from i2v.world.scoring import score_case

    scene = Scene(objects=[SceneObject("circle", "red", 0.6, 0.5, 0.08), SceneObject("square", "blue", 0.25, 0.25, 0.08)],
                  background="solid", background_colours=((0, 0, 0), (0, 0, 0)), background_angle=0.0, noise_seed=0,
                  motion=motion, target=0, amount=0.3 if motion == "move_left" else 1.9)
    photo = (_photo(256, 256) * 0.35 + 80).astype(np.uint8)  # muted, as the benchmark's cases: the tracker finds red
    scene = over_photo(scene, 0, photo.shape, np.random.default_rng(0))
    truth = render(scene, photo=photo)
    assert score_case(truth, scene, truth[0])["passed"]  # the scorer can score this scene
    first = truth[0]
    result = ImageToVideoGenerator("i2v-photo").run(
        GenerationRequest(image=first, prompt=prompt, seed=0))
    assert result.settings["prompt_motion"].startswith("red circle: ")
    score = score_case(result.frames, scene, first)
    assert score["passed"], score["reason"]


def test_shipped_photo_model_leaves_a_subject_it_cannot_move_still():
    from i2v.motion.prompt_motion import HOLD_STILL

    photo = _photo(128, 128)
    result = ImageToVideoGenerator("i2v-photo").run(
        GenerationRequest(image=photo, prompt="a woman walks to the left", seed=0))
    assert result.settings["prompt_motion"] == HOLD_STILL
    assert score_photo_case(result.frames, "static", image=photo)["passed"]


def test_shipped_photo_model_moves_a_shape_on_across_the_windows_of_a_long_video(tmp_path):
    """A video in chained windows with a prompt schedule: one plan for the whole video (recorded, also in the
    streamed video's sidecar), the shape moving right then back left without stopping at window borders,
    its colour kept (every window is made from the first frame)."""
    import json

    from i2v.io.video import sidecar_path
    from i2v.world.scenes import COLOURS, Scene, SceneObject
    from i2v.world.tracking import track_object

    scene = Scene(objects=[SceneObject("circle", "red", 0.3, 0.5, 0.1), SceneObject("square", "blue", 0.75, 0.2, 0.08)],
                  background="solid", background_colours=((120, 120, 120), (120, 120, 120)), background_angle=0.0,
                  noise_seed=0, motion="move_right", target=0, amount=0.3)
    request = GenerationRequest(image=render(scene)[0], prompt="0s: the red circle moves to the right; 3s: it moves to "
                                "the left", num_frames=48, window=16, seed=0)
    gen = ImageToVideoGenerator("i2v-photo")
    result = gen.run(request)
    plan = result.settings["prompt_motion"]
    assert any("planned once for the whole video" in n for n in result.notices)
    assert plan.startswith("red circle: 0s ") and " -> 3s " in plan
    ys = [float(point.split(",")[1]) for point in plan.split(": ", 1)[1].split(" -> ")]
    assert max(ys) - min(ys) < 1e-3  # right, then left: level
    xs = track_object(result.frames, COLOURS["red"]).centroids[:, 0]
    steps = np.diff(xs)
    assert not np.isnan(xs).any() and np.all(steps[1:23] > 0.5) and np.all(steps[25:] < -0.5)  # no stop at 12, 24, 36
    def red_pixels(frame):
        return np.all(np.abs(frame.astype(int) - COLOURS["red"]) < 40, axis=-1).sum()

    assert red_pixels(result.frames[-1]) > 0.8 * red_pixels(result.frames[0])  # still the same red circle
    streamed = gen.generate_to_file(request, tmp_path / "long.mp4")
    assert json.loads(sidecar_path(tmp_path / "long.mp4").read_text())["prompt_motion"] == plan
    assert streamed.settings["prompt_motion"] == plan
