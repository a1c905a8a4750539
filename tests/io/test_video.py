"""Round trips and failure modes of i2v.io.video (tiny clips written into tmp_path)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image

from i2v.io import video as video_io
from i2v.io.video import (
    CorruptVideoError,
    UnsupportedFormatError,
    VideoIOError,
    VideoWriter,
    as_frame_array,
    probe_video,
    read_metadata,
    read_video,
    write_video,
)

FORMATS = [".mp4", ".webm", ".gif", ".webp", "/"]
LOSSLESS = {".webp", "/"}


def make_clip(num_frames: int = 5, height: int = 32, width: int = 48) -> np.ndarray:
    """A smooth (T, H, W, 3) uint8 clip: a horizontal ramp whose green channel changes per frame."""
    ramp = np.linspace(0, 255, width)[None, :]
    clip = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        clip[t, ..., 0] = ramp
        clip[t, ..., 1] = 40 * t
        clip[t, ..., 2] = np.linspace(0, 255, height)[:, None]
    return clip


def out_path(tmp_path, suffix: str):
    return tmp_path / "frames/" if suffix == "/" else tmp_path / f"clip{suffix}"


def listing(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(("size", "fps"), [((32, 48), 8), ((17, 33), 7.5)])
def test_round_trip(tmp_path, suffix, size, fps):
    clip = make_clip(5, *size)
    clip[2] = clip[1]  # a repeated frame: GIF/WebP encoders merge these, reading must undo it
    path = write_video(clip, out_path(tmp_path, suffix), fps=fps)

    frames, read_fps = read_video(path)
    assert frames.dtype == np.uint8
    assert frames.shape == clip.shape  # exact size back, also for odd sizes padded in mp4/webm
    assert read_fps == pytest.approx(fps)
    error = np.abs(frames.astype(int) - clip).mean()
    if suffix in LOSSLESS:
        np.testing.assert_array_equal(frames, clip)
    else:
        assert error < 6, error

    info = probe_video(path)
    assert info["num_frames"] == 5
    assert info["fps"] == pytest.approx(fps)
    if suffix in (".mp4", ".webm"):
        # The container holds the even-padded size and the exact rate (7.5 -> 15/2).
        assert (info["width"], info["height"]) == (size[1] + size[1] % 2, size[0] + size[0] % 2)
        assert info["codec"] == ("h264" if suffix == ".mp4" else "vp9")
        assert info["pix_fmt"] == "yuv420p"
    else:
        assert (info["width"], info["height"]) == (size[1], size[0])


@pytest.mark.parametrize("fps", [7.5, 23.976, 24000 / 1001])
def test_container_stores_exact_non_integer_fps(tmp_path, fps):
    from fractions import Fraction

    path = write_video(make_clip(3), tmp_path / "a.mp4", fps=fps)
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    assert rate == Fraction(fps).limit_denominator(1001)
    assert probe_video(path)["fps"] == pytest.approx(fps, abs=1e-9)


def test_h264_small_square_sizes(tmp_path):
    for side in (64, 128):
        path = write_video(make_clip(2, side, side), tmp_path / f"s{side}.mp4", fps=8)
        assert probe_video(path)["width"] == side


def test_gif_durations_in_centiseconds_do_not_drift(tmp_path):
    path = write_video(make_clip(6), tmp_path / "a.gif", fps=7.5)
    with Image.open(path) as image:
        durations = []
        for i in range(image.n_frames):
            image.seek(i)
            durations.append(image.info["duration"])
        assert image.info.get("loop") == 0  # loops forever
    assert all(d % 10 == 0 for d in durations)
    assert sum(durations) == 800  # 6 frames at 7.5 fps = 800 ms exactly
    assert read_metadata(path)["video_file"]["fps"] == 7.5


def test_gif_rejects_fps_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="50"):
        write_video(make_clip(2), tmp_path / "a.gif", fps=60)


@pytest.mark.parametrize("suffix", FORMATS)
def test_metadata_round_trip(tmp_path, suffix):
    settings = {"prompt": "a red disc drifts left", "seed": np.int64(7), "guidance_scale": 3.5,
                "num_frames": 3, "height": 32, "width": 48}
    path = write_video(make_clip(3), out_path(tmp_path, suffix), fps=8, metadata=settings)
    meta = read_metadata(path)
    assert meta["prompt"] == settings["prompt"] and meta["seed"] == 7
    assert meta["video_file"]["num_frames"] == 3 and meta["video_file"]["fps"] == 8
    sidecar = path / "metadata.json" if suffix == "/" else path.with_name(path.name + ".json")
    assert json.loads(sidecar.read_text())["guidance_scale"] == 3.5

    if suffix in (".mp4", ".webm"):
        sidecar.unlink()  # falls back to the JSON in the container's comment tag
        assert read_metadata(path)["prompt"] == settings["prompt"]


def test_odd_size_is_recorded(tmp_path):
    path = write_video(make_clip(2, 17, 33), tmp_path / "odd.webm", fps=8)
    record = read_metadata(path)["video_file"]
    assert (record["width"], record["height"]) == (33, 17)
    assert (record["encoded_width"], record["encoded_height"]) == (34, 18)


def test_overwrite_frame_folder(tmp_path):
    folder = tmp_path / "frames"
    write_video(make_clip(4), folder, fps=8)
    write_video(make_clip(2), folder, fps=8)
    assert listing(folder) == {"frame_00000.png", "frame_00001.png", "metadata.json"}
    assert listing(tmp_path) == {"frames"}  # no temporary or old folders left behind


def test_frame_folder_refuses_foreign_files(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("keep me")
    with pytest.raises(VideoIOError, match="notes.txt"):
        write_video(make_clip(2), tmp_path / "stuff/", fps=8)
    assert listing(tmp_path / "stuff") == {"notes.txt"}


class Boom(RuntimeError):
    pass


def fail_on_third_call(real):
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Boom("encoder failed midway")
        return real(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("suffix", FORMATS)
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, suffix):
    for name in ("_to_av_frame", "_to_pil"):
        monkeypatch.setattr(video_io, name, fail_on_third_call(getattr(video_io, name)))
    with pytest.raises(Boom):
        write_video(make_clip(5), out_path(tmp_path, suffix), fps=8)
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("suffix", FORMATS)
def test_failed_write_keeps_existing_output(tmp_path, monkeypatch, suffix):
    path = write_video(make_clip(3), out_path(tmp_path, suffix), fps=8, metadata={"seed": 1})
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for name in ("_to_av_frame", "_to_pil"):
        monkeypatch.setattr(video_io, name, fail_on_third_call(getattr(video_io, name)))
    with pytest.raises(Boom):
        write_video(make_clip(5), path, fps=8, metadata={"seed": 2})
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert read_metadata(path)["seed"] == 1


def test_unsupported_extension(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"\.avi.*\.mp4") as info:
        write_video(make_clip(2), tmp_path / "clip.avi", fps=8)
    assert isinstance(info.value, ValueError)
    assert listing(tmp_path) == set()


def test_bad_metadata_fails_before_writing(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        write_video(make_clip(2), tmp_path / "a.mp4", fps=8, metadata={"bad": object()})
    assert listing(tmp_path) == set()


def test_corrupt_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not an mp4 file" * 10)
    with pytest.raises(CorruptVideoError, match="bad.mp4"):
        read_video(bad)
    bad_gif = tmp_path / "bad.gif"
    bad_gif.write_bytes(b"GIF89a broken")
    with pytest.raises(CorruptVideoError, match="bad.gif"):
        read_video(bad_gif)
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.mp4")


def test_as_frame_array_inputs_and_errors():
    clip = make_clip(3, 8, 8)
    np.testing.assert_array_equal(as_frame_array(list(clip)), clip)
    np.testing.assert_array_equal(as_frame_array([Image.fromarray(f) for f in clip]), clip)
    with pytest.raises(ValueError, match="uint8"):
        as_frame_array(clip.astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        as_frame_array(clip[..., 0])
    with pytest.raises(ValueError, match=r"frames\[1\]"):
        as_frame_array([clip[0], clip[1, :4]])
    with pytest.raises(ValueError, match="empty"):
        as_frame_array([])


def test_png_folder_from_elsewhere_needs_fps(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (2, 10, 1):  # natural order: 1, 2, 10
        Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"img{i}.png")
    with pytest.raises(VideoIOError, match="default_fps"):
        read_video(folder)
    frames, fps = read_video(folder, default_fps=12)
    assert fps == 12 and frames[:, 0, 0, 0].tolist() == [1, 2, 10]


@pytest.mark.parametrize("blocker", ["sidecar", "video"])
def test_a_folder_in_the_way_fails_before_anything_is_replaced(tmp_path, blocker):
    path = write_video(make_clip(3), tmp_path / "clip.mp4", fps=8, metadata={"seed": 1})
    video_bytes = path.read_bytes()
    if blocker == "sidecar":
        video_io.sidecar_path(path).unlink()
        video_io.sidecar_path(path).mkdir()
        with pytest.raises(VideoIOError, match="not a file"):
            write_video(make_clip(5), path, fps=8, metadata={"seed": 2})
        assert path.read_bytes() == video_bytes  # the old video was not replaced
    else:
        other = tmp_path / "other.mp4"
        other.mkdir()
        with pytest.raises(VideoIOError, match="not a file"):
            write_video(make_clip(5), other, fps=8)
        assert not video_io.sidecar_path(other).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_two_writers_leave_one_writers_video_and_sidecar(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "clip.mp4"
    code = ("import sys, numpy as np; from i2v.io.video import write_video\n"
            "seed = int(sys.argv[2]); clip = np.full((4, 16, 16, 3), 40 * seed, np.uint8)\n"
            "for _ in range(6): write_video(clip, sys.argv[1], fps=8, metadata={'seed': seed})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(s)]) for s in (1, 2)]
    assert [p.wait() for p in procs] == [0, 0]
    frames, _ = read_video(path)
    seed = read_metadata(path)["seed"]
    assert abs(int(frames[0, 8, 8, 0]) - 40 * seed) <= 3  # the sidecar belongs to the video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.mp4.json"]


def test_stale_partials_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    import os
    import time

    from i2v.io.temps import TEMP_PREFIX

    stale = tmp_path / f"{TEMP_PREFIX}deadbeef-clip.mp4"
    stale.write_bytes(b"half a video")
    old = time.time() - 60
    os.utime(stale, (old, old))
    write_video(make_clip(2), tmp_path / "clip.mp4", fps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.mp4.json"]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_disk_full_while_writing_is_a_typed_error_and_changes_nothing(tmp_path, monkeypatch, suffix):
    import errno

    path = write_video(make_clip(3), tmp_path / f"clip{suffix}", fps=8, metadata={"seed": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def disk_full(frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("_to_av_frame", "_to_pil"):  # the first frame fails, after the temporaries exist
        monkeypatch.setattr(video_io, name, disk_full)
    with pytest.raises(VideoIOError, match="cannot write \\(No space left on device\\); no existing file"):
        write_video(make_clip(5), path, fps=8, metadata={"seed": 2})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --------------------------------------------------------------------------------------------
# Streaming (VideoWriter)
# --------------------------------------------------------------------------------------------


def write_in_chunks(clip, path, sizes, **kwargs):
    with VideoWriter(path, fps=8, metadata={"seed": 1}, num_frames=len(clip), **kwargs) as writer:
        start = 0
        for size in sizes:
            writer.write(clip[start: start + size])
            start += size
    return writer.path


@pytest.mark.parametrize("suffix", FORMATS)
def test_chunks_written_as_they_come_make_the_video_one_write_makes(tmp_path, suffix):
    clip = make_clip(6, 17, 33)
    whole = write_video(clip, out_path(tmp_path / "whole", suffix), fps=8, metadata={"seed": 1})
    streamed = write_in_chunks(clip, out_path(tmp_path / "streamed", suffix), [2, 1, 3])
    (frames, fps), (expected, expected_fps) = read_video(streamed), read_video(whole)
    np.testing.assert_array_equal(frames, expected)
    assert fps == expected_fps and read_metadata(streamed) == read_metadata(whole)
    if suffix in LOSSLESS:
        np.testing.assert_array_equal(frames, clip)


def frames_then_failure(clip, chunks_before_failure):
    for start in range(chunks_before_failure):
        yield clip[start: start + 1]
    raise Boom("the model failed mid-video")


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("suffix", FORMATS)
def test_a_failure_mid_stream_leaves_no_output_and_no_temporaries(tmp_path, suffix, existing):
    path = out_path(tmp_path, suffix)
    if existing:
        write_video(make_clip(3), path, fps=8, metadata={"seed": 0})
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    clip = make_clip(5)
    with pytest.raises(Boom), VideoWriter(path, fps=8, metadata={"seed": 1}, num_frames=5) as writer:
        for chunk in frames_then_failure(clip, 2):
            writer.write(chunk)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # an existing output as it was; nothing new, no partial sibling
    assert not [p for p in tmp_path.rglob(".*")]


@pytest.mark.parametrize("count", [2, 6])  # fewer frames than announced (found at close), more (at the write)
def test_a_frame_count_other_than_the_announced_one_writes_nothing(tmp_path, count):
    clip = make_clip(count)
    with pytest.raises(ValueError, match="num_frames=5"), VideoWriter(tmp_path / "a.mp4", fps=8, num_frames=5) as writer:
        for start in range(0, count, 2):
            writer.write(clip[start: start + 2])
    assert listing(tmp_path) == set()


def test_a_chunk_of_another_size_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="differs from the first chunk's 48x32"), \
            VideoWriter(tmp_path / "clip.mp4", fps=8, num_frames=4) as writer:
        writer.write(make_clip(2))
        writer.write(make_clip(2, 16, 16))
    assert listing(tmp_path) == set()


def test_the_writer_refuses_bad_settings_before_touching_the_disk(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        VideoWriter(tmp_path / "a.mp4", fps=8, metadata={"bad": object()}, num_frames=2)
    with pytest.raises(ValueError, match="num_frames"):
        VideoWriter(tmp_path / "a.mp4", fps=8, num_frames=0)
    VideoWriter(tmp_path / "sub" / "a.mp4", fps=8, num_frames=2)  # never written to: leaves nothing
    assert listing(tmp_path) == set()
