"""--camera / --trajectory values: the text itself, or @FILE (a .json file read with json, never anything else)."""

from __future__ import annotations

import json

import pytest

from i2v.errors import InvalidRequestError
from i2v.io.motion_input import MOTION_FILE_BYTES, read_motion_argument


def test_text_passes_through_and_a_file_gives_its_text_or_json(tmp_path):
    assert read_motion_argument("--camera", None) is None
    assert read_motion_argument("--camera", "1s: pan right 0.25") == "1s: pan right 0.25"
    (tmp_path / "path.txt").write_text("\ufeff1s: pan right 0.25; 2s: zoom in 1.5\n", encoding="utf-8")
    assert read_motion_argument("--camera", f"@{tmp_path / 'path.txt'}") == "1s: pan right 0.25; 2s: zoom in 1.5"
    points = {"red ball": [[0.3, 0.5], [0.7, 0.5]]}
    (tmp_path / "paths.JSON").write_text(json.dumps(points))
    assert read_motion_argument("--trajectory", f"@{tmp_path / 'paths.JSON'}") == points
    (tmp_path / "text.json").write_text('"ball: 0.3,0.5 -> 0.7,0.5"')  # a JSON string is text
    assert read_motion_argument("--trajectory", f"@{tmp_path / 'text.json'}") == "ball: 0.3,0.5 -> 0.7,0.5"


def test_a_file_past_the_cap_is_refused_unread(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"1s: pan 0.1; " * (MOTION_FILE_BYTES // 10))
    with pytest.raises(InvalidRequestError, match="larger than"):
        read_motion_argument("--camera", f"@{big}")
