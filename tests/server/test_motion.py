"""A camera path and trajectories through the job API: checked against the model and the video when the
job is submitted (a refusal is a 422 naming the problem, nothing queued), stored with the job, run by the
worker and recorded in the video's settings; the client sends the list / dict forms as JSON text."""

from __future__ import annotations

import json

import pytest

from i2v.io.video import read_metadata

# the test models make 4 frames at 8 fps: the video ends at 0.375 s
CAMERA = "0.25s: pan right 0.1; 0.375s: zoom in 1.2"
TRAJECTORY = "red square: 0.45,0.45 -> 0.6,0.45"


@pytest.fixture
def served_motion(tmp_path, warp_model_dir, tiny_model_dir):
    """The API over SQLite serving a warping model (takes motion) and a velocity one (does not)."""
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig
    from i2v.server.worker import Worker, WorkerConfig

    config = ServerConfig(data_dir=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'jobs.db'}",
                          models=(str(warp_model_dir), str(tiny_model_dir)), event_poll_seconds=0.05)
    app = create_app(config)
    worker = Worker(app.state.store, WorkerConfig(data_dir=config.data_dir, heartbeat_seconds=0.05), "w-test")
    with TestClient(app) as client:
        yield client, worker, config
    app.state.store.dispose()


def post(client, image_path, model, **fields):
    data = {"model": str(model), "num_inference_steps": "1", "seed": "1", **fields}
    with open(image_path, "rb") as f:
        return client.post("/v1/jobs", data=data, files={"image": ("input.png", f.read())})


def test_a_job_with_a_camera_path_and_trajectories_runs_and_records_them(served_motion, warp_model_dir,
                                                                         sample_image_path, tmp_path):
    client, worker, _ = served_motion
    r = post(client, sample_image_path, warp_model_dir, camera_path=f"  {CAMERA} ", trajectory=TRAJECTORY)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["request"]["fields"]["camera_path"] == CAMERA and job["request"]["fields"]["trajectory"] == TRAJECTORY
    done = worker.run_once()
    assert done.state == "succeeded", done.error
    settings = client.get(f"/v1/jobs/{job['id']}/settings").json()
    assert settings["camera_path"] == "0.25s: pan 0.1; 0.375s: zoom 1.2"
    assert settings["trajectory"] == TRAJECTORY
    (tmp_path / "v.mp4").write_bytes(client.get(f"/v1/jobs/{job['id']}/video").content)
    assert read_metadata(tmp_path / "v.mp4")["camera_path"] == settings["camera_path"]
    blank = post(client, sample_image_path, warp_model_dir, camera_path=" ", trajectory="")  # blank: not given
    assert blank.status_code == 202 and not {"camera_path", "trajectory"} & set(blank.json()["request"]["fields"])


@pytest.mark.parametrize("model, fields, message", [
    ("warp", {"camera_path": "3s: pan right 0.2"}, "after the video ends"),
    ("warp", {"camera_path": "0.2s: spin 2"}, "camera path: cannot read"),
    ("warp", {"camera_path": "[{\"time\": 0.2,"}, "not valid JSON"),
    ("warp", {"trajectory": "ball: 1.5,0.5 -> 0.2,0.2"}, "outside the frame"),
    ("warp", {"camera_path": "0.1s: pan 0.1; " * 2000}, "at most 20000 characters"),
    ("velocity", {"camera_path": CAMERA}, "cannot follow a camera path"),
    ("velocity", {"trajectory": TRAJECTORY}, "cannot move objects along trajectories"),
])
def test_a_bad_path_or_a_model_that_cannot_follow_it_is_a_422_and_nothing_is_queued(
        served_motion, warp_model_dir, tiny_model_dir, sample_image_path, model, fields, message):
    client, _, config = served_motion
    r = post(client, sample_image_path, warp_model_dir if model == "warp" else tiny_model_dir, **fields)
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    assert client.get("/v1/jobs").json()["total"] == 0
    assert not list((config.data_dir / "inputs").iterdir())


def test_the_client_sends_text_lists_and_dicts(served_motion, warp_model_dir, sample_image_path):
    import httpx

    from i2v.client import Client, ServerError

    http, _, _ = served_motion

    def forward(request: httpx.Request) -> httpx.Response:  # the client's requests, into the app in process
        r = http.request(request.method, request.url.path, content=request.read(), headers=request.headers)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    keyframes = [{"time": 0.25, "pan": 0.1}, {"time": 0.375, "zoom": 1.2}]
    with Client("http://testserver", transport=httpx.MockTransport(forward)) as client:
        job = client.submit(sample_image_path, model=str(warp_model_dir), camera_path=keyframes,
                            trajectory={"red square": [[0.45, 0.45], [0.6, 0.45]]}, num_inference_steps=1)
        fields = job["request"]["fields"]
        assert json.loads(fields["camera_path"]) == keyframes and json.loads(fields["trajectory"])["red square"]
        job = client.submit(sample_image_path, model=str(warp_model_dir), camera_path=CAMERA)
        assert job["request"]["fields"]["camera_path"] == CAMERA
        with pytest.raises(ServerError, match="after the video ends") as refused:
            client.submit(sample_image_path, model=str(warp_model_dir), camera_path=[{"time": 9, "pan": 0.1}])
        assert refused.value.status == 422


def test_i2v_submit_reads_at_file_before_asking_the_server(sample_image_path, tmp_path, capsys):
    from i2v.cli import build_parser, main

    args = build_parser().parse_args(["submit", str(sample_image_path), "--camera-path", CAMERA, "--trajectory",
                                      TRAJECTORY, "-o", "o.mp4"])
    assert (args.camera_path, args.trajectory) == (CAMERA, TRAJECTORY)
    code = main(["submit", str(sample_image_path), "--server", "http://127.0.0.1:9", "--camera",
                 f"@{tmp_path / 'missing.json'}", "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_the_client_sends_the_motion_modules_own_objects_as_json():
    import json

    from i2v.motion.camera_path import CameraKeyframe, resolve_camera_path
    from i2v.motion.trajectory import Trajectory, resolve_trajectories
    from i2v.server.client import _motion_json

    keyframes = [CameraKeyframe(1.0, pan=0.2), CameraKeyframe(1.5, zoom=1.3)]
    trajectories = [Trajectory("a", ((None, 0.1, 0.2), (None, 0.5, 0.5))), Trajectory("b", ((0.0, 0.3, 0.3), (1.0, 0.6, 0.3)))]
    assert resolve_camera_path(json.dumps(keyframes, default=_motion_json), 16, 8) == resolve_camera_path(keyframes, 16, 8)
    assert (resolve_trajectories(json.dumps(trajectories, default=_motion_json), 16, 8)
            == resolve_trajectories(trajectories, 16, 8))
