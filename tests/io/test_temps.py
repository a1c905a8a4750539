"""Partial outputs: locked while their writer lives, removed by the next writer once it is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from i2v.io import temps
from i2v.io.temps import TEMP_PREFIX, folder_lock, partial_sibling, remove_stale_temps


def age(path, seconds: float = 60.0) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


@pytest.mark.parametrize("directory", [False, True])
def test_partial_is_removed_on_error_and_kept_once_moved(tmp_path, directory):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with partial_sibling(target, directory=directory) as tmp:
            assert tmp.name.startswith(TEMP_PREFIX) and tmp.exists()
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
    with partial_sibling(target, directory=directory) as tmp:
        os.replace(tmp, target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_killed_writers_partials_are_stale_a_live_ones_are_not(tmp_path):
    # a writer that dies with SIGKILL while holding its partial: the kernel drops the lock
    code = ("import os, sys, pathlib; from i2v.io.temps import partial_sibling\n"
            "cm = partial_sibling(pathlib.Path(sys.argv[1]) / 'v.mp4'); p = cm.__enter__()\n"
            "print(p, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == -9
    dead = tmp_path / proc.stdout.strip().rsplit("/", 1)[-1]
    assert dead.exists()
    foreign = tmp_path / ".someone-elses.tmp"
    foreign.write_text("not ours")
    with partial_sibling(tmp_path / "w.mp4") as live:
        for p in (dead, live, foreign):
            age(p)
        assert remove_stale_temps(tmp_path) == [dead]
        assert live.exists() and foreign.exists() and not dead.exists()


def test_a_fresh_unlocked_partial_is_left_alone(tmp_path):
    fresh = tmp_path / f"{TEMP_PREFIX}0000-x.mp4"
    fresh.write_bytes(b"")  # just created by a writer that has not locked it yet
    assert remove_stale_temps(tmp_path) == []
    age(fresh)
    assert remove_stale_temps(tmp_path) == [fresh]


def test_folder_lock_serialises_writers(tmp_path):
    code = ("import sys, time, pathlib; from i2v.io.temps import folder_lock\n"
            "with folder_lock(pathlib.Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(1.0)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    start = time.monotonic()
    with folder_lock(tmp_path):
        waited = time.monotonic() - start
    proc.wait()
    assert waited > 0.3  # blocked until the other process let go (ordering, not a timing target)


def test_without_fcntl_partials_still_clean_up(tmp_path, monkeypatch):
    monkeypatch.setattr(temps, "fcntl", None)
    with pytest.raises(RuntimeError):
        with partial_sibling(tmp_path / "a.json"):
            raise RuntimeError
    assert list(tmp_path.iterdir()) == [] and remove_stale_temps(tmp_path) == []
