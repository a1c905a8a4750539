"""The embedded model's backend: a photo model (patch autoencoder) follows the image's aspect ratio
when no size is given; a shapes-world model keeps its square default; a warping photo model defaults to
guidance 1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.registry import resolve_model

from ..conftest import dummy_components


def _folder(tmp_path, vae_preset, prediction="velocity"):
    from i2v.pipelines.pipeline_i2v import I2VPipeline

    folder = tmp_path / f"{vae_preset}-{prediction}"
    I2VPipeline(**dummy_components(size=64, vae_preset=vae_preset, prediction=prediction)).save_pretrained(folder)
    return folder


def _image(tmp_path, width, height):
    path = tmp_path / f"{width}x{height}.png"
    Image.fromarray(np.full((height, width, 3), 120, np.uint8)).save(path)
    return path


def test_a_photo_model_keeps_the_images_aspect_at_its_default_area(tmp_path):
    folder = _folder(tmp_path, "patch-test")
    assert resolve_model(str(folder)).defaults.size_policy == "aspect"
    gen = ImageToVideoGenerator(str(folder), device="cpu")
    wide = gen.backend.resolve(GenerationRequest(image=_image(tmp_path, 320, 180), seed=0), [])
    assert (wide.width, wide.height) == (80, 48)  # 16:9 near 64x64's area, sides a multiple of 16
    tall = gen.backend.resolve(GenerationRequest(image=_image(tmp_path, 180, 320), seed=0), [])
    assert (tall.width, tall.height) == (48, 80)
    given = gen.backend.resolve(GenerationRequest(image=_image(tmp_path, 320, 180), height=64, width=64, seed=0), [])
    assert (given.width, given.height) == (64, 64)
    result = gen.run(GenerationRequest(image=_image(tmp_path, 320, 180), num_inference_steps=2, seed=0))
    assert result.frames.shape[1:3] == (48, 80)


def test_a_shapes_world_model_keeps_its_square_default(tmp_path):
    folder = _folder(tmp_path, "test")
    spec = resolve_model(str(folder))
    assert spec.defaults.size_policy != "aspect"
    s = ImageToVideoGenerator(str(folder), device="cpu").backend.resolve(
        GenerationRequest(image=_image(tmp_path, 320, 180), seed=0), [])
    assert (s.width, s.height) == (64, 64)


def test_a_warping_photo_model_defaults_to_guidance_one_and_generates(tmp_path):
    """A warping denoiser's guidance scales its motion plan (3 would triple the prompt's motion): its default
    is 1; a folder with one loads back and generates at a 16:9 image's aspect."""
    folder = _folder(tmp_path, "patch-test", prediction="warp")
    assert resolve_model(str(folder)).defaults.guidance_scale == 1.0
    assert resolve_model(str(_folder(tmp_path, "patch-test"))).defaults.guidance_scale == 3.0
    result = ImageToVideoGenerator(str(folder), device="cpu").run(
        GenerationRequest(image=_image(tmp_path, 320, 180), prompt="the camera pans left", num_inference_steps=2,
                          seed=0))
    assert result.frames.shape == (4, 48, 80, 3) and result.settings["guidance_scale"] == 1.0


def test_only_a_warping_model_takes_a_camera_path_or_trajectories(warp_model_dir, tiny_model_dir, tmp_path):
    """The velocity model refuses them before loading any weights; the warping one records their canonical
    text and moves the picture."""
    import pytest

    from i2v.api import check_request
    from i2v.errors import InvalidRequestError
    from i2v.registry import MODELS

    image = _image(tmp_path, 64, 64)
    for spec in (MODELS["i2v-tiny"], resolve_model(str(tiny_model_dir))):
        with pytest.raises(InvalidRequestError, match="cannot follow a camera path"):
            check_request(spec, GenerationRequest(image=image, camera_path="1s: pan 0.2"))
        with pytest.raises(InvalidRequestError, match="cannot move objects along trajectories"):
            check_request(spec, GenerationRequest(image=image, trajectory="a: 0.2,0.2 -> 0.5,0.5"))
    assert check_request(MODELS["i2v-photo"], GenerationRequest(image=image, camera_path="1s: pan 0.2", seed=0)) == []

    gen = ImageToVideoGenerator(str(warp_model_dir), device="cpu")
    result = gen.run(GenerationRequest(image=image, camera_path="0.375s: pan right 0.25", trajectory="a: 0.3,0.3 -> 0.6,0.6",
                                       num_inference_steps=2, seed=0, fps=8))
    assert result.settings["camera_path"] == "0.375s: pan 0.25"
    assert result.settings["trajectory"] == "a: 0.3,0.3 -> 0.6,0.6"
    plain = gen.run(GenerationRequest(image=image, num_inference_steps=2, seed=0, fps=8))
    assert np.array_equal(result.frames[0], plain.frames[0]) and not np.array_equal(result.frames, plain.frames)
    with pytest.raises(InvalidRequestError, match="pixels of motion"):
        check_request(MODELS["i2v-photo"], GenerationRequest(image=image, camera_path="1s: pan 0.2", num_frames=1025,
                                                             height=4096, width=4096, seed=0))
    with pytest.raises(InvalidRequestError, match="after the video ends"):
        gen.run(GenerationRequest(image=image, camera_path="2s: pan 0.2", num_inference_steps=2, seed=0, fps=8))
    # a camera path and trajectories span a chained long video: each window follows its stretch of them
    request = GenerationRequest(image=image, camera_path="1s: pan 0.2", trajectory="a: 0.3,0.3 -> 0.6,0.6",
                                num_frames=12, window=4, seed=0, fps=8, num_inference_steps=2)
    settings = gen.backend.resolve(request, [])
    windows = gen.chain_windows(request, settings)
    assert [w.extras["motion_window"] for w in windows] == [[0, 12], [3, 12], [6, 12], [9, 12]]
    assert {(w.extras["camera_path"], w.extras["trajectory"]) for w in windows} == {("1s: pan 0.2",
                                                                                    "a: 0.3,0.3 -> 0.6,0.6")}
    long = gen.run(request)
    assert long.frames.shape[0] == 12 and long.settings["trajectory"] == "a: 0.3,0.3 -> 0.6,0.6"


def _fixed_reader(motion: str, colour: str, shape: str):
    """A prompt reader that reads every prompt as (motion, colour, shape): zero weights, one large bias."""
    import torch

    from i2v.models.prompt_reader import PromptReader
    from i2v.world.reader_captions import COLOUR_LABELS, MOTIONS, SHAPE_LABELS

    reader = PromptReader(motions=list(MOTIONS), colours=list(COLOUR_LABELS), shapes=list(SHAPE_LABELS))
    with torch.no_grad():
        for head, labels, label in (("motion", MOTIONS, motion), ("colour", COLOUR_LABELS, colour),
                                    ("shape", SHAPE_LABELS, shape)):
            out = reader.heads[head].out
            out.weight.zero_()
            out.bias.zero_()
            out.bias[labels.index(label)] = 20.0
    return reader


def test_a_model_with_a_prompt_reader_moves_the_named_shape(warp_model_dir, tmp_path):
    """A warping model folder with ``reader/`` plans a named shape's move from the prompt: recorded as
    ``prompt_motion``, held like a trajectory; a camera path given by the user wins; a folder without a reader,
    or a camera prompt, plans as before; another subject's move holds the frame still."""
    import shutil

    from PIL import Image

    folder = tmp_path / "with-reader"
    shutil.copytree(warp_model_dir, folder)
    _fixed_reader("move_right", "red", "square").save_pretrained(folder / "reader")
    frame = np.full((64, 64, 3), 120, np.uint8)
    frame[24:40, 12:28] = (220, 30, 30)
    Image.fromarray(frame).save(tmp_path / "red.png")
    request = GenerationRequest(image=str(tmp_path / "red.png"), prompt="the red block slides right",
                                num_inference_steps=2, seed=0, fps=8)
    result = ImageToVideoGenerator(str(folder), device="cpu").run(request)
    name, path = result.settings["prompt_motion"].split(": ")
    start, end = ([float(v) for v in p.split(",")] for p in path.split(" -> "))
    assert name == "red square" and start == pytest.approx([0.31, 0.5], abs=0.02) and end[0] > start[0] + 0.2
    plain = ImageToVideoGenerator(str(warp_model_dir), device="cpu").run(request)
    assert "prompt_motion" not in plain.settings and not np.array_equal(result.frames, plain.frames)
    given = ImageToVideoGenerator(str(folder), device="cpu").run(replace(request, camera_path="0.375s: pan 0.2"))
    assert "prompt_motion" not in given.settings

    _fixed_reader("pan_left", "none", "none").save_pretrained(folder / "reader")
    camera = ImageToVideoGenerator(str(folder), device="cpu").run(request)
    assert "prompt_motion" not in camera.settings and np.array_equal(camera.frames, plain.frames)
    # "the dog runs left": a subject the model cannot move; the frame holds still
    from i2v.motion.prompt_motion import HOLD_STILL

    _fixed_reader("move_left", "none", "none").save_pretrained(folder / "reader")
    still = ImageToVideoGenerator(str(folder), device="cpu").run(replace(request, prompt="the dog runs left"))
    assert still.settings["prompt_motion"] == HOLD_STILL and not np.array_equal(still.frames, plain.frames)
