"""Accepting a job: the checks and the queueing the REST API and the web UI share.

Everything is checked before a job is queued (the model is one the server serves, the output
format, the queue's room, the image's size and pixels before decoding, an init video's size,
extension and frames, every generation field, a camera path and trajectories against the model
and the video), and a refusal is a ``SubmitError`` with the HTTP status and a message naming the
field.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..motion import MOTION_INPUTS
from .schemas import OUTPUT_FORMATS, ServerConfig
from .store import Job, JobStore


class SubmitError(Exception):
    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


@dataclass
class AcceptedImage:
    """An accepted upload (an image, or an init video) saved under the data dir's inputs/."""

    name: str  # file name under the data dir's inputs/
    original: str | None  # the name the user gave it



def new_job_id() -> str:
    return uuid.uuid4().hex


def default_model(config: ServerConfig) -> str:
    """The model a request that names none gets: the embedded default where it is served, else the first
    model the operator listed."""
    from ..registry import DEFAULT_MODEL

    return DEFAULT_MODEL if not config.models or DEFAULT_MODEL in config.models else list(config.models)[0]


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


def video_suffix(original: str | None, field: str) -> str:
    """The extension an uploaded video keeps (the reader picks the format by it): one the reader
    reads, else a 415 naming the problem, before any byte of the upload is read."""
    from ..io.video import SUPPORTED_FORMATS

    suffixes = [s for s in SUPPORTED_FORMATS if s.startswith(".")]  # a frames folder cannot be uploaded
    name = Path(original or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in suffixes:
        raise SubmitError(415, f"{field}: {name or 'the upload'!r} is not a video i2v reads; upload a "
                               f"{', '.join(suffixes[:-1])} or {suffixes[-1]} file (its extension names its format)")
    return suffix


def _check_animation(path: Path, field: str, original: str) -> None:
    """A GIF/WebP's canvas and frame count from its header, before the probe decodes it whole."""
    from ..errors import VideoInputError, VideoTooLargeError
    from ..io.video_input import check_animation_header

    try:
        check_animation_header(path)
    except VideoInputError as exc:  # the message names our saved file: name the field and the user's file
        detail = str(exc).replace(str(path), f"{field}: {original}", 1)
        raise SubmitError(413 if isinstance(exc, VideoTooLargeError) else 422, detail) from None


def accept_video(partial: Path, config: ServerConfig, stem: str, field: str, original: str | None) -> AcceptedImage:
    """Check an uploaded init video (its size, its extension, a GIF/WebP's frames from the header)
    and move it to ``inputs/<stem>.<ext>``, keeping the extension the reader picks the format by;
    its frames are probed when the request is checked (``queue_job``). ``partial`` is a file of
    ours, removed on refusal."""
    cap = config.max_video_upload_bytes
    size = partial.stat().st_size
    if size > cap:
        raise SubmitError(413, f"{field}: {size} bytes, larger than the limit of {cap}")
    if size == 0:
        raise SubmitError(422, f"{field}: empty upload")
    suffix = video_suffix(original, field)
    name = f"{stem}{suffix}"
    target = config.data_dir / "inputs" / name
    shutil.move(partial, target)
    if suffix in (".gif", ".webp"):
        try:
            _check_animation(target, field, Path(original or name).name)
        except SubmitError:
            target.unlink(missing_ok=True)
            raise
    return AcceptedImage(name, original)


def _public(text: str, paths: dict[str, Path]) -> str:
    """A message or notice with the server's paths of the uploads replaced by their field names."""
    for field, path in paths.items():
        text = text.replace(str(path), field)
    return text


PROFILES = ("speed", "memory")
MOTION_FIELDS = MOTION_INPUTS  # text fields, checked against the model by the request check
MOTION_TEXT_CHARS = 20_000  # far past any real camera path (keyframes) or eight objects' trajectories


def motion_fields(**values: str | None) -> dict[str, str]:
    """The camera path / trajectory fields a form gave, as a job's fields (blank: not given)."""
    return {k: v.strip() for k, v in values.items() if isinstance(v, str) and v.strip()}


def _check_motion_text(fields: dict) -> None:
    for name in MOTION_FIELDS:
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MOTION_TEXT_CHARS):
            raise SubmitError(422, f"{name}: text (or JSON text) of at most {MOTION_TEXT_CHARS} characters")


def queue_job(store: JobStore, config: ServerConfig, *, job_id: str, model: str, output_format: str, fields: dict,
              image: AcceptedImage, last_image: AcceptedImage | None = None,
              init_video: AcceptedImage | None = None, profile: str | None = None,
              idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Check the generation fields against the model (an init video probed, its strength checked)
    and queue the job; (job, created). The inputs are removed when the job is refused or was
    already queued under the same idempotency key."""
    from ..api import check_request
    from ..errors import I2VError
    from ..types import GenerationRequest

    inputs = config.data_dir / "inputs"
    uploads = {"image": image, "last_image": last_image, "init_video": init_video}
    paths = {field: inputs / upload.name for field, upload in uploads.items() if upload is not None}
    saved = list(paths.values())
    try:
        if profile is not None and profile not in PROFILES:
            raise SubmitError(422, f"profile: {profile!r} is not one of {list(PROFILES)} (or none)")
        spec = served_model(model, config)
        _check_motion_text(fields)
        probe = GenerationRequest(**{field: str(path) for field, path in paths.items()}, **fields)
        try:
            notices = [_public(n, paths) for n in check_request(spec, probe)]
        except I2VError as exc:
            raise SubmitError(422, _public(str(exc), paths)) from exc
        record = {"fields": fields, "profile": profile, "submit_notices": notices}
        for field, upload in uploads.items():
            record[field] = upload.name if upload else None
            record[f"{field}_name"] = upload.original if upload else None
        job, created = store.submit(model, record, output_format, idempotency_key, job_id)
    except BaseException:
        for path in saved:
            path.unlink(missing_ok=True)
        raise
    if not created:
        for path in saved:
            path.unlink(missing_ok=True)
    return job, created
