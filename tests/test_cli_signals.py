"""Signals during a real ``i2v generate`` (a subprocess): SIGTERM is handled like Ctrl-C, with a
one-line message, no traceback, the previous output untouched and no partial files left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from i2v.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, main


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, EXIT_TERMINATED), (signal.SIGINT, EXIT_INTERRUPTED)])
def test_signal_during_generation_keeps_the_old_output(tiny_model_dir, sample_image_path, tmp_path, sig, code):
    out_dir = tmp_path / "out"
    out = out_dir / "clip.mp4"
    assert main(["generate", str(sample_image_path), "-p", "x", "-m", str(tiny_model_dir), "--num-frames", "4",
                 "--num-inference-steps", "2", "-o", str(out)]) == 0
    before = snapshot(out_dir)
    # a long run (many steps at a large size) so that the signal lands while it denoises
    proc = subprocess.Popen(
        [sys.executable, "-m", "i2v.cli", "generate", str(sample_image_path), "-p", "x", "-m", str(tiny_model_dir),
         "--num-frames", "16", "--height", "256", "--width", "256", "--num-inference-steps", "1000", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job (`make test &`) starts with SIGINT ignored, and Python then installs no
        # Ctrl-C handler: the child gets the default disposition, as a terminal's foreground job has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # signal once it is denoising: after 15 s of its own CPU time (importing and loading take a few),
    # however loaded the machine is
    deadline = time.monotonic() + 300
    while cpu_seconds(proc.pid) < 15 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in stderr.splitlines()[-1]
    assert snapshot(out_dir) == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["clip.mp4", "clip.mp4.json"]
