"""The job store: one table of generation jobs in a real database, shared by API servers and workers.

SQLite (WAL, one file in the data dir) by default; PostgreSQL (``postgresql://...``) when servers
and workers run on several machines. A job goes ``queued -> running -> succeeded | failed``, or to
``cancelled`` from either of the first two. Workers claim jobs atomically (PostgreSQL's
``FOR UPDATE SKIP LOCKED``; on SQLite every transaction takes the write lock up front) and hold a
lease they renew with heartbeats; a job whose lease ran out (its worker died) is queued again.
Each claim is an *attempt*: finishing requires the attempt that was claimed, so a worker that lost
its lease can never overwrite the result of the one that took over.

The schema is versioned (``schema_version``); ``MIGRATIONS`` upgrades an older database in place.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    case,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
INPUT_FILES = ("image", "last_image", "init_video")  # a job record's uploads (file names under inputs/)
DEFAULT_LEASE_S = 30.0
DEFAULT_MAX_ATTEMPTS = 3  # a job whose worker dies this often (out of memory, a crash) ends failed
REQUEUE_EVERY_S = 0.25  # how often a polling worker looks for jobs whose lease ran out


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(512))
    request: Mapped[str] = mapped_column(Text)  # JSON: the generation fields and the stored input files
    output_format: Mapped[str] = mapped_column(String(8))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    notices: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    settings: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: what was run
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class StudyRow(Base):
    """A blind A/B study: two sides (a model and its settings each) over a set of images and prompts."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float)
    side_a: Mapped[str] = mapped_column(Text)  # JSON: {"label", "model", "fields"}
    side_b: Mapped[str] = mapped_column(Text)


class StudyPairRow(Base):
    """One item of a study: an image and a prompt, the job of each side, and which side shows left."""

    __tablename__ = "study_pairs"

    study_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    image_name: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    job_a: Mapped[str] = mapped_column(String(32))
    job_b: Mapped[str] = mapped_column(String(32))
    left_is_a: Mapped[bool] = mapped_column(Boolean)


class StudyVoteRow(Base):
    __tablename__ = "study_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(String(32), index=True)
    item: Mapped[int] = mapped_column(Integer)
    choice: Mapped[str] = mapped_column(String(8))  # "a", "b" or "tie" (sides, not screen positions)
    created_at: Mapped[float] = mapped_column(Float)


def _add_study_tables(conn) -> None:
    Base.metadata.create_all(conn, tables=[StudyRow.__table__, StudyPairRow.__table__, StudyVoteRow.__table__])


# version -> the step that brings a database from version - 1 to it (version 1: the jobs table)
MIGRATIONS: dict[int, Callable] = {1: lambda conn: None, 2: _add_study_tables}
SCHEMA_VERSION = max(MIGRATIONS)


@dataclass
class Job:
    """A job as the API and the workers see it (a detached copy of its row)."""

    id: str
    state: str
    model: str
    request: dict
    output_format: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    worker_id: str | None
    progress_step: int
    progress_total: int
    cancel_requested: bool
    notices: list[str]
    settings: dict | None
    error: str | None
    output_path: str | None
    idempotency_key: str | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(id=row.id, state=row.state, model=row.model, request=json.loads(row.request),
                   output_format=row.output_format, created_at=row.created_at, started_at=row.started_at,
                   finished_at=row.finished_at, attempts=row.attempts, worker_id=row.worker_id,
                   progress_step=row.progress_step, progress_total=row.progress_total,
                   cancel_requested=bool(row.cancel_requested), notices=json.loads(row.notices or "[]"),
                   settings=json.loads(row.settings) if row.settings else None, error=row.error,
                   output_path=row.output_path, idempotency_key=row.idempotency_key)


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite: WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for every
    transaction (the write lock is taken before the first read, so a claim never races)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                  "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):  # reads see a snapshot (WAL) and never wait for the write lock
            read_only = connection.get_execution_options().get("i2v_read_only", False)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):  # the psycopg 3 driver
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True)


class JobStore:
    """Every read and write of jobs; each method is one short transaction."""

    def __init__(self, url: str, lease_seconds: float = DEFAULT_LEASE_S, max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.url = url
        self.engine = make_engine(url)
        self.reader = self.engine.execution_options(i2v_read_only=True)
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._requeued_at = 0.0
        self.migrate()

    # ---- schema ----------------------------------------------------------------------------
    def migrate(self) -> int:
        """Create or upgrade the schema to ``SCHEMA_VERSION``; return the version found before."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # servers and workers starting together: one migrates at a time
                conn.execute(text("SELECT pg_advisory_xact_lock(7462013)"))
            conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
            found = conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
            if found is None:
                Base.metadata.create_all(conn)
                conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": SCHEMA_VERSION})
                return 0
            if found > SCHEMA_VERSION:
                raise RuntimeError(f"job database schema version {found} is newer than this i2v's "
                                   f"({SCHEMA_VERSION}); upgrade i2v")
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
                conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})
            return found

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- submit and read -------------------------------------------------------------------
    def submit(self, model: str, request: dict, output_format: str, idempotency_key: str | None = None,
               job_id: str | None = None) -> tuple[Job, bool]:
        """Queue a job; return (job, created). A known ``idempotency_key`` returns its job instead."""
        if idempotency_key is not None:
            existing = self.by_idempotency_key(idempotency_key)
            if existing is not None:
                return existing, False
        row = JobRow(id=job_id or uuid.uuid4().hex, state=QUEUED, model=model, request=json.dumps(request),
                     output_format=output_format, idempotency_key=idempotency_key, created_at=time.time(),
                     attempts=0, progress_step=0, progress_total=0, cancel_requested=False, notices="[]")
        try:
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                s.add(row)
        except IntegrityError:  # the same key submitted concurrently: the other insert won
            if idempotency_key is not None and (existing := self.by_idempotency_key(idempotency_key)):
                return existing, False
            raise
        return Job.from_row(row), True

    def by_idempotency_key(self, key: str) -> Job | None:
        with Session(self.reader) as s, s.begin():
            row = s.scalars(select(JobRow).where(JobRow.idempotency_key == key)).first()
            return Job.from_row(row) if row else None

    def get(self, job_id: str) -> Job | None:
        with Session(self.reader) as s, s.begin():
            row = s.get(JobRow, job_id)
            return Job.from_row(row) if row else None

    def list(self, state: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
        """Newest first; (page, total matching)."""
        with Session(self.reader) as s, s.begin():
            query = select(JobRow)
            count = select(func.count()).select_from(JobRow)
            if state is not None:
                query, count = query.where(JobRow.state == state), count.where(JobRow.state == state)
            rows = s.scalars(query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)).all()
            return [Job.from_row(r) for r in rows], int(s.execute(count).scalar_one())

    def counts(self) -> dict[str, int]:
        with Session(self.reader) as s, s.begin():
            found = dict(s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
        return {state: int(found.get(state, 0)) for state in STATES}

    def durations(self, limit: int = 10000) -> list[float]:
        """Seconds from start to finish of the latest succeeded jobs (for the metrics histogram)."""
        with Session(self.reader) as s, s.begin():
            rows = s.execute(select(JobRow.started_at, JobRow.finished_at).where(JobRow.state == SUCCEEDED)
                             .order_by(JobRow.finished_at.desc()).limit(limit)).all()
        return [f - b for b, f in rows if b is not None and f is not None]

    # ---- workers -----------------------------------------------------------------------------
    def _back_to_queue(self, now: float):
        """The values for a running job that goes back to the queue: cancelled if a cancel was asked
        meanwhile, failed once its workers died ``max_attempts`` times, else queued (one statement,
        so a cancel cannot slip in between)."""
        state = case((JobRow.cancel_requested, CANCELLED), (JobRow.attempts >= self.max_attempts, FAILED),
                     else_=QUEUED)
        finished = case((JobRow.cancel_requested | (JobRow.attempts >= self.max_attempts), now), else_=None)
        error = case((JobRow.cancel_requested, None),
                     (JobRow.attempts >= self.max_attempts,
                      f"its worker stopped answering {self.max_attempts} times (out of memory or a crash?)"),
                     else_=None)
        return dict(state=state, finished_at=finished, error=error, worker_id=None, lease_until=None, progress_step=0)

    def requeue_expired(self, now: float | None = None) -> int:
        """Queue again the running jobs whose worker stopped renewing its lease; return how many went
        back (a job cancelled meanwhile ends cancelled, one whose workers kept dying ends failed)."""
        now = time.time() if now is None else now
        expired = (JobRow.state == RUNNING) & (JobRow.lease_until < now)
        with self.engine.begin() as conn:
            return conn.execute(update(JobRow).where(expired).values(**self._back_to_queue(now))).rowcount

    def claim(self, worker_id: str, models: Iterable[str] | None = None) -> Job | None:
        """Atomically take the oldest queued job (of ``models``, if given) for ``worker_id``. Cheap when
        the queue is empty (one read), so workers can poll often."""
        now = time.time()
        if now - self._requeued_at >= REQUEUE_EVERY_S:
            self.requeue_expired(now)
            self._requeued_at = now
        oldest = select(JobRow.id).where(JobRow.state == QUEUED, JobRow.cancel_requested.is_(False))
        if models is not None:
            oldest = oldest.where(JobRow.model.in_(list(models)))
        with Session(self.reader) as s, s.begin():
            if s.execute(oldest.limit(1)).first() is None:
                return None
        oldest = oldest.order_by(JobRow.created_at, JobRow.id).limit(1).with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(JobRow).where(JobRow.id == oldest.scalar_subquery(), JobRow.state == QUEUED)
                .values(state=RUNNING, worker_id=worker_id, lease_until=now + self.lease_seconds,
                        attempts=JobRow.attempts + 1, started_at=now, progress_step=0, error=None)
                .returning(JobRow.id)
            ).scalar_one_or_none()
        return self.get(claimed) if claimed else None

    def _owned(self, job: Job):
        """The row is still this attempt's: the fence every worker write goes through."""
        return ((JobRow.id == job.id) & (JobRow.state == RUNNING) & (JobRow.worker_id == job.worker_id)
                & (JobRow.attempts == job.attempts))

    def heartbeat(self, job: Job, step: int | None = None, total: int | None = None) -> bool | None:
        """Renew the lease and record progress. Returns whether cancellation was requested, or None
        when this attempt no longer owns the job (its lease ran out and it was taken over)."""
        values: dict[str, Any] = {"lease_until": time.time() + self.lease_seconds}
        if step is not None:
            values.update(progress_step=step, progress_total=total or 0)
        with self.engine.begin() as conn:
            updated = conn.execute(update(JobRow).where(self._owned(job)).values(**values)
                                   .returning(JobRow.cancel_requested)).scalar_one_or_none()
        return None if updated is None else bool(updated)

    def finish(self, job: Job, output_path: str, settings: dict, notices: list[str], total: int | None = None) -> bool:
        """Mark this attempt's job succeeded (its progress complete: ``total`` steps of ``total``, or the
        last heartbeat's total); False if the attempt no longer owns it or a cancel was asked meanwhile
        (a cancel always wins)."""
        progress = ({"progress_step": total, "progress_total": total} if total
                    else {"progress_step": JobRow.progress_total})  # a run shorter than one heartbeat has no total
        with self.engine.begin() as conn:
            done = conn.execute(update(JobRow).where(self._owned(job), JobRow.cancel_requested.is_(False)).values(
                state=SUCCEEDED, finished_at=time.time(), output_path=output_path, lease_until=None,
                settings=json.dumps(settings, default=str), notices=json.dumps(notices), **progress)).rowcount
        return done == 1

    def fail(self, job: Job, error: str, notices: list[str] | None = None) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(JobRow).where(self._owned(job)).values(
                state=FAILED, finished_at=time.time(), error=error, lease_until=None,
                notices=json.dumps(notices or []))).rowcount == 1

    def mark_cancelled(self, job: Job) -> bool:
        """A running attempt that stopped on a cancel request."""
        with self.engine.begin() as conn:
            return conn.execute(update(JobRow).where(self._owned(job)).values(
                state=CANCELLED, finished_at=time.time(), lease_until=None)).rowcount == 1

    def release(self, job: Job) -> bool:
        """A worker stopping (SIGTERM) hands its running job back to the queue at once (or ends it
        cancelled, if a cancel was asked)."""
        now = time.time()
        with self.engine.begin() as conn:
            return conn.execute(update(JobRow).where(self._owned(job)).values(
                state=case((JobRow.cancel_requested, CANCELLED), else_=QUEUED),
                finished_at=case((JobRow.cancel_requested, now), else_=None),
                attempts=JobRow.attempts - 1,  # a stopped worker is not the job's fault: no attempt spent
                worker_id=None, lease_until=None, progress_step=0)).rowcount == 1

    def cancel(self, job_id: str) -> Job | None:
        """Cancel: a queued job never runs; a running one is asked to stop (its worker stops within one
        step). Returns the job (unchanged if already finished), or None if there is no such job."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == QUEUED)
                         .values(state=CANCELLED, finished_at=now, cancel_requested=True))
            conn.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == RUNNING)
                         .values(cancel_requested=True))
        return self.get(job_id)

    def delete(self, job_id: str, data_dir=None) -> bool:
        """Remove a finished job's record, and with ``data_dir`` its input and output files."""
        from pathlib import Path

        from ..io.video import sidecar_path

        job = self.get(job_id)
        if job is None or job.state not in FINISHED:
            return False
        with self.engine.begin() as conn:
            conn.execute(JobRow.__table__.delete().where(JobRow.id == job_id, JobRow.state.in_(FINISHED)))
        if data_dir is not None:
            data_dir = Path(data_dir)
            for name in (job.request.get(key) for key in INPUT_FILES):
                if name:
                    (data_dir / "inputs" / name).unlink(missing_ok=True)
            if job.output_path:
                output = data_dir / "outputs" / Path(job.output_path).name
                output.unlink(missing_ok=True)
                sidecar_path(output).unlink(missing_ok=True)
        return True

    def output_paths(self) -> set[str]:
        """Every output a succeeded job points at (the files the data dir must keep)."""
        with Session(self.reader) as s, s.begin():
            return {p for p in s.scalars(select(JobRow.output_path).where(JobRow.output_path.is_not(None)))}

    def queue_depth(self) -> int:
        return self.counts()[QUEUED]
