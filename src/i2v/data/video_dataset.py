"""A dataset of the user's own captioned videos for training (WebVid-style).

``read_index`` turns a CSV, a JSONL file or a folder of videos with ``<stem>.txt`` captions into
``(path, caption)`` pairs. ``VideoClipDataset`` probes every file's header once with PyAV,
skips (and reports) files it cannot use, and serves clips of ``num_frames`` frames taken every
``frame_stride`` frames as ``(3, T, H, W)`` float tensors in ``[-1, 1]``, resized to cover the
target size and centre-cropped; with ``aspect_buckets`` each video keeps its orientation.
``sample_batch`` draws everything from the caller's ``numpy`` generator, so a training run that
restores the generator state resumes with exactly the same batches. Nothing here unpickles.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError

__all__ = [
    "VIDEO_SUFFIXES",
    "DatasetError",
    "VideoClipDataset",
    "VideoRecord",
    "aspect_bucket_sizes",
    "read_index",
]

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".gif")
# Accepted index column names, in order of preference (matched case-insensitively).
VIDEO_KEYS = ("video", "path", "file", "filename", "videoid")
CAPTION_KEYS = ("caption", "text", "name", "prompt")
MAX_ASPECT_RATIO = 2.0  # buckets span 1:2 .. 2:1
BUCKET_AREA_TOLERANCE = 0.25  # a bucket's area stays within 25% of height * width


@dataclass
class VideoRecord:
    """One usable video: where it is, its caption and its probed header."""

    path: Path
    caption: str
    num_frames: int
    width: int
    height: int
    fps: float


# --------------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------------


def read_index(source: str | Path) -> list[tuple[Path, str]]:
    """Read ``(video path, caption)`` pairs from a .csv, a .jsonl or a folder of videos."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such index file or folder")
    if source.is_dir():
        entries = _read_folder(source)
    elif source.suffix.lower() == ".csv":
        entries = _read_csv(source)
    elif source.suffix.lower() == ".jsonl":
        entries = _read_jsonl(source)
    else:
        raise DatasetError(
            f"{source}: unknown index type {source.suffix!r}; expected a .csv, a .jsonl or a folder"
        )
    if not entries:
        raise DatasetError(f"{source}: the index lists no videos")
    return entries


def _read_folder(folder: Path) -> list[tuple[Path, str]]:
    """Every video under ``folder`` (sorted) with the caption in its sibling ``<stem>.txt``."""
    videos = sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    entries, missing = [], 0
    for video in videos:
        caption_file = video.with_suffix(".txt")
        if caption_file.is_file():
            entries.append((video, caption_file.read_text(encoding="utf-8", errors="replace").strip()))
        else:
            entries.append((video, ""))
            missing += 1
    if missing:
        warnings.warn(f"{folder}: {missing} of {len(videos)} videos have no <stem>.txt caption; "
                      "using an empty caption", stacklevel=3)
    return entries


def _read_csv(path: Path) -> list[tuple[Path, str]]:
    """A CSV with a header naming a video column and a caption column, parsed strictly: a row with
    more or fewer fields than the header, or whose caption swallowed later rows (an unbalanced
    quote), is an error naming its line; rows with an empty caption are counted and reported."""
    entries, malformed, uncaptioned = [], [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file, strict=True)
            video_key, caption_key = _pick_columns(reader.fieldnames or [], path)
            width = len(reader.fieldnames)
            start = reader.line_num + 1
            for row in reader:
                where = f"line {start}" if reader.line_num == start else f"lines {start}-{reader.line_num}"
                fields = width + len(row.get(None) or []) - sum(v is None for k, v in row.items() if k is not None)
                caption = (row.get(caption_key) or "").strip()
                if fields != width:
                    malformed.append(f"{where}: {fields} fields, the header has {width}")
                elif _swallowed_rows(caption):
                    malformed.append(f"{where}: the caption runs over several rows (an unbalanced quote?)")
                else:
                    entries.append((_resolve_video(row.get(video_key), path, where), " ".join(caption.split())))
                    if not caption:
                        uncaptioned.append(start)
                start = reader.line_num + 1
    except (UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: cannot parse CSV ({err})") from err
    if malformed:
        raise DatasetError(f"{path}: {len(malformed)} malformed row(s); {'; '.join(malformed[:5])}"
                           + (" ..." if len(malformed) > 5 else ""))
    if uncaptioned:
        warnings.warn(f"{path}: {len(uncaptioned)} of {len(entries)} rows have an empty caption (line "
                      f"{', '.join(map(str, uncaptioned[:5]))}{' ...' if len(uncaptioned) > 5 else ''}); they "
                      "train as unconditioned clips", stacklevel=3)
    return entries


def _swallowed_rows(caption: str) -> bool:
    """Whether a multi-line caption holds what looks like further index rows (a video file and a
    comma): an unbalanced quote, not a caption written over several lines on purpose."""
    return any("," in line and any(s in line.lower() for s in VIDEO_SUFFIXES) for line in caption.splitlines()[1:])


def _read_jsonl(path: Path) -> list[tuple[Path, str]]:
    """One JSON object per line with a video key and a caption key."""
    entries = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err})") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as err:
            raise DatasetError(f"{path}: line {number} is not valid JSON ({err})") from err
        if not isinstance(item, dict):
            raise DatasetError(f"{path}: line {number} is not a JSON object")
        video_key, caption_key = _pick_columns(list(item), path, f"line {number}: ")
        caption = item.get(caption_key)
        entries.append((_resolve_video(item.get(video_key), path, f"line {number}"),
                        "" if caption is None else str(caption).strip()))
    return entries


def _pick_columns(names: list[str], path: Path, where: str = "") -> tuple[str, str]:
    """The video and caption column names among ``names``, or DatasetError listing what exists."""
    lowered = {name.strip().lower(): name for name in names if name is not None}
    video = next((lowered[key] for key in VIDEO_KEYS if key in lowered), None)
    caption = next((lowered[key] for key in CAPTION_KEYS if key in lowered), None)
    if video is None or caption is None:
        missing = [f"a {kind} column ({'/'.join(keys)})" for kind, keys, found in
                   (("video", VIDEO_KEYS, video), ("caption", CAPTION_KEYS, caption)) if found is None]
        raise DatasetError(f"{path}: {where}needs {' and '.join(missing)}; found {list(names)}")
    return video, caption


def _resolve_video(value: object, index: Path, where: str) -> Path:
    """Resolve a listed video against the index's folder (and its ``videos/``); add ``.mp4``
    to a WebVid ``videoid``. Returns the first existing candidate, else the first one."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise DatasetError(f"{index}: {where} has an empty video entry")
    listed = Path(text).expanduser()
    bases = [listed] if listed.is_absolute() else [index.parent / listed, index.parent / "videos" / listed]
    candidates = []
    for base in bases:
        candidates.append(base)
        if base.suffix.lower() not in VIDEO_SUFFIXES:
            candidates.append(base.with_name(base.name + ".mp4"))
    return next((c for c in candidates if c.is_file()), candidates[0])


# --------------------------------------------------------------------------------------------
# Probing, decoding, resizing
# --------------------------------------------------------------------------------------------


def _probe(path: Path) -> tuple[int, int, int, float]:
    """``(num_frames, width, height, fps)`` from the headers (packets counted if needed)."""
    if not path.is_file():
        raise DatasetError("file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError("no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            num_frames = stream.frames  # 0 when the container (webm, mkv, gif) does not store it
            if not num_frames:
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as err:
        raise DatasetError(f"cannot open video ({err})") from err
    if not width or not height:
        raise DatasetError("video stream has no frame size")
    return int(num_frames), int(width), int(height), float(rate) if rate else 0.0


def _cover_crop_box(src_w: int, src_h: int, width: int, height: int) -> tuple[float, float, float, float]:
    """The centred source region with the target's aspect ratio (resize-to-cover + centre-crop)."""
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = width / scale, height / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return left, top, left + crop_w, top + crop_h


def _fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to cover ``width x height`` and centre-crop (bicubic, box-reduced)."""
    src_h, src_w = frame.shape[:2]
    if (src_w, src_h) == (width, height):
        return frame
    box = _cover_crop_box(src_w, src_h, width, height)
    image = Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC, box=box,
                                          reducing_gap=2.0)  # reducing_gap: area-like downscale
    return np.asarray(image)


def aspect_bucket_sizes(height: int, width: int, multiple: int,
                        max_ratio: float = MAX_ASPECT_RATIO) -> list[tuple[int, int]]:
    """Bucket sizes ``(h, w)``: multiples of ``multiple``, area ~ ``height * width``, aspect 1:2..2:1."""
    area = height * width
    sizes = set()
    for side in range(multiple, math.isqrt(int(area * max_ratio)) + 2 * multiple, multiple):
        other = max(multiple, round(area / side / multiple) * multiple)
        if (1 / max_ratio - 1e-9 <= side / other <= max_ratio + 1e-9
                and abs(side * other / area - 1) <= BUCKET_AREA_TOLERANCE):
            sizes |= {(side, other), (other, side)}
    if not sizes:  # sizes too coarse for the area: one bucket, the base size snapped
        sizes = {(max(multiple, round(height / multiple) * multiple),
                  max(multiple, round(width / multiple) * multiple))}
    return sorted(sizes)


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


class VideoClipDataset:
    """Captioned clips of ``num_frames`` frames every ``frame_stride`` frames from the user's videos."""

    def __init__(
        self,
        source: str | Path,
        num_frames: int = 16,
        frame_stride: int = 1,
        height: int = 128,
        width: int = 128,
        *,
        aspect_buckets: bool = False,
        size_multiple: int = 32,
        max_bad_fraction: float = 0.2,
        log: Callable[[str], None] | None = None,
    ) -> None:
        for name, value in (("num_frames", num_frames), ("frame_stride", frame_stride),
                            ("height", height), ("width", width), ("size_multiple", size_multiple)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction: expected a number in [0, 1], got {max_bad_fraction!r}")
        self.source = Path(source)
        self.num_frames, self.frame_stride = int(num_frames), int(frame_stride)
        self.height, self.width = int(height), int(width)
        self.max_bad_fraction = float(max_bad_fraction)
        self.log = log or (lambda message: warnings.warn(message, stacklevel=3))
        self.span = (self.num_frames - 1) * self.frame_stride + 1  # source frames one clip covers

        # 1. Probe every listed file's header; skip the unusable ones with a reason
        entries = read_index(self.source)
        self.records: list[VideoRecord] = []
        self.skipped: list[tuple[Path, str]] = []
        self._total = len(entries)
        for path, caption in entries:
            try:
                count, w, h, fps = _probe(path)
                if count < self.span:
                    raise DatasetError(f"too short: {count} frames, a clip needs {self.span}")
            except DatasetError as err:
                self._skip(path, str(err))
                continue
            self.records.append(VideoRecord(path, caption, count, w, h, fps))
        if not self.records:
            raise DatasetError(f"{self.source}: none of the {self._total} listed videos is usable; "
                               f"{self._first_reasons()}")
        self._check_bad_fraction()

        # 2. Assign each video its target size (one bucket, or the closest aspect bucket)
        if aspect_buckets:
            sizes = aspect_bucket_sizes(self.height, self.width, int(size_multiple))
            self._sizes = [min(sizes, key=lambda s: abs(math.log((s[1] / s[0]) / (r.width / r.height))))
                           for r in self.records]
        else:
            self._sizes = [(self.height, self.width)] * len(self.records)
        self._excluded: set[int] = set()  # records that failed to decode in sample_batch

    def __len__(self) -> int:
        return len(self.records)

    def size_of(self, i: int) -> tuple[int, int]:
        """``(height, width)`` clip ``i`` is resized and cropped to."""
        return self._sizes[i]

    def buckets(self) -> dict[tuple[int, int], list[int]]:
        """Bucket size ``(h, w)`` -> indices of the records still in use, sizes sorted."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, size in enumerate(self._sizes):
            if i not in self._excluded:
                groups.setdefault(size, []).append(i)
        return dict(sorted(groups.items()))

    def clip_starts(self, i: int, count: int) -> list[int]:
        """``count`` evenly spaced valid start frames of video ``i`` (segment midpoints)."""
        if count < 1:
            raise ValueError(f"count: expected a positive integer, got {count!r}")
        choices = self.records[i].num_frames - self.span + 1  # valid starts: 0 .. choices - 1
        return [int((k + 0.5) * choices / count) for k in range(count)]

    def load_clip(self, i: int, start: int) -> torch.Tensor:
        """Decode frames ``start, start + stride, ...`` of video ``i`` -> ``(3, T, h, w)`` in [-1, 1]."""
        record = self.records[i]
        last = start + self.span - 1
        if start < 0 or last >= record.num_frames:
            raise ValueError(f"start: {start} is not a valid clip start for {record.path} "
                             f"({record.num_frames} frames, clip spans {self.span})")
        height, width = self._sizes[i]
        frames = []
        try:
            with av.open(str(record.path)) as container:
                stream = container.streams.video[0]
                for index, frame in enumerate(container.decode(stream)):
                    if index >= start and (index - start) % self.frame_stride == 0:
                        frames.append(_fit_frame(frame.to_ndarray(format="rgb24"), width, height))
                    if index == last:
                        break
        except (av.FFmpegError, OSError, IndexError, ValueError) as err:
            raise DatasetError(f"{record.path}: cannot decode video ({err})") from err
        if len(frames) != self.num_frames:
            raise DatasetError(f"{record.path}: decoding stopped early; got {len(frames)} of "
                               f"{self.num_frames} clip frames (frame {last} needed)")
        video = torch.from_numpy(np.stack(frames))  # (T, h, w, 3) uint8
        return video.permute(3, 0, 1, 2).float().div(127.5).sub(1.0)  # (3, T, h, w) in [-1, 1]

    def sample_batch(self, rng: np.random.Generator,
                     batch_size: int) -> tuple[torch.Tensor, list[str], list[int]]:
        """A random bucket, ``batch_size`` records from it and a random start each, all from ``rng``.

        Returns ``(video (B, 3, T, h, w), captions, indices)``. A video that fails to decode is
        recorded in ``skipped``, never drawn again, and the batch is drawn afresh.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        while True:  # each retry excludes one more record, so this ends
            groups = self.buckets()
            sizes = list(groups)
            counts = np.array([len(groups[s]) for s in sizes], dtype=np.float64)
            members = groups[sizes[rng.choice(len(sizes), p=counts / counts.sum())]]
            indices = [members[j] for j in rng.integers(len(members), size=batch_size)]
            starts = [int(rng.integers(self.records[i].num_frames - self.span + 1)) for i in indices]
            clips, bad = [], None
            for i, start in zip(indices, starts):
                try:
                    clips.append(self.load_clip(i, start))  # (3, T, h, w)
                except DatasetError as err:
                    bad, reason = i, str(err).removeprefix(f"{self.records[i].path}: ")
                    break
            if bad is not None:
                self._excluded.add(bad)
                self._skip(self.records[bad].path, reason)
                self._check_bad_fraction()
                if len(self._excluded) == len(self.records):
                    raise DatasetError(f"{self.source}: every video failed to decode; "
                                       f"{self._first_reasons()}")
                continue
            video = torch.stack(clips)  # (B, 3, T, h, w)
            return video, [self.records[i].caption for i in indices], indices

    def _skip(self, path: Path, reason: str) -> None:
        """Record an unusable file and report it."""
        self.skipped.append((path, reason))
        self.log(f"skipping {path}: {reason}")

    def _check_bad_fraction(self) -> None:
        """Raise if more than ``max_bad_fraction`` of the listed videos are unusable."""
        bad = len(self.skipped)
        if bad / self._total > self.max_bad_fraction:
            raise DatasetError(
                f"{self.source}: {bad} of {self._total} videos are unusable, more than "
                f"max_bad_fraction={self.max_bad_fraction:g}; {self._first_reasons()}"
            )

    def _first_reasons(self, count: int = 3) -> str:
        """The first few skip reasons, for error messages."""
        shown = "; ".join(f"{path.name}: {reason}" for path, reason in self.skipped[:count])
        more = f" (and {len(self.skipped) - count} more)" if len(self.skipped) > count else ""
        return f"first reasons: {shown}{more}"
