"""The train / held-out split of gathered photographs: by picture, deterministic, per source.

A *group* is one picture: the dark and light renderings of one wallpaper, or its copies at
several resolutions, share a group, so no picture lands in both splits. Within each source, the
groups are ranked by a hash of ``source/group`` and the first ``heldout_count(n)`` are held out.
The hash does not depend on the machine, the order of listing or the run, so re-running gives the
same split; adding a picture to a source moves at most one other group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HELDOUT_FRACTION = 0.125
SPLITS = ("train", "heldout")


def split_key(source: str, group: str) -> int:
    """A stable pseudo-random rank for a group (first 64 bits of a SHA-256)."""
    return int.from_bytes(hashlib.sha256(f"{source}/{group}".encode()).digest()[:8], "big")


def heldout_count(num_groups: int, fraction: float = HELDOUT_FRACTION) -> int:
    """About ``fraction`` of the groups; at least one from 4 groups and two from 8 groups up."""
    return min(num_groups, max(int(num_groups * fraction + 0.5), min(2, num_groups // 4)))


def assign_splits(groups: Iterable[tuple[str, str]], fraction: float = HELDOUT_FRACTION) -> dict[tuple[str, str], str]:
    """{(source, group): "train" | "heldout"} for every distinct (source, group)."""
    by_source: dict[str, set[str]] = {}
    for source, group in groups:
        by_source.setdefault(source, set()).add(group)
    out: dict[tuple[str, str], str] = {}
    for source, names in by_source.items():
        ranked = sorted(names, key=lambda g: (split_key(source, g), g))
        k = heldout_count(len(ranked), fraction)
        for i, group in enumerate(ranked):
            out[(source, group)] = "heldout" if i < k else "train"
    return out
