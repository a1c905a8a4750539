"""Blind A/B studies over the job queue: two sides, a set of images and prompts, votes, results.

A study queues one job per side per item (the same seed for both sides of an item, so only the
side differs), and draws for each item whether side A shows on the left. Votes name sides, never
screen positions. Results: each side's win rate with its 95% Wilson interval and Bradley-Terry
strengths (``metrics.preference``), exportable as CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..metrics.preference import bradley_terry, win_rates
from .store import JobStore, StudyPairRow, StudyRow, StudyVoteRow

CHOICES = ("a", "b", "tie")


@dataclass
class Side:
    label: str
    model: str
    fields: dict  # generation fields applied on top of each item's prompt and seed


@dataclass
class Pair:
    study_id: str
    item: int
    prompt: str
    job_a: str
    job_b: str
    left_is_a: bool


class StudyStore:
    def __init__(self, store: JobStore):
        self.store = store
        self.engine = store.engine

    def create(self, name: str, side_a: Side, side_b: Side, pairs: list[tuple[str, str | None, str, str]],
               seed: int | None = None) -> str:
        """Record a study whose jobs are queued: ``pairs`` are (prompt, image name, job of A, job of B)."""
        rng = random.Random(seed)
        study_id = uuid.uuid4().hex
        with Session(self.engine) as s, s.begin():
            s.add(StudyRow(id=study_id, name=name, created_at=time.time(),
                           side_a=json.dumps(side_a.__dict__), side_b=json.dumps(side_b.__dict__)))
            for item, (prompt, image_name, job_a, job_b) in enumerate(pairs):
                s.add(StudyPairRow(study_id=study_id, item=item, prompt=prompt, image_name=image_name, job_a=job_a,
                                   job_b=job_b, left_is_a=rng.random() < 0.5))
        return study_id

    def sides(self, study_id: str) -> tuple[Side, Side]:
        with Session(self.store.reader) as s, s.begin():
            row = s.get(StudyRow, study_id)
            if row is None:
                raise KeyError(study_id)
            return Side(**json.loads(row.side_a)), Side(**json.loads(row.side_b))

    def studies(self) -> list[tuple[str, str, float]]:
        with Session(self.store.reader) as s, s.begin():
            return [(r.id, r.name, r.created_at)
                    for r in s.scalars(select(StudyRow).order_by(StudyRow.created_at.desc())).all()]

    def pairs(self, study_id: str) -> list[Pair]:
        with Session(self.store.reader) as s, s.begin():
            rows = s.scalars(select(StudyPairRow).where(StudyPairRow.study_id == study_id)
                             .order_by(StudyPairRow.item)).all()
            return [Pair(r.study_id, r.item, r.prompt, r.job_a, r.job_b, bool(r.left_is_a)) for r in rows]

    def vote(self, study_id: str, item: int, choice: str) -> None:
        if choice not in CHOICES:
            raise ValueError(f"a vote is one of {CHOICES}, got {choice!r}")
        with Session(self.engine) as s, s.begin():
            if s.get(StudyPairRow, (study_id, item)) is None:
                raise KeyError(f"study {study_id} has no item {item}")
            s.add(StudyVoteRow(study_id=study_id, item=item, choice=choice, created_at=time.time()))

    def votes(self, study_id: str) -> list[tuple[int, str]]:
        with Session(self.store.reader) as s, s.begin():
            return [(r.item, r.choice) for r in s.scalars(select(StudyVoteRow).where(StudyVoteRow.study_id == study_id)
                                                          .order_by(StudyVoteRow.id)).all()]

    def vote_counts(self, study_id: str) -> dict[int, int]:
        with Session(self.store.reader) as s, s.begin():
            return dict(s.execute(select(StudyVoteRow.item, func.count()).where(StudyVoteRow.study_id == study_id)
                                  .group_by(StudyVoteRow.item)).all())

    def ready_pairs(self, study_id: str) -> list[Pair]:
        """The pairs whose two videos exist."""
        return [p for p in self.pairs(study_id) if all((j := self.store.get(x)) is not None and j.state == "succeeded"
                                                      for x in (p.job_a, p.job_b))]

    # ---- results ------------------------------------------------------------------------------
    def results(self, study_id: str) -> dict:
        side_a, side_b = self.sides(study_id)
        votes = [(side_a.label, side_b.label, choice) for _, choice in self.votes(study_id)]
        rates = win_rates(votes)
        strengths = bradley_terry(votes) if votes else {}
        rows = []
        for side in (side_a, side_b):
            r = rates.get(side.label, {"votes": 0, "wins": 0, "losses": 0, "ties": 0, "win_rate": 0.0,
                                       "ci95": [0.0, 1.0]})
            rows.append({"side": side.label, "model": side.model, "settings": side.fields, **r,
                         "bradley_terry": strengths.get(side.label, 1.0)})
        return {"study": study_id, "votes": len(votes), "pairs": len(self.pairs(study_id)), "sides": rows}

    def results_csv(self, study_id: str) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["side", "model", "votes", "wins", "losses", "ties", "win_rate", "ci95_low", "ci95_high",
                         "bradley_terry"])
        for r in self.results(study_id)["sides"]:
            writer.writerow([r["side"], r["model"], r["votes"], r["wins"], r["losses"], r["ties"],
                             f"{r['win_rate']:.4f}", f"{r['ci95'][0]:.4f}", f"{r['ci95'][1]:.4f}",
                             f"{r['bradley_terry']:.4f}"])
        return out.getvalue()
