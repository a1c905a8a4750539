"""Video file I/O: the one place that reads and writes videos and owns the frame conventions.

Frames handed to users are ``(T, H, W, 3)`` uint8 numpy arrays (RGB). Writers also accept a
list of PIL images or a list of ``(H, W, 3)`` uint8 arrays; ``as_frame_array`` normalises them.

The output format is chosen by the path:

=============  ==============================================================================
``.mp4``       H.264 (libx264), yuv420p, crf 18; odd sizes are padded to even by edge replication
``.webm``      VP9 (libvpx-vp9), else VP8 (libvpx); yuv420p; odd sizes padded likewise
``.gif``       animated GIF (Pillow), loops forever; 256-colour palette per frame
``.webp``      animated WebP (Pillow), lossless, loops forever
``dir/``       a folder of PNG frames ``frame_00000.png, ...`` (a path with no suffix, or a
               trailing ``/``) plus ``metadata.json``
=============  ==============================================================================

An optional sound track (``audio``: ``(channels, samples)`` or ``(samples,)`` floats in [-1, 1],
one or two channels, with its ``audio_sample_rate``) goes into the container: AAC in mp4 (at its
own rate when AAC has it, else 48 kHz), Opus in webm (always 48 kHz, Opus's own rate: other rates
are resampled). GIF, WebP and PNG frames cannot hold sound: the audio is written beside them as a
32-bit float WAV (``audio_path``: ``<path>.wav``, ``<folder>/audio.wav``), in the same atomic unit
as the video and its sidecar. The sidecar's ``"video_file"`` record says where the audio went
(``"audio"``: codec, sample rate, channels, samples, and ``"file"`` for a WAV beside the video).

Every output carries its generation settings: a sidecar ``<path>.json`` (``<folder>/metadata.json``
for PNG frames) and, for mp4/webm, the same JSON in the container's ``comment`` tag. The
sidecar also holds a ``"video_file"`` record (format, exact fps, frame count, size) that
``read_video`` uses to undo padding and to rebuild a GIF/WebP's frame timeline.

Writes are atomic: everything is written to temporary siblings and moved into place with
``os.replace``; on any error the temporaries are removed and an existing output is untouched.
``VideoWriter`` writes a video chunk by chunk (a long video never whole in memory); ``write_video``
is one chunk through it, so both encode alike. Nothing here ever unpickles anything.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from ..errors import CorruptVideoError, UnsupportedFormatError, VideoIOError
from .temps import folder_lock, partial_sibling, remove_stale_temps

__all__ = [
    "SUPPORTED_FORMATS",
    "VideoIOError",
    "UnsupportedFormatError",
    "CorruptVideoError",
    "as_frame_array",
    "video_format",
    "write_video",
    "VideoWriter",
    "read_video",
    "probe_video",
    "read_metadata",
    "sidecar_path",
    "as_audio_array",
    "audio_path",
]

# Suffix -> format name; a folder of PNG frames is the format "png".
SUPPORTED_FORMATS: dict[str, str] = {
    ".mp4": "mp4",
    ".webm": "webm",
    ".gif": "gif",
    ".webp": "webp",
    "/": "png",
}
# Key of the record that describes the written file inside the saved metadata (reserved).
FILE_RECORD_KEY = "video_file"
# GIF delays are whole centiseconds and viewers clamp delays under 2 cs, so 50 fps is the limit.
GIF_MAX_FPS = 50
FRAME_PATTERN = "frame_{:05d}.png"
FOLDER_METADATA = "metadata.json"
FOLDER_AUDIO = "audio.wav"  # a PNG folder's sound track
AUDIO_FORMATS = ("mp4", "webm")  # the formats whose container holds a sound track
RATE_48K = 48000  # Opus's own rate (decoders play every Opus stream at it); AAC's for rates it lacks

_FRAME_NAME = re.compile(r"^frame_(\d+)\.png$")
_CONTAINER_FORMATS = ("mp4", "webm")
_VPX_CODEC_NAMES = {"libvpx-vp9": "vp9", "libvpx": "vp8"}  # encoder -> codec


# --------------------------------------------------------------------------------------------
# Frame conventions
# --------------------------------------------------------------------------------------------


def as_frame_array(frames: Any) -> np.ndarray:
    """Normalise frames to one C-contiguous ``(T, H, W, 3)`` uint8 array, or raise ValueError.

    Accepts a ``(T, H, W, 3)`` uint8 array, or a non-empty sequence of PIL images (converted
    to RGB) or of ``(H, W, 3)`` uint8 arrays, all the same size.
    """
    if isinstance(frames, np.ndarray):
        video = frames
    elif isinstance(frames, Image.Image):
        raise ValueError("frames: got a single PIL image; pass a list of images (one per frame)")
    elif hasattr(frames, "__iter__"):
        items = list(frames)
        if not items:
            raise ValueError("frames: got an empty sequence; a video needs at least one frame")
        arrays = []
        for i, item in enumerate(items):
            if isinstance(item, Image.Image):
                item = np.asarray(item.convert("RGB"))
            item = np.asarray(item)
            if item.ndim != 3 or item.shape[-1] != 3:
                raise ValueError(f"frames[{i}]: expected shape (H, W, 3), got {item.shape}")
            _check_dtype(item.dtype, f"frames[{i}]")
            if arrays and item.shape != arrays[0].shape:
                raise ValueError(
                    f"frames[{i}]: size {item.shape[1]}x{item.shape[0]} differs from frames[0] "
                    f"size {arrays[0].shape[1]}x{arrays[0].shape[0]}"
                )
            arrays.append(item)
        video = np.stack(arrays)  # (T, H, W, 3)
    else:
        raise ValueError(f"frames: expected an array or a list of frames, got {type(frames).__name__}")

    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"frames: expected shape (T, H, W, 3), got {video.shape}")
    _check_dtype(video.dtype)
    if 0 in video.shape:
        raise ValueError(f"frames: empty video of shape {video.shape}")
    return np.ascontiguousarray(video)


def _check_dtype(dtype: np.dtype, name: str = "frames") -> None:
    if dtype != np.uint8:
        raise ValueError(
            f"{name}: expected dtype uint8, got {dtype}; convert float frames in [0, 1] with "
            "(frames * 255).round().astype(np.uint8)"
        )


def video_format(path: str | os.PathLike[str]) -> str:
    """Return the format name (``mp4, webm, gif, webp, png``) a path selects, or raise."""
    text = os.fspath(path)
    if text.endswith(("/", os.sep)):
        return "png"
    suffix = Path(text).suffix.lower()
    if suffix == "":
        return "png"
    if suffix in SUPPORTED_FORMATS:
        return SUPPORTED_FORMATS[suffix]
    raise UnsupportedFormatError(
        f"{text}: unsupported video extension {suffix!r}; supported: .mp4, .webm, .gif, .webp, "
        "or a folder of PNG frames (a path with no suffix or ending in '/')"
    )


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the metadata JSON of an output lives: ``<path>.json``, or ``<folder>/metadata.json``."""
    if video_format(path) == "png":
        return Path(path) / FOLDER_METADATA
    return Path(os.fspath(path) + ".json")


def audio_path(path: str | os.PathLike[str]) -> Path | None:
    """Where the sound track of an output goes when its format cannot hold one: ``<path>.wav`` for
    GIF/WebP, ``<folder>/audio.wav`` for PNG frames; None for mp4/webm (the audio is in the file)."""
    fmt = video_format(path)
    if fmt in AUDIO_FORMATS:
        return None
    if fmt == "png":
        return Path(path) / FOLDER_AUDIO
    return Path(os.fspath(path) + ".wav")


def as_audio_array(audio: Any) -> np.ndarray:
    """Normalise a sound track to one C-contiguous ``(channels, samples)`` float32 array in [-1, 1].

    Accepts ``(samples,)`` (mono) or ``(channels, samples)`` with one or two channels, as floats
    (clipped to [-1, 1]; NaN/inf refused) or int16 PCM; anything ``np.asarray`` takes (a CPU tensor too).
    """
    array = np.asarray(audio)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] not in (1, 2):
        raise ValueError(f"audio: expected shape (samples,) or (channels, samples) with 1 or 2 channels, "
                         f"got {array.shape}")
    if array.shape[1] == 0:
        raise ValueError("audio: no samples")
    if array.dtype == np.int16:
        array = array.astype(np.float32) / 32768.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("audio: samples must be finite (got NaN or inf)")
        array = np.clip(array, -1.0, 1.0)
    else:
        raise ValueError(f"audio: expected float samples in [-1, 1] or int16, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_sample_rate(rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 0 < rate <= 768000:
        raise ValueError(f"audio_sample_rate: expected a whole number of samples per second (1 to 768000), "
                         f"got {rate!r}")
    return int(rate)


def _fps_fraction(fps: float | Fraction) -> Fraction:
    """The stream rate for ``fps``: ``Fraction(fps).limit_denominator(1001)`` (7.5 -> 15/2)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction, np.number)):
        raise ValueError(f"fps: expected a number, got {fps!r}")
    if not math.isfinite(float(fps)) or fps <= 0:
        raise ValueError(f"fps: expected a positive finite number, got {fps!r}")
    exact = fps if isinstance(fps, (int, Fraction)) else float(fps)
    rate = Fraction(exact).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps: {fps!r} is too small to store")
    return rate


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_video(
    frames: Any,
    path: str | os.PathLike[str],
    fps: float,
    metadata: Mapping[str, Any] | None = None,
    audio: Any = None,
    audio_sample_rate: int | None = None,
) -> Path:
    """Write ``frames`` to ``path`` (format from the extension) atomically; return the path.

    ``metadata`` (the generation settings, JSON-serialisable) is saved in a sidecar JSON and,
    for mp4/webm, in the container ``comment`` tag, together with a ``"video_file"`` record.
    ``audio`` (optional, with ``audio_sample_rate``): a sound track, muxed into mp4 (AAC) / webm
    (Opus), else written beside the video as a WAV file (``audio_path``); see the module docstring.
    The frames go through ``VideoWriter`` as one chunk.
    """
    video = as_frame_array(frames)  # (T, H, W, 3) uint8
    with VideoWriter(path, fps, metadata, num_frames=len(video), audio=audio,
                     audio_sample_rate=audio_sample_rate) as writer:
        writer.write(video)
    return writer.path


class VideoWriter:
    """A video written chunk by chunk, atomically (``write_video`` is one chunk through it).

        with VideoWriter("long.mp4", fps=8, metadata=settings, num_frames=160) as writer:
            for chunk in chunks:  # (t, H, W, 3) uint8 each, or lists of frames
                writer.write(chunk)

    mp4/webm frames are encoded, and PNG frames saved, as they come: the writer holds no more than the
    chunk it is given. Pillow writes an animated GIF or WebP in one call, so their frames are kept (as
    PIL images) until the end: only mp4, webm and PNG frames keep a long video's memory flat.

    ``num_frames`` is the length the video will have: the container's metadata records it and is
    written before the first frame is encoded. Nothing touches the disk before the first chunk; every
    file is a temporary sibling until leaving the ``with`` block (or ``close()``) moves the video, its
    sidecar (and WAV) into place. An exception inside the block or in a ``write``, ``abort()``, or a
    frame count other than ``num_frames`` removes them and leaves an existing output as it was.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, metadata: Mapping[str, Any] | None = None, *,
                 num_frames: int, audio: Any = None, audio_sample_rate: int | None = None):
        self.path = Path(path)
        self.format = video_format(path)
        self.rate = _fps_fraction(fps)
        if self.format == "gif" and self.rate > GIF_MAX_FPS:
            raise ValueError(
                f"{os.fspath(path)}: GIF cannot store {float(fps):g} fps (at most {GIF_MAX_FPS}); "
                "use .mp4, .webm or .webp"
            )
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"metadata: expected a dict, got {type(metadata).__name__}")
        if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
            raise ValueError(f"num_frames: expected a positive whole number of frames, got {num_frames!r}")
        self.num_frames = int(num_frames)
        self.written = 0  # frames handed to the format's writer so far
        self._fps = float(fps)
        self._metadata = dict(metadata or {})
        _to_json(self._metadata)  # refused before the frames are made, not after
        self._sound = None
        if audio is not None:
            self._sound = (as_audio_array(audio), _check_sample_rate(audio_sample_rate))  # (C, N) float32, rate
        elif audio_sample_rate is not None:
            raise ValueError("audio_sample_rate given without audio")
        # a missing encoder is refused here, before any file exists
        self._codec = _video_codec(self.format) if self.format in _CONTAINER_FORMATS else None
        self._audio_record = _audio_record(self.format, self.path, *self._sound) if self._sound else None
        self._size: tuple[int, int] | None = None  # (H, W) of every frame, from the first chunk
        self._settings: dict[str, Any] = {}
        self._outputs: contextlib.ExitStack | None = None  # the temporary siblings, while open
        self._temps: tuple[Path, ...] = ()
        self._frames = None  # the format's frame writer, while open
        self._closed = False

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()

    def write(self, frames: Any) -> None:
        """Add frames to the video: a ``(t, H, W, 3)`` uint8 array or a list of frames, the same size
        as the first chunk's. A failure removes the partial output."""
        with self._abort_on_error():
            if self._closed:
                raise ValueError(f"{self.path}: the writer is closed")
            chunk = as_frame_array(frames)  # (t, H, W, 3) uint8
            if self.written + len(chunk) > self.num_frames:
                raise ValueError(f"frames: {self.written + len(chunk)} frames for a video of num_frames="
                                 f"{self.num_frames}")
            if self._size is None:
                self._size = chunk.shape[1:3]
                self._open()
            elif chunk.shape[1:3] != self._size:
                raise ValueError(f"frames: size {chunk.shape[2]}x{chunk.shape[1]} differs from the first chunk's "
                                 f"{self._size[1]}x{self._size[0]}")
            with _typed_os_errors(self.path):
                self._frames.write(chunk)
            self.written += len(chunk)

    def close(self) -> Path:
        """Finish the video and move it, its sidecar (and WAV) into place as one unit; return its path."""
        with self._abort_on_error():
            if self._closed:
                raise ValueError(f"{self.path}: the writer is closed")
            if self.written != self.num_frames:
                raise ValueError(f"{self.path}: {self.written} frames written to a video of num_frames="
                                 f"{self.num_frames}; nothing was written")
            with _typed_os_errors(self.path):
                self._frames.finish()
                self._frames = None
                self._write_beside()
                outputs, self._outputs = self._outputs, None
                outputs.close()  # the temporaries move into place
            self._closed = True
        return self.path

    def abort(self) -> None:
        """Remove the partial output; an existing output at the path stays as it was."""
        self._closed = True
        frames, self._frames = self._frames, None
        if frames is not None:
            frames.discard()
        outputs, self._outputs = self._outputs, None
        if outputs is not None:  # an exception at the temporaries' yield removes them and moves nothing
            outputs.__exit__(_Aborted, _Aborted(), None)

    @contextlib.contextmanager
    def _abort_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.abort()
            raise

    def _open(self) -> None:
        """Create the temporary siblings and open the format's frame writer (a container's header
        needs the frame size and the metadata)."""
        self._settings = {**self._metadata, FILE_RECORD_KEY: self._file_record()}
        out, fmt = self.path, self.format
        with _typed_os_errors(out):
            out.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "png":
                _check_frame_folder_replaceable(out)
            targets, stale = _output_targets(out, fmt, with_sound=self._sound is not None)
            self._outputs = contextlib.ExitStack()
            self._temps = self._outputs.enter_context(_atomic_outputs(*targets, directory=fmt == "png",
                                                                      stale=stale))
            if fmt == "png":
                self._frames = _FolderFrames(self._temps[0])
            elif fmt in _CONTAINER_FORMATS:
                self._frames = _ContainerFrames(self._temps[0], fmt, self.rate, self._size,
                                                comment=_to_json(self._settings), sound=self._sound)
            else:
                self._frames = _AnimatedFrames(self._temps[0], fmt, self.rate)

    def _file_record(self) -> dict[str, Any]:
        """The ``"video_file"`` record: format, exact fps, frame count, size (and how it is encoded)."""
        height, width = self._size
        record: dict[str, Any] = {
            "format": self.format,
            "fps": self._fps,
            "fps_fraction": f"{self.rate.numerator}/{self.rate.denominator}",
            "num_frames": self.num_frames,
            "width": width,
            "height": height,
        }
        if self._codec is not None:
            record["codec"] = self._codec
            record["encoded_width"], record["encoded_height"] = width + width % 2, height + height % 2
        if self._audio_record is not None:
            record["audio"] = self._audio_record
        return record

    def _write_beside(self) -> None:
        """The sidecar, and the WAV of a format that cannot hold sound, into the temporaries."""
        if self.format == "png":
            sidecar, wav = self._temps[0] / FOLDER_METADATA, self._temps[0] / FOLDER_AUDIO
        else:
            sidecar, wav = self._temps[1], (self._temps[2] if len(self._temps) > 2 else None)
        if self._sound is not None and wav is not None:
            _write_wav(wav, *self._sound)
        sidecar.write_text(_to_json(self._settings, indent=2), encoding="utf-8")


class _Aborted(Exception):
    """Thrown into the temporaries' context to remove them (an aborted writer)."""


@contextlib.contextmanager
def _typed_os_errors(out: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # disk full, read-only or vanished folder: nothing was replaced
        raise VideoIOError(f"{out}: cannot write ({exc.strerror or exc}); no existing file was changed") from exc


def _output_targets(out: Path, fmt: str, with_sound: bool) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The paths a write replaces as one unit (the video, its sidecar, a WAV beside it) and the stale
    ones it removes; a PNG folder holds its sidecar and WAV."""
    if fmt == "png":
        return (out,), ()
    beside = audio_path(out) if with_sound and fmt not in AUDIO_FORMATS else None
    targets = (out, sidecar_path(out)) + ((beside,) if beside is not None else ())
    # a silent GIF/WebP replacing one with sound: the WAV its sidecar names goes with it
    stale = (audio_path(out),) if not with_sound and fmt not in AUDIO_FORMATS else ()
    return targets, stale


def _audio_record(fmt: str, out: Path, samples: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """What the sidecar says of the sound track: where it is and how it is stored."""
    channels, count = samples.shape
    record: dict[str, Any] = {"sample_rate": sample_rate, "channels": channels, "num_samples": count,
                              "duration": count / sample_rate}
    if fmt in AUDIO_FORMATS:
        codec, stored = _audio_codec(fmt, sample_rate)  # refuses a missing encoder before anything is written
        record.update(codec="opus" if codec == "libopus" else codec, stored_sample_rate=stored)
    else:
        record.update(codec="pcm_f32le", file=audio_path(out).name)
    return record


def _pad_to_even(video: np.ndarray) -> np.ndarray:
    """Pad ``(T, H, W, 3)`` bottom/right by edge replication so H and W are even (yuv420p)."""
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if not (pad_h or pad_w):
        return video
    return np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _vpx_encoder() -> str:
    for name in _VPX_CODEC_NAMES:
        if name in av.codecs_available:
            return name
    raise VideoIOError("this PyAV build has no VP9/VP8 encoder; write .mp4, .gif or .webp instead")


def _to_av_frame(frame: np.ndarray) -> av.VideoFrame:
    """One ``(H, W, 3)`` uint8 RGB frame -> a PyAV frame (converted to yuv420p by the encoder)."""
    return av.VideoFrame.from_ndarray(frame, format="rgb24")


def _to_pil(frame: np.ndarray) -> Image.Image:
    """One ``(H, W, 3)`` uint8 RGB frame -> a PIL image."""
    return Image.fromarray(frame)


def _video_codec(fmt: str) -> str:
    """The codec an mp4/webm is stored in (``"h264"``, ``"vp9"`` or ``"vp8"``); raises if PyAV lacks its encoder."""
    encoder = _video_encoder(fmt)[0]
    return "h264" if encoder == "libx264" else _VPX_CODEC_NAMES[encoder]


def _video_encoder(fmt: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(encoder, its options, the container's options) of an mp4 (H.264) or webm (VP9, else VP8)."""
    if fmt == "mp4":
        if "libx264" not in av.codecs_available:
            raise VideoIOError("this PyAV build has no libx264 encoder; write .webm, .gif or .webp")
        return "libx264", {"crf": "18", "preset": "medium"}, {"movflags": "+faststart"}
    codec = _vpx_encoder()
    # Constant-quality mode; "b": "0" lets crf alone drive VP9, VP8 needs a bitrate ceiling.
    options = {"crf": "20", "b": "0" if codec == "libvpx-vp9" else "8M", "deadline": "good", "cpu-used": "4"}
    return codec, options, {}


class _ContainerFrames:
    """mp4/H.264 or webm/VP9 at exactly ``rate`` fps: each frame encoded as it comes (padded to even
    size), the sound track (``(C, N)`` float32, sample rate) encoded as AAC / Opus at the end."""

    def __init__(self, target: Path, fmt: str, rate: Fraction, size: tuple[int, int], comment: str,
                 sound: tuple[np.ndarray, int] | None = None):
        codec, options, container_options = _video_encoder(fmt)
        self._container = av.open(str(target), mode="w", format=fmt, options=container_options)
        try:
            self._container.metadata["comment"] = comment
            self._stream = self._add_video_stream(codec, options, rate, size)
            # every stream is added before the first packet (the container header is written then)
            self._encode_sound = _audio_encoder(self._container, fmt, *sound) if sound is not None else None
        except BaseException:
            self.discard()
            raise
        self._index = 0  # the next frame's pts

    def _add_video_stream(self, codec: str, options: dict[str, str], rate: Fraction, size: tuple[int, int]):
        height, width = size
        stream = self._container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate  # one tick per frame: pts = frame index
        # rgb24 -> yuv420p uses swscale's BT.601 limited-range matrix; tag the stream to match.
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 6, 6, 6, 1
        return stream

    def write(self, chunk: np.ndarray) -> None:
        for frame in _pad_to_even(chunk):  # (H', W', 3) with H', W' even
            av_frame = _to_av_frame(frame)
            av_frame.pts = self._index
            self._index += 1
            self._container.mux(self._stream.encode(av_frame))

    def finish(self) -> None:
        self._container.mux(self._stream.encode())  # flush the encoder
        if self._encode_sound is not None:
            self._encode_sound()
        self._container.close()

    def discard(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError):  # the file is removed next; the first error stands
            self._container.close()


class _FolderFrames:
    """A folder of PNG frames: each saved as it comes."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._index = 0

    def write(self, chunk: np.ndarray) -> None:
        for frame in chunk:
            _to_pil(frame).save(self._folder / FRAME_PATTERN.format(self._index), format="PNG")
            self._index += 1

    def finish(self) -> None:
        pass

    def discard(self) -> None:
        pass


class _AnimatedFrames:
    """An animated GIF or WebP: Pillow writes it in one call, so the frames are kept until the end."""

    def __init__(self, target: Path, fmt: str, rate: Fraction):
        self._target, self._format, self._rate = target, fmt, rate
        self._images: list[Image.Image] = []

    def write(self, chunk: np.ndarray) -> None:
        self._images += [_to_pil(frame) for frame in chunk]

    def finish(self) -> None:
        _write_animated_image(self._images, self._target, self._format, self._rate)
        self._images = []

    def discard(self) -> None:
        self._images = []


def _audio_codec(fmt: str, sample_rate: int) -> tuple[str, int]:
    """(encoder, the sample rate it stores) of a container's sound track."""
    if fmt == "mp4":
        if "aac" not in av.codecs_available:
            raise VideoIOError("this PyAV build has no AAC encoder; write .webm, or .gif/.webp (audio as WAV)")
        rates = av.Codec("aac", "w").audio_rates or ()
        return "aac", sample_rate if sample_rate in rates else RATE_48K
    if "libopus" not in av.codecs_available:
        raise VideoIOError("this PyAV build has no Opus encoder; write .mp4, or .gif/.webp (audio as WAV)")
    return "libopus", RATE_48K


def _audio_frame(samples: np.ndarray, sample_rate: int) -> av.AudioFrame:
    """``(C, N)`` float32 -> one planar float PyAV frame at ``sample_rate`` starting at 0."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, 0, Fraction(1, sample_rate)
    return frame


def _audio_encoder(container, fmt: str, samples: np.ndarray, sample_rate: int):
    """Add the sound track's stream to an open container (before any packet is written); return the
    function that encodes the track into it: resampled (when the stored rate differs) and cut into the
    encoder's frame size by swresample, then flushed."""
    codec, rate = _audio_codec(fmt, sample_rate)
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    stream = container.add_stream(codec, rate=rate)
    ctx = stream.codec_context
    ctx.layout, ctx.sample_rate = layout, rate
    formats = [f.name for f in (ctx.codec.audio_formats or ())]
    if "flt" in formats and "fltp" not in formats:  # libopus: float rather than its first choice, s16
        ctx.format = "flt"
    ctx.bit_rate = 96000 * samples.shape[0]  # 96 kbit/s a channel (ffmpeg's defaults: 128k for AAC, 64-96k Opus)
    stream.time_base = Fraction(1, rate)
    ctx.open()  # sets the encoder's frame size

    def encode() -> None:
        resampler = av.AudioResampler(format=ctx.format.name, layout=layout, rate=rate,
                                      frame_size=ctx.frame_size or None)
        for frame in resampler.resample(_audio_frame(samples, sample_rate)) + resampler.resample(None):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    return encode


def _write_wav(target: Path, samples: np.ndarray, sample_rate: int) -> None:
    """A WAV file of 32-bit float samples (lossless for the model's float output)."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(target), mode="w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=sample_rate)
        stream.codec_context.layout = layout
        stream.time_base = Fraction(1, sample_rate)
        resampler = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        for frame in resampler.resample(_audio_frame(samples, sample_rate)) + resampler.resample(None):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _frame_durations_ms(num_frames: int, rate: Fraction, tick_ms: int) -> list[int]:
    """Per-frame durations in ms, whole multiples of ``tick_ms``, for a constant ``rate``.

    Each frame starts at ``round(i / rate)`` rounded to the tick, so rounding errors never
    accumulate: at 7.5 fps GIF (10 ms ticks) gets 130, 140, 130, 130, 140, ... ms.
    """
    starts = [round(Fraction(1000 * i, tick_ms) / rate) * tick_ms for i in range(num_frames + 1)]
    return [b - a for a, b in zip(starts, starts[1:])]


def _write_animated_image(images: list[Image.Image], target: Path, fmt: str, rate: Fraction) -> None:
    """Write frames as an animated GIF or lossless WebP that loops forever.

    GIF stores delays in centiseconds (``tick_ms=10``), WebP in milliseconds. Both encoders
    merge identical consecutive frames into one longer frame; ``read_video`` expands them back.
    """
    if fmt == "gif":
        durations = _frame_durations_ms(len(images), rate, tick_ms=10)
        options: dict[str, Any] = {"format": "GIF", "optimize": False}
    else:
        durations = _frame_durations_ms(len(images), rate, tick_ms=1)
        options = {"format": "WEBP", "lossless": True, "quality": 90, "method": 4}
    images[0].save(
        target, save_all=True, append_images=images[1:], duration=durations, loop=0, **options
    )


def _to_json(settings: Mapping[str, Any], indent: int | None = None) -> str:
    try:
        return json.dumps(
            settings, indent=indent, ensure_ascii=False, allow_nan=False, default=_json_default,
            separators=None if indent else (",", ":"),
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata is not JSON-serialisable: {err}") from err


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


# --------------------------------------------------------------------------------------------
# Atomic replacement
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_outputs(*targets: Path, directory: bool = False,
                    stale: tuple[Path, ...] = ()) -> Iterator[tuple[Path, ...]]:
    """Yield temporary siblings of ``targets``; on success move them all into place, else delete all.

    Every target is checked before the first is replaced (a folder where a file goes fails before
    anything changes), and the replacement runs under a lock on the output folder, so that two
    writers of one path leave the video and the sidecar of the same one. ``stale``: files beside the
    output that its previous sidecar names (a WAV) and the new output does not have; removed with it."""
    parent = targets[0].parent
    remove_stale_temps(parent)  # partials a killed writer left behind
    with contextlib.ExitStack() as stack:
        temps = tuple(stack.enter_context(partial_sibling(t, directory=directory)) for t in targets)
        yield temps
        with folder_lock(parent):
            for target in targets:
                _check_replaceable(target, directory)
            claimed = [path for path in stale if _names_beside(targets[0], path)]
            for temp, target in zip(temps, targets):
                if directory:
                    _replace_directory(temp, target)
                else:
                    os.replace(temp, target)
            for path in claimed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _names_beside(out: Path, path: Path) -> bool:
    """Whether the sidecar now next to ``out`` records ``path`` as its sound track (a regular file)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        record = json.loads(sidecar_path(out).read_text(encoding="utf-8")).get(FILE_RECORD_KEY, {})
        return record.get("audio", {}).get("file") == path.name
    except (OSError, ValueError, AttributeError):
        return False


def _check_replaceable(target: Path, directory: bool) -> None:
    if target.exists() and not target.is_symlink() and target.is_dir() != directory:
        kind = "a folder" if directory else "a file"
        raise VideoIOError(f"{target}: exists and is not {kind} i2v can replace; nothing was written")


def _replace_directory(temp: Path, target: Path) -> None:
    """Move folder ``temp`` to ``target``, swapping out an existing ``target`` folder."""
    if not target.exists():
        os.replace(temp, target)
        return
    with partial_sibling(target, directory=True) as trash:
        os.replace(target, trash)  # replaces the empty placeholder folder
        try:
            os.replace(temp, target)
        except BaseException:
            os.replace(trash, target)  # put the old frames back
            raise


def _check_frame_folder_replaceable(folder: Path) -> None:
    """Refuse to overwrite a folder holding anything but a previous PNG-frames output."""
    if folder.exists() and not folder.is_dir():
        raise VideoIOError(f"{folder}: exists and is not a folder; cannot write PNG frames there")
    if folder.is_dir():
        foreign = [p.name for p in folder.iterdir()
                   if not (_FRAME_NAME.match(p.name) or p.name in (FOLDER_METADATA, FOLDER_AUDIO))]
        if foreign:
            raise VideoIOError(
                f"{folder}: folder already holds other files ({', '.join(sorted(foreign)[:3])}, ...); "
                "choose an empty or new folder for PNG frames"
            )


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the metadata saved with a video: the sidecar JSON, else the container comment.

    Returns ``{}`` for a readable video that carries no metadata.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video")
    fmt = "png" if path.is_dir() else video_format(path)
    sidecar = path / FOLDER_METADATA if fmt == "png" else sidecar_path(path)
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise VideoIOError(f"{sidecar}: metadata is not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise VideoIOError(f"{sidecar}: metadata is not a JSON object")
        return data
    if fmt in _CONTAINER_FORMATS:
        comment = _container_tags(path).get("comment")
        if comment:
            with contextlib.suppress(ValueError):
                data = json.loads(comment)
                if isinstance(data, dict):
                    return data
    return {}


def _container_tags(path: Path) -> dict[str, str]:
    """Container-level tags with lower-case keys (matroska upper-cases them)."""
    try:
        with av.open(str(path)) as container:
            return {key.lower(): value for key, value in container.metadata.items()}
    except av.FFmpegError as err:
        raise CorruptVideoError(f"{path}: cannot open video ({err})") from err


def read_video(
    path: str | os.PathLike[str], default_fps: float | None = None
) -> tuple[np.ndarray, float]:
    """Read a video written in any supported format; return ``(frames (T, H, W, 3) uint8, fps)``.

    mp4/webm padded to even size are cropped back to the recorded size. GIF/WebP frames are
    laid out on the recorded fps timeline (undoing merged duplicates). A PNG folder's fps comes
    from its ``metadata.json``, else ``default_fps``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video")
    fmt = "png" if path.is_dir() else video_format(path)
    metadata = read_metadata(path)
    record = metadata.get(FILE_RECORD_KEY)
    if not isinstance(record, dict):
        record = {}

    if fmt in _CONTAINER_FORMATS:
        video, fps = _read_container(path)
        width, height = record.get("width"), record.get("height")
        if (isinstance(width, int) and isinstance(height, int)
                and 0 <= video.shape[2] - width <= 1 and 0 <= video.shape[1] - height <= 1):
            video = video[:, :height, :width]  # undo the even-size padding
        return np.ascontiguousarray(video), fps
    if fmt == "png":
        fps = record.get("fps") or metadata.get("fps") or default_fps  # ours, another tool's, caller's
        return _read_frame_folder(path, fps)
    return _read_animated_image(path, record)


def _read_container(path: Path) -> tuple[np.ndarray, float]:
    """Decode every frame of an mp4/webm with PyAV -> ``(T, H, W, 3)`` uint8 and its fps."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CorruptVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.FFmpegError as err:
        raise CorruptVideoError(f"{path}: cannot decode video ({err})") from err
    if not frames:
        raise CorruptVideoError(f"{path}: no decodable frames")
    if not rate:
        raise CorruptVideoError(f"{path}: the video stream has no frame rate")
    try:
        return np.stack(frames), float(rate)  # (T, H, W, 3)
    except ValueError as err:
        raise CorruptVideoError(f"{path}: frame size changes mid-stream") from err


def _read_animated_image(path: Path, record: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Decode a GIF/WebP -> ``(T, H, W, 3)`` uint8, fps.

    With a recorded fps, each stored frame is repeated for the number of frame periods it
    covers (encoders merge identical frames). Otherwise one entry per stored frame and
    fps = frames / total duration (10 fps if the file has no delays, as browsers do).
    """
    frames, durations = [], []
    try:
        with Image.open(path) as image:
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                image.load()
                durations.append(int(image.info.get("duration") or 0))
                frames.append(np.asarray(image.convert("RGB")))  # (H, W, 3)
    except (OSError, SyntaxError, EOFError, ValueError) as err:
        raise CorruptVideoError(f"{path}: cannot decode animated image ({err})") from err

    fps = record.get("fps")
    if isinstance(fps, (int, float)) and fps > 0:
        starts = np.concatenate([[0], np.cumsum(durations)])  # ms
        slots = np.round(starts * fps / 1000).astype(int)  # frame index each stored frame starts at
        repeats = np.maximum(np.diff(slots), 1)
        frames = [frame for frame, count in zip(frames, repeats) for _ in range(count)]
        return np.stack(frames), float(fps)
    total_ms = sum(durations)
    return np.stack(frames), (1000 * len(frames) / total_ms if total_ms else 10.0)


def _read_frame_folder(folder: Path, fps: Any) -> tuple[np.ndarray, float]:
    """Read ``folder/*.png`` in natural order (frame_2 before frame_10) -> ``(T, H, W, 3)``, fps."""
    files = sorted(folder.glob("*.png"), key=lambda p: [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", p.name)
    ])
    if not files:
        raise CorruptVideoError(f"{folder}: folder holds no PNG frames")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
        raise VideoIOError(f"{folder}: no fps in {FOLDER_METADATA}; pass default_fps=")
    frames = []
    for file in files:
        try:
            with Image.open(file) as image:
                frames.append(np.asarray(image.convert("RGB")))  # (H, W, 3)
        except (OSError, SyntaxError, ValueError) as err:
            raise CorruptVideoError(f"{file}: cannot decode PNG frame ({err})") from err
    try:
        return np.stack(frames), float(fps)
    except ValueError as err:
        raise CorruptVideoError(f"{folder}: PNG frames differ in size") from err


def probe_video(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a video: ``num_frames, width, height, fps, codec, pix_fmt``.

    mp4/webm are read from the container headers with PyAV (the encoded, possibly padded size);
    GIF, WebP and PNG folders are decoded with ``read_video``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video")
    fmt = "png" if path.is_dir() else video_format(path)
    if fmt not in _CONTAINER_FORMATS:
        video, fps = read_video(path)
        return {
            "num_frames": video.shape[0], "width": video.shape[2], "height": video.shape[1],
            "fps": fps, "codec": fmt, "pix_fmt": "pal8" if fmt == "gif" else "rgb24",
        }
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CorruptVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            num_frames = stream.frames  # 0 when the container (webm) does not store it
            if not num_frames:
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
            ctx = stream.codec_context
            return {
                "num_frames": int(num_frames),
                "width": ctx.width,
                "height": ctx.height,
                "fps": float(rate) if rate else None,
                "codec": ctx.name,
                "pix_fmt": ctx.pix_fmt,
            }
    except av.FFmpegError as err:
        raise CorruptVideoError(f"{path}: cannot read video headers ({err})") from err
