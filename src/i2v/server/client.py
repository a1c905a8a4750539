"""A client for ``i2v serve``: submit, wait (with progress), download, cancel.

    from i2v.client import Client
    client = Client("http://127.0.0.1:8000")
    job = client.submit("photo.jpg", prompt="the camera pans left", seed=1)
    job = client.wait(job["id"], progress=lambda step, total: print(step, total))
    client.download(job["id"], "out.mp4")
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from ..errors import I2VError

FINISHED = ("succeeded", "failed", "cancelled")


class ServerError(I2VError):
    """The server refused or failed a request; ``status`` is its HTTP status code."""

    def __init__(self, status: int, message: str):
        super().__init__(f"server said {status}: {message}")
        self.status = status


class ServerUnreachableError(I2VError):
    """No answer from the server (down, wrong address, network)."""


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self._check(self.http.request(method, url, **kwargs))
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach the server at {self.http.base_url} ({exc})") from exc

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServerError(response.status_code, detail if isinstance(detail, str) else str(detail))
        return response

    # ---- jobs --------------------------------------------------------------------------------
    def submit(self, image: str | Path, prompt: str = "", *, model: str | None = None, output_format: str = "mp4",
               last_image: str | Path | None = None, init_video: str | Path | None = None,
               strength: float | None = None, profile: str | None = None, idempotency_key: str | None = None,
               camera_path: str | list | None = None, trajectory: str | dict | list | None = None,
               **fields) -> dict:
        """Queue a job; ``fields`` are the generation fields (num_frames, seed, ...). ``init_video``
        (a .mp4, .webm, .gif or .webp file) and ``strength`` make it video-to-video. ``camera_path``
        ("1s: pan right 0.25; 1.5s: zoom in 1.5", or a list of keyframe dicts) and ``trajectory``
        ("red ball: 0.3,0.5 -> 0.7,0.5", or a dict of points) go as text, a list or dict as JSON. A
        retry with the same ``idempotency_key`` (one is made if not given) returns the same job."""
        import contextlib
        import json

        motion = {k: v if isinstance(v, str) else json.dumps(v, default=_motion_json)
                  for k, v in {"camera_path": camera_path, "trajectory": trajectory}.items() if v is not None}
        data = {"prompt": prompt, "output_format": output_format,
                **{k: str(v) for k, v in {**fields, "strength": strength}.items() if v is not None}, **motion}
        if model is not None:
            data["model"] = model
        if profile is not None:
            data["profile"] = profile
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        with open(image, "rb") as first:
            files = {"image": (Path(image).name, first.read())}
        if last_image is not None:
            with open(last_image, "rb") as last:
                files["last_image"] = (Path(last_image).name, last.read())
        with contextlib.ExitStack() as stack:
            if init_video is not None:  # streamed from the file, not read into memory
                files["init_video"] = (Path(init_video).name, stack.enter_context(open(init_video, "rb")))
            return self._request("POST", "/v1/jobs", data=data, files=files, headers=headers).json()

    def get(self, job_id: str) -> dict:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def list(self, state: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        params = {"limit": limit, "offset": offset, **({"state": state} if state else {})}
        return self._request("GET", "/v1/jobs", params=params).json()

    def cancel(self, job_id: str) -> dict:
        return self._request("DELETE", f"/v1/jobs/{job_id}").json()

    def wait(self, job_id: str, progress: Callable[[int, int], None] | None = None, poll: float = 0.25,
             timeout: float | None = None) -> dict:
        """Poll until the job ends; ``progress(step, total)`` on every change. Returns the job."""
        start, last = time.monotonic(), None
        while True:
            job = self.get(job_id)
            step = (job["progress"]["step"], job["progress"]["total"])
            if progress is not None and step != last and job["state"] == "running":
                progress(*step)
                last = step
            if job["state"] in FINISHED:
                return job
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout:g} s")
            time.sleep(poll)

    def download(self, job_id: str, path: str | Path) -> Path:
        """Write the job's video to ``path`` (atomically) and its settings beside it as ``path.json``."""
        from ..io.temps import partial_sibling

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.http.stream("GET", f"/v1/jobs/{job_id}/video") as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                with partial_sibling(path) as tmp:
                    with open(tmp, "wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                    tmp.replace(path)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"download of job {job_id} failed ({exc})") from exc
        settings = self._request("GET", f"/v1/jobs/{job_id}/settings").text
        sidecar = path.with_name(path.name + ".json")
        with partial_sibling(sidecar) as tmp:
            tmp.write_text(settings, encoding="utf-8")
            tmp.replace(sidecar)
        return path

    def models(self) -> list[dict]:
        return self._request("GET", "/v1/models").json()


def _motion_json(value):
    """``i2v.motion``'s own objects (CameraKeyframe, Trajectory) in the JSON forms the server reads."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        data = {k: v for k, v in asdict(value).items() if v is not None}
        if "points" in data:  # a Trajectory: [x, y] or [seconds, x, y] points
            data["points"] = [list(p[1:]) if p[0] is None else list(p) for p in data["points"]]
        return data
    raise TypeError(f"cannot send a {type(value).__name__} as a camera path or trajectory")
