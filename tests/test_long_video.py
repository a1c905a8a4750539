"""Long videos in chained windows (``--window``): the plan, the cross-fade and colour match, and runs
end to end on the embedded model and a tiny diffusers model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io import video as video_io
from i2v.io.video import read_metadata, read_video
from i2v.long_video import append_window, lab_stats, match_colours, plan_chain, pop_final
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


def test_only_the_frames_no_later_window_changes_are_final():
    video = [np.full((2, 2, 3), i, np.uint8) for i in range(6)]
    final = pop_final(video, hold=3)
    assert final.shape == (3, 2, 2, 3) and final[:, 0, 0, 0].tolist() == [0, 1, 2]
    assert [int(f[0, 0, 0]) for f in video] == [3, 4, 5]


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


# --------------------------------------------------------------------------------------------
# Streamed into the file (generate_to_file, the CLI's path)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gen(tiny_model_dir):
    return ImageToVideoGenerator(str(tiny_model_dir), device="cpu")


def chain_request(num_frames: int) -> GenerationRequest:
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:40, 20:40] = (220, 30, 30)
    return GenerationRequest(image=image, prompt="the red square moves right", num_frames=num_frames, window=8,
                             seed=1, num_inference_steps=1)


@pytest.fixture
def chunks(monkeypatch):
    """The frame chunks handed to every VideoWriter, in order."""
    seen = []
    write = video_io.VideoWriter.write

    def spy(self, frames):
        seen.append(np.array(frames))
        return write(self, frames)

    monkeypatch.setattr(video_io.VideoWriter, "write", spy)
    return seen


def test_a_streamed_chain_writes_the_frames_and_settings_a_whole_run_saves(tiny_gen, tmp_path, chunks):
    request = chain_request(30)
    whole = tiny_gen.run(request)
    saved = whole.save(tmp_path / "whole.mp4")
    chunks.clear()
    streamed = tiny_gen.generate_to_file(request, tmp_path / "streamed.mp4")
    assert streamed.frames is None and len(chunks) == len(whole.settings["chain"]["window_frames"])
    np.testing.assert_array_equal(np.concatenate(chunks), whole.frames)  # what the encoder is given, frame for frame
    assert read_metadata(tmp_path / "streamed.mp4") == read_metadata(saved)
    tiny_gen.generate_to_file(request, tmp_path / "frames/")
    frames, fps = read_video(tmp_path / "frames")
    np.testing.assert_array_equal(frames, whole.frames)  # decoded from a lossless file
    assert fps == whole.fps


def test_a_streamed_chain_holds_a_window_of_frames_whatever_its_length(tiny_gen, tmp_path, monkeypatch):
    import tracemalloc

    sizes, write = [], video_io.VideoWriter.write

    def count(self, frames):
        sizes.append(len(frames))
        return write(self, frames)

    monkeypatch.setattr(video_io.VideoWriter, "write", count)

    def run(num_frames: int) -> int:
        """Peak bytes numpy and Python allocate while the run streams into an mp4."""
        tiny_gen.generate_to_file(chain_request(num_frames), tmp_path / "warm.mp4")  # first-call caches
        sizes.clear()
        tracemalloc.start()
        try:
            tiny_gen.generate_to_file(chain_request(num_frames), tmp_path / "long.mp4")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    frame_bytes, window = 64 * 64 * 3, 8
    short = run(24)
    assert max(sizes) <= window
    long = run(96)
    assert max(sizes) <= window and sum(sizes) == 96
    # 72 more frames (864 KiB) held would show; streamed, the peak grows by less than a window's frames
    assert long - short < window * frame_bytes


def test_a_chain_that_fails_mid_stream_leaves_no_file_and_the_old_one_as_it_was(tiny_gen, tmp_path, chunks,
                                                                                  monkeypatch):
    out = tmp_path / "long.mp4"
    tiny_gen.generate_to_file(chain_request(12), out)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    generate, calls = tiny_gen.backend.generate, []

    def fail_in_the_third_window(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory in window 3")
        return generate(*args, **kwargs)

    monkeypatch.setattr(tiny_gen.backend, "generate", fail_in_the_third_window)
    chunks.clear()
    with pytest.raises(RuntimeError, match="window 3"):
        tiny_gen.generate_to_file(chain_request(30), out)
    assert len(chunks) == 2  # two windows had gone to the file's temporary
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no partial sibling left either


def test_the_cli_streams_a_chained_run_into_its_output(tiny_model_dir, sample_image_path, tmp_path, chunks, capsys):
    out = tmp_path / "long.webm"
    assert main(["generate", str(sample_image_path), "-p", "x", "-m", str(tiny_model_dir), "--num-frames", "24",
                 "--window", "8", "--num-inference-steps", "1", "--seed", "0", "--timings", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (24 frames, 64x64, 8 fps, seed 0)" in printed and "write" in printed
    assert len(chunks) == len(read_metadata(out)["chain"]["window_frames"]) > 1  # one chunk a window
    assert max(len(c) for c in chunks) <= 8
    frames, _ = read_video(out)
    assert frames.shape == (24, 64, 64, 3)


@pytest.mark.parametrize("history_frames", [2, 1])
def test_a_model_that_continues_makes_each_window_from_the_last_frames_before_it(tmp_path, monkeypatch,
                                                                                history_frames):
    """A denoiser trained with history frames: each later window gets the frames it shares with the video before
    it (windows of 8 overlap by 2; a denoiser trained on one frame gets the first of them) as latents, held as
    they are, and the first frame's latents as its image (the anchor), with no colour matching; the record
    says so."""
    import torch

    from i2v.models.unet import build_unet
    from i2v.pipelines.pipeline_i2v import I2VPipeline

    from .conftest import dummy_components, randomize_zero_init

    parts = dummy_components()
    torch.manual_seed(2)
    parts["unet"] = build_unet("test", num_frames=4, sample_size=parts["unet"].config.sample_size,
                               latent_channels=parts["vae"].config.latent_channels, history_frames=history_frames)
    randomize_zero_init(parts["unet"])
    I2VPipeline(**parts).save_pretrained(tmp_path / "model")
    gen = ImageToVideoGenerator(str(tmp_path / "model"), device="cpu")
    calls = []
    call = I2VPipeline.__call__

    def spy(self, **kwargs):
        out = call(self, **kwargs)
        calls.append((kwargs.get("image_latents"), kwargs.get("history_latents"), out.latents))
        return out

    monkeypatch.setattr(I2VPipeline, "__call__", spy)
    result = gen.run(chain_request(20))  # windows of 8 overlapping by 2
    assert len(calls) == 3 and result.frames.shape[0] == 20
    assert calls[0][1] is None
    anchor = calls[0][2][:, :, 0]
    for (_, _, before), (image, history, _) in itertools.pairwise(calls):
        torch.testing.assert_close(history, before[:, :, 6:6 + history_frames])  # the shared frames, from the first
        torch.testing.assert_close(image, anchor)  # the first frame stays its image
    assert f"the first {history_frames} of the 2 frames" in result.settings["chain"]["handover"]
    assert result.settings["chain"]["colour_match"].startswith("none")
    assert any(f"from the {history_frames} frames before it" in n for n in result.notices)
