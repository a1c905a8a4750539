"""Accepting a job: the checks and the queueing the REST API and the web UI share.

Everything is checked before a job is queued (the model is one the server serves, the output
format, the queue's room, the image's size and pixels before decoding, every generation field),
and a refusal is a ``SubmitError`` with the HTTP status and a message naming the field.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from .schemas import OUTPUT_FORMATS, ServerConfig
from .store import Job, JobStore


class SubmitError(Exception):
    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


@dataclass
class AcceptedImage:
    name: str  # file name under the data dir's inputs/
    original: str | None  # the name the user gave it


def new_job_id() -> str:
    return uuid.uuid4().hex


def served_model(name: str, config: ServerConfig):
    """The ModelSpec of a model this server serves: a registered name, or one the operator listed."""
    from ..errors import I2VError
    from ..registry import list_models, resolve_model

    allowed = set(config.models) if config.models else {m.name for m in list_models()}
    if name not in allowed:
        raise SubmitError(422, f"model: {name!r} is not served here; GET /v1/models lists those that are")
    try:
        return resolve_model(name)
    except I2VError as exc:
        raise SubmitError(422, f"model: {exc}") from exc


def check_room(store: JobStore, config: ServerConfig, output_format: str) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise SubmitError(422, f"output_format: {output_format!r} is not one of {list(OUTPUT_FORMATS)}")
    depth = store.queue_depth()
    if depth >= config.max_queue:
        raise SubmitError(429, f"the queue is full ({depth} jobs waiting); try again later",
                          headers={"Retry-After": "30"})


def accept_image(partial: Path, config: ServerConfig, stem: str, field: str, original: str | None) -> AcceptedImage:
    """Check an uploaded file (its size, then its header's pixels before decoding, then a decode) and
    move it to ``inputs/<stem>.<format>``; ``partial`` is a file of ours, removed on refusal."""
    from PIL import Image

    from ..errors import I2VError
    from ..io.images import load_image

    size = partial.stat().st_size
    if size > config.max_upload_bytes:
        raise SubmitError(413, f"{field}: {size} bytes, larger than the limit of {config.max_upload_bytes}")
    if size == 0:
        raise SubmitError(422, f"{field}: empty upload")
    try:
        load_image(str(partial))
    except I2VError as exc:
        raise SubmitError(422, f"{field}: {str(exc).replace(str(partial), original or field)}") from exc
    with Image.open(partial) as image:
        ext = (image.format or "img").lower()
    name = f"{stem}.{ext}"
    shutil.move(partial, config.data_dir / "inputs" / name)
    return AcceptedImage(name, original)


PROFILES = ("speed", "memory")


def queue_job(store: JobStore, config: ServerConfig, *, job_id: str, model: str, output_format: str, fields: dict,
              image: AcceptedImage, last_image: AcceptedImage | None = None, profile: str | None = None,
              idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Check the generation fields against the model and queue the job; (job, created). The inputs
    are removed when the job is refused or was already queued under the same idempotency key."""
    from ..api import check_request
    from ..errors import I2VError
    from ..types import GenerationRequest

    inputs = config.data_dir / "inputs"
    saved = [inputs / image.name] + ([inputs / last_image.name] if last_image else [])
    try:
        if profile is not None and profile not in PROFILES:
            raise SubmitError(422, f"profile: {profile!r} is not one of {list(PROFILES)} (or none)")
        spec = served_model(model, config)
        probe = GenerationRequest(image=str(saved[0]), last_image=str(saved[1]) if last_image else None, **fields)
        try:
            notices = check_request(spec, probe)
        except I2VError as exc:
            raise SubmitError(422, str(exc).replace(str(saved[0]), "image")) from exc
        record = {"fields": fields, "image": image.name, "image_name": image.original,
                  "last_image": last_image.name if last_image else None,
                  "last_image_name": last_image.original if last_image else None, "profile": profile,
                  "submit_notices": notices}
        job, created = store.submit(model, record, output_format, idempotency_key, job_id)
    except BaseException:
        for path in saved:
            path.unlink(missing_ok=True)
        raise
    if not created:
        for path in saved:
            path.unlink(missing_ok=True)
    return job, created
