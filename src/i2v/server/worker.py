"""A worker: claims jobs from the store, runs them on warm models, writes their videos.

Models stay loaded between jobs (``WarmModels``: least recently used first out when more than
``max_models`` are asked for). While a job runs, a heartbeat thread renews its lease, records its
progress, and notices a cancel request; the denoising callback then stops the run within one step.
The video is written under the data dir as ``outputs/<job id>-<attempt>.<ext>`` (atomically, with
its sidecar) and only then is the job marked succeeded, under the attempt's fence: an attempt that
lost its lease deletes its own file and records nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .store import INPUT_FILES, Job, JobStore

log = logging.getLogger("i2v.worker")
ORPHAN_AGE_S = 60.0  # a younger output may belong to an attempt that is recording it right now


class JobCancelled(Exception):
    """Raised from the progress callback when the job's cancellation was requested."""


class LeaseLost(Exception):
    """Raised from the progress callback when another worker took the job over."""


@dataclass
class WorkerConfig:
    data_dir: Path
    device: str | None = None
    models: tuple[str, ...] | None = None  # None: any model
    max_models: int = 1
    poll_seconds: float = 0.05  # an empty queue costs one read per poll
    heartbeat_seconds: float = 1.0
    job_timeout_seconds: float | None = None  # a running job past this fails
    parent_pid: int | None = None  # a worker `i2v serve` started stops when that server is gone


class WarmModels:
    """Loaded generators by model name, least recently used evicted first."""

    def __init__(self, device: str | None, max_models: int = 1):
        self.device = device
        self.max_models = max(1, max_models)
        self._loaded: OrderedDict[tuple[str, str | None], object] = OrderedDict()

    def get(self, model: str, profile: str | None = None):
        """The generator of ``model`` loaded with ``profile`` (``speed``, ``memory`` or None)."""
        from ..api import ImageToVideoGenerator

        key = (model, profile)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        while len(self._loaded) >= self.max_models:
            self._loaded.popitem(last=False)  # frees it once the last reference goes
        generator = ImageToVideoGenerator(model_name=model, device=self.device, profile=profile)
        self._loaded[key] = generator
        return generator


class _Heartbeat(threading.Thread):
    """Renews the lease and writes progress every ``interval`` seconds while a job runs."""

    def __init__(self, store: JobStore, job: Job, interval: float, orphaned=lambda: False):
        super().__init__(daemon=True)
        self.store, self.job, self.interval, self.orphaned = store, job, interval, orphaned
        self.step, self.total = 0, 0
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.orphaned():  # the server that started this worker died: stop as on SIGTERM (job handed back)
                import signal

                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.beat()

    def beat(self) -> None:
        try:
            answer = self.store.heartbeat(self.job, self.step, self.total)
        except Exception:  # a database hiccup: the next beat tries again; the lease has slack
            log.exception("heartbeat for job %s failed", self.job.id)
            return
        if answer is None:
            self.lost.set()
        elif answer:
            self.cancelled.set()

    def stop(self) -> None:
        self._stop.set()


class Worker:
    def __init__(self, store: JobStore, config: WorkerConfig, worker_id: str | None = None):
        self.store = store
        self.config = config
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.models = WarmModels(config.device, config.max_models)
        self.outputs = Path(config.data_dir) / "outputs"
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def orphaned(self) -> bool:
        return self.config.parent_pid is not None and os.getppid() != self.config.parent_pid

    def run_forever(self) -> None:
        """Claim and run jobs until ``stop()`` (or, for a server's own worker, until the server is gone)."""
        while not self._stop.is_set() and not self.orphaned():
            if not self.run_once():
                self._stop.wait(self.config.poll_seconds)

    def run_once(self) -> Job | None:
        """Claim one job and run it to its end; the finished job, or None when the queue was empty."""
        job = self.store.claim(self.id, self.config.models)
        if job is None:
            return None
        log.info("job %s (attempt %d): %s", job.id, job.attempts, job.model)
        self._run(job)
        return self.store.get(job.id)

    def _run(self, job: Job) -> None:
        from ..errors import I2VError
        from ..types import GenerationRequest

        beat = _Heartbeat(self.store, job, self.config.heartbeat_seconds, self.orphaned)
        beat.start()
        started = time.monotonic()
        timeout = self.config.job_timeout_seconds

        def progress(step: int, total: int) -> None:
            beat.step, beat.total = step, total
            if beat.cancelled.is_set():
                raise JobCancelled
            if beat.lost.is_set():
                raise LeaseLost
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"the job ran past the server's limit of {timeout:g} s")

        inputs = Path(self.config.data_dir) / "inputs"
        uploads = {key: str(inputs / job.request[key]) for key in INPUT_FILES if job.request.get(key)}
        try:
            fields = {**job.request["fields"], **uploads}  # image, and last_image / init_video if given
            generator = self.models.get(job.model, job.request.get("profile"))
            request = GenerationRequest(**fields)
            if request.window is not None:  # a long video in windows: streamed into its output as they are made
                self._stream(job, generator, request, progress, beat)
            else:
                result = generator.run(request, callback=progress)
                if beat.cancelled.is_set():
                    raise JobCancelled
                self._deliver(job, result, total=beat.total)
        except JobCancelled:
            self.store.mark_cancelled(job)
        except LeaseLost:
            log.warning("job %s: lease lost to another worker; dropping this attempt", job.id)
        except (I2VError, TimeoutError, ValueError, TypeError) as exc:  # the request's fault: a message, no trace
            message = f"{type(exc).__name__}: {exc}"
            for key, path in uploads.items():  # the upload's field name, not the server's path
                message = message.replace(path, key)
            self.store.fail(job, message)
        except Exception as exc:  # a bug or the machine (out of memory): recorded, the worker goes on
            log.exception("job %s failed", job.id)
            self.store.fail(job, f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:  # the worker is being stopped (Ctrl-C, SIGTERM): the job goes back to the queue
            self.store.release(job)
            raise
        finally:
            beat.stop()

    def _output_path(self, job: Job) -> Path:
        self.outputs.mkdir(parents=True, exist_ok=True)
        return self.outputs / f"{job.id}-{job.attempts}.{job.output_format}"

    @staticmethod
    def _named(job: Job) -> dict:
        """What an output's settings record of the job instead of the server's paths: the image's name as the
        user gave it, and the job."""
        return {"image": job.request.get("image_name"), "job_id": job.id}

    def _stream(self, job: Job, generator, request, progress, beat: _Heartbeat) -> None:
        """A chained run written into the job's output window by window (``generate_to_file``), so the
        worker holds about a window's frames whatever the length; a cancel or a lost lease mid-way leaves
        no output (the writer's partial file goes with it)."""
        path = self._output_path(job)
        # chained runs take no other file than the image
        result = generator.generate_to_file(request, path, callback=progress, metadata=self._named(job))
        if beat.cancelled.is_set():
            self._drop(path)
            raise JobCancelled
        self._record(job, path, result.settings, result.notices, beat.total)

    def _deliver(self, job: Job, result, total: int | None = None) -> None:
        from ..io.video import write_video

        path = self._output_path(job)
        settings = {**result.settings, **self._named(job)}
        settings.pop("last_image", None)
        if settings.get("init_video") is not None:  # the name the user gave it, not the server's path
            settings["init_video"] = job.request.get("init_video_name")
        audio = getattr(result, "audio", None)  # a model that makes sound (LTX-2): into the file, or a WAV beside
        write_video(result.frames, path, fps=result.fps, metadata={**settings, "fps": result.fps}, audio=audio,
                    audio_sample_rate=result.audio_sample_rate if audio is not None else None)
        self._record(job, path, settings, result.notices, total)

    @staticmethod
    def _drop(path: Path) -> None:
        """Remove an output and what was written beside it."""
        from ..io.video import audio_path, sidecar_path

        path.unlink(missing_ok=True)
        sidecar_path(path).unlink(missing_ok=True)
        if audio_path(path) is not None:
            audio_path(path).unlink(missing_ok=True)

    def _record(self, job: Job, path: Path, settings: dict, notices: list[str], total: int | None) -> None:
        """Record the written output as the job's, or drop it where the job was cancelled or taken over."""
        if not self.store.finish(job, path.name, settings, notices, total):  # cancelled, or taken over, meanwhile
            self._drop(path)
            self.store.mark_cancelled(job)  # fenced: a no-op when another attempt owns the job


def remove_orphan_outputs(store: JobStore, data_dir: Path) -> list[Path]:
    """Outputs no job points at: written by an attempt that died between writing and recording."""
    from ..io.video import sidecar_path
    from .store import RUNNING

    outputs = Path(data_dir) / "outputs"
    if not outputs.is_dir():
        return []
    # the folder first, then the jobs: a job that succeeds meanwhile is already in `kept` when it is read
    now = time.time()
    files = [p for p in outputs.iterdir() if not (p.name.endswith(".json") or p.name.startswith("."))
             and now - p.stat().st_mtime > ORPHAN_AGE_S]
    running = {f"{j.id}-{j.attempts}" for j in store.list(state=RUNNING, limit=100000)[0]}
    kept = store.output_paths()
    removed = []
    for path in files:
        if path.name not in kept and path.name.rsplit(".", 1)[0] not in running:
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
            removed.append(path)
    return removed
