"""``i2v batch``: one video per row of a manifest, resumable, on this machine or on a Ray cluster.

A manifest is a CSV (header row) or a JSONL file; each row has an ``image`` (a path, relative to
the manifest's folder) and any of the generation fields (``prompt``, ``num_frames``, ``seed``, ...),
plus optionally ``last_image``, ``init_video`` (video-to-video, with ``strength``; paths relative
to the manifest's folder as the image is), ``camera_path`` and ``trajectory`` (motion, for the
models that take it: text as ``--camera`` / ``--trajectory`` take it; in JSONL also a keyframe list
/ a dict of points), ``model`` and ``output`` (the output's file name); an output never replaces
one of its row's inputs. A row without a seed gets ``--seed + row number``, so a rerun makes the
same video. Every output records its row's request
(``batch_request`` in its settings): a rerun skips a row whose output exists with the same
request, so an interrupted batch resumes where it stopped. Bad rows are reported in the results
and the others go on. ``results.csv`` lists each row's status, output, seconds and error.

Engines: ``local`` runs the rows in this process (CPU), or in one process per GPU; ``ray`` runs
them on a Ray cluster (one actor per GPU, or ``--ray-actors`` on CPUs), each actor keeping its
model warm; the frames come back to this process, which writes every output.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatasetError, I2VError
from .motion import MOTION_INPUTS

ROW_FIELDS: dict[str, type] = {
    "prompt": str, "negative_prompt": str, "num_frames": int, "duration": float, "window": int, "fps": float,
    "height": int, "width": int, "num_inference_steps": int, "guidance_scale": float, "seed": int,
    "motion_strength": float, "strength": float,
}
# camera path and trajectories: text ("1s: pan right 0.25", "ball: 0.3,0.5 -> 0.7,0.5"), or in JSONL a list / dict
MOTION_COLUMNS = MOTION_INPUTS
OTHER_COLUMNS = ("image", "last_image", "init_video", "model", "output", *MOTION_COLUMNS)
RESULT_COLUMNS = ("row", "image", "output", "status", "seconds", "error")


@dataclass
class BatchRow:
    number: int  # 1-based row number in the manifest (a CSV's header is line 1, this row's line is number + 1)
    image: str | None
    model: str | None
    fields: dict[str, Any]
    output: Path | None = None
    last_image: str | None = None
    init_video: str | None = None  # video-to-video: the video the row starts from
    error: str | None = None  # set when the row cannot run

    def inputs(self) -> list[str | None]:
        """The files the row reads (its output must replace none of them)."""
        return [self.image, self.last_image, self.init_video]

    def request(self) -> dict[str, Any]:
        """What identifies this row's video: a rerun with the same request skips it."""
        request = {"image": self.image, "last_image": self.last_image, "model": self.model, **self.fields}
        if self.init_video is not None:  # only when given: earlier outputs of image-only rows still match
            request["init_video"] = self.init_video
        return request


@dataclass
class BatchResult:
    row: BatchRow
    status: str  # done, skipped, failed, invalid
    seconds: float = 0.0
    error: str | None = None
    notices: list[str] = field(default_factory=list)


def _parse_value(name: str, value: Any) -> Any:
    kind = ROW_FIELDS[name]
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if kind is str:
        return str(value)
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        if kind is float:
            number = float(value)
        elif isinstance(value, str):
            number = int(value, 10)
        elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):  # a JSONL number: 4, 4.0
            number = int(value)
        else:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {'a number' if kind is float else 'an integer'}, got {value!r}") from None
    if kind is float and not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def read_manifest(path: str | Path, out_dir: Path, fmt: str = "mp4", base_seed: int = 0) -> list[BatchRow]:
    """The manifest's rows, each checked; rows with problems carry an ``error`` and are not run."""
    from .validate import check_output_file

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such manifest")
    if path.suffix.lower() == ".csv":
        records = _read_csv_rows(path)
    elif path.suffix.lower() == ".jsonl":
        records = _read_jsonl_rows(path)
    else:
        raise DatasetError(f"{path}: a manifest is a .csv or a .jsonl file")
    if not records:
        raise DatasetError(f"{path}: the manifest has no rows")
    rows, names = [], set()
    for number, record, problem in records:
        row = BatchRow(number=number, image=None, model=None, fields={})
        rows.append(row)
        if problem:
            row.error = problem
            continue
        unknown = sorted(set(record) - set(ROW_FIELDS) - set(OTHER_COLUMNS))
        try:
            if unknown:
                raise ValueError(f"unknown column(s) {unknown}; expected {list(OTHER_COLUMNS) + list(ROW_FIELDS)}")
            image = str(record.get("image") or "").strip()
            if not image:
                raise ValueError("image: empty")
            row.image = _beside(path, image)
            row.last_image = _beside(path, str(record.get("last_image") or "").strip()) or None
            row.init_video = _beside(path, str(record.get("init_video") or "").strip()) or None
            row.model = str(record.get("model") or "").strip() or None
            for name in ROW_FIELDS:
                if name in record:
                    value = _parse_value(name, record[name])
                    if value is not None:
                        row.fields[name] = value
            for name in MOTION_COLUMNS:
                value = _motion_value(name, record.get(name))
                if value is not None:  # only when given: earlier outputs of rows without motion still match
                    row.fields[name] = value
            row.fields.setdefault("seed", base_seed + number)
            name = str(record.get("output") or "").strip() or f"{number:05d}-{Path(image).stem}"
            if Path(name).name != name or name in (".", ".."):
                raise ValueError(f"output: {name!r} must be a file name, not a path")
            stem = Path(name).stem if Path(name).suffix.lower() in (".mp4", ".webm", ".gif", ".webp") else name
            row.output = out_dir / f"{stem}.{fmt}"
            if row.output.name in names:
                raise ValueError(f"output: {row.output.name} is also another row's output")
            names.add(row.output.name)
            check_output_file(row.output, row.inputs())  # before the row runs, not after
        except ValueError as exc:
            row.error = str(exc)
    return rows


def _motion_value(name: str, value: Any) -> Any:
    """A row's camera path or trajectory: text (blank: none), or a JSON list / dict; its syntax checked
    here (a bad one makes the row invalid before anything runs), the rest when the row runs."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = value.strip()
    elif not isinstance(value, (list, dict)):
        raise ValueError(f"{name}: text, a list or an object, got {value!r}")
    from .errors import InvalidRequestError
    from .motion.camera_path import parse_camera_text
    from .motion.trajectory import parse_trajectory_text

    if name == "camera_path" and isinstance(value, dict):
        raise ValueError('camera_path: a list of keyframes, e.g. [{"time": 1, "pan": 0.25}], not an object')
    try:  # the list / dict form as the JSON text the parsers read
        (parse_camera_text if name == "camera_path" else parse_trajectory_text)(
            value if isinstance(value, str) else json.dumps(value))
    except InvalidRequestError as exc:
        raise ValueError(str(exc)) from None
    return value


def _beside(manifest: Path, name: str) -> str:
    """A manifest's path: relative to the manifest's folder, or absolute ("" stays "")."""
    if not name or Path(name).is_absolute():
        return name
    return str((manifest.parent / name).resolve())


def _read_csv_rows(path: Path) -> list[tuple[int, dict, str | None]]:
    out = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, strict=True)
            if not reader.fieldnames or "image" not in [n.strip() for n in reader.fieldnames]:
                raise DatasetError(f"{path}: the header needs an 'image' column; found {reader.fieldnames}")
            width = len(reader.fieldnames)
            for number, row in enumerate(reader, start=1):
                extra = row.pop(None, None)
                missing = sum(v is None for v in row.values())
                problem = None
                if extra or missing:
                    problem = f"{width + len(extra or []) - missing} fields, the header has {width}"
                out.append((number, {k.strip(): v for k, v in row.items() if v is not None}, problem))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot parse CSV ({exc})") from exc
    return out


def _read_jsonl_rows(path: Path) -> list[tuple[int, dict, str | None]]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from exc
    number = 0
    for line in lines:
        if not line.strip():
            continue
        number += 1
        try:
            record = json.loads(line)
            problem = None if isinstance(record, dict) else "not a JSON object"
        except ValueError as exc:
            record, problem = {}, f"not valid JSON ({exc})"
        out.append((number, record if isinstance(record, dict) else {}, problem))
    return out


def already_done(row: BatchRow) -> bool:
    """The row's output exists and was made from the same request."""
    from .io.video import read_metadata

    if row.output is None or not row.output.exists():
        return False
    try:
        return read_metadata(row.output).get("batch_request") == row.request()
    except (I2VError, OSError):
        return False


# ---- engines ----------------------------------------------------------------------------------


class RowRunner:
    """Generates rows on one device with warm models (the unit both engines replicate)."""

    def __init__(self, default_model: str | None, device: str | None):
        from .server.worker import WarmModels

        self.default_model = default_model
        self.models = WarmModels(device, max_models=1)

    def run(self, row: BatchRow):
        from .types import GenerationRequest

        generator = self.models.get(row.model or self.default_model)
        return generator.run(GenerationRequest(image=row.image, last_image=row.last_image, init_video=row.init_video,
                                               **row.fields))  # camera_path / trajectory among the fields


def _save(row: BatchRow, result) -> None:
    from .validate import check_output_file

    check_output_file(row.output, row.inputs())
    result.settings["batch_request"] = row.request()
    result.save(row.output)


def _run_row(runner: RowRunner, row: BatchRow):
    """(row number, result or None, error or None, seconds): the same shape from every engine. Any
    failure of one row (out of memory included) is that row's error; the batch goes on."""
    t0 = time.perf_counter()
    try:
        return row.number, runner.run(row), None, time.perf_counter() - t0
    except Exception as exc:
        return row.number, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


def _collect(row: BatchRow, outcome, results: list[BatchResult], progress) -> None:
    """Write a finished row's video (here, in the process that owns the outputs) and record it."""
    _, result, error, seconds = outcome
    if error is None:
        try:
            _save(row, result)
            results.append(BatchResult(row, "done", seconds, notices=result.notices))
        except Exception as exc:
            results.append(BatchResult(row, "failed", seconds, f"{type(exc).__name__}: {exc}"))
    else:
        results.append(BatchResult(row, "failed", seconds, error))
    progress(results[-1])


_PROCESS_RUNNER: RowRunner | None = None


def _process_init(model: str | None, device: str) -> None:
    global _PROCESS_RUNNER
    _PROCESS_RUNNER = RowRunner(model, device)


def _process_run(row: BatchRow):
    return _run_row(_PROCESS_RUNNER, row)


def run_local(rows: list[BatchRow], default_model: str | None, devices: list[str | None], progress,
              results: list[BatchResult]) -> list[BatchResult]:
    """One device: in this process. Several (``cuda:0,cuda:1``, or ``cpu,cpu``): one process per device,
    each with its model warm, the next row going to whichever is free. Appends to ``results``."""
    if len(devices) <= 1:
        runner = RowRunner(default_model, devices[0] if devices else None)
        for row in rows:
            _collect(row, _run_row(runner, row), results, progress)
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no forked CUDA or torch thread state
    pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_process_init, initargs=(default_model, d))
             for d in devices]
    queue, pending = list(rows), {}
    try:
        for pool in pools:
            if queue:
                row = queue.pop(0)
                pending[pool.submit(_process_run, row)] = (pool, row)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pool, row = pending.pop(future)
                _collect(row, future.result(), results, progress)
                if queue:
                    nxt = queue.pop(0)
                    pending[pool.submit(_process_run, nxt)] = (pool, nxt)
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)
    return results


def run_ray(rows: list[BatchRow], default_model: str | None, address: str | None, actors: int | None,
            gpus_per_actor: float, progress, results: list[BatchResult]) -> list[BatchResult]:
    """The rows on a Ray cluster: actors that keep a model warm; frames come back here to be written."""
    try:
        import ray
    except ImportError as exc:
        raise I2VError("--engine ray needs Ray: pip install 'i2v[ray]'") from exc

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        if actors is None:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            actors = max(1, gpus) if gpus else 1
        options = {"num_gpus": gpus_per_actor} if gpus_per_actor else {"num_cpus": 1}

        @ray.remote
        class RayRowRunner:
            def __init__(self, model, device):
                self.runner = RowRunner(model, device)

            def run(self, row):
                return _run_row(self.runner, row)

        device = "cuda" if gpus_per_actor else "cpu"
        pool = [RayRowRunner.options(**options).remote(default_model, device) for _ in range(actors)]
        queue, pending = list(rows), {}
        for actor in pool:  # one row in flight per actor: the next goes to whichever finishes first
            if queue:
                row = queue.pop(0)
                pending[actor.run.remote(row)] = (actor, row)
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            actor, row = pending.pop(ready)
            _collect(row, ray.get(ready), results, progress)
            if queue:
                nxt = queue.pop(0)
                pending[actor.run.remote(nxt)] = (actor, nxt)
        return results
    finally:
        if started_here:
            ray.shutdown()


def write_results(path: Path, results: list[BatchResult]) -> None:
    from .io.temps import partial_sibling

    with partial_sibling(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(RESULT_COLUMNS)
            for r in sorted(results, key=lambda r: r.row.number):
                writer.writerow([r.row.number, r.row.image or "", r.row.output or "", r.status, f"{r.seconds:.3f}",
                                 r.error or ""])
        tmp.replace(path)


def default_devices() -> list[str | None]:
    """``local``'s devices: every GPU when there are several, else the default device."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] if count > 1 else [None]


def run_batch(manifest: str | Path, out_dir: str | Path, *, model: str | None = None, fmt: str = "mp4",
              engine: str = "local", devices: list[str | None] | None = None, base_seed: int = 0,
              ray_address: str | None = None, ray_actors: int | None = None, ray_gpus_per_actor: float = 0.0,
              show_progress: bool = True) -> list[BatchResult]:
    """Run a manifest; returns every row's result (also written to ``out_dir/results.csv``)."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if engine not in ("local", "ray"):
        raise I2VError(f"--engine must be local or ray, got {engine!r}")
    rows = read_manifest(manifest, out_dir, fmt=fmt, base_seed=base_seed)
    from .registry import resolve_model

    default_name = model if model is not None else resolve_model(None).name
    for row in rows:  # the model that runs is part of what a rerun compares
        row.model = row.model or default_name
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [BatchResult(r, "invalid", error=r.error) for r in rows if r.error]
    todo = [r for r in rows if not r.error]
    skipped = [r for r in todo if already_done(r)]
    results += [BatchResult(r, "skipped") for r in skipped]
    todo = [r for r in todo if r not in skipped]
    bar = tqdm(total=len(todo), unit="video", disable=not show_progress, dynamic_ncols=True)

    def progress(result: BatchResult) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{result.status} row {result.row.number}")

    try:
        if engine == "local":
            run_local(todo, model, devices or default_devices(), progress, results)
        else:
            run_ray(todo, model, ray_address, ray_actors, ray_gpus_per_actor, progress, results)
    finally:
        bar.close()
        write_results(out_dir / "results.csv", results)
    return results
