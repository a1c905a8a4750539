"""``i2v serve``, ``i2v worker`` and ``i2v submit``: arguments and entry points."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import InvalidRequestError

DEFAULT_DATA_DIR = "i2v-data"
GENERATION_FLAGS = {"num_frames": int, "duration": float, "window": int, "fps": float, "height": int, "width": int,
                    "num_inference_steps": int, "guidance_scale": float, "seed": int, "motion_strength": float,
                    "strength": float}


def _models(values: list[str] | None) -> tuple[str, ...] | None:
    names = [m.strip() for v in values or [] for m in v.split(",") if m.strip()]
    return tuple(names) or None


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback needs --token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models", action="append", metavar="NAME[,NAME]",
                   help="models to serve (registered names or local folders); default: every registered model")
    p.add_argument("--workers", type=int, default=1, help="local worker processes to start (0: workers run elsewhere)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="inputs, outputs and the SQLite database")
    p.add_argument("--db", default=None, metavar="URL", help="database URL (default: SQLite in the data dir; "
                                                             "postgresql://... for several machines)")
    p.add_argument("--token", default=os.environ.get("I2V_TOKEN"), help="bearer token required on every endpoint "
                                                                       "but /healthz (default: $I2V_TOKEN)")
    p.add_argument("--device", default=None, help="device of the local workers")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image upload (the image and the last "
                                                                      "image each)")
    p.add_argument("--max-video-upload-mb", type=float, default=200.0,
                   help="largest init video upload (video-to-video: .mp4, .webm, .gif, .webp; a GIF/WebP is "
                        "also refused past 1 GiB of decoded frames)")
    p.add_argument("--max-queue", type=int, default=1000, help="queued jobs before submits get 429")
    p.add_argument("--job-timeout", type=float, default=None, metavar="SECONDS", help="a running job past this fails")
    p.add_argument("--cors-origin", action="append", default=[], help="allow browser calls from this origin")
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="local workers' lease: a job whose worker is silent this long runs again elsewhere")
    p.add_argument("--ui", action="store_true", help="also serve the web UI at /ui")


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=os.environ.get("I2V_DB"), metavar="URL",
                   help="the server's database (default: $I2V_DB, else SQLite in --data-dir)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the server's data dir (shared storage on several "
                                                                "machines)")
    p.add_argument("--device", default=None)
    p.add_argument("--models", action="append", metavar="NAME[,NAME]", help="only take jobs for these models")
    p.add_argument("--max-models", type=int, default=1, help="models kept loaded at once (least recently used out)")
    p.add_argument("--job-timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between looks at an empty queue")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # set by `i2v serve --workers`
    p.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                   help="a job this worker is silent on for this long runs again elsewhere (heartbeats: lease / 10)")


def add_submit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image")
    p.add_argument("--server", default=os.environ.get("I2V_SERVER", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("I2V_TOKEN"))
    p.add_argument("--prompt", "-p", default="")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--model", "-m", default=None)
    p.add_argument("--last-image", default=None)
    p.add_argument("--init-video", default=None, metavar="VIDEO",
                   help="video-to-video: start from this video (.mp4, .webm, .gif, .webp), uploaded with the image; "
                        "--strength says how much of it is re-generated")
    p.add_argument("--profile", default=None, choices=["speed", "memory"], help="the server runs it with --speed "
                                                                                 "or --memory")
    from ..io.motion_input import add_motion_arguments

    add_motion_arguments(p)
    for name, kind in GENERATION_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    p.add_argument("--output", "-o", required=True, help="where to download the video (.mp4 .webm .gif .webp)")
    p.add_argument("--no-wait", action="store_true", help="print the job and return without waiting")


def _database_url(db: str | None, data_dir: Path) -> str:
    return db or f"sqlite:///{data_dir / 'jobs.db'}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_main(args) -> int:
    import uvicorn

    from .app import create_app
    from .schemas import ServerConfig
    from .worker import remove_orphan_outputs

    if not is_loopback(args.host) and not args.token:
        raise InvalidRequestError(f"--host {args.host} is reachable from other machines: give --token (or set "
                                  "I2V_TOKEN) so that every request must carry it")
    if args.workers < 0 or args.max_queue < 1 or not args.max_upload_mb > 0 or not args.max_video_upload_mb > 0:
        raise InvalidRequestError("--workers must be >= 0, --max-queue >= 1, and --max-upload-mb and "
                                  "--max-video-upload-mb > 0")
    data_dir = Path(args.data_dir)
    config = ServerConfig(data_dir=data_dir, db_url=args.db, models=_models(args.models), token=args.token,
                          max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                          max_video_upload_bytes=int(args.max_video_upload_mb * 1024 * 1024), max_queue=args.max_queue,
                          cors_origins=tuple(args.cors_origin), ui=getattr(args, "ui", False))
    app = create_app(config)
    removed = remove_orphan_outputs(app.state.store, data_dir)
    if removed:
        print(f"removed {len(removed)} output(s) of attempts that died before recording them", file=sys.stderr)
    workers = []
    for _ in range(args.workers):
        # the database URL (it may hold a password) goes by environment, not on the process list
        command = [sys.executable, "-m", "i2v.cli", "worker", "--data-dir", str(data_dir), "--parent-pid",
                   str(os.getpid())]
        for model in config.models or ():
            command += ["--models", model]
        if args.device:
            command += ["--device", args.device]
        if args.job_timeout:
            command += ["--job-timeout", str(args.job_timeout)]
        command += ["--lease", str(args.lease)]
        workers.append(subprocess.Popen(command, env={**os.environ, "I2V_DB": config.database_url}))
    if config.ui:
        print(f"web UI at http://{args.host}:{args.port}/ui", file=sys.stderr, flush=True)
        if getattr(args, "open_browser", False):
            import threading
            import webbrowser

            threading.Timer(2.0, webbrowser.open, [f"http://{args.host}:{args.port}/ui"]).start()
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
    return 0


def worker_main(args) -> int:
    from .store import JobStore
    from .worker import Worker, WorkerConfig

    data_dir = Path(args.data_dir)
    if not args.lease > 0:
        raise InvalidRequestError(f"--lease must be > 0 seconds, got {args.lease}")
    store = JobStore(_database_url(args.db, data_dir), lease_seconds=args.lease)
    worker = Worker(store, WorkerConfig(data_dir=data_dir, device=args.device, models=_models(args.models),
                                        max_models=args.max_models, poll_seconds=args.poll,
                                        heartbeat_seconds=min(1.0, args.lease / 10),
                                        job_timeout_seconds=args.job_timeout, parent_pid=args.parent_pid))
    print(f"worker {worker.id} taking jobs from {store.engine.url.render_as_string(hide_password=True)}",
          file=sys.stderr, flush=True)
    worker.run_forever()
    return 0


def submit_main(args) -> int:
    from ..io.motion_input import read_motion_arguments
    from ..io.video import video_format
    from ..validate import check_output_file
    from .client import Client

    fmt = video_format(args.output)
    if fmt == "png":
        raise InvalidRequestError(f"{args.output}: the server writes .mp4, .webm, .gif or .webp files")
    check_output_file(args.output, [args.image, args.last_image, args.init_video])  # before anything is uploaded
    read_motion_arguments(args)  # --camera / --trajectory @FILE: what the file holds, sent as text
    fields = {name: getattr(args, name) for name in GENERATION_FLAGS}
    if args.negative_prompt is not None:
        fields["negative_prompt"] = args.negative_prompt
    with Client(args.server, token=args.token) as client:
        job = client.submit(args.image, args.prompt, model=args.model, output_format=fmt,
                            last_image=args.last_image, init_video=args.init_video, profile=args.profile,
                            camera_path=args.camera_path, trajectory=args.trajectory, **fields)
        print(f"job {job['id']} {job['state']}", file=sys.stderr, flush=True)
        if args.no_wait:
            print(job["id"])
            return 0
        job = client.wait(job["id"], progress=lambda step, total: print(f"\rstep {step}/{total}", end="",
                                                                          file=sys.stderr, flush=True))
        print(file=sys.stderr)
        if job["state"] != "succeeded":
            print(f"error: job {job['id']} {job['state']}" + (f": {job['error']}" if job.get("error") else ""),
                  file=sys.stderr)
            return 2
        path = client.download(job["id"], args.output)
    for notice in job.get("notices", []):
        print(f"note: {notice}", file=sys.stderr)
    print(f"wrote {path} (job {job['id']})")
    return 0
