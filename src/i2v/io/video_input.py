"""An input video (``--init-video`` of video-to-video): checked before anything loads, then its first
frames read and fitted to the output size one at a time, so a long or large video costs the memory
of the frames the run uses, not of the file.

Sources: a video file of a format ``i2v.io.video`` reads (mp4, webm, gif, webp, a PNG-frame folder)
or a ``(T, H, W, 3)`` uint8 array.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptVideoError, UnsupportedFormatError, VideoInputError, VideoIOError, VideoTooLargeError
from .images import MAX_IMAGE_PIXELS, fit_image

VideoSource = str | os.PathLike | np.ndarray
# A GIF/WebP is decoded whole to be read: at most this many bytes of decoded frames (an mp4/webm is
# read frame by frame and needs no such bound)
MAX_DECODED_ANIMATION_BYTES = 1 << 30


def check_animation_header(path: Path) -> tuple[int, int, int]:
    """A GIF/WebP's (width, height, frames) from its header, refused before it is decoded when its
    frames are larger than an input image may be or would decode to more than
    ``MAX_DECODED_ANIMATION_BYTES``."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:  # the header; n_frames skips through the frames undecoded
                (width, height), frames = image.size, getattr(image, "n_frames", 1)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise VideoInputError(f"{path}: cannot be read as a {path.suffix[1:].upper()} ({type(exc).__name__})") \
                from None
    if width * height > MAX_IMAGE_PIXELS:
        raise VideoTooLargeError(f"{path}: frames of {width}x{height} are more than {MAX_IMAGE_PIXELS:,} pixels")
    decoded = frames * width * height * 3
    if decoded > MAX_DECODED_ANIMATION_BYTES:
        raise VideoTooLargeError(f"{path}: {frames} frames of {width}x{height} decode to {decoded:,} bytes, more than "
                                 f"the limit of {MAX_DECODED_ANIMATION_BYTES:,} for a GIF/WebP; use fewer or smaller "
                                 "frames, or an .mp4/.webm (read frame by frame)")
    return width, height, frames


def _check_array(video: Any) -> np.ndarray:
    if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        shape = getattr(video, "shape", None)
        raise VideoInputError(f"init video: expected a (T, H, W, 3) uint8 array, got {type(video).__name__} "
                              f"{shape if shape is not None else ''}".rstrip())
    if video.shape[0] < 1 or video.shape[1] < 1 or video.shape[2] < 1:
        raise VideoInputError(f"init video: empty array of shape {video.shape}")
    return video


def _check_source(source: Any) -> None:
    if not isinstance(source, (str, os.PathLike, np.ndarray)):
        raise VideoInputError(f"init video: expected a video file's path or a (T, H, W, 3) uint8 array, got "
                              f"{type(source).__name__}")


def probe_input_video(source: VideoSource) -> int:
    """The number of frames of an input video, from its headers where the format stores them.

    Raises ``VideoInputError`` naming the file: missing, not a video format, undecodable, or frames
    larger than an input image may be.
    """
    _check_source(source)
    if isinstance(source, np.ndarray):
        return int(_check_array(source).shape[0])
    from .video import probe_video

    path = Path(source)
    if path.suffix.lower() in (".gif", ".webp") and path.is_file():
        check_animation_header(path)
    try:
        info = probe_video(path)
    except FileNotFoundError:
        raise VideoInputError(f"{path}: no such video (init video)") from None
    except UnsupportedFormatError as err:
        raise VideoInputError(f"{path}: not a video i2v reads (init video: .mp4, .webm, .gif, .webp or a folder "
                              f"of PNG frames); {err}") from None
    except (VideoIOError, OSError, ValueError) as err:
        raise VideoInputError(f"{path}: cannot read the init video ({err})") from None
    if info["width"] * info["height"] > MAX_IMAGE_PIXELS:
        raise VideoTooLargeError(f"{path}: frames of {info['width']}x{info['height']} are more than "
                              f"{MAX_IMAGE_PIXELS:,} pixels (init video)")
    if info["num_frames"] < 1:
        raise VideoInputError(f"{path}: the init video has no frames")
    return int(info["num_frames"])


def _frames(source: VideoSource):
    """Yield the source's frames as (H, W, 3) uint8 arrays, decoding as it goes."""
    if isinstance(source, np.ndarray):
        yield from _check_array(source)
        return
    from .video import _CONTAINER_FORMATS, read_video, video_format

    path = Path(source)
    if path.is_dir() or video_format(path) not in _CONTAINER_FORMATS:
        yield from read_video(path)[0]
        return
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as err:
        raise CorruptVideoError(f"{path}: cannot decode video ({err})") from err


def read_input_video(source: VideoSource, num_frames: int, width: int, height: int) -> np.ndarray:
    """The first ``num_frames`` frames, each resized to cover ``width x height`` and centre-cropped
    (as the input image is) -> ``(num_frames, height, width, 3)`` uint8."""
    _check_source(source)
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    count = 0
    try:
        for frame in _frames(source):
            if count == num_frames:
                break
            out[count] = np.asarray(fit_image(np.ascontiguousarray(frame), width, height)[0])
            count += 1
    except (VideoIOError, OSError, ValueError) as err:
        if isinstance(err, VideoInputError):
            raise
        raise VideoInputError(f"{source if not isinstance(source, np.ndarray) else 'init video'}: cannot read "
                              f"the init video ({err})") from None
    if count < num_frames:
        name = "the array" if isinstance(source, np.ndarray) else str(source)
        raise VideoInputError(f"{name}: the init video has {count} decodable frames; the run needs {num_frames}")
    return out
