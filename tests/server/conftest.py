"""A served app over a fresh SQLite store in tmp_path, the tiny test model, and in-process workers."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres_cluster():
    from .postgres import Cluster, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL is not installed (make test installs it as root: apt-get install postgresql)")
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same suite on both databases: SQLite in tmp_path, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture
def served(tmp_path, tiny_model_dir, db_url):
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig
    from i2v.server.worker import Worker, WorkerConfig

    config = ServerConfig(data_dir=tmp_path / "data", db_url=db_url, models=(str(tiny_model_dir),),
                          lease_seconds=5.0, event_poll_seconds=0.05)
    app = create_app(config)
    worker = Worker(app.state.store, WorkerConfig(data_dir=config.data_dir, heartbeat_seconds=0.05), "w-test")

    class Served:
        pass

    s = Served()
    s.app, s.config, s.store, s.worker, s.model = app, config, app.state.store, worker, str(tiny_model_dir)
    with TestClient(app) as client:
        s.client = client
        yield s
    app.state.store.dispose()


def submit(served, image_path, headers=None, **fields):
    data = {"model": served.model, "prompt": "the red square moves left", "num_frames": 4,
            "num_inference_steps": 2, "seed": 1, **fields}
    data = {k: str(v) for k, v in data.items() if v is not None}  # None: leave the field out
    with open(image_path, "rb") as f:
        return served.client.post("/v1/jobs", data=data, files={"image": ("input.png", f.read())},
                                  headers=headers or {})
