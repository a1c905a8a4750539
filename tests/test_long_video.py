"""Long videos in chained windows (``--window``): the plan, the cross-fade and colour match, and runs
end to end on the embedded model and a tiny diffusers model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.long_video import append_window, lab_stats, match_colours, plan_chain
from i2v.prompt_schedule import PromptSegment
from i2v.types import ModelDefaults

from .backends.conftest import square_image, tiny_folder  # noqa: F401 (fixtures)

ANY = ModelDefaults(num_frames=16, height=64, width=64, fps=8, num_inference_steps=2, guidance_scale=1,
                    size_multiple=16, frame_rule="any")
RULE_4N1 = ModelDefaults(num_frames=81, height=64, width=64, fps=16, num_inference_steps=2, guidance_scale=1,
                         size_multiple=16, frame_rule="4n+1", frame_step=4, frame_offset=1, min_frames=5)
SAMPLE = "src/i2v/assets/sample.png"


@pytest.mark.parametrize("frames, window, defaults", [(40, 16, ANY), (17, 16, ANY), (100, 21, RULE_4N1),
                                                      (22, 9, RULE_4N1)])
def test_windows_cover_the_video_in_the_models_rule(frames, window, defaults):
    plan = plan_chain(frames, window, 8.0, "p", (), defaults)
    assert sum(plan.kept) == frames and plan.lengths[0] == window == plan.kept[0]
    for length, kept in zip(plan.lengths[1:], plan.kept[1:]):
        assert kept <= length - plan.overlap and length <= window
        assert (length - defaults.frame_offset) % defaults.frame_step == 0 and length >= defaults.min_frames
    assert plan.overlap == max(1, window // 4)


def test_each_window_plays_the_schedule_segment_at_its_middle():
    schedule = (PromptSegment(0, "right"), PromptSegment(2, "up"), PromptSegment(4, "left"))
    plan = plan_chain(48, 16, 8.0, "x", schedule, ANY)  # windows start at frames 0, 12, 24, 36
    assert plan.prompts == ("right", "up", "up", "left")
    with pytest.raises(InvalidRequestError, match="the segment at 1s would play in no window"):
        plan_chain(48, 16, 8.0, "x", (PromptSegment(0, "a"), PromptSegment(1, "b"), PromptSegment(1.5, "c")), ANY)
    with pytest.raises(InvalidRequestError, match="not shorter than the video"):
        plan_chain(16, 16, 8.0, "x", (), ANY)


def test_a_window_is_cross_faded_over_the_overlap_and_extends_the_video():
    video = [np.full((2, 2, 3), 100, np.uint8) for _ in range(6)]
    part = np.full((6, 2, 2, 3), 200, np.uint8)
    append_window(video, part, overlap=4, kept=2)
    assert [int(f[0, 0, 0]) for f in video] == [100, 100, 100, 125, 150, 175, 200, 200]


def test_colours_are_pulled_to_the_first_windows_from_none_at_the_handover_to_all_at_the_end():
    rng = np.random.default_rng(0)
    first = rng.integers(60, 200, (6, 16, 16, 3), dtype=np.uint8)
    drifted = np.clip(first.astype(int) + [40, -20, 10], 0, 255).astype(np.uint8)
    matched = match_colours(drifted, lab_stats(first))
    assert np.array_equal(matched[0], drifted[0])
    error = lambda a: np.abs(a.astype(int) - first[-1]).mean()  # noqa: E731
    assert error(matched[-1]) < error(drifted[-1]) / 3


def test_the_embedded_model_makes_a_long_video_with_a_schedule(tmp_path, capsys):
    out = tmp_path / "long.mp4"
    assert main(["generate", SAMPLE, "-p", "0s: the red circle moves to the right; 2s: the red circle moves up",
                 "--num-frames", "40", "--window", "16", "--seed", "0", "-o", str(out)]) == 0
    assert "40 frames in 3 windows of 16 frames overlapping by 4" in capsys.readouterr().err
    meta = json.loads(out.with_name("long.mp4.json").read_text())
    assert meta["num_frames"] == 40 and meta["chain"]["window_frames"] == [16, 16, 16]
    assert meta["chain"]["window_prompts"] == ["the red circle moves to the right", "the red circle moves up",
                                               "the red circle moves up"]


def test_chained_runs_are_reproducible_and_report_every_windows_steps():
    gen = ImageToVideoGenerator(device="cpu")
    image = Image.open(SAMPLE).convert("RGB")
    calls = []
    request = GenerationRequest(image=image, prompt="the red circle moves to the right", num_frames=28, window=16,
                                seed=3, num_inference_steps=4)
    first = gen.run(request, callback=lambda step, total: calls.append((step, total)))
    assert first.frames.shape == (28, 128, 128, 3)
    assert calls == [(i, 8) for i in range(1, 9)]  # two windows of 4 steps
    assert np.array_equal(gen.run(request).frames, first.frames)
    # the seam is a cross-fade, not a cut: no frame-to-frame change far above the clip's usual
    steps = np.abs(np.diff(first.frames.astype(float), axis=0)).mean(axis=(1, 2, 3))
    assert steps.max() < 3 * np.median(steps)


def test_a_diffusers_model_chains_in_its_frame_rule(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt="x", num_frames=14, window=6, seed=0, height=32,
                                       width=32, num_inference_steps=2))
    assert result.frames.shape == (14, 32, 32, 3)
    assert result.settings["chain"]["window_frames"][0] == 5  # snapped to 4n+1
    assert all((n - 1) % 4 == 0 for n in result.settings["chain"]["window_frames"])


@pytest.mark.parametrize("fields, message", [
    (dict(window=16, num_frames=16), "not shorter than the video"),
    (dict(window=0, num_frames=40), "window must be a positive integer"),
    (dict(window=16, num_frames=40, init_video=np.zeros((40, 64, 64, 3), np.uint8)), "cannot take an init video"),
])
def test_impossible_chains_are_refused_before_generating(fields, message):
    gen = ImageToVideoGenerator(device="cpu")
    with pytest.raises(InvalidRequestError, match=message):
        gen.backend.resolve(GenerationRequest(image=SAMPLE, seed=0, **fields), [])


@pytest.mark.parametrize("folder, frames", [("ltx", 265), ("skyreels-df", 97), ("helios", 65)])
def test_a_run_its_model_makes_in_its_own_windows_refuses_a_window(tiny_folder, square_image, folder, frames):
    gen = ImageToVideoGenerator(tiny_folder(folder), device="cpu")
    with pytest.raises(InvalidRequestError, match="makes this video in its own windows"):
        gen.backend.resolve(GenerationRequest(image=square_image, num_frames=frames, window=33, seed=0), [])
    assert not gen.backend.weights_resident()


def test_the_image_to_video_models_of_a_long_video_family_chain(tiny_folder, square_image):
    """SkyReels-V2's image-to-video models (not diffusion forcing) chain like any other model."""
    gen = ImageToVideoGenerator(tiny_folder("skyreels"), device="cpu")
    settings = gen.backend.resolve(GenerationRequest(image=square_image, num_frames=33, window=17, seed=0,
                                                     height=32, width=32), [])
    assert settings.extras["chain"]["window_frames"][0] == 17
