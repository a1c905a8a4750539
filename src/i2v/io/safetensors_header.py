"""Checks on safetensors files before any weights load, and one translation of load failures.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the bytes. ``read_header`` bounds the length before reading it
(a forged length cannot make i2v allocate gigabytes) and checks every range against the file's
size (a truncated download is named as such instead of failing deep inside a loader).
``weights_errors`` turns what a loader raises on broken weights (a missing key, a wrong shape,
an unreadable file) into ``WeightsError`` naming the folder.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

from ..errors import I2VError, WeightsError

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


def read_header(file: str | Path) -> dict:
    """The header of a safetensors file (``__metadata__`` removed), checked; ``WeightsError`` if broken."""
    file = Path(file)
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            raw_length = f.read(8)
            if len(raw_length) < 8:
                raise WeightsError(f"{file}: not a safetensors file ({size} bytes, shorter than its header length)")
            length = int.from_bytes(raw_length, "little")
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise WeightsError(f"{file}: broken safetensors header (it claims {length} bytes; the file has "
                                   f"{size - 8} after the length): truncated or not a safetensors file")
            header = json.loads(f.read(length))
    except OSError as exc:
        raise WeightsError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightsError(f"{file}: broken safetensors header (not JSON: {exc})") from exc
    if not isinstance(header, dict):
        raise WeightsError(f"{file}: broken safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    data_bytes = size - 8 - length
    for name, entry in header.items():
        try:
            begin, end = (int(x) for x in entry["data_offsets"])
            numel = math.prod(int(d) for d in entry["shape"])
            itemsize = DTYPE_BYTES[entry["dtype"]]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise WeightsError(f"{file}: broken safetensors header entry for {name!r}") from exc
        if end > data_bytes:
            raise WeightsError(f"{file}: truncated: tensor {name!r} ends at byte {end} of the data, the file holds "
                               f"{data_bytes} (an interrupted download or copy?)")
        if begin < 0 or end - begin != numel * itemsize:
            raise WeightsError(f"{file}: broken safetensors header: tensor {name!r} spans {end - begin} bytes, its "
                               f"shape and dtype need {numel * itemsize}")
    return header


def check_weight_files(folder: str | Path, depth: int = 1) -> None:
    """``read_header`` on every ``*.safetensors`` in ``folder`` and its subfolders ``depth`` levels down."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if depth > 0:
        files += sorted(folder.glob("*/*.safetensors"))
    for file in files:
        read_header(file)


@contextlib.contextmanager
def weights_errors(folder: str | Path) -> Iterator[None]:
    """Re-raise what a loader raises on broken weights as ``WeightsError`` naming ``folder``."""
    from safetensors import SafetensorError

    try:
        yield
    except I2VError:
        raise
    except (RuntimeError, ValueError, OSError, KeyError, SafetensorError) as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # not the weights' fault
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{folder}: the weights do not load: {first[:300]}") from exc


def check_no_meta_tensors(module, where: str | Path) -> None:
    """A module whose weights file lacked some keys can come back with them on the ``meta`` device."""
    missing = [name for name, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if missing:
        raise WeightsError(f"{where}: the weights lack {len(missing)} tensor(s) the network needs "
                           f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
