"""Workers and leases: a job whose worker died runs again elsewhere, exactly one output is kept,
an attempt that lost its lease records nothing, failures are recorded, and orphans are removed."""

from __future__ import annotations

import os
import time

from i2v.server.store import SCHEMA_VERSION, JobStore
from i2v.server.worker import Worker, WorkerConfig, remove_orphan_outputs

from .conftest import submit


def test_a_dead_workers_job_is_requeued_after_its_lease_and_finishes_once(served, sample_image_path):
    job = submit(served, sample_image_path).json()
    served.store.lease_seconds = 0.2
    dead = served.store.claim("dead-worker")  # claims, then never beats again
    assert dead.state == "running" and dead.attempts == 1
    assert served.worker.run_once() is None  # still leased
    time.sleep(0.3)
    served.store.lease_seconds = 5.0
    done = served.worker.run_once()
    assert done.id == job["id"] and done.state == "succeeded" and done.attempts == 2
    assert served.store.finish(dead, "late.mp4", {}, []) is False  # the dead attempt's fence is gone
    outputs = sorted(p.name for p in (served.config.data_dir / "outputs").iterdir())
    assert outputs == [f"{job['id']}-2.mp4", f"{job['id']}-2.mp4.json"]


def test_an_attempt_that_lost_its_lease_drops_its_output(served, sample_image_path, monkeypatch):
    job = submit(served, sample_image_path).json()
    real_finish = served.store.finish

    def taken_over(j, *args):  # another worker took the job between writing and recording
        served.store.requeue_expired(now=time.time() + 3600)
        return real_finish(j, *args)

    monkeypatch.setattr(served.store, "finish", taken_over)
    served.worker.run_once()
    assert served.store.get(job["id"]).state == "queued"
    assert list((served.config.data_dir / "outputs").iterdir()) == []


def test_a_failing_job_is_recorded_and_the_worker_goes_on(served, sample_image_path, monkeypatch):
    bad = submit(served, sample_image_path).json()
    good = submit(served, sample_image_path).json()
    generator = served.worker.models.get(served.model)
    real_run = generator.run
    calls = {"n": 0}

    def boom(request, callback=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory (injected)")
        return real_run(request, callback=callback)

    monkeypatch.setattr(generator, "run", boom)
    first, second = served.worker.run_once(), served.worker.run_once()
    assert (first.id, first.state) == (bad["id"], "failed") and "injected" in first.error
    assert (second.id, second.state) == (good["id"], "succeeded")
    api = served.client.get(f"/v1/jobs/{bad['id']}").json()
    assert api["state"] == "failed" and api["error"].startswith("RuntimeError")


def test_job_timeout_fails_the_job(served, sample_image_path):
    job = submit(served, sample_image_path, num_inference_steps=500).json()
    served.worker.config.job_timeout_seconds = 0.0
    done = served.worker.run_once()
    assert done.state == "failed" and "limit of 0 s" in done.error and done.id == job["id"]


def test_two_workers_never_run_one_job_twice(tmp_path, tiny_model_dir, sample_image_path, db_url):
    import threading

    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig

    config = ServerConfig(data_dir=tmp_path, db_url=db_url, models=(str(tiny_model_dir),))
    app = create_app(config)
    with TestClient(app) as client:
        class S:
            pass

        s = S()
        s.client, s.model = client, str(tiny_model_dir)
        ids = [submit(s, sample_image_path).json()["id"] for _ in range(6)]
        workers = [Worker(JobStore(config.database_url), WorkerConfig(data_dir=tmp_path), f"w{i}") for i in range(2)]
        threads = [threading.Thread(target=lambda w=w: [w.run_once() for _ in range(6)]) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        jobs = [app.state.store.get(i) for i in ids]
        assert all(j.state == "succeeded" and j.attempts == 1 for j in jobs)
        videos = [p for p in (tmp_path / "outputs").iterdir() if p.suffix == ".mp4"]
        assert len(videos) == 6
    app.state.store.dispose()


def test_orphan_outputs_are_removed(served, sample_image_path):
    job = submit(served, sample_image_path).json()
    served.worker.run_once()
    outputs = served.config.data_dir / "outputs"
    orphan = outputs / f"{job['id']}-9.mp4"
    orphan.write_bytes(b"written by an attempt that died before recording it")
    young = outputs / f"{job['id']}-8.mp4"
    young.write_bytes(b"perhaps being recorded right now")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    for p in outputs.iterdir():
        if p != young:
            os.utime(p, (old, old))
    assert remove_orphan_outputs(served.store, served.config.data_dir) == [orphan]
    assert sorted(p.name for p in outputs.iterdir()) == sorted([f"{job['id']}-1.mp4", f"{job['id']}-1.mp4.json",
                                                               young.name])


def test_schema_is_versioned_and_reopening_keeps_jobs(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = JobStore(url)
    job, _ = store.submit("i2v-tiny", {"fields": {}}, "mp4")
    store.dispose()
    again = JobStore(url)
    assert again.migrate() == SCHEMA_VERSION and again.get(job.id).state == "queued"
    again.dispose()


def test_a_version_1_database_is_upgraded_in_place(tmp_path):
    from sqlalchemy import create_engine, inspect, text

    from i2v.server.store import JobRow

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # what the first release wrote: the jobs table only
        conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO schema_version (version) VALUES (1)"))
        JobRow.__table__.create(conn)
    engine.dispose()
    store = JobStore(url)
    job, _ = store.submit("i2v-tiny", {"fields": {}}, "mp4")
    assert store.migrate() == SCHEMA_VERSION and store.get(job.id) is not None
    assert {"studies", "study_pairs", "study_votes"} <= set(inspect(store.engine).get_table_names())
    store.dispose()


def test_warm_models_evict_least_recently_used(monkeypatch):
    from i2v.server import worker as worker_module

    loaded = []

    class Fake:
        def __init__(self, model_name, device, profile=None):
            loaded.append((model_name, profile))

    import i2v.api

    monkeypatch.setattr(i2v.api, "ImageToVideoGenerator", Fake)
    warm = worker_module.WarmModels("cpu", max_models=2)
    a, b = warm.get("a"), warm.get("b")
    assert warm.get("a") is a
    warm.get("a", "speed")  # another profile is another loaded generator; evicts b, the least recently used
    assert list(warm._loaded) == [("a", None), ("a", "speed")]
    assert loaded == [("a", None), ("b", None), ("a", "speed")]


def test_a_cancel_always_wins_even_in_the_last_step(served, sample_image_path, monkeypatch):
    job = submit(served, sample_image_path).json()
    real_finish = served.store.finish

    def cancelled_just_before(j, *args):
        served.store.cancel(j.id)  # lands after the last step, before the job is recorded
        return real_finish(j, *args)

    monkeypatch.setattr(served.store, "finish", cancelled_just_before)
    assert served.worker.run_once().state == "cancelled"
    assert list((served.config.data_dir / "outputs").iterdir()) == []


def test_a_released_or_expired_job_that_was_cancelled_stays_cancelled(served, sample_image_path):
    first = submit(served, sample_image_path).json()
    second = submit(served, sample_image_path).json()
    served.store.lease_seconds = 0.05
    a = served.store.claim("stopping-worker")
    served.store.cancel(first["id"])
    assert served.store.release(a) and served.store.get(first["id"]).state == "cancelled"
    b = served.store.claim("dying-worker")
    assert b.id == second["id"]
    served.store.cancel(second["id"])
    time.sleep(0.1)
    served.store.requeue_expired()
    assert served.store.get(second["id"]).state == "cancelled"
    assert served.store.claim("w") is None  # nothing cancelled is ever claimed


def test_a_job_whose_workers_keep_dying_ends_failed(served, sample_image_path):
    job = submit(served, sample_image_path).json()
    served.store.lease_seconds = 0.01
    for attempt in range(1, 4):
        claimed = served.store.claim(f"doomed-{attempt}")
        assert claimed.attempts == attempt
        time.sleep(0.02)
        served.store.requeue_expired()
    final = served.store.get(job["id"])
    assert final.state == "failed" and "stopped answering 3 times" in final.error


def test_a_stopped_worker_spends_no_attempt(served, sample_image_path):
    submit(served, sample_image_path)
    claimed = served.store.claim("w")
    assert served.store.release(claimed)
    assert served.store.get(claimed.id).state == "queued" and served.store.get(claimed.id).attempts == 0
