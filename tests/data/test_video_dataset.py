"""VideoClipDataset over tiny videos written into tmp folders: indices, skipping, clips, buckets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from i2v.data.video_dataset import (
    DatasetError,
    VideoClipDataset,
    VideoRecord,
    aspect_bucket_sizes,
    read_index,
)
from i2v.io.video import write_video

# Most test folders hold videos without captions on purpose; that warning is tested once below.
pytestmark = pytest.mark.filterwarnings("ignore:.*have no <stem>.txt caption")


def moving_square(num_frames: int = 16, height: int = 32, width: int = 48) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: a white square sliding right over a dark background."""
    frames = np.full((num_frames, height, width, 3), 40, np.uint8)
    for k in range(num_frames):
        x = k * (width - 8) // max(num_frames - 1, 1)
        frames[k, height // 2 - 4:height // 2 + 4, x:x + 8] = 255
    return frames


def grey_ramp(num_frames: int = 24, size: int = 32) -> np.ndarray:
    """Frame ``k`` is uniform grey ``10 * k``: the frame index is readable from the pixel values."""
    return np.repeat(np.arange(num_frames, dtype=np.uint8)[:, None, None, None] * 10, size, 1
                     ).repeat(size, 2).repeat(3, 3)  # (T, size, size, 3)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A folder of small videos (written once): 3 landscape, 1 portrait, 1 grey ramp."""
    root = tmp_path_factory.mktemp("videos")
    for k in range(3):
        write_video(moving_square(16 + 4 * k), root / f"land{k}.mp4", fps=8)
        (root / f"land{k}.txt").write_text(f"a square moves right {k}\n")
    write_video(moving_square(16, 48, 32), root / "port.mp4", fps=8)
    (root / "port.txt").write_text("a tall video")
    write_video(grey_ramp(), root / "ramp.mp4", fps=8)
    (root / "ramp.txt").write_text("grey ramp")
    for sidecar in root.glob("*.json"):
        sidecar.unlink()  # plain user videos carry no sidecars
    return root


def copy_library(library: Path, dest: Path, names=("land0", "land1", "land2", "port", "ramp")) -> Path:
    """Copy some videos (with captions) into ``dest``, which a test may then damage."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(library / f"{name}.mp4", dest)
        shutil.copy(library / f"{name}.txt", dest)
    return dest


def collect() -> tuple[list[str], Callable[[str], None]]:
    """A list of logged messages and the ``log`` callable that fills it."""
    messages: list[str] = []
    return messages, messages.append


# --------------------------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------------------------


def test_csv_index_resolves_relative_paths(library):
    index = library / "index.csv"
    index.write_text('video,caption\nland0.mp4,"first, with a comma"\nport.mp4,tall\n', encoding="utf-8")
    assert read_index(index) == [(library / "land0.mp4", "first, with a comma"), (library / "port.mp4", "tall")]


def test_webvid_metadata_csv_with_videoids_in_videos_subfolder(tmp_path, library):
    copy_library(library, tmp_path / "videos", names=("land0", "port"))
    (tmp_path / "videos" / "land0.mp4").rename(tmp_path / "videos" / "1066.mp4")
    (tmp_path / "videos" / "port.mp4").rename(tmp_path / "videos" / "2077.mp4")
    index = tmp_path / "metadata.csv"
    index.write_text("\ufeffvideoid,contentUrl,duration,page_dir,name\n"
                     "1066,https://x/1066.mp4,PT00H00M02S,001,Drone shot of a lake\n"
                     "2077,https://x/2077.mp4,PT00H00M02S,001,Tall trees\n", encoding="utf-8")
    entries = read_index(index)
    assert entries == [(tmp_path / "videos" / "1066.mp4", "Drone shot of a lake"),
                       (tmp_path / "videos" / "2077.mp4", "Tall trees")]
    assert len(VideoClipDataset(index, num_frames=4, height=32, width=32)) == 2


def test_jsonl_index(library):
    index = library / "index.jsonl"
    index.write_text(json.dumps({"path": "land1.mp4", "text": "one"}) + "\n\n"
                     + json.dumps({"path": str(library / "ramp.mp4"), "text": "two"}) + "\n")
    assert read_index(index) == [(library / "land1.mp4", "one"), (library / "ramp.mp4", "two")]


def test_folder_index_is_sorted_and_warns_once_about_missing_captions(tmp_path, library):
    copy_library(library, tmp_path, names=("port", "land1", "land0"))
    (tmp_path / "land1.txt").unlink()
    (tmp_path / "port.txt").unlink()
    (tmp_path / "notes.md").write_text("not a video")
    with pytest.warns(UserWarning, match="2 of 3 videos have no") as caught:
        entries = read_index(tmp_path)
    assert len(caught) == 1
    assert entries == [(tmp_path / "land0.mp4", "a square moves right 0"),
                       (tmp_path / "land1.mp4", ""), (tmp_path / "port.mp4", "")]


@pytest.mark.parametrize("name, content, match", [
    ("missing.csv", None, "no such index"),
    ("index.pkl", b"\x80\x04K\x01.", "unknown index type '.pkl'"),
    ("index.csv", "video,label\na.mp4,x\n", r"caption column .*found \['video', 'label'\]"),
    ("index.csv", "clip,caption\na.mp4,x\n", "video column"),
    ("index.csv", "video,caption\n", "lists no videos"),
    ("index.csv", "video,caption\n,orphan caption\n", "line 2 has an empty video"),
    ("index.csv", "video,caption\na.mp4,x,extra\n", "1 malformed row.*line 2: 3 fields, the header has 2"),
    ("index.csv", "video,caption\na.mp4,x\nb.mp4\n", "line 3: 1 fields, the header has 2"),
    ("index.csv", 'video,caption\na.mp4,"a cat\nb.mp4,a dog\nc.mp4,a bird"\nd.mp4,x\n',
     "lines 2-4: the caption runs over several rows"),
    ("index.csv", 'video,caption\na.mp4,"a cat\nb.mp4,a dog\n', "cannot parse CSV"),
    ("index.jsonl", '{"video": "a.mp4", "caption": "x"}\n{not json\n', "line 2 is not valid JSON"),
    ("index.jsonl", '["a.mp4", "x"]\n', "line 1 is not a JSON object"),
    ("index.jsonl", '{"video": "a.mp4"}\n', "line 1: needs a caption column"),
    ("empty", "folder", "lists no videos"),
])
def test_bad_indices_raise_dataset_error_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError, match=match) as info:
        read_index(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------------
# Probing and skipping
# --------------------------------------------------------------------------------------------


def test_probe_records_headers(library):
    ds = VideoClipDataset(library, num_frames=8, height=32, width=32)
    assert [r.path.name for r in ds.records] == ["land0.mp4", "land1.mp4", "land2.mp4", "port.mp4", "ramp.mp4"]
    assert ds.records[0] == VideoRecord(library / "land0.mp4", "a square moves right 0", 16, 48, 32, 8.0)
    assert ds.records[3].width == 32 and ds.records[3].height == 48
    assert ds.skipped == [] and len(ds) == 5


def test_gif_and_webm_frames_are_counted_from_packets(tmp_path):
    write_video(moving_square(12), tmp_path / "a.gif", fps=8)
    write_video(moving_square(12), tmp_path / "b.webm", fps=8)
    ds = VideoClipDataset(tmp_path, num_frames=12, height=32, width=32)
    assert [(r.path.name, r.num_frames, r.width, r.height) for r in ds.records] == [
        ("a.gif", 12, 48, 32), ("b.webm", 12, 48, 32)]
    assert ds.load_clip(0, 0).shape == ds.load_clip(1, 0).shape == (3, 12, 32, 32)


def test_corrupt_short_and_missing_files_are_skipped_with_reasons(tmp_path, library):
    copy_library(library, tmp_path, names=("land0", "land1", "land2", "port", "ramp"))
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(2048))
    write_video(moving_square(6), tmp_path / "short.mp4", fps=8)
    (tmp_path / "index.csv").write_text(
        "file,prompt\n" + "".join(f"{p.name},x\n" for p in sorted(tmp_path.glob("*.mp4"))) + "gone.mp4,x\n")
    messages, log = collect()
    ds = VideoClipDataset(tmp_path / "index.csv", num_frames=8, height=32, width=32,
                          max_bad_fraction=0.4, log=log)
    assert len(ds) == 5
    reasons = {path.name: reason for path, reason in ds.skipped}
    assert set(reasons) == {"broken.mp4", "short.mp4", "gone.mp4"}
    assert reasons["broken.mp4"].startswith("cannot open video")
    assert reasons["short.mp4"] == "too short: 6 frames, a clip needs 8"
    assert reasons["gone.mp4"] == "file not found"
    assert len(messages) == 3 and all(m.startswith("skipping ") for m in messages)


def test_default_log_warns_per_skipped_file(tmp_path, library):
    copy_library(library, tmp_path, names=("land0", "land1"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.warns(UserWarning, match="broken.mp4: cannot open video"):
        VideoClipDataset(tmp_path, num_frames=4, height=32, width=32, max_bad_fraction=0.5)


def test_too_many_bad_files_raise_with_counts(tmp_path, library):
    copy_library(library, tmp_path, names=("land0",))
    for k in range(2):
        (tmp_path / f"bad{k}.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match=r"2 of 3 videos are unusable.*bad0.mp4: cannot open"):
        VideoClipDataset(tmp_path, num_frames=4, log=lambda m: None)
    (tmp_path / "land0.mp4").unlink()
    with pytest.raises(DatasetError, match="none of the 2 listed videos is usable"):
        VideoClipDataset(tmp_path, num_frames=4, log=lambda m: None)


def test_a_clip_longer_than_every_video_is_refused(library):
    with pytest.raises(DatasetError, match=r"too short: 16 frames, a clip needs 25"):
        VideoClipDataset(library, num_frames=13, frame_stride=2, log=lambda m: None)


def test_argument_checks(library):
    with pytest.raises(ValueError, match="num_frames"):
        VideoClipDataset(library, num_frames=0)
    with pytest.raises(ValueError, match="max_bad_fraction"):
        VideoClipDataset(library, max_bad_fraction=1.5)


# --------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------


def test_clip_follows_the_stride_and_is_in_range(library):
    ds = VideoClipDataset(library, num_frames=5, frame_stride=3,
                          height=32, width=32)
    i = [r.path.name for r in ds.records].index("ramp.mp4")
    assert ds.clip_starts(i, 1) == [6]  # 24 frames, span 13: starts 0..11, midpoint
    assert ds.clip_starts(i, 4) == [1, 4, 7, 10]
    clip = ds.load_clip(i, 4)
    assert clip.shape == (3, 5, 32, 32) and clip.dtype == torch.float32
    assert clip.min() >= -1 and clip.max() <= 1
    grey = (clip.mean(dim=(0, 2, 3)) + 1) * 127.5  # mean level per frame
    np.testing.assert_allclose(grey.numpy(), [10 * k for k in (4, 7, 10, 13, 16)], atol=3)
    with pytest.raises(ValueError, match="not a valid clip start"):
        ds.load_clip(i, 12)


def test_non_square_video_is_resized_to_cover_and_centre_cropped(tmp_path):
    frames = np.full((8, 32, 48, 3), 128, np.uint8)
    frames[:, :, :8] = frames[:, :, -8:] = (255, 0, 0)  # red bars outside the centre square
    write_video(frames, tmp_path / "bars.mp4", fps=8)
    ds = VideoClipDataset(tmp_path, num_frames=8, height=32, width=32)
    clip = ds.load_clip(0, 0)
    assert clip.shape == (3, 8, 32, 32)
    assert (clip[0] - clip[1]).abs().mean() < 0.05  # red bars cropped away: grey is left
    big = VideoClipDataset(tmp_path, num_frames=4, height=40, width=72).load_clip(0, 2)
    assert big.shape == (3, 4, 40, 72)  # upscaled to cover 72 wide, cropped to 40 high


def test_aspect_bucket_sizes():
    sizes = aspect_bucket_sizes(64, 64, 16)
    assert sizes == [(48, 80), (48, 96), (64, 64), (80, 48), (96, 48)]
    assert all(h % 16 == 0 and w % 16 == 0 and 0.5 <= w / h <= 2 for h, w in sizes)
    assert aspect_bucket_sizes(30, 30, 32) == [(32, 32)]


def test_aspect_buckets_keep_orientation(library):
    ds = VideoClipDataset(library, num_frames=8, height=64, width=64, aspect_buckets=True, size_multiple=16)
    names = [r.path.name for r in ds.records]
    land, port, square = (ds.size_of(names.index(n)) for n in ("land0.mp4", "port.mp4", "ramp.mp4"))
    assert land == (48, 80) and port == (80, 48) and square == (64, 64)
    assert ds.buckets() == {(48, 80): [0, 1, 2], (64, 64): [4], (80, 48): [3]}
    assert ds.load_clip(names.index("port.mp4"), 0).shape == (3, 8, 80, 48)
    flat = VideoClipDataset(library, num_frames=8, height=64, width=64)
    assert {flat.size_of(i) for i in range(len(flat))} == {(64, 64)}


def test_sample_batch_is_a_pure_function_of_the_rng(library):
    ds = VideoClipDataset(library, num_frames=4, frame_stride=2, height=32, width=32,
                          aspect_buckets=True, size_multiple=16)
    for seed in range(3):
        video, captions, indices = ds.sample_batch(np.random.default_rng(seed), 3)
        again, captions2, indices2 = ds.sample_batch(np.random.default_rng(seed), 3)
        assert torch.equal(video, again) and captions == captions2 and indices == indices2
        assert video.shape == (3, 3, 4, *ds.size_of(indices[0]))
        assert len({ds.size_of(i) for i in indices}) == 1
        assert captions == [ds.records[i].caption for i in indices]


def test_a_file_failing_at_decode_is_skipped_by_sample_batch(tmp_path, library):
    copy_library(library, tmp_path, names=("land0", "land1", "land2", "ramp"))
    messages, log = collect()
    ds = VideoClipDataset(tmp_path, num_frames=4, height=32, width=32, max_bad_fraction=0.3, log=log)
    bad = tmp_path / "land1.mp4"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated after probing
    rng = np.random.default_rng(0)
    for _ in range(4):
        video, _, indices = ds.sample_batch(rng, 4)
        assert video.shape == (4, 3, 4, 32, 32) and 1 not in indices
    assert [(p.name, r.startswith("cannot decode")) for p, r in ds.skipped] == [("land1.mp4", True)]
    assert messages == [f"skipping {bad}: {ds.skipped[0][1]}"]
    assert 1 not in ds.buckets()[(32, 32)]

    (tmp_path / "land2.mp4").write_bytes(b"")  # a second failure: 2 of 4 > 0.3
    with pytest.raises(DatasetError, match=r"2 of 4 videos are unusable"):
        for _ in range(20):
            ds.sample_batch(rng, 4)


def test_csv_multi_line_caption_on_purpose_and_empty_captions_reported(tmp_path):
    index = tmp_path / "index.csv"
    index.write_text('video,caption,source\na.mp4,"a cat\nsits on a mat",web\nb.mp4,,web\nc.mp4,  ,web\n')
    with pytest.warns(UserWarning, match=r"2 of 3 rows have an empty caption \(line 4, 5\)"):
        entries = read_index(index)
    assert [(p.name, c) for p, c in entries] == [("a.mp4", "a cat sits on a mat"), ("b.mp4", ""), ("c.mp4", "")]
