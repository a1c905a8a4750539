"""Report files (benchmark and evaluation output): JSON of numpy values, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .temps import partial_sibling, remove_stale_temps


def json_default(value):
    """``json.dumps(default=...)``: numpy scalars and arrays as Python values, anything else as text."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    remove_stale_temps(path.parent)
    with partial_sibling(path) as tmp:  # an ordinary file: 0666 less the umask
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=json_default))


def write_benchmark(out: str | Path, report: dict, summary_markdown: str, rows: list) -> Path:
    """A benchmark's folder: ``report.json``, ``summary.md`` and ``contact_sheet.png`` (one row of
    frames per case, ``rows`` as ``contact_sheet`` takes them)."""
    from .contact_sheet import contact_sheet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    write_text(out / "summary.md", summary_markdown)
    contact_sheet(rows, out / "contact_sheet.png")
    return out
