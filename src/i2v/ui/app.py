"""The web UI: a Gradio app mounted on ``i2v serve``'s FastAPI server at ``/ui``.

It submits through the same job queue as the REST API (so its jobs show there, survive restarts
and can be cancelled from either side) and reads the same store. Tabs:
- **Generate**: image (upload, drag and drop, paste), prompt, model with its defaults filled in and
  the fields it does not take hidden (a last image, an init video and its strength only for the
  models that take them; a camera path and trajectories, in the advanced settings, only for the
  models whose denoiser follows them), advanced settings (a window: a long video in chained windows),
  Generate / Cancel, a live progress bar with step and ETA, the video, downloads (video, settings
  JSON) and the notices;
- **History**: past jobs with thumbnails, filter by model, use a job's settings again, delete.
Gradio serves only its own cache folder and the server's outputs and thumbnails (no other path).
"""

import json
import os
import random
import shutil
import time
from pathlib import Path

from ..motion import MOTION_INPUTS  # text boxes in the advanced settings, for the models that take them
from ..server.schemas import OUTPUT_FORMATS, JobOut, ServerConfig
from ..server.store import FINISHED, JobStore
from ..server.studies import Side, StudyStore

# window: a long video in chained windows of that many frames (no model default: empty, one pass)
ADVANCED = ("num_frames", "fps", "height", "width", "num_inference_steps", "guidance_scale", "window")
STUDY_FIELDS = (*ADVANCED, "negative_prompt", "motion_strength")  # what a study side may set
SEED_MAX = 2**31 - 1


def ui_folders(config: ServerConfig) -> dict[str, Path]:
    folders = {name: config.data_dir / name for name in ("outputs", "thumbs", "exports", "studies", "ui-cache")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def served_specs(config: ServerConfig) -> dict:
    """Model name (as a request gives it) -> ModelSpec, for the models this server serves."""
    from ..registry import list_models, resolve_model

    names = list(config.models) if config.models else [m.name for m in list_models()]
    return {name: resolve_model(name) for name in names}


def model_view(spec) -> dict:
    """What the Generate tab shows for a model: its defaults, and which fields it takes."""
    from ..registry import backend_class

    backend = backend_class(spec.family)
    family, d = backend.family, spec.defaults
    return {"defaults": {k: getattr(d, k, None) for k in ADVANCED}, "uses_prompt": bool(d.uses_prompt),
            "last_image": "last_image" in family.inputs, "motion_strength": "motion_strength" in family.inputs,
            "init_video": "init_video" in family.inputs,
            # per model: the embedded family's warping models only
            **{name: backend.takes_motion(spec, name) for name in MOTION_INPUTS}}


def progress_html(step: int, total: int, eta: float | None, state: str) -> str:
    eta_text = f", about {eta:.0f} s left" if eta is not None else ""
    label = f"{state}: step {step}/{total}{eta_text}" if total else state
    return (f'<div id="i2v-progress-box"><progress id="i2v-progress" value="{step}" max="{max(total, 1)}" '
            f'style="width:100%"></progress><div id="i2v-progress-label">{label}</div></div>')


def thumbnail(job, folders: dict[str, Path]) -> str | None:
    """The first frame of a finished job's video, cached as ``thumbs/<id>.png``."""
    if job.state != "succeeded" or not job.output_path:
        return None
    path = folders["thumbs"] / f"{job.id}.png"
    if not path.exists():
        from PIL import Image

        from ..errors import I2VError
        from ..io.video import read_video

        try:
            frames, _ = read_video(folders["outputs"] / Path(job.output_path).name)
        except (I2VError, OSError):  # a missing or damaged video: no thumbnail, the rest of History stands
            return None
        Image.fromarray(frames[0]).save(path)
    return str(path)


def uploaded_file(path: str, cache: Path, cap: int, field: str) -> Path:
    """A file the browser uploaded: a regular file inside Gradio's upload cache, at most ``cap`` bytes.
    Anything else is refused (``ValueError``): a request can never make the UI read a server path."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(cache.resolve()) or not resolved.is_file():
        raise ValueError(f"{field}: not a file uploaded through this page")
    if resolved.stat().st_size > cap:
        raise ValueError(f"{field}: larger than the limit of {cap} bytes")
    return resolved


def study_items(images: list[str], prompts: str | None, table: str | None) -> list[tuple[str, str]]:
    """(image path, prompt) per study item: from a CSV (``image``: an uploaded file's name, ``prompt``),
    or the uploads and the prompt lines, the shorter list repeated. ``ValueError`` names a problem."""
    by_name = {Path(p).name: p for p in images}
    if table:
        import csv

        try:
            with open(table, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValueError(f"The CSV cannot be read ({exc}).") from exc
        if not rows or "image" not in rows[0]:
            raise ValueError("The CSV needs a header with an 'image' column (and 'prompt').")
        short = [n for n, r in enumerate(rows, start=2) if None in r.values() or None in r]
        if short:
            raise ValueError(f"The CSV's line {short[0]} has more or fewer fields than its header.")
        missing = sorted({r["image"] for r in rows if r.get("image") not in by_name})
        if missing:
            raise ValueError(f"The CSV names images that were not uploaded: {', '.join(missing[:5])}.")
        return [(by_name[r["image"]], (r.get("prompt") or "").strip()) for r in rows]
    lines = [line.strip() for line in (prompts or "").splitlines() if line.strip()]
    count = max(len(images), len(lines) or 1)
    return [(images[i % len(images)], lines[i % len(lines)] if lines else "") for i in range(count)]


def build_ui(store: JobStore, config: ServerConfig):
    import gradio as gr

    from ..server.submission import (SubmitError, accept_image, accept_video, check_room, default_model, motion_fields,
                                     new_job_id, queue_job, video_suffix)

    folders = ui_folders(config)
    specs = served_specs(config)
    names = list(specs)
    default = default_model(config)  # the embedded default where it is served, else the first listed
    first = model_view(specs[default])

    def show_inputs(name):
        """The fields the model takes, shown; the others hidden."""
        view = model_view(specs[name])
        return (gr.update(visible=view["uses_prompt"]), gr.update(visible=view["uses_prompt"]),
                gr.update(visible=view["last_image"]), gr.update(visible=view["motion_strength"]),
                gr.update(visible=view["init_video"]), gr.update(visible=view["init_video"]),
                *(gr.update(visible=view[name]) for name in MOTION_INPUTS))

    def reset_to_model(name):
        """A model picked by the user: its defaults in the advanced fields, the inputs it alone took cleared."""
        d = model_view(specs[name])["defaults"]
        return None, None, *(gr.update(value=d[k]) for k in ADVANCED)

    def receive(path: str | None, stem: str, field: str, video: bool = False):
        if not path:
            return None
        from ..io.temps import partial_sibling

        if video:
            video_suffix(path, field)
        try:
            cap = config.max_video_upload_bytes if video else config.max_upload_bytes
            source = uploaded_file(path, folders["ui-cache"], cap, field)
        except ValueError as exc:
            raise SubmitError(422, str(exc)) from exc
        with partial_sibling(config.data_dir / "inputs" / stem) as tmp:
            shutil.copyfile(source, tmp)
            return (accept_video if video else accept_image)(tmp, config, stem, field, Path(path).name)

    def generate(image, last_image, init_video, strength, prompt, negative, model, *rest):
        advanced, (seed, randomize, motion, fmt, profile, *paths) = rest[:len(ADVANCED)], rest[len(ADVANCED):]
        if not image:
            raise gr.Error("Add an image first (upload, drop or paste one).")
        view = model_view(specs[model])
        fields = {k: (int(v) if k not in ("fps", "guidance_scale") else float(v))
                  for k, v in zip(ADVANCED, advanced) if v is not None and (v or k != "window")}  # window 0: one pass
        if view["uses_prompt"]:
            fields.update(prompt=prompt or "", negative_prompt=negative or "")
        fields["seed"] = random.randint(0, SEED_MAX) if randomize or seed is None else int(seed)
        if view["motion_strength"] and motion is not None:
            fields["motion_strength"] = float(motion)
        if view["init_video"] and init_video and strength is not None:
            fields["strength"] = float(strength)
        fields.update(motion_fields(**{name: text for name, text in zip(MOTION_INPUTS, paths) if view[name]}))
        job_id = new_job_id()
        accepted = {}
        try:
            check_room(store, config, fmt)
            accepted["image"] = receive(image, job_id, "image")
            if view["last_image"] and last_image:
                accepted["last_image"] = receive(last_image, f"{job_id}-last", "last_image")
            if view["init_video"] and init_video:
                accepted["init_video"] = receive(init_video, f"{job_id}-init", "init_video", video=True)
            job, _ = queue_job(store, config, job_id=job_id, model=model, output_format=fmt, fields=fields,
                               **accepted, profile=None if profile == "default" else profile)
        except SubmitError as exc:
            for upload in accepted.values():  # a refused later upload: the earlier ones go too
                (config.data_dir / "inputs" / upload.name).unlink(missing_ok=True)
            raise gr.Error(exc.detail) from exc
        yield job.id, progress_html(0, 0, None, "queued"), None, None, "", gr.update(value=fields["seed"])
        while True:
            job = store.get(job.id)
            out = JobOut.of(job)
            if job.state in FINISHED:
                break
            yield (job.id, progress_html(job.progress_step, job.progress_total, out.progress.eta_seconds, job.state),
                   gr.update(), gr.update(), gr.update(), gr.update())
            time.sleep(0.1)
        notices = "\n".join(f"- {n}" for n in job.request.get("submit_notices", []) + job.notices)
        if job.state != "succeeded":
            message = "cancelled" if job.state == "cancelled" else f"failed: {job.error}"
            yield job.id, progress_html(job.progress_step, job.progress_total, None, message), None, None, notices, \
                gr.update()
            return
        video = folders["outputs"] / Path(job.output_path).name
        files = [str(video), str(video.with_name(video.name + ".json"))]
        if video.suffix != ".gif":  # a GIF to download as well, made from the video
            from ..io.video import read_video, write_video

            gif = folders["exports"] / f"{job.id}.gif"
            if not gif.exists():
                frames, fps = read_video(video)
                write_video(frames, gif, fps=min(fps, 50.0))
            files.insert(1, str(gif))
        yield job.id, progress_html(job.progress_total, job.progress_total, None, "succeeded"), str(video), files, \
            notices, gr.update()

    def cancel(job_id):
        if job_id:
            store.cancel(job_id)
        return progress_html(0, 0, None, "cancelling") if job_id else gr.update()

    # a click on a history row picks its job (Gradio reads the SelectData annotation at run time, which is
    # why this module does without `from __future__ import annotations`)
    def pick_row(rows, evt: gr.SelectData):
        return str(rows.iloc[evt.index[0], 0]) if len(rows) else ""

    def history(model_filter):
        jobs, _ = store.list(limit=200)
        if model_filter and model_filter != "all":
            jobs = [j for j in jobs if j.model == model_filter]
        rows = [[j.id, j.state, j.model, j.request.get("fields", {}).get("prompt", ""),
                 j.request.get("fields", {}).get("seed"), time.strftime("%Y-%m-%d %H:%M:%S",
                                                                        time.localtime(j.created_at))]
                for j in jobs]
        thumbs = [(t, j.request.get("fields", {}).get("prompt", "") or j.id) for j in jobs
                  if (t := thumbnail(j, folders))]
        return rows, thumbs

    def use_again(job_id):
        job = store.get((job_id or "").strip())
        if job is None:
            raise gr.Error(f"No job {job_id!r}.")
        f = job.request.get("fields", {})
        image = config.data_dir / "inputs" / job.request["image"]
        return (str(image) if image.exists() else None, f.get("prompt", ""), f.get("negative_prompt", ""), job.model,
                *(f.get(k) for k in ADVANCED), f.get("seed"), False, *(f.get(k, "") for k in MOTION_INPUTS),
                gr.Tabs(selected="generate"))

    def delete(job_id, model_filter):
        job = store.get((job_id or "").strip())
        if job is None:
            raise gr.Error(f"No job {job_id!r}.")
        if job.state not in FINISHED:
            raise gr.Error("That job has not finished: cancel it first.")
        store.delete(job.id, config.data_dir)
        (folders["thumbs"] / f"{job.id}.png").unlink(missing_ok=True)
        (folders["exports"] / f"{job.id}.gif").unlink(missing_ok=True)
        return history(model_filter)

    # ---- Compare: a blind A/B study ----
    studies = StudyStore(store)

    def side_of(label, model_name, settings_text, default_label) -> Side:
        try:
            settings = json.loads(settings_text or "{}")
        except ValueError as exc:
            raise gr.Error(f"Side {default_label}: settings are not JSON ({exc}).") from exc
        if not isinstance(settings, dict) or set(settings) - set(STUDY_FIELDS):
            raise gr.Error(f"Side {default_label}: settings are a JSON object of {', '.join(STUDY_FIELDS)}.")
        return Side(label=(label or default_label).strip(), model=model_name, fields=settings)

    def start_study(name, label_a, model_a, settings_a, label_b, model_b, settings_b, images, prompts, table, seed):
        side_a = side_of(label_a, model_a, settings_a, "A")
        side_b = side_of(label_b, model_b, settings_b, "B")
        if side_a.label == side_b.label:
            raise gr.Error("Give the two sides different labels.")
        images = [f if isinstance(f, str) else f.name for f in (images or [])]
        if not images:
            raise gr.Error("Add at least one image.")
        table = table if isinstance(table, str) or table is None else table.name
        try:
            images = [str(uploaded_file(p, folders["ui-cache"], config.max_upload_bytes, "images")) for p in images]
            if table:
                table = str(uploaded_file(table, folders["ui-cache"], 1024 * 1024, "CSV"))
            items = study_items(images, prompts, table)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        count = len(items)
        pairs, jobs = [], []
        try:
            for item, (image_path, prompt) in enumerate(items):
                jobs = []
                for side in (side_a, side_b):
                    job_id = new_job_id()
                    check_room(store, config, "mp4")
                    accepted = receive(image_path, job_id, "image")
                    fields = {**side.fields, "prompt": prompt, "seed": int(seed or 0) + item}
                    job, _ = queue_job(store, config, job_id=job_id, model=side.model, output_format="mp4",
                                       fields=fields, image=accepted)
                    jobs.append(job.id)
                pairs.append((prompt, Path(image_path).name, jobs[0], jobs[1]))
        except SubmitError as exc:  # nothing of a study that could not start stays queued
            for job_id in [j for _, _, a, b in pairs for j in (a, b)] + jobs:
                store.cancel(job_id)
            raise gr.Error(exc.detail) from exc
        study_id = studies.create(name or "study", side_a, side_b, pairs)
        return study_id, f"Study {study_id}: {count} pairs queued ({2 * count} videos).", set()

    def known_study(study_id) -> str:
        study_id = (study_id or "").strip()
        if not study_id:
            raise gr.Error("Start a study first, or paste a study id.")
        try:
            studies.sides(study_id)
        except KeyError:
            raise gr.Error(f"No study {study_id!r}.") from None
        return study_id

    def next_pair(study_id, seen):
        study_id = known_study(study_id)
        seen = set(seen or ())
        pairs = studies.pairs(study_id)
        ready = [p for p in studies.ready_pairs(study_id) if p.item not in seen]
        if not ready:
            waiting = len(pairs) - len(studies.ready_pairs(study_id))
            text = f"All ready pairs voted on ({len(seen)} of {len(pairs)})." + \
                (f" {waiting} still generating: try again shortly." if waiting else "")
            return None, None, text, None, seen
        pair = ready[0]
        left, right = (pair.job_a, pair.job_b) if pair.left_is_a else (pair.job_b, pair.job_a)
        paths = [str(folders["outputs"] / Path(store.get(j).output_path).name) for j in (left, right)]
        return paths[0], paths[1], f"Pair {len(seen) + 1} of {len(pairs)}: *{pair.prompt or '(no prompt)'}*", \
            pair.item, seen

    def vote(study_id, item, seen, screen_choice):
        study_id = known_study(study_id)
        pair = next((p for p in studies.pairs(study_id) if p.item == item), None)
        if pair is None:
            raise gr.Error("Show a pair of this study first (press Next pair).")
        choice = "tie" if screen_choice == "tie" else \
            ("a" if (screen_choice == "left") == pair.left_is_a else "b")
        studies.vote(study_id, item, choice)
        return next_pair(study_id, set(seen or ()) | {item})

    def study_results(study_id):
        study_id = known_study(study_id)
        result = studies.results(study_id)
        folder = config.data_dir / "studies"
        folder.mkdir(exist_ok=True)
        (folder / f"{study_id}.csv").write_text(studies.results_csv(study_id), encoding="utf-8")
        (folder / f"{study_id}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        rows = [[r["side"], r["model"], r["votes"], r["wins"], r["losses"], r["ties"], round(r["win_rate"], 3),
                 f"{r['ci95'][0]:.3f} to {r['ci95'][1]:.3f}", round(r["bradley_terry"], 3)] for r in result["sides"]]
        return rows, [str(folder / f"{study_id}.csv"), str(folder / f"{study_id}.json")]

    with gr.Blocks(title="i2v") as ui:
        gr.Markdown("# i2v: an image and a prompt in, a short video out")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column():
                        image = gr.Image(type="filepath", label="Image", sources=["upload", "clipboard"],
                                         elem_id="i2v-image")
                        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="i2v-prompt",
                                            placeholder="the camera pans left", visible=first["uses_prompt"])
                        negative = gr.Textbox(label="Negative prompt", elem_id="i2v-negative",
                                              visible=first["uses_prompt"])
                        model = gr.Dropdown(names, value=default, label="Model", elem_id="i2v-model")
                        last_image = gr.Image(type="filepath", label="Last image", sources=["upload", "clipboard"],
                                              visible=first["last_image"], elem_id="i2v-last-image")
                        # video-to-video; passed on as uploaded (include_audio: no re-encoding), its extension kept
                        init_video = gr.Video(label="Init video (video-to-video, optional)", sources=["upload"],
                                              include_audio=True, visible=first["init_video"],
                                              elem_id="i2v-init-video")
                        strength = gr.Slider(0.05, 1, value=0.7, step=0.05, label="strength",
                                             info="how much of the init video is re-generated: low keeps its layout "
                                                  "and motion, 1 re-generates all of it",
                                             visible=first["init_video"], elem_id="i2v-strength")
                        with gr.Accordion("Advanced settings", open=False):
                            advanced = [gr.Number(value=first["defaults"][k], label=k.replace("_", " "),
                                                  precision=None if k in ("fps", "guidance_scale") else 0,
                                                  elem_id=f"i2v-{k}") for k in ADVANCED]
                            with gr.Row():
                                seed = gr.Number(value=0, precision=0, label="seed", elem_id="i2v-seed")
                                randomize = gr.Checkbox(value=True, label="random seed", elem_id="i2v-randomize")
                            motion = gr.Slider(0, 1, value=0.5, label="motion strength",
                                               visible=first["motion_strength"], elem_id="i2v-motion")
                            camera_path = gr.Textbox(label="Camera path", elem_id="i2v-camera-path",
                                                     placeholder="1s: pan right 0.25; 1.5s: zoom in 1.5",
                                                     info="keyframes TIME: pan / tilt (frames of travel) / zoom; "
                                                          "linear between them, held after the last",
                                                     visible=first["camera_path"])
                            trajectory = gr.Textbox(label="Trajectories", elem_id="i2v-trajectory",
                                                    placeholder="red ball: 0.3,0.5 -> 0.7,0.5; boat: 0.2,0.8 -> "
                                                                "0.2,0.6",
                                                    info="per object NAME: x,y -> x,y (fractions of the frame, 0,0 "
                                                         "top left); the first point is on the object in the image",
                                                    visible=first["trajectory"])
                            fmt = gr.Radio(list(OUTPUT_FORMATS), value="mp4", label="output format")
                            profile = gr.Radio(["default", "speed", "memory"], value="default", label="profile",
                                               info="speed: the fastest settings for this model and device; "
                                                    "memory: the least memory")
                        with gr.Row():
                            go = gr.Button("Generate", variant="primary", elem_id="i2v-generate")
                            stop = gr.Button("Cancel", elem_id="i2v-cancel")
                    with gr.Column():
                        bar = gr.HTML(progress_html(0, 0, None, "idle"), elem_id="i2v-progress-html")
                        video = gr.Video(label="Video", elem_id="i2v-video", autoplay=True, loop=True)
                        downloads = gr.File(label="Downloads", file_count="multiple", elem_id="i2v-downloads")
                        notices = gr.Markdown(elem_id="i2v-notices")
                job_id = gr.Textbox(visible=False, elem_id="i2v-job-id")
            with gr.Tab("History", id="history"):
                with gr.Row():
                    model_filter = gr.Dropdown(["all"] + names, value="all", label="Model")
                    refresh = gr.Button("Refresh", elem_id="i2v-refresh")
                table = gr.Dataframe(headers=["id", "state", "model", "prompt", "seed", "created"],
                                     interactive=False, elem_id="i2v-history")
                gallery = gr.Gallery(label="Videos (first frames)", columns=6, elem_id="i2v-gallery")
                with gr.Row():
                    picked = gr.Textbox(label="Job id", elem_id="i2v-picked")
                    again = gr.Button("Use these settings again", elem_id="i2v-again")
                    remove = gr.Button("Delete", variant="stop", elem_id="i2v-delete")

        # what a model takes follows every change of the model (a "use again" too); its defaults follow only a
        # person's pick (.input): change also fires when the page settles or "use again" sets the model, and
        # would put the defaults over what the user (or the earlier job) set
        model.change(show_inputs, model, [prompt, negative, last_image, motion, init_video, strength, camera_path,
                                          trajectory])
        model.input(reset_to_model, model, [last_image, init_video, *advanced])
        go.click(generate, [image, last_image, init_video, strength, prompt, negative, model, *advanced, seed,
                            randomize, motion, fmt, profile, camera_path, trajectory],
                 [job_id, bar, video, downloads, notices, seed], concurrency_limit=None)
        stop.click(cancel, job_id, bar)
        refresh.click(history, model_filter, [table, gallery])
        model_filter.change(history, model_filter, [table, gallery])
        table.select(pick_row, table, picked)
        again.click(use_again, picked, [image, prompt, negative, model, *advanced, seed, randomize, camera_path,
                                        trajectory, tabs])

        with tabs:
            with gr.Tab("Compare", id="compare"):
                gr.Markdown("Blind A/B study: both sides make a video of every image and prompt (same seed), "
                            "then pairs are shown with left and right drawn at random. Vote for the better one.")
                study_name = gr.Textbox(label="Study name", value="study", elem_id="i2v-study-name")
                with gr.Row():
                    with gr.Column():
                        label_a = gr.Textbox(value="A", label="Side A label", elem_id="i2v-label-a")
                        model_a = gr.Dropdown(names, value=default, label="Side A model")
                        settings_a = gr.Textbox(value="{}", label="Side A settings (JSON)", elem_id="i2v-settings-a")
                    with gr.Column():
                        label_b = gr.Textbox(value="B", label="Side B label", elem_id="i2v-label-b")
                        model_b = gr.Dropdown(names, value=default, label="Side B model")
                        settings_b = gr.Textbox(value="{}", label="Side B settings (JSON)", elem_id="i2v-settings-b")
                study_images = gr.File(label="Images", file_count="multiple", file_types=["image"],
                                       elem_id="i2v-study-images")
                with gr.Row():
                    study_prompts = gr.Textbox(label="Prompts, one per line", lines=4, elem_id="i2v-study-prompts")
                    study_table = gr.File(label="or a CSV: image (an uploaded file's name), prompt",
                                          file_types=[".csv"], elem_id="i2v-study-csv")
                study_seed = gr.Number(value=0, precision=0, label="first seed")
                start = gr.Button("Start study", variant="primary", elem_id="i2v-study-start")
                study_id = gr.Textbox(label="Study id", elem_id="i2v-study-id")
                study_status = gr.Markdown(elem_id="i2v-study-status")
                seen = gr.State(set())
                current = gr.State(None)
                show = gr.Button("Next pair", elem_id="i2v-next-pair")
                pair_text = gr.Markdown(elem_id="i2v-pair-text")
                with gr.Row():
                    left_video = gr.Video(label="Left", elem_id="i2v-left", autoplay=True, loop=True)
                    right_video = gr.Video(label="Right", elem_id="i2v-right", autoplay=True, loop=True)
                with gr.Row():
                    vote_left = gr.Button("Left is better", elem_id="i2v-vote-left")
                    vote_tie = gr.Button("Tie", elem_id="i2v-vote-tie")
                    vote_right = gr.Button("Right is better", elem_id="i2v-vote-right")
                results = gr.Button("Results", elem_id="i2v-results")
                results_table = gr.Dataframe(headers=["side", "model", "votes", "wins", "losses", "ties", "win rate",
                                                      "95% interval", "Bradley-Terry"], interactive=False,
                                             elem_id="i2v-results-table")
                results_files = gr.File(label="Export", file_count="multiple", elem_id="i2v-results-files")
        start.click(start_study, [study_name, label_a, model_a, settings_a, label_b, model_b, settings_b,
                                  study_images, study_prompts, study_table, study_seed], [study_id, study_status, seen])
        pair_outputs = [left_video, right_video, pair_text, current, seen]
        show.click(next_pair, [study_id, seen], pair_outputs)
        for button, choice in ((vote_left, "left"), (vote_right, "right"), (vote_tie, "tie")):
            button.click(lambda sid, item, s, c=choice: vote(sid, item, s, c), [study_id, current, seen],
                         pair_outputs)
        results.click(study_results, study_id, [results_table, results_files])
        remove.click(delete, [picked, model_filter], [table, gallery])
        ui.load(history, model_filter, [table, gallery])
    return ui


def mount_ui(app, store: JobStore, config: ServerConfig, path: str = "/ui"):
    """Mount the UI on the server's FastAPI app; Gradio serves only its cache, outputs and thumbnails."""
    import gradio as gr

    folders = ui_folders(config)
    os.environ["GRADIO_TEMP_DIR"] = str(folders["ui-cache"])  # uploads land in the data dir, not /tmp
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    ui = build_ui(store, config)
    auth = (lambda user, password: password == config.token) if config.token else None
    return gr.mount_gradio_app(app, ui, path=path, allowed_paths=[str(folders[k]) for k in ("outputs", "thumbs", "exports", "studies")],
                               auth=auth, auth_message="The server's token is the password (any user name).",
                               max_file_size=max(config.max_upload_bytes, config.max_video_upload_bytes),
                               show_error=True,
                               footer_links=["gradio", "settings"])  # the REST API at /docs is the API

