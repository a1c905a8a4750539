"""Loading and validating the user's input image, and fitting it to the model's size.

``load_image`` turns a path, PIL image or numpy array into an RGB PIL image, refusing bad input
with a typed ``ImageInputError`` that names the file. ``fit_image`` resizes-to-cover and
centre-crops to a target size, ``snap_size`` rounds a size to a model's multiple; both report
what they changed so the caller can tell the user.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import (
    CorruptImageError,
    ImageInputError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
)

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "ImageInputError",
    "ImageNotFoundError",
    "NotAnImageError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "FitReport",
    "load_image",
    "fit_image",
    "snap_size",
]

# Our own cap on input pixels (Pillow's decompression-bomb limit is ~89 M px), checked from
# the header before any pixel data is decoded.
MAX_IMAGE_PIXELS = 40_000_000
MIN_IMAGE_SIDE = 8

# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_image(
    path_or_image: str | os.PathLike[str] | Image.Image | np.ndarray,
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Load and validate an input image; return it as an RGB PIL image.

    Accepts a path, a PIL image, or an ``(H, W, 3)``, ``(H, W, 4)`` or ``(H, W)`` uint8 array.
    Applies EXIF orientation, composites transparency over white, and maps greyscale, 16-bit,
    float and CMYK images to 8-bit RGB. ``max_pixels=None`` disables our cap (Pillow's remains).
    """
    if isinstance(path_or_image, (str, os.PathLike)):
        return _load_path(os.fspath(path_or_image), max_pixels)
    if isinstance(path_or_image, Image.Image):
        name = getattr(path_or_image, "filename", "") or "<PIL image>"
        _check_size(path_or_image.size, name, max_pixels)
        return _to_rgb(ImageOps.exif_transpose(path_or_image), name)
    if isinstance(path_or_image, np.ndarray):
        return _load_array(path_or_image, max_pixels)
    raise ImageInputError(
        f"<{type(path_or_image).__name__}>: expected a path, a PIL image or a uint8 numpy array"
    )


def _load_path(path: str, max_pixels: int | None) -> Image.Image:
    """Open ``path``, check its declared size from the header, then decode it."""
    if not os.path.exists(path):
        raise ImageNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise NotAnImageError(f"{path}: is a folder, not an image file")
    with warnings.catch_warnings():
        # Pillow warns (then errors at 2x) past its own limit; treat both as too large.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)  # lazy: reads the header only
        except UnidentifiedImageError as err:
            raise NotAnImageError(f"{path}: not an image file Pillow can read") from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageTooLargeError(f"{path}: image is too large to load safely ({err})") from err
        except (OSError, SyntaxError, struct.error, EOFError, ValueError) as err:
            # a recognised format whose header is cut short or malformed (e.g. "Truncated File Read")
            raise CorruptImageError(f"{path}: corrupt image header ({err})") from err
        with image:
            _check_size(image.size, path, max_pixels)  # before decoding any pixel data
            try:
                image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                raise ImageTooLargeError(f"{path}: image is too large ({err})") from err
            except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as err:
                raise CorruptImageError(f"{path}: truncated or corrupt image data ({err})") from err
            rgb = _to_rgb(ImageOps.exif_transpose(image), path)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:  # an animated GIF/WebP/PNG or a multi-page TIFF: said, see input_notices
                rgb = rgb.copy() if rgb is image else rgb
                rgb.info[SOURCE_FRAMES_KEY] = (path, frames)
            return rgb


SOURCE_FRAMES_KEY = "i2v_source_frames"


def input_notices(image: Image.Image) -> list[str]:
    """What the user should know about how ``load_image`` read their file (its first frame only)."""
    if SOURCE_FRAMES_KEY in image.info:
        path, frames = image.info[SOURCE_FRAMES_KEY]
        return [f"{path} holds {frames} frames or pages (animated image or multi-page file); the first is used"]
    return []


def _load_array(array: np.ndarray, max_pixels: int | None) -> Image.Image:
    """``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 array -> RGB image."""
    name = "<array>"
    if array.dtype != np.uint8:
        raise ImageInputError(f"{name}: expected dtype uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageInputError(f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    _check_size((array.shape[1], array.shape[0]), name, max_pixels)
    return _to_rgb(Image.fromarray(np.ascontiguousarray(array)), name)


def _check_size(size: tuple[int, int], name: str, max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {max_pixels:,}; downscale it first"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"{name}: image is {width}x{height}; each side must be at least {MIN_IMAGE_SIDE} px"
        )


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (alpha over white; 16-bit/float rescaled, not clipped)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_rescale_to_uint8(np.asarray(image), mode)).convert("RGB")
    try:
        return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...
    except (ValueError, OSError) as err:
        raise ImageInputError(f"{name}: unsupported image mode {mode!r}") from err


def _rescale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map an ``(H, W)`` greyscale of a wide type to uint8.

    ``I;16*`` and ``I`` within [0, 65535] are 16-bit: divided by 257 (65535 -> 255).
    ``F`` within [0, 1] is multiplied by 255. Anything else is min-max normalised.
    """
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= 65535):
        scaled = values / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Fitting to the model's size
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitReport:
    """What ``fit_image`` did: sizes are ``(width, height)``, ``crop_box`` is in resized pixels."""

    source_size: tuple[int, int]
    target_size: tuple[int, int]
    scale: float
    crop_box: tuple[int, int, int, int]
    message: str

    @property
    def changed(self) -> bool:
        return self.source_size != self.target_size


def fit_image(image: Any, width: int, height: int) -> tuple[Image.Image, FitReport]:
    """Resize ``image`` to cover ``width x height`` (LANCZOS), then centre-crop to exactly that.

    ``image`` is anything ``load_image`` accepts; returns the RGB result and a ``FitReport``.
    The crop is taken in source coordinates and only that region is resampled (Pillow's
    ``resize(box=...)``): memory stays of the order of the output, however thin the source (an
    8x500,000 strip would otherwise be resized to 128x8,000,000 before the crop).
    """
    _check_positive_ints(width=width, height=height)
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        image = load_image(image)
    src_w, src_h = image.size
    scale = max(width / src_w, height / src_h)  # cover: both sides >= target
    resized_w = max(width, round(src_w * scale))
    resized_h = max(height, round(src_h * scale))
    left, top = (resized_w - width) // 2, (resized_h - height) // 2
    crop_box = (left, top, left + width, top + height)

    if (resized_w, resized_h) != (src_w, src_h):
        sx, sy = resized_w / src_w, resized_h / src_h  # the resize's scale on each axis
        box = (left / sx, top / sy, (left + width) / sx, (top + height) / sy)  # the crop, in source pixels
        result = image.resize((width, height), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    elif (resized_w, resized_h) != (width, height):
        result = image.crop(crop_box)
    else:
        result = image.copy()

    source, target = f"{src_w}x{src_h}", f"{width}x{height}"
    if (src_w, src_h) == (width, height):
        message = f"input {source} already matches {target}"
    elif (resized_w, resized_h) == (width, height):
        message = f"input {source} resized to {target}"
    elif (resized_w, resized_h) == (src_w, src_h):
        message = f"input {source} centre-cropped to {target}"
    else:
        message = f"input {source} resized to {resized_w}x{resized_h} and centre-cropped to {target}"
    report = FitReport((src_w, src_h), (width, height), scale, crop_box, message)
    return result, report


def snap_size(width: int, height: int, multiple: int) -> tuple[int, int, str | None]:
    """Round each side to the nearest multiple of ``multiple`` (halves round up, at least one
    ``multiple``); return ``(width, height, notice)`` with ``notice=None`` if nothing changed.
    """
    _check_positive_ints(width=width, height=height, multiple=multiple)
    snapped_w = max(multiple, math.floor(width / multiple + 0.5) * multiple)
    snapped_h = max(multiple, math.floor(height / multiple + 0.5) * multiple)
    if (snapped_w, snapped_h) == (width, height):
        return width, height, None
    notice = (
        f"size {width}x{height} is not a multiple of {multiple}; "
        f"snapped to {snapped_w}x{snapped_h}"
    )
    return snapped_w, snapped_h, notice


def _check_positive_ints(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
