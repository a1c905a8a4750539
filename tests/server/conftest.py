"""A served app over a fresh SQLite store in tmp_path, the tiny test model, and in-process workers."""

from __future__ import annotations

import pytest


@pytest.fixture
def served(tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig
    from i2v.server.worker import Worker, WorkerConfig

    config = ServerConfig(data_dir=tmp_path / "data", models=(str(tiny_model_dir),), lease_seconds=5.0,
                          event_poll_seconds=0.05)
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
    data = {"model": served.model, "prompt": "the red square moves left", "num_frames": "4",
            "num_inference_steps": "2", "seed": "1", **{k: str(v) for k, v in fields.items()}}
    with open(image_path, "rb") as f:
        return served.client.post("/v1/jobs", data=data, files={"image": ("input.png", f.read())},
                                  headers=headers or {})
