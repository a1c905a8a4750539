"""Pairwise preference statistics for blind A/B studies: win rates with Wilson 95% intervals and
Bradley-Terry strengths (Hunter's MM algorithm), ties counted as half a win for each side."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

Z95 = 1.959963984540054


def wilson_interval(wins: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``wins / n`` (``(0, 1)`` when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact at the ends (0 wins: low is 0; all wins: high is 1), where rounding left 1e-18 over or under
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def win_rates(votes: Iterable[tuple[str, str, str]]) -> dict[str, dict]:
    """Per system: votes, wins, losses, ties, win rate ((wins + ties / 2) / votes) and its 95% interval.

    ``votes``: (system A, system B, outcome) with outcome ``"a"``, ``"b"`` or ``"tie"``."""
    table: dict[str, dict] = defaultdict(lambda: {"votes": 0, "wins": 0, "losses": 0, "ties": 0})
    for a, b, outcome in votes:
        if outcome not in ("a", "b", "tie"):
            raise ValueError(f"a vote is 'a', 'b' or 'tie', got {outcome!r}")
        for system, won in ((a, outcome == "a"), (b, outcome == "b")):
            row = table[system]
            row["votes"] += 1
            if outcome == "tie":
                row["ties"] += 1
            elif won:
                row["wins"] += 1
            else:
                row["losses"] += 1
    out = {}
    for system, row in table.items():
        score = row["wins"] + 0.5 * row["ties"]
        low, high = wilson_interval(score, row["votes"])
        out[system] = {**row, "win_rate": score / row["votes"] if row["votes"] else 0.0, "ci95": [low, high]}
    return out


def bradley_terry(votes: Iterable[tuple[str, str, str]], iterations: int = 500, tol: float = 1e-10,
                  prior: float = 0.5) -> dict[str, float]:
    """Bradley-Terry strengths, scaled to a geometric mean of 1 (P(i beats j) = s_i / (s_i + s_j)).

    ``prior`` adds that many virtual ties between every pair that met, so that a system that never
    lost keeps a finite strength."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    systems: set[str] = set()
    for a, b, outcome in votes:
        systems |= {a, b}
        key = (a, b) if a < b else (b, a)
        games[key] += 1
        wins[a] += 1.0 if outcome == "a" else 0.5 if outcome == "tie" else 0.0
        wins[b] += 1.0 if outcome == "b" else 0.5 if outcome == "tie" else 0.0
    for key in list(games):
        games[key] += prior
        wins[key[0]] += prior / 2
        wins[key[1]] += prior / 2
    strength = {s: 1.0 for s in systems}
    for _ in range(iterations):
        new = {}
        for s in systems:
            denom = sum(n / (strength[s] + strength[o]) for (x, y), n in games.items() if s in (x, y)
                        for o in [y if x == s else x])
            new[s] = wins[s] / denom if denom else strength[s]
        scale = math.exp(sum(math.log(v) for v in new.values()) / len(new)) if new else 1.0
        new = {s: v / scale for s, v in new.items()}
        done = max((abs(new[s] - strength[s]) for s in systems), default=0.0) < tol
        strength = new
        if done:
            break
    return strength
