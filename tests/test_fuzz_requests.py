"""Property-based fuzzing of ``i2v generate``'s request fields (Hypothesis), in-process on the tiny
test model: every combination either ends with exit 2 and one error line, or writes a finite,
correctly shaped video; never a traceback, and no file but the output and its sidecar changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2v.cli import main
from i2v.io.video import read_video

# valid values are kept small (fast runs); invalid ones probe the edges
INTS = {  # flag: (valid values, invalid values)
    "--num-frames": (st.integers(2, 5), st.sampled_from([0, 1, -3, 1026, 10**6, 2**63, 10**30])),
    "--height": (st.sampled_from([16, 33, 64]), st.sampled_from([0, -16, 8193, 10**9, 2**64])),
    "--width": (st.sampled_from([16, 48, 64]), st.sampled_from([0, -1, 9000, 10**12])),
    "--num-inference-steps": (st.integers(1, 2), st.sampled_from([0, -1, 1001, 10**12])),
    "--seed": (st.integers(0, 2**32), st.sampled_from([-1, 2**64, 10**40])),
    "--decode-chunk-size": (st.sampled_from([1, 3]), st.sampled_from([0, -2])),
}
FLOATS = {
    "--guidance-scale": (st.floats(1.0, 5.0), st.sampled_from(["nan", "inf", "-inf", "1e30", "-3", "101"])),
    "--fps": (st.floats(1.0, 30.0), st.sampled_from(["0", "-8", "nan", "inf", "1e12", "121"])),
    "--motion-strength": (st.sampled_from(["0.5"]), st.sampled_from(["-1", "2", "nan"])),
}
GARBAGE = st.sampled_from(["abc", "", "1.5", "0x10", "--", "٣"])  # not numbers at all
SUFFIXES = st.sampled_from(["clip.mp4", "clip.webm", "clip.gif", "clip.webp", "frames/", "clip.avi", "clip"])
PROMPTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@st.composite
def argvs(draw):
    args = []
    for flag, (valid, invalid) in {**INTS, **FLOATS}.items():
        if draw(st.booleans()):
            kind = draw(st.integers(0, 19))  # mostly valid, so that a share of the runs generate
            value = draw(GARBAGE if kind == 0 else invalid if kind < 3 else valid)
            args += [flag, str(value)]
    return args, draw(PROMPTS), draw(SUFFIXES)


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=argvs())
def test_any_request_is_a_video_or_a_typed_refusal(case, tiny_model_dir, sample_image_path, tmp_path_factory, capsys):
    args, prompt, name = case
    work = tmp_path_factory.mktemp("fuzz")
    image = work / "input.png"
    image.write_bytes(sample_image_path.read_bytes())
    out = work / "out" / name
    before = snapshot(work)
    try:
        code = main(["generate", str(image), "--prompt", prompt, "-m", str(tiny_model_dir), "-o", str(out), "-q",
                     *args])
    except SystemExit as exc:  # argparse: a value that is not a number, one usage line
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2), (args, err)
    assert "Traceback" not in err
    after = snapshot(work)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    if code == 2:
        assert changed == set() and err.strip(), (args, err)
        return
    assert all(p.parts[0] == "out" for p in changed)  # only the output (and its sidecar) were written
    frames, fps = read_video(out)
    requested = dict(zip(args[::2], args[1::2]))
    assert frames.ndim == 4 and frames.shape[3] == 3 and frames.dtype == np.uint8
    if "--num-frames" in requested:
        assert len(frames) == int(requested["--num-frames"])
    assert math.isfinite(fps) and fps > 0
