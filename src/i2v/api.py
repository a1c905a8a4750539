"""The Python API: ImageToVideoGenerator (load once, generate many); its objects live in ``i2v.types``.

    gen = ImageToVideoGenerator()                      # the embedded model, offline
    frames = gen.generate(image_path="cat.png", prompt="the red ball moves left", seed=0)
    gen.save_video(frames, "out.mp4")

``generate`` is the convenience call (keyword arguments in, frames out); ``run(GenerationRequest)``
is the dataclass API underneath it. Defaults (frames, size, fps, steps, guidance) come from the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import __version__
from .backends.base import Backend
from .devices import pick_device
from .motion import MOTION_INPUTS
from .registry import backend_class, resolve_model
from .types import GenerationRequest, GenerationResult, LoadOptions, ModelSpec, ProgressCallback, request_record

__all__ = ["GenerationRequest", "GenerationResult", "ImageToVideoGenerator", "LoadOptions", "load_backend"]


def load_backend(spec: ModelSpec, device: str, options: LoadOptions | None = None) -> Backend:
    """Build the family's backend; it validates ``options`` before reading any weights."""
    return backend_class(spec.family)(spec, device, options or LoadOptions())


def check_request(spec: ModelSpec, request: GenerationRequest) -> list[str]:
    """The request checks every entry point makes before any weights load (the model's defaults
    filled, sizes and frames snapped, every number within its limit); returns the notices. A
    family's own further checks run when its backend resolves the request."""
    notices: list[str] = []
    backend_class(spec.family).resolve_for(spec, request, notices)
    return notices


class ImageToVideoGenerator:
    """Loads one model once and generates many clips with it.

    Args:
        model_name: a registered name (``i2v models``) or a local model folder; default: the
            embedded ``i2v-photo`` model shipped with the package (``registry.DEFAULT_MODEL``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``None``/``"auto"``.
        dtype: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``None`` (the model's own).
        show_progress: draw a progress bar on stderr while denoising.
    """

    def __init__(self, model_name: str | None = None, device: str | None = None, dtype: str | None = None,
                 show_progress: bool = False, *, options: LoadOptions | None = None, offload: str | None = None,
                 vae_tiling: bool = False, vae_slicing: bool = False, loras: list | None = None,
                 scheduler: str | None = None, profile: str | None = None, cache: str | None = None,
                 compile: bool = False, fp8_storage: bool = False, quantize: str | None = None,
                 forward_chunk: bool = False, cfg_cache: bool | int = False, cache_interval: int | None = None,
                 check_memory: bool = True):
        t0 = time.perf_counter()
        self.check_memory = check_memory  # refuse runs the memory planner says cannot fit (False: try anyway)
        self.spec = resolve_model(model_name)
        self.device = pick_device(device)
        # The loading switches as one LoadOptions (see i2v.types); the keywords are its fields.
        keywords = LoadOptions(dtype=dtype, offload=offload, vae_tiling=vae_tiling, vae_slicing=vae_slicing,
                               loras=loras or (), scheduler=scheduler, profile=profile, cache=cache,
                               cache_interval=cache_interval, cfg_cache=cfg_cache, compile=compile,
                               fp8_storage=fp8_storage, quantize=quantize, forward_chunk=forward_chunk)
        if options is not None and keywords.set_names():
            raise TypeError(f"pass the loading options either as options=LoadOptions(...) or as keywords, not both "
                            f"(got options and {', '.join(keywords.set_names())})")
        options = options if options is not None else keywords
        self.options = options
        self.backend = load_backend(self.spec, self.device, options)
        self.show_progress = show_progress
        self.load_seconds = time.perf_counter() - t0
        self.last_result: GenerationResult | None = None

    @property
    def defaults(self):
        return self.spec.defaults

    def run(self, request: GenerationRequest, callback: ProgressCallback | None = None) -> GenerationResult:
        """Generate one clip from a request; unset fields come from the model's defaults."""
        return self._run(request, callback)

    def generate_to_file(self, request: GenerationRequest, path: str | Path, callback: ProgressCallback | None = None,
                         metadata: dict | None = None) -> GenerationResult:
        """Generate one clip straight into ``path`` (format from the extension), with the frames and
        settings ``run(request).save(path)`` writes. A chained run (``window``) writes each window's
        frames as soon as no later window changes them, so it holds about a window's frames whatever
        its length (in mp4, webm or PNG frames; GIF and WebP are written whole at the end); a one-pass
        run writes its frames once made. The result's ``frames`` is None: they are in the file.
        ``metadata``: entries that replace the run's own in the saved settings (a server names the user's
        file, not the path of its upload)."""
        from .validate import check_output_file

        check_output_file(path, request_record(request).values(), model_folder=self.spec.source)
        return self._run(request, callback, output=Path(path), metadata=metadata)

    def _run(self, request: GenerationRequest, callback: ProgressCallback | None,
             output: Path | None = None, metadata: dict | None = None) -> GenerationResult:
        from .io.images import fit_image, input_notices, load_image

        timings: dict[str, float] = {}
        notices: list[str] = []
        t0 = time.perf_counter()
        loaded = replace(request, image=load_image(request.image))  # decoded once: sizing and fitting share it
        notices += input_notices(loaded.image)
        timings["load_image"] = time.perf_counter() - t0
        settings = self.backend.resolve(loaded, notices)  # validates before any heavy work
        if output is not None:  # a path the writer would refuse (GIF's frame rate too) fails before the work
            from .validate import check_output_target

            check_output_target(output, fps=settings.fps)
        if self.backend.needs_memory_plan():  # --offload auto: the planner decides, as --dry-run prints
            from .memory import plan_memory

            self.backend.fetch()
            plan = plan_memory(self.spec, settings, device=self.device, dtype=settings.extras.get("dtype"))
            self.backend.follow_memory_plan(plan.options, settings, notices)
        windows = self.chain_windows(loaded, settings) if "chain" in settings.extras else None
        if self.check_memory:
            self.check_fits(windows[0] if windows else settings)  # a chained run holds one window at a time
        t0 = time.perf_counter()
        image, fit = fit_image(loaded.image, settings.width, settings.height)
        if fit.changed:
            notices.append(fit.message)
        extra_inputs = {}
        if request.last_image is not None:  # fitted to the same size as the first frame
            last_loaded = load_image(request.last_image)
            notices += [f"last image: {n}" for n in input_notices(last_loaded)]
            last, last_fit = fit_image(last_loaded, settings.width, settings.height)
            if last_fit.changed:
                notices.append(f"last image: {last_fit.message}")
            extra_inputs["last_image"] = last
        if request.init_video is not None:  # its first frames, each fitted to the output size
            from .io.video_input import read_input_video

            extra_inputs["init_video"] = read_input_video(request.init_video, settings.num_frames, settings.width,
                                                          settings.height)
        timings["load_image"] += time.perf_counter() - t0
        if windows:
            planned = self.backend.plan_chain(settings, windows, image)  # before the record: what it plans is kept
            if planned:
                notices.append(planned)
            chain = settings.extras["chain"]
            held = self.continued_frames(chain["overlap"])
            if held and not planned:
                chain.update(handover=f"the first {held} of the {chain['overlap']} frames a window shares with the "
                                      "video before it, as latents held as they are; the first frame as each "
                                      "window's image", colour_match="none: the first frame anchors the colours")
                notices.append(f"the model continues each window from the {held} frames before it (history frames), "
                               "the first frame as its anchor")
            run_chain = partial(self.run_chain, windows, chain["kept_frames"], chain["overlap"], image, callback,
                                timings)
            if output is None:
                frames = run_chain()
            else:  # chained windows never make sound (resolve refuses a window to a model that does)
                frames = self._chain_to_file(run_chain, output, self._settings_record(request, settings, metadata),
                                             settings, timings)
        else:
            frames = self.backend.generate(settings, image, callback, timings, self.show_progress, **extra_inputs)
        # a backend whose model also makes sound (LTX-2) hands over this run's track: (samples, sample rate)
        sound = self.backend.take_audio() if hasattr(self.backend, "take_audio") else None
        result = GenerationResult(frames=frames, fps=settings.fps,
                                  settings=self._settings_record(request, settings, metadata),
                                  notices=notices, timings=timings, audio=sound[0] if sound else None,
                                  audio_sample_rate=sound[1] if sound else None)
        if output is not None and frames is not None:  # a one-pass run: all its frames come at once
            t0 = time.perf_counter()
            result.save(output)
            timings["write"] = time.perf_counter() - t0
            result.frames = None
        self.last_result = result
        return result

    def _settings_record(self, request: GenerationRequest, settings, metadata: dict | None = None) -> dict:
        """Everything needed to reproduce a run, as its output saves it (``metadata`` replacing entries)."""
        record = {"model": self.spec.name, "model_source": self.spec.source, **request_record(request),
                  **asdict(settings), "i2v_version": __version__}
        record.pop("extras", None)
        if not settings.prompt_schedule:
            record.pop("prompt_schedule")
        record.update(settings.extras)
        record.update(metadata or {})
        return record

    @staticmethod
    def _chain_to_file(run_chain, path: Path, record: dict, settings, timings: dict) -> None:
        """Run a chain with its frames streamed into ``path`` as they become final; the time spent
        writing goes to ``timings["write"]``."""
        from .io.video import VideoWriter

        writer = VideoWriter(path, settings.fps, {**record, "fps": settings.fps}, num_frames=settings.num_frames)
        timings["write"] = 0.0

        def write(frames: np.ndarray) -> None:
            t0 = time.perf_counter()
            writer.write(frames)
            timings["write"] += time.perf_counter() - t0

        with writer:
            run_chain(sink=write)
            t0 = time.perf_counter()
            writer.close()
            timings["write"] += time.perf_counter() - t0

    def chain_windows(self, request: GenerationRequest, settings) -> list:
        """The resolved settings of each window of a chained run (``settings.extras["chain"]``): its
        frame count, its prompt, the run's seed plus its index, the run's size."""
        chain = settings.extras["chain"]
        windows = []
        start = 0
        for i, (length, prompt) in enumerate(zip(chain["window_frames"], chain["window_prompts"])):
            window = replace(request, num_frames=length, prompt=prompt, seed=(settings.seed + i) % 2**63, window=None,
                             duration=None, height=settings.height, width=settings.width, camera_path=None,
                             trajectory=None)
            resolved = self.backend.resolve(window, [])
            resolved.extras["chain_window"] = i  # the window's place in the chain (a model that reads "it" needs it)
            # each window follows its stretch (from its start frame) of the video's camera path and trajectories
            resolved.extras.update({k: settings.extras[k] for k in MOTION_INPUTS if k in settings.extras},
                                   motion_window=[start, settings.num_frames])
            windows.append(resolved)
            start += chain["kept_frames"][i] - (chain["overlap"] if i == 0 else 0)
        return windows

    def continued_frames(self, overlap: int) -> int:
        """How many of the ``overlap`` frames a chained window shares with the video before it are handed to it
        as they are (their latents: a denoiser trained with history frames continues from them, the first
        frame as its image); 0: the window starts from one handover frame."""
        if not getattr(self.backend, "latent_handover", False):
            return 0
        return min(self.backend.history_frames(), overlap)

    def run_chain(self, windows: list, kept: list[int], overlap: int, image: Image.Image,
                  callback: ProgressCallback | None, timings: dict,
                  sink: Callable[[np.ndarray], None] | None = None) -> np.ndarray | None:
        """Generate chained windows one at a time: each from the video's frame ``overlap`` before its
        end so far, its colours matched to the first window's, cross-faded over the overlap
        (``i2v.long_video``); progress counts every window's steps. A window whose settings say ``anchored``
        (its motion planned from the first frame, ``Backend.plan_chain``) is made from the first frame instead:
        its frame 0 (never kept: the handover's place) is that frame, its colours are the first frame's. A
        model that continues a video (``Backend.history_frames``) gets each later window's first frames (up to
        ``overlap``) as the video's latents, held as they are, with the first frame as its image (the anchor for
        identity and colour). Returns the frames; with ``sink`` (a function taking ``(t, H, W, 3)`` uint8
        frames) hands each window's frames to it instead, as soon as no later window changes them, and returns
        None: at most a window's frames are held."""
        from .long_video import append_window, lab_stats, match_colours, pop_final

        steps = [w.extras.get("denoising_steps", w.num_inference_steps) for w in windows]
        latent = getattr(self.backend, "latent_handover", False)
        held = self.continued_frames(overlap)  # the shared frames handed over as latents (history frames)
        video: list[np.ndarray] = []  # the frames not yet handed to the sink
        reference, current, handover, anchor, history, done = None, image, None, None, None, 0
        for i, settings in enumerate(windows):
            report = None if callback is None else (lambda step, _, base=done: callback(base + step, sum(steps)))
            window_timings: dict[str, float] = {}
            anchored = i > 0 and settings.extras.get("anchored", False)  # made from the first frame (see below)
            if anchored or (i > 0 and held):  # the first frame stays the image (the anchor)
                current, handover = image, anchor
            extra = {"handover": handover} if handover is not None else {}
            if i > 0 and held and not anchored:  # its first frames are the video's last as they are
                extra["history"] = history
            part = self.backend.generate(settings, current, report, window_timings, self.show_progress, **extra)
            for key, value in window_timings.items():
                timings[key] = timings.get(key, 0.0) + value
            if reference is None:
                reference = lab_stats(part)
                anchor = self.backend.last_latents[:, :, 0] if latent else None
                video.extend(part[: kept[0]])
                last = kept[0] - 1  # the window's frame that is the video's last
            else:
                own = anchored or "history" in extra  # colours the first frame's: nothing to match
                append_window(video, part if own else match_colours(part, reference, ramp=not latent), overlap,
                              kept[i])
                last = overlap + kept[i] - 1
            current = Image.fromarray(video[-overlap])  # the next window's handover
            if latent:  # the same frame, as the window's own latents
                first = last - overlap + 1  # the window's frame the next one starts at
                handover = self.backend.last_latents[:, :, first]
                history = self.backend.last_latents[:, :, first: first + held]  # (1, C, k, h, w)
            done += steps[i]
            if sink is not None:  # all but the frames the next window cross-fades are final
                sink(pop_final(video, hold=overlap - 1 if i < len(windows) - 1 else 0))
        return np.stack(video) if sink is None else None

    def check_fits(self, settings) -> None:
        """Refuse a run that cannot fit in the device's free memory with its options (before any work)."""
        from .memory import check_run_fits

        e = settings.extras
        options = {k: e[k] for k in ("offload", "vae_tiling", "vae_slicing")
                   if e.get(k) not in (None, False, "none", "auto")}
        check_run_fits(self.spec, settings, self.device, dtype=e.get("dtype"), options=options,
                       weights_resident=self.backend.weights_resident())

    def generate(
        self,
        image_path: str | Path | None = None,
        prompt: str | Sequence = "",
        *,
        image: Image.Image | np.ndarray | None = None,
        negative_prompt: str = "",
        num_frames: int | None = None,
        fps: float | None = None,
        duration: float | None = None,
        window: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        motion_strength: float | None = None,
        callback: ProgressCallback | None = None,
        last_image: str | Path | Image.Image | np.ndarray | None = None,
        decode_chunk_size: int | None = None,
        init_video: str | Path | np.ndarray | None = None,
        strength: float | None = None,
        camera_path: str | Sequence | None = None,
        trajectory: str | dict | Sequence | None = None,
    ) -> np.ndarray:
        """Generate one clip and return its frames (T, H, W, 3) uint8. Pass ``image_path`` or ``image``.

        ``prompt`` is text, or a prompt schedule for the models that take one: ``"0s: ...; 3s: ..."``, a
        list of ``(seconds, prompt)`` pairs, or a list of prompts that share the video evenly.
        ``camera_path`` (``"1s: pan right 0.25; 1.5s: zoom 1.5"``) and ``trajectory`` (``"red ball: 0.3,0.5 ->
        0.7,0.5"``): motion decided by you, for the models that take it (``i2v.motion``).
        """
        if (image_path is None) == (image is None):
            raise ValueError("pass exactly one of image_path or image")
        given = locals()
        request = GenerationRequest(image=image_path if image_path is not None else image,
                                    **{f.name: given[f.name] for f in fields(GenerationRequest) if f.name != "image"})
        return self.run(request, callback=callback).frames

    def save_video(self, frames: Any, path: str | Path, fps: float | None = None) -> Path:
        """Write frames to ``path`` (format from the extension); fps defaults to the generation's.

        When ``frames`` are the last generated clip, its settings (and its sound track, if any) travel with the file.
        """
        from .io.video import as_frame_array, write_video
        from .validate import check_output_file

        last = self.last_result
        is_last = last is not None and frames is last.frames
        if fps is None:
            fps = last.fps if is_last else self.defaults.fps
        metadata = {**last.settings, "fps": fps} if is_last else {"model": self.spec.name, "fps": fps,
                                                                 "i2v_version": __version__}
        inputs = ([last.settings.get("image"), last.settings.get("last_image"), last.settings.get("init_video")]
                  if is_last else [])
        check_output_file(path, inputs, model_folder=self.spec.source)
        sound = {}
        if is_last and last.audio is not None:
            sound = dict(audio=last.audio, audio_sample_rate=last.audio_sample_rate)
        return write_video(as_frame_array(frames), path, fps=fps, metadata=metadata, **sound)
