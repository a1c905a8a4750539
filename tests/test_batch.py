"""``i2v batch``: a manifest's rows become videos; bad rows are reported and the rest go on; a rerun
skips what is done (resume); several devices run one process each; the Ray engine on a local Ray."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from i2v.batch import read_manifest, run_batch
from i2v.cli import main
from i2v.io.video import read_metadata, read_video


@pytest.fixture
def manifest(tmp_path, sample_image_path):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    rows = [
        "image,prompt,num_frames,num_inference_steps,seed,output",
        "a.png,the red square moves left,4,2,5,left",
        "a.png,the red square moves right,3,2,,",
        "missing.png,x,4,2,1,",
        "a.png,x,four,2,1,",
        "a.png,x,4,2,1,too,many",
    ]
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def results_csv(folder):
    with open(folder / "results.csv", newline="") as f:
        return {int(r["row"]): r for r in csv.DictReader(f)}


def test_rows_run_bad_rows_reported_rerun_skips(manifest, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    code = main(["batch", str(manifest), "--out", str(out), "-m", str(tiny_model_dir), "-q"])
    assert code == 2  # some rows failed; the others ran
    rows = results_csv(out)
    assert [rows[i]["status"] for i in range(1, 6)] == ["done", "done", "failed", "invalid", "invalid"]
    assert "missing.png" in rows[3]["error"] and "num_frames" in rows[4]["error"] and "fields" in rows[5]["error"]
    first = out / "left.mp4"
    assert read_video(first)[0].shape[0] == 4 and read_metadata(first)["seed"] == 5
    second = out / "00002-a.mp4"
    assert read_metadata(second)["seed"] == 2  # no seed given: --seed 0 + row 2, so a rerun is the same video
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    assert main(["batch", str(manifest), "--out", str(out), "-m", str(tiny_model_dir), "-q"]) == 2
    assert [results_csv(out)[i]["status"] for i in (1, 2)] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.mp4")} == before
    assert "row 3: failed" in capsys.readouterr().err


def test_a_changed_row_runs_again(manifest, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    run_batch(manifest, out, model=str(tiny_model_dir), show_progress=False)
    text = manifest.read_text().replace("moves left,4,2,5", "moves left,4,2,6")
    manifest.write_text(text)
    results = {r.row.number: r.status for r in run_batch(manifest, out, model=str(tiny_model_dir),
                                                         show_progress=False)}
    assert results[1] == "done" and results[2] == "skipped"
    assert read_metadata(out / "left.mp4")["seed"] == 6


def test_jsonl_manifest_and_output_names_stay_in_the_folder(tmp_path, sample_image_path):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"image": "a.png", "prompt": "x", "output": "../escape"},
        {"image": "a.png", "guidance_scale": "nan"},
        {"image": "a.png", "colour": "red"},
        [1, 2],
        {"image": "a.png", "output": "same"},
        {"image": "a.png", "output": "same.mp4"},
    ]) + "\n")
    rows = read_manifest(path, tmp_path / "out")
    errors = [r.error for r in rows]
    assert "must be a file name" in errors[0] and "finite" in errors[1] and "unknown column" in errors[2]
    assert errors[3] == "not a JSON object" and errors[4] is None and "another row's output" in errors[5]


def test_two_local_processes_make_the_same_videos_as_one(manifest, tmp_path, tiny_model_dir):
    lines = manifest.read_text().splitlines()[:3]
    manifest.write_text("\n".join(lines) + "\n")
    one, two = tmp_path / "one", tmp_path / "two"
    run_batch(manifest, one, model=str(tiny_model_dir), show_progress=False)
    results = run_batch(manifest, two, model=str(tiny_model_dir), devices=["cpu", "cpu"], show_progress=False)
    assert sorted(r.status for r in results) == ["done", "done"]
    for name in ("left.mp4", "00002-a.mp4"):  # the same request; a process's thread count can move a rounding
        a, b = (read_video(folder / name)[0].astype(int) for folder in (one, two))
        assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # rounding spread, not bit-equality
        assert read_metadata(one / name)["seed"] == read_metadata(two / name)["seed"]


def test_ray_engine_on_a_local_ray(manifest, tmp_path, tiny_model_dir):
    pytest.importorskip("ray")
    lines = manifest.read_text().splitlines()[:3]
    manifest.write_text("\n".join(lines) + "\n")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    run_batch(manifest, local, model=str(tiny_model_dir), show_progress=False)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_batch(manifest, on_ray, model=str(tiny_model_dir), engine="ray", ray_actors=2,
                            show_progress=False)
    finally:
        ray.shutdown()
    assert sorted(r.status for r in results) == ["done", "done"]
    for name in ("left.mp4", "00002-a.mp4"):
        a, b = (read_video(folder / name)[0].astype(int) for folder in (local, on_ray))
        assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # rounding spread, not bit-equality


def test_an_interrupted_batch_resumes_where_it_stopped(tmp_path, sample_image_path, tiny_model_dir):
    import signal
    import subprocess
    import sys
    import time

    shutil.copy(sample_image_path, tmp_path / "a.png")
    lines = ["image,prompt,num_frames,num_inference_steps,seed"] + [f"a.png,x,4,40,{i}" for i in range(6)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "i2v.cli", "batch", str(tmp_path / "m.csv"), "--out", str(out),
                             "-m", str(tiny_model_dir), "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    def videos():  # finished ones, not the hidden partials being written
        return sorted(p.name for p in out.glob("*.mp4") if not p.name.startswith(".")) if out.is_dir() else []

    while not videos() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err
    finished = videos()
    assert 1 <= len(finished) < 6 and not [p for p in out.iterdir() if p.name.startswith(".")]
    results = run_batch(tmp_path / "m.csv", out, model=str(tiny_model_dir), show_progress=False)
    statuses = {r.row.output.name: r.status for r in results}
    assert all(statuses[name] == "skipped" for name in finished)
    assert sorted(statuses.values()).count("done") == 6 - len(finished)


def test_another_model_runs_the_rows_again(manifest, tmp_path, tiny_model_dir):
    lines = manifest.read_text().splitlines()[:2]
    manifest.write_text("\n".join(lines) + "\n")
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "out"
    assert [r.status for r in run_batch(manifest, out, model=str(tiny_model_dir), show_progress=False)] == ["done"]
    assert [r.status for r in run_batch(manifest, out, model=str(tiny_model_dir), show_progress=False)] == ["skipped"]
    assert [r.status for r in run_batch(manifest, out, model=str(other), show_progress=False)] == ["done"]
    assert read_metadata(out / "left.mp4")["batch_request"]["model"] == str(other)


def test_an_unexpected_failure_of_one_row_is_recorded_and_the_rest_go_on(manifest, tmp_path, tiny_model_dir,
                                                                       monkeypatch):
    from i2v import batch

    lines = manifest.read_text().splitlines()[:3]
    manifest.write_text("\n".join(lines) + "\n")
    real = batch.RowRunner.run

    def out_of_memory_on_row_one(self, row):
        if row.number == 1:
            raise RuntimeError("CUDA out of memory (injected)")
        return real(self, row)

    monkeypatch.setattr(batch.RowRunner, "run", out_of_memory_on_row_one)
    results = {r.row.number: r for r in run_batch(manifest, tmp_path / "out", model=str(tiny_model_dir),
                                                  show_progress=False)}
    assert results[1].status == "failed" and "out of memory" in results[1].error and results[2].status == "done"
    assert "RuntimeError" in results_csv(tmp_path / "out")[1]["error"]


def test_a_row_with_an_init_video_runs_and_no_output_replaces_it(tmp_path, sample_image_path, tiny_model_dir):
    from i2v.io.video import write_video

    shutil.copy(sample_image_path, tmp_path / "a.png")
    (tmp_path / "clips").mkdir()
    clip = tmp_path / "clips" / "clip.mp4"
    video = np.full((9, 64, 80, 3), 120, np.uint8)
    for t in range(9):
        video[t, 20:44, 4 + 4 * t:28 + 4 * t] = (220, 30, 30)
    write_video(video, clip, fps=8)
    before = clip.read_bytes()
    rows = [
        "image,init_video,strength,num_inference_steps,seed,output",
        "a.png,clips/clip.mp4,0.5,4,1,v2v",  # a path relative to the manifest, as the image's is
        "a.png,,,4,1,plain",
        "a.png,clips/clip.mp4,1.5,4,1,too-strong",
        "a.png,,0.5,4,1,no-video",
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    results = {r.row.number: r for r in run_batch(manifest, out, model=str(tiny_model_dir), show_progress=False)}
    assert [results[i].status for i in range(1, 5)] == ["done", "done", "failed", "failed"]
    assert "strength must be in (0, 1]" in results[3].error and "give one (init_video)" in results[4].error
    meta = read_metadata(out / "v2v.mp4")
    assert meta["init_video"] == str(clip) and meta["strength"] == 0.5 and meta["denoising_steps"] == 2
    assert meta["batch_request"]["init_video"] == str(clip) and meta["batch_request"]["strength"] == 0.5
    assert "init_video" not in read_metadata(out / "plain.mp4")["batch_request"]  # image-only rows as before
    v2v, plain = read_video(out / "v2v.mp4")[0], read_video(out / "plain.mp4")[0]
    assert v2v.shape == plain.shape == (4, 64, 64, 3) and not np.array_equal(v2v, plain)  # the video was used
    again = {r.row.number: r.status for r in run_batch(manifest, out, model=str(tiny_model_dir),
                                                       show_progress=False)}
    assert again[1] == again[2] == "skipped"

    manifest.write_text("image,init_video,strength,num_inference_steps,output\na.png,clips/clip.mp4,0.5,4,clip\n")
    [refused] = run_batch(manifest, tmp_path / "clips", model=str(tiny_model_dir), show_progress=False)
    assert refused.status == "invalid" and "would overwrite the input" in refused.error
    assert clip.read_bytes() == before


def test_camera_path_and_trajectory_columns_in_csv_and_jsonl(tmp_path, sample_image_path):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    csv_path = tmp_path / "m.csv"
    with open(csv_path, "w", newline="") as f:  # the texts hold commas and semicolons: csv quotes them
        writer = csv.writer(f)
        writer.writerow(["image", "camera_path", "trajectory", "output"])
        writer.writerow(["a.png", "0.25s: pan right 0.1; 0.375s: zoom in 1.2", "red square: 0.45,0.45 -> 0.6,0.45",
                         "c"])
        writer.writerow(["a.png", "", " ", "plain"])
        writer.writerow(["a.png", "pan right 0.1", "", "no-time"])
        writer.writerow(["a.png", "", "ball: 0.1 -> 0.2,0.2", "bad-point"])
    rows = read_manifest(csv_path, tmp_path / "out")
    assert [r.error is None for r in rows] == [True, True, False, False]
    assert rows[0].fields["camera_path"] == "0.25s: pan right 0.1; 0.375s: zoom in 1.2"
    assert rows[0].request()["trajectory"] == "red square: 0.45,0.45 -> 0.6,0.45"
    assert not {"camera_path", "trajectory"} & set(rows[1].request())  # blank: not given (earlier outputs match)
    assert "does not start with a time" in rows[2].error and "cannot read the point" in rows[3].error

    jsonl = tmp_path / "m.jsonl"
    keyframes = [{"time": 0.25, "pan": 0.1}, {"time": 0.375, "zoom": 1.2}]
    points = {"red square": [[0.45, 0.45], [0.6, 0.45]]}
    jsonl.write_text("\n".join(json.dumps(r) for r in [
        {"image": "a.png", "camera_path": keyframes, "trajectory": points, "output": "lists"},
        {"image": "a.png", "camera_path": "0.25s: pan right 0.1", "trajectory": "red square: 0.45,0.45 -> 0.6,0.45",
         "output": "texts"},
        {"image": "a.png", "camera_path": {"time": 1}, "output": "object"},
        {"image": "a.png", "trajectory": 3, "output": "number"},
        {"image": "a.png", "camera_path": [{"time": 1, "spin": 2}], "output": "bad-key"},
    ]) + "\n")
    rows = read_manifest(jsonl, tmp_path / "out")
    assert rows[0].error is None and rows[0].fields["camera_path"] == keyframes
    assert rows[0].fields["trajectory"] == points
    assert rows[1].error is None and rows[1].fields["camera_path"] == "0.25s: pan right 0.1"
    assert "a list of keyframes" in rows[2].error and "text, a list or an object" in rows[3].error
    assert "each keyframe is a time" in rows[4].error


def test_a_row_with_a_camera_path_runs_records_it_and_resumes(tmp_path, sample_image_path, warp_model_dir,
                                                               tiny_model_dir):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    path = tmp_path / "m.jsonl"
    keyframes = [{"time": 0.25, "pan": 0.1}, {"time": 0.375, "zoom": 1.2}]
    path.write_text("\n".join(json.dumps(r) for r in [
        {"image": "a.png", "camera_path": keyframes, "num_inference_steps": 1, "output": "cam"},
        {"image": "a.png", "camera_path": "3s: pan right 0.2", "num_inference_steps": 1, "output": "late"},
        {"image": "a.png", "camera_path": keyframes, "model": str(tiny_model_dir), "output": "velocity"},
    ]) + "\n")
    out = tmp_path / "out"
    results = {r.row.number: r for r in run_batch(path, out, model=str(warp_model_dir), show_progress=False)}
    assert [results[i].status for i in (1, 2, 3)] == ["done", "failed", "failed"]
    assert "after the video ends" in results[2].error and "cannot follow a camera path" in results[3].error
    meta = read_metadata(out / "cam.mp4")
    assert meta["camera_path"] == "0.25s: pan 0.1; 0.375s: zoom 1.2"  # resolved, as the run recorded it
    assert meta["batch_request"]["camera_path"] == keyframes  # as the row gave it: a rerun compares this
    again = {r.row.number: r.status for r in run_batch(path, out, model=str(warp_model_dir), show_progress=False)}
    assert again[1] == "skipped"


def test_jsonl_numbers_are_integers_where_a_field_takes_one(tmp_path, sample_image_path):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"image": "a.png", "num_frames": 4, "seed": 3.0, "output": "ints"},
        {"image": "a.png", "num_frames": 4.5, "output": "half"},
    ]) + "\n")
    ints, half = read_manifest(path, tmp_path / "out")
    assert ints.error is None and (ints.fields["num_frames"], ints.fields["seed"]) == (4, 3)
    assert type(ints.fields["seed"]) is int and "num_frames: expected an integer" in half.error


def test_a_row_makes_a_long_video_in_windows(tmp_path, sample_image_path, tiny_model_dir):
    shutil.copy(sample_image_path, tmp_path / "a.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,prompt,duration,fps,window,num_inference_steps,output\n"
                        "a.png,0s: the red square moves left; 1s: it moves up,2,6,4,2,long\n"
                        "a.png,a square,1,4,8,2,too-wide\n")
    results = {r.row.number: r for r in run_batch(manifest, tmp_path / "out", model=str(tiny_model_dir),
                                                  show_progress=False)}
    assert results[1].status == "done" and results[2].status == "failed" and "window" in results[2].error
    frames, fps = read_video(tmp_path / "out" / "long.mp4")
    meta = read_metadata(tmp_path / "out" / "long.mp4")
    assert frames.shape[0] == 12 and fps == 6 and meta["chain"]["window"] == 4
    assert meta["batch_request"]["window"] == 4 and meta["batch_request"]["duration"] == 2
