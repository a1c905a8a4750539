"""Preference statistics: Wilson intervals, win rates with ties, Bradley-Terry strengths."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from i2v.metrics.preference import bradley_terry, win_rates, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook example
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_interval_contains_the_proportion(wins, extra):
    n = wins + extra
    low, high = wilson_interval(wins, n)
    assert 0 <= low <= wins / n <= high <= 1


def test_win_rates_count_ties_as_half():
    votes = [("A", "B", "a")] * 6 + [("A", "B", "b")] * 2 + [("A", "B", "tie")] * 2
    rates = win_rates(votes)
    assert rates["A"]["win_rate"] == pytest.approx(0.7) and rates["B"]["win_rate"] == pytest.approx(0.3)
    assert (rates["A"]["wins"], rates["A"]["losses"], rates["A"]["ties"], rates["A"]["votes"]) == (6, 2, 2, 10)
    assert rates["A"]["ci95"][0] < 0.7 < rates["A"]["ci95"][1]
    with pytest.raises(ValueError, match="'a', 'b' or 'tie'"):
        win_rates([("A", "B", "left")])


def test_bradley_terry_recovers_the_odds():
    votes = [("A", "B", "a")] * 75 + [("A", "B", "b")] * 25
    s = bradley_terry(votes, prior=0.0)
    assert s["A"] / s["B"] == pytest.approx(3.0, rel=1e-6)  # 75:25
    assert math.isclose(s["A"] * s["B"], 1.0, rel_tol=1e-9)  # geometric mean 1


def test_bradley_terry_orders_three_systems_and_stays_finite_for_a_sweep():
    votes = ([("A", "B", "a")] * 8 + [("A", "B", "b")] * 2 + [("B", "C", "a")] * 7 + [("B", "C", "b")] * 3
             + [("A", "C", "a")] * 10)
    s = bradley_terry(votes)
    assert s["A"] > s["B"] > s["C"] and all(math.isfinite(v) and v > 0 for v in s.values())
