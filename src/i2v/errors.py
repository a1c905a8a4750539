"""Every error i2v raises on purpose, in one place.

Each names the bad value or file in its message. ``I2VError`` is the common base: the CLI
turns any of them into ``error: ...`` and exit status 2. Most also subclass ``ValueError`` (bad
input), so callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations


class I2VError(Exception):
    """Base class of i2v's own errors."""


# -- requests and models --------------------------------------------------------------------


class InvalidRequestError(I2VError, ValueError):
    """A request value the model cannot run, named in the message."""


class DeviceUnavailableError(InvalidRequestError):
    """The requested device is not a device name, or does not exist on this machine."""


class MemoryLimitError(InvalidRequestError):
    """The run would need more memory than the device has free, with the options it was given."""


class NonFiniteError(I2VError, RuntimeError):
    """The latents became NaN or infinite while denoising (extreme guidance, broken weights)."""


class UnknownModelError(I2VError, ValueError):
    """The model name or folder is not one i2v can run."""


class UnsafeModelError(UnknownModelError):
    """The model folder holds custom code or pickle-only weights; i2v refuses to load it."""


class TextEncoderUnavailableError(I2VError, RuntimeError):
    """The packaged MiniLM encoder is not installed."""


class LoraFileError(I2VError, ValueError):
    """A LoRA file does not hold adapters i2v can load onto the model."""


# -- input and output files -----------------------------------------------------------------


class ImageInputError(I2VError, ValueError):
    """The input image cannot be used; the message names the file."""


class ImageNotFoundError(ImageInputError, FileNotFoundError):
    """The image path does not exist."""


class NotAnImageError(ImageInputError):
    """The file is not an image Pillow can identify (text, empty, a folder, ...)."""


class CorruptImageError(ImageInputError):
    """The file is an image but its data is truncated or corrupt."""


class ImageTooLargeError(ImageInputError):
    """The image has more pixels than allowed (checked before decoding)."""


class ImageTooSmallError(ImageInputError):
    """A side of the image is shorter than the minimum side."""


class VideoIOError(I2VError):
    """Base class of video read/write errors."""


class UnsupportedFormatError(VideoIOError, ValueError):
    """The path's extension names no format this module can write or read."""


class CorruptVideoError(VideoIOError):
    """A video file exists but cannot be decoded."""


class VideoInputError(I2VError, ValueError):
    """An input video (video-to-video's init video) cannot be used; the message names the file."""


class VideoTooLargeError(VideoInputError):
    """An input video's frames are too large, or a GIF/WebP would decode to too many bytes."""


class OutputPathError(I2VError, ValueError):
    """An output path i2v must not or cannot write: one that would replace an input (the input image,
    a model folder the run reads), or one the file system refuses (read-only, full)."""


class WeightsError(I2VError, ValueError):
    """A weights path the user gave is missing or does not hold the expected network."""


# -- training -------------------------------------------------------------------------------


class DatasetError(I2VError, ValueError):
    """The index or a video cannot be used; the message names the file and the problem."""


class TrainingSetupError(I2VError, ValueError):
    """A training run's arguments or output folder cannot be used."""


class StaleCacheError(I2VError, ValueError):
    """A latent/clip cache was built for other data or another model; rebuild it."""
