"""Long videos through the server: `duration` and `window` are accepted, checked at submit time, and a
chained job is streamed into its output window by window (the user's file names recorded); a job that
stops mid-way leaves no output."""

from __future__ import annotations

import json

import numpy as np

from i2v.io.video import read_video, sidecar_path

from .conftest import submit


def test_a_long_video_in_windows_is_streamed_into_its_output(served, sample_image_path, monkeypatch):
    generator = served.worker.models.get(served.model)

    def no_whole_run(*args, **kwargs):  # a chained job never holds the whole video
        raise AssertionError("a chained job went through run()")

    monkeypatch.setattr(generator, "run", no_whole_run)
    job = submit(served, sample_image_path, prompt="0s: the red square moves left; 1s: it moves up", num_frames=None,
                 duration=2, fps=6, window=4).json()
    done = served.worker.run_once()
    assert (done.id, done.state) == (job["id"], "succeeded"), done.error
    path = served.config.data_dir / "outputs" / done.output_path
    frames, _ = read_video(path)
    assert frames.shape[0] == 12 and frames.dtype == np.uint8
    record = json.loads(sidecar_path(path).read_text())
    assert record["image"] == "input.png" and record["job_id"] == job["id"] and record["chain"]["window"] == 4
    assert len(record["chain"]["window_frames"]) > 1 and str(served.config.data_dir) not in json.dumps(record)
    api = served.client.get(f"/v1/jobs/{job['id']}").json()
    assert api["state"] == "succeeded" and api["settings"]["chain"] == record["chain"]


def test_a_long_video_that_stops_mid_way_leaves_no_output(served, sample_image_path):
    job = submit(served, sample_image_path, num_frames=12, window=4).json()
    served.worker.config.job_timeout_seconds = 0.0  # the first step is past the limit
    done = served.worker.run_once()
    assert (done.id, done.state) == (job["id"], "failed") and "limit" in done.error
    assert list((served.config.data_dir / "outputs").iterdir()) == []


def test_a_window_the_model_cannot_take_is_a_422_and_nothing_is_queued(served, sample_image_path):
    response = submit(served, sample_image_path, num_frames=4, window=8)
    assert response.status_code == 422 and "window" in response.json()["detail"]
    assert served.store.list()[0] == []


def test_i2v_submit_takes_a_duration_and_a_window():
    from i2v.cli import build_parser
    from i2v.server.cli import GENERATION_FLAGS

    args = build_parser().parse_args(["submit", "in.png", "--duration", "20", "--window", "16", "-o", "o.mp4"])
    fields = {name: getattr(args, name) for name in GENERATION_FLAGS}
    assert (fields["duration"], fields["window"], fields["num_frames"]) == (20.0, 16, None)
