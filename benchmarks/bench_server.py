"""The job server and batch runs against in-process generation, measured side by side in one run.

    .venv/bin/python benchmarks/bench_server.py [--jobs 200] [--clients 8] [--rows 100] [--latency-runs 10]

With the embedded model (default settings unless --num-frames / --steps say otherwise):
1. latency: one client, jobs one after another on a warm `i2v serve --workers 1`; submit to video
   downloaded, against the warm in-process `ImageToVideoGenerator.run` of the same request
   (target: <= 1.2x);
2. concurrency: --clients threads submit --jobs jobs in all; every job is accepted or refused with
   429, every accepted job finishes exactly once (one attempt, one video); throughput against the
   same jobs in-process (target: within 10%);
3. batch: `i2v batch` of --rows rows against the sum of their in-process generation times
   (target: <= 5% overhead).
Run it on an idle machine: the ratios compare wall times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
IMAGE = ROOT / "src" / "i2v" / "assets" / "sample.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "i2v.cli", "serve", "--port", str(port), "--data-dir", str(data),
                             "--workers", "1", "--max-queue", "100000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not come up")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--latency-runs", type=int, default=10)
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args()

    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.client import Client, ServerError

    fields = {k: v for k, v in (("num_frames", args.num_frames), ("num_inference_steps", args.steps)) if v}
    prompt = "the red circle moves to the right"
    work = Path(tempfile.mkdtemp(prefix="i2v-bench-server-"))
    generator = ImageToVideoGenerator()
    request = GenerationRequest(image=str(IMAGE), prompt=prompt, seed=0, **fields)
    generator.run(request)  # warm
    print(f"embedded model, {generator.run(request).frames.shape[0]} frames; in-process warm run as the baseline")

    port = free_port()
    server = start_server(work / "data", port)
    client = Client(f"http://127.0.0.1:{port}")
    try:
        client.wait(client.submit(IMAGE, prompt, seed=0, **fields)["id"], poll=0.02)  # warms the worker
        # ---- 1. latency ----
        served, local = [], []
        for i in range(args.latency_runs):
            t0 = time.perf_counter()
            job = client.wait(client.submit(IMAGE, prompt, seed=i, **fields)["id"], poll=0.02)
            client.download(job["id"], work / "latency.mp4")
            served.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            generator.run(GenerationRequest(image=str(IMAGE), prompt=prompt, seed=i, **fields)).save(work / "l.mp4")
            local.append(time.perf_counter() - t0)
        ratio = statistics.median(served) / statistics.median(local)
        print(f"1. latency, median of {args.latency_runs}: served {statistics.median(served):.3f} s, in-process "
              f"{statistics.median(local):.3f} s: {ratio:.2f}x (target <= 1.2x) {'PASS' if ratio <= 1.2 else 'MISS'}")

        # ---- 2. concurrency ----
        accepted, refused, lock = [], [0], threading.Lock()

        def submitter(count: int, offset: int) -> None:
            own = Client(f"http://127.0.0.1:{port}")
            for k in range(count):
                try:
                    job = own.submit(IMAGE, prompt, seed=offset + k, **fields)
                    with lock:
                        accepted.append(job["id"])
                except ServerError as exc:
                    if exc.status != 429:
                        raise
                    with lock:
                        refused[0] += 1
            own.close()

        per = [args.jobs // args.clients + (1 if c < args.jobs % args.clients else 0) for c in range(args.clients)]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=submitter, args=(n, 1000 * c)) for c, n in enumerate(per)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = [client.wait(i, poll=0.05) for i in accepted]
        served_s = time.perf_counter() - t0
        once = all(j["state"] == "succeeded" and j["attempts"] == 1 for j in jobs)
        videos = [p for p in (work / "data" / "outputs").iterdir() if p.suffix == ".mp4"]
        t0 = time.perf_counter()
        for c, n in enumerate(per):
            for k in range(n):
                generator.run(GenerationRequest(image=str(IMAGE), prompt=prompt, seed=1000 * c + k,
                                                **fields)).save(work / "c.mp4")
        local_s = time.perf_counter() - t0
        throughput = (len(jobs) / served_s) / (sum(per) / local_s)
        print(f"2. {args.clients} clients, {args.jobs} jobs: {len(accepted)} accepted, {refused[0]} refused (429); "
              f"all finished exactly once: {once} ({len(videos)} videos for {1 + args.latency_runs + len(jobs)} jobs); "
              f"throughput {len(jobs) / served_s:.2f} jobs/s served vs {sum(per) / local_s:.2f} in-process: "
              f"{throughput:.2f}x (target >= 0.90) {'PASS' if throughput >= 0.9 and once else 'MISS'}")
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=60)

    # ---- 3. batch ----
    shutil.copy(IMAGE, work / "image.png")
    columns = ["image", "prompt", "seed", *fields]
    lines = [",".join(columns)] + [",".join(["image.png", prompt, str(i), *(str(v) for v in fields.values())])
                                   for i in range(args.rows)]
    (work / "manifest.csv").write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "i2v.cli", "batch", str(work / "manifest.csv"), "--out",
                    str(work / "batch"), "-q"], check=True, env={**os.environ}, stdout=subprocess.DEVNULL)
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(args.rows):
        generator.run(GenerationRequest(image=str(IMAGE), prompt=prompt, seed=i, **fields)).save(work / "b.mp4")
    local_s = time.perf_counter() - t0
    overhead = batch_s / local_s - 1
    print(f"3. batch of {args.rows} rows: {batch_s:.1f} s (a fresh process: imports and model load included) vs "
          f"{local_s:.1f} s of warm in-process generation: overhead {overhead:+.1%} (target <= 5%) "
          f"{'PASS' if overhead <= 0.05 else 'MISS'}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
