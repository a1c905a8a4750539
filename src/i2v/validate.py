"""Checks of a run's outputs against its inputs, made before any weights load.

An output never replaces an input: a video written over its own input image, or a training run's
output folder that is (or is inside, or contains) the model folder it starts from, is refused
with ``OutputPathError`` naming both paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import OutputPathError


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_file(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                      model_folder: str | os.PathLike | None = None) -> None:
    """Refuse a video path (or PNG-frames folder) whose writing would replace an input file, the model
    folder (a frames folder written at or above it), or a file in the model folder."""
    out = _resolved(output)
    sidecar = out.with_name(out.name + ".json")
    for source in inputs:
        if source is None or not isinstance(source, (str, os.PathLike)):
            continue  # in-memory images cannot be overwritten
        src = _resolved(source)
        for target in (out, sidecar):
            if _same_file(target, src) or (target.is_dir() and src.is_relative_to(target)):
                raise OutputPathError(f"output {output} would overwrite the input {source}; choose another path")
    if model_folder is not None and Path(model_folder).expanduser().is_dir():
        folder = _resolved(model_folder)
        if out == folder or folder.is_relative_to(out):
            raise OutputPathError(f"output {output} would replace the model folder {model_folder}; choose another path")
        if out.is_relative_to(folder) and (out.exists() or sidecar.exists()):
            raise OutputPathError(f"output {output} would replace a file of the model folder {model_folder}; "
                                  "choose another path")


def check_output_folder(output_dir: str | os.PathLike, sources: Iterable[str | os.PathLike | None]) -> None:
    """Refuse a training output folder that is, or lies inside, something the run reads (the model it
    fine-tunes, the autoencoder it encodes with, its videos): a run writes only under its output folder,
    so one that merely contains an input overwrites nothing."""
    out = _resolved(output_dir)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--output-dir {output_dir} is a file; a training run writes a folder")
    for source in sources:
        if source is None or not Path(source).expanduser().exists():
            continue
        src = _resolved(source)
        if out == src or out.is_relative_to(src):
            raise OutputPathError(f"--output-dir {output_dir} is inside {source}, which the run reads; a run never "
                                  "writes into its own inputs (use a new folder)")


def check_output_target(output: str | os.PathLike, fps: float | None = None) -> None:
    """Refuse, before any work, an output the writer would fail on after the whole generation: an
    empty path, an unknown extension, a file format at an existing folder (or a frames folder at an
    existing file), a parent that is a file or cannot be written, and GIF above its frame rate."""
    from .io.video import GIF_MAX_FPS, video_format

    text = os.fspath(output)
    if not text.strip():
        raise OutputPathError("the output path is empty; give a file such as out.mp4 (or a folder/ for PNG frames)")
    fmt = video_format(text)  # UnsupportedFormatError names the extension
    path = Path(text).expanduser()
    if fmt != "png" and path.is_dir():
        raise OutputPathError(f"output {text} is an existing folder; give a file name such as {path / 'out.mp4'}")
    if fmt == "png" and path.exists() and not path.is_dir():
        raise OutputPathError(f"output {text} is an existing file; a PNG-frames output is a folder")
    parent = path.resolve().parent
    while not parent.exists():  # the writer creates missing folders under the nearest existing one
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"output {text}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"output {text}: the folder {parent} cannot be written")
    if fmt == "gif" and fps is not None and fps > GIF_MAX_FPS:
        raise OutputPathError(f"output {text}: GIF cannot store {fps:g} fps (at most {GIF_MAX_FPS}); use .mp4, .webm "
                              "or .webp, or a lower --fps")

