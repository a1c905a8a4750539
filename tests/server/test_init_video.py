"""Video-to-video through the server: an ``init_video`` upload and a ``strength`` field on POST /v1/jobs
(the same frames as the API in process, the upload kept under its extension and removed with the
job), the refusals at submit time (4xx, nothing queued, nothing left in inputs/), and ``i2v submit
--init-video`` and ``Client.submit(init_video=...)`` against a real ``i2v serve``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from i2v.io.video import read_metadata, read_video, write_video

from .conftest import submit

PROMPT = "the red square moves left"


def make_video(path, frames: int = 9, size: tuple[int, int] = (64, 80)):
    """A red square sliding right over grey: ``frames`` frames of (height, width) ``size``."""
    video = np.full((frames, *size, 3), 120, np.uint8)
    for t in range(frames):
        video[t, 20:44, 4 + 4 * t:28 + 4 * t] = (220, 30, 30)
    write_video(video, path, fps=8)
    return path


@pytest.fixture
def init_mp4(tmp_path):
    return make_video(tmp_path / "init.mp4")


def submit_video(served, image_path, video_path, name=None, **fields):
    data = {"model": served.model, "prompt": PROMPT, "num_inference_steps": "4", "seed": "7",
            **{k: str(v) for k, v in fields.items()}}
    with open(image_path, "rb") as f, open(video_path, "rb") as v:
        files = {"image": ("input.png", f.read()), "init_video": (name or video_path.name, v.read())}
    return served.client.post("/v1/jobs", data=data, files=files)


def inputs(served) -> list[str]:
    return sorted(p.name for p in (served.config.data_dir / "inputs").iterdir())


def test_a_video_to_video_job_runs_as_the_api_does_and_its_video_goes_with_it(served, sample_image_path, init_mp4,
                                                                                tmp_path):
    from i2v import ImageToVideoGenerator

    r = submit_video(served, sample_image_path, init_mp4, strength=0.5, output_format="webp")  # lossless: exact frames
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["request"]["init_video_name"] == "init.mp4" and job["request"]["fields"]["strength"] == 0.5
    assert f"{job['id']}-init.mp4" in inputs(served)  # kept under its extension: the reader picks the format by it
    done = served.worker.run_once()
    assert done.state == "succeeded", done.error
    settings = served.client.get(f"/v1/jobs/{job['id']}/settings").json()
    assert settings["strength"] == 0.5 and settings["denoising_steps"] == 2
    assert settings["init_video"] == "init.mp4"  # the name the user gave it, not the server's path
    (tmp_path / "served.webp").write_bytes(served.client.get(f"/v1/jobs/{job['id']}/video").content)
    served_frames = read_video(tmp_path / "served.webp")[0]

    generator = ImageToVideoGenerator(served.model, device="cpu")
    request = dict(num_frames=4, num_inference_steps=4, seed=7)
    local = generator.generate(str(sample_image_path), PROMPT, init_video=str(init_mp4), strength=0.5, **request)
    assert np.array_equal(served_frames, local)
    plain = generator.generate(str(sample_image_path), PROMPT, **request)
    assert not np.array_equal(served_frames, plain)  # the video was used

    assert served.store.delete(job["id"], served.config.data_dir)
    assert inputs(served) == []  # the image and the init video went with the job


def test_a_gif_init_video_is_accepted_and_a_gif_that_decodes_too_large_is_not(served, sample_image_path, tmp_path,
                                                                              monkeypatch):
    from i2v.io import video_input

    gif = make_video(tmp_path / "init.gif")
    r = submit_video(served, sample_image_path, gif, strength=0.75)
    assert r.status_code == 202, r.text
    assert served.worker.run_once().state == "succeeded"
    monkeypatch.setattr(video_input, "MAX_DECODED_ANIMATION_BYTES", 10_000)  # checked from the header, undecoded
    r = submit_video(served, sample_image_path, gif, strength=0.75)
    assert r.status_code == 413 and "decode to" in r.json()["detail"] and r.json()["detail"].startswith("init_video")
    assert served.client.get("/v1/jobs").json()["total"] == 1
    assert len(inputs(served)) == 2  # the first job's image and video only


@pytest.mark.parametrize("case, status, message", [
    ("strength without a video", 422, "give one (init_video)"),
    ("strength 0", 422, "strength must be in (0, 1]"),
    ("strength 1.5", 422, "strength must be in (0, 1]"),
    ("strength not a number", 422, "strength"),
    ("strength too low for the steps", 422, "runs no denoising step"),
    ("more frames than the video", 422, "more than the init video's 9 frames"),
    ("not a video", 422, "init_video: cannot read the init video"),
    ("an extension it cannot read", 415, "'init.avi' is not a video i2v reads"),
    ("no extension", 415, "is not a video i2v reads"),
    ("empty", 422, "init_video: empty upload"),
    ("over the video upload limit", 413, "init_video: larger than the limit"),
    ("a model that takes no init video", 422, "cannot start from a video"),
])
def test_bad_video_to_video_submissions_are_refused_before_queueing(served, sample_image_path, init_mp4, tmp_path,
                                                                    case, status, message):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing a decoder can use" * 10)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    if case == "strength without a video":
        r = submit(served, sample_image_path, strength=0.5)
    elif case == "strength not a number":
        r = submit_video(served, sample_image_path, init_mp4, strength="lots")
    elif case == "strength too low for the steps":
        r = submit_video(served, sample_image_path, init_mp4, strength=0.2)  # int(4 x 0.2) = 0
    elif case.startswith("strength"):
        r = submit_video(served, sample_image_path, init_mp4, strength=case.split()[1])
    elif case == "more frames than the video":
        r = submit_video(served, sample_image_path, init_mp4, num_frames=12)
    elif case == "not a video":
        r = submit_video(served, sample_image_path, junk, name="init.mp4")
    elif case == "an extension it cannot read":
        r = submit_video(served, sample_image_path, init_mp4, name="init.avi")
    elif case == "no extension":
        r = submit_video(served, sample_image_path, init_mp4, name="init")
    elif case == "empty":
        r = submit_video(served, sample_image_path, empty)
    elif case == "over the video upload limit":
        served.config.max_video_upload_bytes = init_mp4.stat().st_size - 1
        r = submit_video(served, sample_image_path, init_mp4)
    else:
        served.config.models = (served.model, "svd-xt")
        r = submit_video(served, sample_image_path, init_mp4, model="svd-xt")
    assert r.status_code == status, r.text
    detail = json.dumps(r.json()["detail"])
    assert message in detail, detail
    assert str(served.config.data_dir) not in detail  # field names, never the server's paths
    assert served.client.get("/v1/jobs").json()["total"] == 0
    assert inputs(served) == []


def test_the_body_cap_makes_room_for_a_video(tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig

    from i2v.server.app import MULTIPART_OVERHEAD

    config = ServerConfig(data_dir=tmp_path, models=(str(tiny_model_dir),), max_upload_bytes=1000,
                          max_video_upload_bytes=100_000)
    app = create_app(config)
    cap = 2 * 1000 + 100_000 + MULTIPART_OVERHEAD  # an image, a last image and an init video
    headers = {"content-type": "multipart/form-data; boundary=zzz"}
    with TestClient(app) as client:
        too_big = client.post("/v1/jobs", content=b"x" * (cap + 1), headers=headers)
        assert too_big.status_code == 413 and f"the limit is {cap}" in too_big.json()["detail"]
        fits = client.post("/v1/jobs", content=b"x" * cap, headers=headers)
        assert fits.status_code != 413  # past the guard: refused by the form parser instead
    app.state.store.dispose()


def test_i2v_submit_never_downloads_over_its_init_video(init_mp4, sample_image_path, capsys):
    from i2v.cli import main

    before = init_mp4.read_bytes()
    code = main(["submit", str(sample_image_path), "--server", "http://127.0.0.1:9", "--init-video", str(init_mp4),
                 "-o", str(init_mp4)])  # refused before the server is asked
    assert code == 2 and "would overwrite the input" in capsys.readouterr().err
    assert init_mp4.read_bytes() == before


# ---- a real `i2v serve`: the client and `i2v submit` --------------------------------------------


def test_i2v_submit_and_the_client_send_an_init_video(tmp_path, tiny_model_dir, sample_image_path):
    from i2v.client import Client, ServerError

    from .test_processes import free_port, start, wait_healthy

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start("serve", "--port", str(port), "--models", str(tiny_model_dir), "--data-dir", str(tmp_path / "d"),
                   "--workers", "1", "--lease", "5")
    try:
        wait_healthy(url, server)
        video = make_video(tmp_path / "init.webm")
        out = tmp_path / "out.mp4"
        base = [sys.executable, "-m", "i2v.cli", "submit", str(sample_image_path), "--server", url,
                "-m", str(tiny_model_dir), "-p", PROMPT, "--num-inference-steps", "4", "--seed", "3"]
        done = subprocess.run([*base, "--init-video", str(video), "--strength", "0.5", "-o", str(out)],
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        meta = read_metadata(out)
        assert meta["init_video"] == "init.webm" and meta["strength"] == 0.5 and meta["denoising_steps"] == 2
        assert read_video(out)[0].shape[0] == 4  # num_frames from the video (9), at most the model's 4
        refused = subprocess.run([*base, "--strength", "0.5", "-o", str(tmp_path / "no.mp4")],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "give one (init_video)" in refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / "no.mp4").exists()

        with Client(url) as client:
            job = client.submit(sample_image_path, PROMPT, model=str(tiny_model_dir), init_video=video, strength=0.75,
                                num_inference_steps=4, seed=3)
            assert job["request"]["init_video_name"] == "init.webm"
            job = client.wait(job["id"], timeout=120)
            assert job["state"] == "succeeded" and job["settings"]["strength"] == 0.75
            with pytest.raises(ServerError, match="415") as refused:
                client.submit(sample_image_path, PROMPT, model=str(tiny_model_dir), init_video=sample_image_path)
            assert "not a video i2v reads" in str(refused.value)
    finally:
        server.kill()
        server.wait()
