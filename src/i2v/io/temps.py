"""Temporary siblings of outputs, and the clean-up of those a killed process left behind.

Every partial output i2v writes (a video being encoded, a checkpoint or model folder being saved)
is a hidden sibling named ``.i2v-partial-<hex>-<what>`` that holds an exclusive ``flock`` while its
writer lives. The kernel drops the lock when the writer dies, however it dies (SIGKILL included),
so a later writer can tell a stale partial from one in progress: ``remove_stale_temps`` removes
only the unlocked ones, and only once they are a few seconds old (a partial is created, then
locked: the age closes that window).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX; elsewhere partials are still removed by their writer, only stale ones stay
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

TEMP_PREFIX = ".i2v-partial-"
STALE_AFTER_S = 5.0


def _lock(path: Path) -> int | None:
    """An open descriptor on ``path`` holding an exclusive lock (None without ``fcntl``)."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def partial_sibling(target: Path, directory: bool = False) -> Iterator[Path]:
    """A new empty, locked, hidden file (or folder) next to ``target``; removed on exit unless it was
    moved into place (then only its lock is released)."""
    while True:
        temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(4)}-{target.name}"
        try:
            if directory:
                temp.mkdir()
            else:
                os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    fd = None
    try:
        fd = _lock(temp)
        yield temp
    finally:
        if fd is not None:
            os.close(fd)
        _remove(temp)  # no-op once moved into place


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the partials in ``folder`` whose writers are gone; return what was removed."""
    removed = []
    if fcntl is None or not folder.is_dir():
        return removed
    now = time.time()
    for entry in folder.iterdir():
        if not entry.name.startswith(TEMP_PREFIX) or entry.is_symlink():
            continue
        try:
            if now - entry.stat().st_mtime < STALE_AFTER_S:
                continue
            fd = _lock(entry)
        except (BlockingIOError, OSError):  # locked: its writer is alive (or it is not ours to touch)
            continue
        try:
            _remove(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (blocking): writers of several files that belong together
    (a video and its sidecar) replace them under it, so two writers never interleave."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
