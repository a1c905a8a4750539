"""The job API round trips on SQLite with an in-process worker and the tiny model: submit, run,
download, settings, idempotent retries, cancel (queued and running), events, and the 4xx cases."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
from PIL import Image

from i2v.io.video import read_video

from .conftest import submit


def test_submit_run_download(served, sample_image_path, tmp_path):
    r = submit(served, sample_image_path)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and job["request"]["fields"]["num_frames"] == 4
    assert served.client.get(f"/v1/jobs/{job['id']}/video").status_code == 409  # not yet
    done = served.worker.run_once()
    assert done.state == "succeeded" and done.attempts == 1
    got = served.client.get(f"/v1/jobs/{job['id']}").json()
    assert got["state"] == "succeeded" and got["progress"] == {"step": 2, "total": 2, "eta_seconds": None}
    video = served.client.get(got["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(video.content)
    frames, _ = read_video(tmp_path / "v.mp4")
    assert frames.shape[0] == 4 and np.isfinite(frames).all()
    settings = served.client.get(f"/v1/jobs/{job['id']}/settings").json()
    assert settings["seed"] == 1 and settings["num_inference_steps"] == 2 and settings["job_id"] == job["id"]
    page = served.client.get("/v1/jobs", params={"state": "succeeded"}).json()
    assert page["total"] == 1 and page["jobs"][0]["id"] == job["id"]


def test_same_frames_as_the_api_in_process(served, sample_image_path, tmp_path):
    from i2v import ImageToVideoGenerator

    job = submit(served, sample_image_path, seed=7, output_format="webp").json()  # lossless: the frames themselves
    served.worker.run_once()
    (tmp_path / "served.webp").write_bytes(served.client.get(f"/v1/jobs/{job['id']}/video").content)
    local = ImageToVideoGenerator(served.model, device="cpu").generate(
        str(sample_image_path), "the red square moves left", num_frames=4, num_inference_steps=2, seed=7)
    assert np.array_equal(read_video(tmp_path / "served.webp")[0], local)


def test_idempotent_retry_returns_the_same_job(served, sample_image_path):
    first = submit(served, sample_image_path, headers={"Idempotency-Key": "abc"})
    again = submit(served, sample_image_path, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert served.client.get("/v1/jobs").json()["total"] == 1
    assert len(list((served.config.data_dir / "inputs").iterdir())) == 1


def test_cancel_a_queued_job_it_never_runs(served, sample_image_path):
    job = submit(served, sample_image_path).json()
    r = served.client.delete(f"/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert served.worker.run_once() is None
    assert served.client.delete(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"


def test_cancel_a_running_job_stops_within_a_step(served, sample_image_path):
    job = submit(served, sample_image_path, num_inference_steps=400).json()
    thread = threading.Thread(target=served.worker.run_once)
    thread.start()
    deadline = time.monotonic() + 60
    while served.store.get(job["id"]).progress_step < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.client.delete(f"/v1/jobs/{job['id']}").status_code == 200
    thread.join(timeout=60)
    final = served.store.get(job["id"])
    assert final.state == "cancelled" and final.progress_step < 400
    assert not list((served.config.data_dir / "outputs").iterdir())


def test_events_stream_progress_and_states_until_the_end(served, sample_image_path):
    job = submit(served, sample_image_path, num_inference_steps=20).json()
    thread = threading.Thread(target=served.worker.run_once)
    thread.start()
    events = []
    with served.client.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    thread.join(timeout=60)
    states = [e["state"] for k, e in events if k == "state"]
    assert states[-1] == "succeeded" and "running" in states or states == ["queued", "succeeded"]
    steps = [e["step"] for k, e in events if k == "progress"]
    assert steps == sorted(steps)


def test_four_hundreds_name_the_problem(served, sample_image_path):
    assert served.client.get("/v1/jobs/nope").status_code == 404
    r = submit(served, sample_image_path, num_frames=0)
    assert r.status_code == 422 and "num_frames" in r.json()["detail"]
    r = submit(served, sample_image_path, num_frames="many")
    assert r.status_code == 422 and "num_frames" in json.dumps(r.json())
    r = submit(served, sample_image_path, model="../../etc")
    assert r.status_code == 422 and "not served here" in r.json()["detail"]
    r = submit(served, sample_image_path, output_format="avi")
    assert r.status_code == 422 and "output_format" in r.json()["detail"]
    r = served.client.post("/v1/jobs", data={"model": served.model}, files={"image": ("x.png", b"not an image")})
    assert r.status_code == 422 and r.json()["detail"].startswith("image:")
    assert served.client.get("/v1/jobs", params={"state": "odd"}).status_code == 422
    job = submit(served, sample_image_path).json()
    served.worker.run_once()
    assert served.client.delete(f"/v1/jobs/{job['id']}").status_code == 409
    assert not [p for p in (served.config.data_dir / "inputs").iterdir() if job["id"] not in p.name]


def test_upload_and_pixel_caps_before_decoding(served, sample_image_path, monkeypatch):
    served.config.max_upload_bytes = 2000
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big, "PNG")
    r = served.client.post("/v1/jobs", data={"model": served.model}, files={"image": ("big.png", big.getvalue())})
    assert r.status_code == 413
    served.config.max_upload_bytes = 20 * 1024 * 1024
    bomb = io.BytesIO()
    Image.new("L", (8000, 6000)).save(bomb, "PNG")  # 48 Mpx, a few KB
    r = served.client.post("/v1/jobs", data={"model": served.model}, files={"image": ("bomb.png", bomb.getvalue())})
    assert r.status_code == 422 and "pixels" in r.json()["detail"]


def test_full_queue_is_429_with_retry_after(served, sample_image_path):
    served.config.max_queue = 1
    assert submit(served, sample_image_path).status_code == 202
    r = submit(served, sample_image_path)
    assert r.status_code == 429 and r.headers["retry-after"] == "30"


def test_models_health_and_metrics(served, sample_image_path):
    models = served.client.get("/v1/models").json()
    assert [m["family"] for m in models] == ["tiny"] and models[0]["defaults"]["num_frames"] == 4
    assert served.client.get("/healthz").json()["status"] == "ok"
    submit(served, sample_image_path)
    served.worker.run_once()
    text = served.client.get("/metrics").text
    assert 'i2v_jobs{state="succeeded"} 1' in text and "i2v_queue_depth 0" in text
    assert "i2v_generation_seconds_count 1" in text


def test_token_required_everywhere_but_health(tmp_path, tiny_model_dir, sample_image_path):
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig

    app = create_app(ServerConfig(data_dir=tmp_path, models=(str(tiny_model_dir),), token="s3cret"))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/v1/jobs", "/v1/models", "/metrics"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    app.state.store.dispose()


def test_profile_is_checked_recorded_and_used(served, sample_image_path):
    r = submit(served, sample_image_path, profile="fast")
    assert r.status_code == 422 and "profile" in r.json()["detail"]
    job = submit(served, sample_image_path, profile="memory").json()
    assert job["request"]["profile"] == "memory"
    assert served.worker.run_once().state == "succeeded"
    assert ("" + served.model, "memory") in served.worker.models._loaded


def test_a_chunked_body_past_the_cap_is_cut_off_and_the_token_checked_before_the_body(tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig

    app = create_app(ServerConfig(data_dir=tmp_path, models=(str(tiny_model_dir),), token="t", max_upload_bytes=1000,
                                  max_video_upload_bytes=1000))
    def body():  # no Content-Length: a chunked upload
        for _ in range(100):
            yield b"x" * 10000

    headers = {"content-type": "multipart/form-data; boundary=zzz"}
    with TestClient(app) as client:
        # (the test transport reads the whole body up front; uvicorn streams it, and the guard stops reading it)
        assert client.post("/v1/jobs", content=body(), headers=headers).status_code == 401
        r = client.post("/v1/jobs", content=body(), headers={**headers, "Authorization": "Bearer t"})
        assert r.status_code == 413 and "over the limit" in r.json()["detail"]
        assert client.post("/v1/jobs", headers={"Authorization": "Bearer t", "Idempotency-Key": "k" * 300},
                           files={"image": ("a.png", b"x")}).status_code == 422
    app.state.store.dispose()


def test_a_missing_video_file_is_404_not_500(served, sample_image_path):
    job = submit(served, sample_image_path).json()
    done = served.worker.run_once()
    (served.config.data_dir / "outputs" / done.output_path).unlink()
    r = served.client.get(f"/v1/jobs/{job['id']}/video")
    assert r.status_code == 404 and "missing" in r.json()["detail"]


def test_a_request_without_a_model_gets_the_default_where_served_else_the_first_listed(tmp_path):
    from i2v.registry import DEFAULT_MODEL
    from i2v.server.schemas import ServerConfig
    from i2v.server.submission import default_model

    assert default_model(ServerConfig(data_dir=tmp_path)) == DEFAULT_MODEL
    assert default_model(ServerConfig(data_dir=tmp_path, models=("i2v-tiny", DEFAULT_MODEL))) == DEFAULT_MODEL
    assert default_model(ServerConfig(data_dir=tmp_path, models=("/models/mine", "i2v-tiny"))) == "/models/mine"
