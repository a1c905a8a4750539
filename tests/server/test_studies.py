"""Blind studies in the store: pairs with a drawn left side, votes by side, results and exports."""

from __future__ import annotations

import csv
import io

import pytest

from i2v.server.store import JobStore
from i2v.server.studies import Side, StudyStore


@pytest.fixture
def studies(db_url):
    store = JobStore(db_url)
    yield StudyStore(store)
    store.dispose()


def test_votes_results_and_exports(studies):
    jobs = [studies.store.submit("m", {"fields": {}}, "mp4")[0].id for _ in range(8)]
    pairs = [(f"prompt {i}", "a.png", jobs[2 * i], jobs[2 * i + 1]) for i in range(4)]
    study = studies.create("s", Side("fast", "m", {"num_inference_steps": 2}), Side("slow", "m", {}), pairs, seed=1)
    assert [p.item for p in studies.pairs(study)] == [0, 1, 2, 3]
    assert {p.left_is_a for p in studies.pairs(study)} == {True, False}  # drawn per pair (this seed: both)
    for item, choice in enumerate(["a", "a", "b", "tie"]):
        studies.vote(study, item, choice)
    result = studies.results(study)
    fast, slow = result["sides"]
    assert (fast["wins"], fast["losses"], fast["ties"], fast["win_rate"]) == (2, 1, 1, 0.625)
    assert slow["win_rate"] == pytest.approx(0.375) and fast["bradley_terry"] > slow["bradley_terry"]
    rows = list(csv.DictReader(io.StringIO(studies.results_csv(study))))
    assert [r["side"] for r in rows] == ["fast", "slow"] and rows[0]["wins"] == "2"
    assert studies.ready_pairs(study) == []  # no job has run


def test_bad_votes_are_refused(studies):
    study = studies.create("s", Side("A", "m", {}), Side("B", "m", {}), [("p", None, "x", "y")])
    with pytest.raises(ValueError, match="one of"):
        studies.vote(study, 0, "left")
    with pytest.raises(KeyError):
        studies.vote(study, 5, "a")
    assert studies.results(study)["votes"] == 0
