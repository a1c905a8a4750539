"""``i2v serve``'s FastAPI application: the job API over the store, models, health and metrics.

Routers: ``/v1/jobs`` (submit, read, list, video, settings, cancel, events), ``/v1/models``, and
``/healthz`` + ``/metrics``. Every route but ``/healthz`` takes the bearer token when one is set.
A submit is checked completely before it is queued (upload size and pixels before decoding, an
init video's extension before its bytes and its frames after, the model, every generation field)
and refused with a 4xx naming the field; a request can only name a model the server serves, never
a path or URL on the server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse

from .. import __version__
from .guard import Guard
from .metrics import render_metrics
from .schemas import JobOut, JobPage, ModelOut, ServerConfig
from .store import FINISHED, STATES, JobStore
from .submission import (SubmitError, accept_image, accept_video, check_room, default_model, motion_fields, new_job_id,
                         queue_job, served_model, video_suffix)

MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "webp": "image/webp"}
MULTIPART_OVERHEAD = 64 * 1024  # form fields and part headers on top of the uploads' bytes


def create_app(config: ServerConfig, store: JobStore | None = None) -> FastAPI:
    config.data_dir = Path(config.data_dir)
    for sub in ("inputs", "outputs"):
        (config.data_dir / sub).mkdir(parents=True, exist_ok=True)
    store = store or JobStore(config.database_url, lease_seconds=config.lease_seconds)
    app = FastAPI(title="i2v", version=__version__,
                  description="Image-to-video generation jobs: submit an image and a prompt, follow the job, "
                              "download the video.")
    app.state.store, app.state.config = store, config
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])

    # before any body is read: the token, and the body's size (an image, a last image and an init video at most)
    max_body = config.max_upload_bytes * 2 + config.max_video_upload_bytes + MULTIPART_OVERHEAD
    app.add_middleware(Guard, max_body_bytes=max_body, token=config.token)
    auth = [Depends(require_token)]
    app.include_router(jobs_router, dependencies=auth)
    app.include_router(models_router, dependencies=auth)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        store.counts()  # the database answers
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], dependencies=auth, response_class=PlainTextResponse)
    def metrics() -> str:
        return render_metrics(store)

    if config.ui:
        from ..ui.app import mount_ui

        mount_ui(app, store, config)
    return app


# ---- dependencies ------------------------------------------------------------------------------


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.config.token
    if token is None:
        return
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


# ---- /v1/jobs ----------------------------------------------------------------------------------

jobs_router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


async def _receive(upload: UploadFile, config: ServerConfig, stem: str, field: str, video: bool = False):
    """Stream an upload into a partial file (refused past the size cap), then accept it: an image,
    or with ``video`` an init video (its extension checked before any byte is read)."""
    from ..io.temps import partial_sibling

    if video:
        video_suffix(upload.filename, field)
    cap = config.max_video_upload_bytes if video else config.max_upload_bytes
    with partial_sibling(config.data_dir / "inputs" / stem) as tmp:
        size = 0
        with open(tmp, "wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > cap:
                    raise SubmitError(413, f"{field}: larger than the limit of {cap} bytes")
                out.write(chunk)
        accept = accept_video if video else accept_image
        return await run_in_threadpool(accept, tmp, config, stem, field, upload.filename)


@jobs_router.post("", status_code=202, response_model=JobOut)
async def submit_job(
    image: Annotated[UploadFile, File(description="the first frame")],
    last_image: Annotated[UploadFile | None, File(description="the last frame (models that take one)")] = None,
    init_video: Annotated[UploadFile | None, File(description="video-to-video: the video to start from (.mp4, "
                                                               ".webm, .gif, .webp; models that take one)")] = None,
    model: Annotated[str | None, Form(description="default: the embedded default model, or the first served")] = None,
    output_format: Annotated[str, Form()] = "mp4",
    prompt: Annotated[str, Form()] = "",
    negative_prompt: Annotated[str, Form()] = "",
    num_frames: Annotated[int | None, Form()] = None,
    duration: Annotated[float | None, Form(description="seconds, instead of num_frames")] = None,
    window: Annotated[int | None, Form(description="a long video in chained windows of this many frames "
                                                   "(models without their own long-video pipeline)")] = None,
    fps: Annotated[float | None, Form()] = None,
    height: Annotated[int | None, Form()] = None,
    width: Annotated[int | None, Form()] = None,
    num_inference_steps: Annotated[int | None, Form()] = None,
    guidance_scale: Annotated[float | None, Form()] = None,
    seed: Annotated[int | None, Form()] = None,
    motion_strength: Annotated[float | None, Form()] = None,
    strength: Annotated[float | None, Form(description="video-to-video: how much of init_video is re-generated, "
                                                       "in (0, 1]")] = None,
    camera_path: Annotated[str | None, Form(description="a keyframed camera path, e.g. '1s: pan right 0.25; 2s: "
                                                        "zoom in 1.5', or a JSON list of keyframes (models that "
                                                        "take one)")] = None,
    trajectory: Annotated[str | None, Form(description="objects' paths in the frame, e.g. 'red ball: 0.3,0.5 -> "
                                                       "0.7,0.5', or a JSON object of points (models that take "
                                                       "them)")] = None,
    profile: Annotated[str | None, Form(description="speed or memory: the --speed / --memory switches")] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
    store: JobStore = Depends(get_store),
    config: ServerConfig = Depends(get_config),
):
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise HTTPException(422, "Idempotency-Key: 1 to 255 characters")
    if idempotency_key is not None:  # a retried submit: the same job, nothing queued twice
        existing = await run_in_threadpool(store.by_idempotency_key, idempotency_key)
        if existing is not None:
            return JSONResponse(JobOut.of(existing).model_dump(), status_code=200)
    fields = {k: v for k, v in dict(prompt=prompt, negative_prompt=negative_prompt, num_frames=num_frames,
                                    duration=duration, window=window, fps=fps,
                                    height=height, width=width, num_inference_steps=num_inference_steps,
                                    guidance_scale=guidance_scale, seed=seed,
                                    motion_strength=motion_strength, strength=strength).items() if v is not None}
    fields.update(motion_fields(camera_path=camera_path, trajectory=trajectory))
    model = model or default_model(config)
    job_id = new_job_id()
    accepted = {}
    try:
        await run_in_threadpool(check_room, store, config, output_format)
        await run_in_threadpool(served_model, model, config)
        accepted["image"] = await _receive(image, config, job_id, "image")
        if last_image is not None and last_image.filename:
            accepted["last_image"] = await _receive(last_image, config, f"{job_id}-last", "last_image")
        if init_video is not None and init_video.filename:
            accepted["init_video"] = await _receive(init_video, config, f"{job_id}-init", "init_video", video=True)
        job, created = await run_in_threadpool(
            lambda: queue_job(store, config, job_id=job_id, model=model, output_format=output_format, fields=fields,
                              **accepted, profile=profile or None, idempotency_key=idempotency_key))
    except SubmitError as exc:
        for a in accepted.values():
            (config.data_dir / "inputs" / a.name).unlink(missing_ok=True)
        raise HTTPException(exc.status, exc.detail, headers=exc.headers) from exc
    if not created:  # the same key raced in: the first job stands
        return JSONResponse(JobOut.of(job).model_dump(), status_code=200)
    return JobOut.of(job)


@jobs_router.get("", response_model=JobPage)
def list_jobs(state: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0)] = 0, store: JobStore = Depends(get_store)):
    if state is not None and state not in STATES:
        raise HTTPException(422, f"state: {state!r} is not one of {list(STATES)}")
    jobs, total = store.list(state, limit, offset)
    return JobPage(jobs=[JobOut.of(j) for j in jobs], total=total, limit=limit, offset=offset)


def _job(store: JobStore, job_id: str):
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@jobs_router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, store: JobStore = Depends(get_store)):
    return JobOut.of(_job(store, job_id))


@jobs_router.get("/{job_id}/video")
def get_video(job_id: str, store: JobStore = Depends(get_store), config: ServerConfig = Depends(get_config)):
    job = _job(store, job_id)
    if job.state != "succeeded" or not job.output_path:
        raise HTTPException(409, f"job {job_id} is {job.state}; its video exists once it has succeeded")
    path = config.data_dir / "outputs" / Path(job.output_path).name  # a name from the job id only
    if not path.is_file():
        raise HTTPException(404, f"job {job_id}: its video is missing from the server's data dir")
    return FileResponse(path, media_type=MEDIA_TYPES[job.output_format],
                        filename=f"{job_id}.{job.output_format}")


@jobs_router.get("/{job_id}/settings")
def get_settings(job_id: str, store: JobStore = Depends(get_store)):
    job = _job(store, job_id)
    if job.state != "succeeded":
        raise HTTPException(409, f"job {job_id} is {job.state}; its settings are recorded once it has succeeded")
    return job.settings


@jobs_router.delete("/{job_id}", response_model=JobOut)
def cancel_job(job_id: str, store: JobStore = Depends(get_store)):
    job = _job(store, job_id)
    if job.state in ("succeeded", "failed"):
        raise HTTPException(409, f"job {job_id} already {job.state}")
    return JobOut.of(store.cancel(job_id) or _job(store, job_id))


@jobs_router.get("/{job_id}/events")
async def job_events(job_id: str, request: Request, store: JobStore = Depends(get_store),
                     config: ServerConfig = Depends(get_config)):
    """Server-sent events: ``progress`` (step, total, ETA) while it runs, ``state`` on every change;
    the stream ends when the job does."""
    _job(store, job_id)

    async def stream():
        last_state, last_step = None, None
        while True:
            job = await run_in_threadpool(store.get, job_id)
            if job is None:  # deleted meanwhile
                yield "event: state\ndata: {\"state\": \"deleted\"}\n\n"
                return
            out = JobOut.of(job)
            if job.state != last_state:
                last_state = job.state
                yield f"event: state\ndata: {json.dumps(out.model_dump())}\n\n"
            if job.progress_step != last_step and job.state == "running":
                last_step = job.progress_step
                yield f"event: progress\ndata: {json.dumps(out.progress.model_dump())}\n\n"
            if job.state in FINISHED or await request.is_disconnected():
                return
            await asyncio.sleep(config.event_poll_seconds)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# ---- /v1/models --------------------------------------------------------------------------------

models_router = APIRouter(prefix="/v1/models", tags=["models"])


@models_router.get("", response_model=list[ModelOut])
def list_served_models(config: ServerConfig = Depends(get_config)):
    from dataclasses import asdict

    from ..registry import list_models, resolve_model

    specs = list_models() if not config.models else [resolve_model(m) for m in config.models]
    return [ModelOut(name=s.name, family=s.family, description=s.description, defaults=asdict(s.defaults))
            for s in specs]

