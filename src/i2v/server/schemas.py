"""The REST API's response models and the server's settings, in the project's one vocabulary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from .store import Job

# the generation fields a job takes (multipart form fields of POST /v1/jobs), with their types
GENERATION_FIELDS: dict[str, type] = {
    "prompt": str, "negative_prompt": str, "num_frames": int, "fps": float, "height": int, "width": int,
    "num_inference_steps": int, "guidance_scale": float, "seed": int, "motion_strength": float, "strength": float,
    "camera_path": str, "trajectory": str,  # text ("1s: pan right 0.25", "ball: 0.3,0.5 -> 0.7,0.5") or JSON text
}
OUTPUT_FORMATS = ("mp4", "webm", "gif", "webp")


@dataclass
class ServerConfig:
    data_dir: Path
    db_url: str | None = None  # default: SQLite in the data dir
    models: tuple[str, ...] | None = None  # None: every registered model and local folders are refused
    token: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024  # each image (the image, the last image)
    max_video_upload_bytes: int = 200 * 1024 * 1024  # the init video (video-to-video)
    max_queue: int = 1000
    lease_seconds: float = 30.0
    cors_origins: tuple[str, ...] = ()
    event_poll_seconds: float = 0.25
    ui: bool = False  # mount the web UI at /ui
    extra: dict = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir) / 'jobs.db'}"


class Progress(BaseModel):
    step: int
    total: int
    eta_seconds: float | None = None


class JobOut(BaseModel):
    id: str
    state: str
    model: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int
    progress: Progress
    request: dict
    notices: list[str]
    settings: dict | None = None
    error: str | None = None
    video_url: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        eta = None
        if job.state == "running" and job.started_at and 0 < job.progress_step < job.progress_total:
            elapsed = time.time() - job.started_at
            eta = elapsed / job.progress_step * (job.progress_total - job.progress_step)
        public = {k: v for k, v in job.request.items() if k in ("fields", "image_name", "last_image_name",
                                                                   "init_video_name", "profile")}
        return cls(id=job.id, state=job.state, model=job.model, created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at, attempts=job.attempts,
                   progress=Progress(step=job.progress_step, total=job.progress_total, eta_seconds=eta),
                   request={**public, "output_format": job.output_format}, notices=job.notices,
                   settings=job.settings, error=job.error,
                   video_url=f"/v1/jobs/{job.id}/video" if job.state == "succeeded" else None)


class JobPage(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


class ModelOut(BaseModel):
    name: str
    family: str
    description: str
    defaults: dict
