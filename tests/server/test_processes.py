"""The real thing: ``i2v serve`` on a loopback port (uvicorn) and ``i2v worker`` processes.
``i2v submit`` round trip; then SIGKILL of the server and the worker with jobs queued and one
running, and a restart: every job finishes, none twice, each with exactly one video."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from i2v.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "i2v.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.fixture
def stop_later():
    procs = []
    yield procs.append
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_serve_and_submit_round_trip(tmp_path, tiny_model_dir, sample_image_path, stop_later):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start("serve", "--port", str(port), "--models", str(tiny_model_dir), "--data-dir", str(tmp_path / "d"),
                   "--workers", "1", "--lease", "5")
    stop_later(server)
    wait_healthy(url, server)
    out = tmp_path / "out.webm"
    done = subprocess.run([sys.executable, "-m", "i2v.cli", "submit", str(sample_image_path), "--server", url,
                           "-m", str(tiny_model_dir), "-p", "the red square moves left", "--num-frames", "4",
                           "--num-inference-steps", "2", "--seed", "3", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from i2v.io.video import read_metadata, read_video

    assert read_video(out)[0].shape[0] == 4 and read_metadata(out)["seed"] == 3
    server.send_signal(signal.SIGTERM)  # stops its worker too
    assert server.wait(timeout=60) == 0


def test_sigkill_of_server_and_worker_loses_nothing(tmp_path, tiny_model_dir, sample_image_path, stop_later, db_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "d"
    serve_args = ("serve", "--port", str(port), "--models", str(tiny_model_dir), "--data-dir", str(data),
                  "--db", db_url, "--workers", "0")
    server = start(*serve_args)
    stop_later(server)
    wait_healthy(url, server)
    worker = start("worker", "--data-dir", str(data), "--db", db_url, "--lease", "2", "--poll", "0.1")
    stop_later(worker)
    client = Client(url)
    ids = [client.submit(sample_image_path, "the blue circle moves up", model=str(tiny_model_dir), num_frames=4,
                         num_inference_steps=300 if i == 0 else 2, seed=i)["id"] for i in range(3)]
    deadline = time.monotonic() + 90
    while client.get(ids[0])["progress"]["step"] < 1:  # the long job is running
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)
    for proc in (worker, server):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    client.close()

    server = start(*serve_args[:-1], "1", "--lease", "2")  # restarted, now with a local worker
    stop_later(server)
    wait_healthy(url, server)
    with Client(url) as client:
        jobs = [client.wait(i, timeout=180) for i in ids]
    assert [j["state"] for j in jobs] == ["succeeded"] * 3
    assert jobs[0]["attempts"] == 2 and [j["attempts"] for j in jobs[1:]] == [1, 1]
    videos = sorted(p.name for p in (data / "outputs").iterdir() if p.suffix == ".mp4")
    assert videos == sorted(f"{j['id']}-{j['attempts']}.mp4" for j in jobs)
    assert not [p for p in (data / "outputs").iterdir() if p.name.startswith(".")]


def test_a_killed_servers_own_workers_stop(tmp_path, tiny_model_dir, stop_later):
    port = free_port()
    server = start("serve", "--port", str(port), "--models", str(tiny_model_dir), "--data-dir", str(tmp_path / "d"),
                   "--workers", "1")
    stop_later(server)
    wait_healthy(f"http://127.0.0.1:{port}", server)
    deadline = time.monotonic() + 30
    workers = []
    while not workers and time.monotonic() < deadline:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)], capture_output=True, text=True).stdout
        workers = [int(p) for p in out.split()]
        time.sleep(0.2)
    assert workers
    server.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
    server.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{w}") and
                                              "Z" not in open(f"/proc/{w}/stat").read().split()[2] for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if os.path.exists(f"/proc/{w}") and "Z" not in open(f"/proc/{w}/stat").read().split()[2]]
