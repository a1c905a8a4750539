"""Input videos (video-to-video's init video): probed before loading, read frame by frame and fitted."""

from __future__ import annotations

import numpy as np
import pytest

from i2v.errors import VideoInputError
from i2v.io.images import fit_image
from i2v.io.video import read_video, write_video
from i2v.io.video_input import probe_input_video, read_input_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames of 48x80 with a bright bar that moves right, as an mp4."""
    video = np.zeros((30, 48, 80, 3), np.uint8) + 40
    for t in range(30):
        video[t, 10:38, 2 * t:2 * t + 8] = (230, 60, 60)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(video, path, fps=8)
    return path


def test_probe_counts_the_frames_of_files_and_arrays(clip, tmp_path):
    assert probe_input_video(clip) == 30
    assert probe_input_video(np.zeros((7, 8, 8, 3), np.uint8)) == 7
    frames = tmp_path / "frames"
    write_video(np.zeros((5, 16, 16, 3), np.uint8), frames, fps=8)
    assert probe_input_video(frames) == 5


def test_reads_the_first_frames_fitted_to_the_output_size(clip):
    out = read_input_video(clip, 6, 32, 32)
    assert out.shape == (6, 32, 32, 3) and out.dtype == np.uint8
    decoded, _ = read_video(clip)
    expected = np.stack([np.asarray(fit_image(f, 32, 32)[0]) for f in decoded[:6]])
    assert np.array_equal(out, expected)
    array = read_input_video(decoded, 3, 40, 24)  # an array input, another aspect
    assert array.shape == (3, 24, 40, 3)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "no such video"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a video i2v reads"),
    (lambda d: (d / "broken.mp4").write_bytes(b"\x00" * 64) and d / "broken.mp4", "cannot read the init video"),
])
def test_unusable_files_are_named(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(VideoInputError, match=message) as info:
        probe_input_video(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("array", [np.zeros((4, 8, 8), np.uint8), np.zeros((4, 8, 8, 3), np.float32),
                                   np.zeros((0, 8, 8, 3), np.uint8), [[0]]])
def test_bad_arrays_are_refused(array):
    with pytest.raises(VideoInputError, match="init video"):
        probe_input_video(array) if isinstance(array, np.ndarray) else read_input_video(array, 1, 8, 8)


def test_a_video_shorter_than_the_run_is_refused(clip):
    with pytest.raises(VideoInputError, match="has 30 decodable frames; the run needs 31"):
        read_input_video(clip, 31, 32, 32)


def test_a_gif_that_would_decode_too_large_is_refused_from_its_header(tmp_path, monkeypatch):
    from i2v.errors import VideoTooLargeError
    from i2v.io import video_input

    gif = tmp_path / "clip.gif"
    write_video(np.arange(6, dtype=np.uint8)[:, None, None, None].repeat(40, 1).repeat(40, 2).repeat(3, 3) * 40, gif,
                fps=8)  # six different frames (a GIF merges repeated ones)
    assert probe_input_video(gif) == 6
    monkeypatch.setattr(video_input, "MAX_DECODED_ANIMATION_BYTES", 10_000)
    with pytest.raises(VideoTooLargeError, match="decode to 28,800 bytes"):
        probe_input_video(gif)
