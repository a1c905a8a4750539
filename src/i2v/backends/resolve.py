"""Filling a request from a model's defaults, and checking/snapping each value.

``fill_size`` chooses an unset height/width from the model's size policy and the input image;
``resolve_common`` fills every other field and snaps sizes and frame counts to the model's rules.
"""

from __future__ import annotations

import math
import numbers
import secrets
from dataclasses import replace

from ..errors import InvalidRequestError
from ..prompt_schedule import resolve_schedule
from ..types import GenerationRequest, ModelDefaults, ResolvedSettings

MAX_SEED = 2**63 - 1
# Upper bounds of a request, whatever the model (a model's own rules may be tighter); the README's
# limits table lists them. Beyond them a run is a mistake, not a video.
MAX_FRAMES = 1025
MAX_STEPS = 1000
MAX_SIDE = 8192
MAX_GUIDANCE = 100.0
DEFAULT_STRENGTH = 0.7  # video-to-video: the brief's 0.6-0.8


def _at_most(name: str, value: int, limit: int) -> int:
    if value > limit:
        raise InvalidRequestError(f"{name} {value} is more than i2v runs (at most {limit})")
    return value


def _positive_int(name: str, value) -> int:
    # floats are checked without int(): int(nan) / int(inf) raise plain ValueError / OverflowError
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())) or value < 1):
        raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _finite(name: str, value, low: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise InvalidRequestError(f"{name} must be a finite number >= {low}, got {value!r}")
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidRequestError(f"{name} must be a finite number >= {low}, got {value!r}")
    return number


def resolve_common(defaults: ModelDefaults, request, notices: list[str]) -> ResolvedSettings:
    """Unset fields take the model's defaults; sizes snap to the model's multiple (reported). A
    chained run's length (``request.window``) is any count: its windows keep the model's rule."""
    from ..io.images import snap_size

    fps = _finite("fps", request.fps if request.fps is not None else defaults.fps, low=0)
    if fps <= 0 or fps > 240:
        raise InvalidRequestError(f"fps must be in (0, 240], got {fps}")
    requested = request.num_frames
    if request.duration is not None:
        if request.num_frames is not None:
            raise InvalidRequestError("give num_frames or duration, not both")
        duration = _finite("duration", request.duration, low=0)
        requested = max(1, round(duration * fps))
        notices.append(f"duration {duration:g}s at {fps:g} fps: {requested} frames")
    num_frames = _at_most("num_frames", _positive_int(
        "num_frames", requested if requested is not None else defaults.num_frames), MAX_FRAMES)
    if num_frames < 2:
        raise InvalidRequestError(f"num_frames must be >= 2 for a video, got {num_frames}")
    if getattr(request, "window", None) is None:
        num_frames = snap_frames(defaults, num_frames, notices)
    height = _at_most("height", _positive_int(
        "height", request.height if request.height is not None else defaults.height), MAX_SIDE)
    width = _at_most("width", _positive_int("width", request.width if request.width is not None else defaults.width),
                     MAX_SIDE)
    width, height, notice = snap_size(width, height, defaults.size_multiple)
    if notice:
        notices.append(notice)
    steps = _at_most("num_inference_steps", _positive_int(
        "num_inference_steps",
        request.num_inference_steps if request.num_inference_steps is not None else defaults.num_inference_steps),
        MAX_STEPS)
    guidance = _finite("guidance_scale",
                       request.guidance_scale if request.guidance_scale is not None else defaults.guidance_scale, low=0)
    if guidance > MAX_GUIDANCE:
        raise InvalidRequestError(f"guidance_scale {guidance:g} is more than i2v runs (at most {MAX_GUIDANCE:g})")
    seed = request.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
        notices.append(f"no seed given; using seed {seed} (recorded in the output metadata)")
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidRequestError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    motion = request.motion_strength
    if motion is not None:
        motion = _finite("motion_strength", motion, low=0)
    if not isinstance(request.negative_prompt, str):
        raise InvalidRequestError("negative_prompt must be a string")
    prompt, schedule = resolve_schedule(request.prompt, num_frames, fps)
    for name, text in (("prompt", prompt), ("negative_prompt", request.negative_prompt)):
        try:  # bytes that were not UTF-8 on the command line arrive as lone surrogates
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequestError(f"{name} is not valid UTF-8 text (byte {exc.start}: "
                                      f"{text[exc.start:exc.end]!r})") from None
    return ResolvedSettings(
        prompt=prompt, negative_prompt=request.negative_prompt, num_frames=num_frames, fps=fps,
        height=height, width=width, num_inference_steps=steps, guidance_scale=guidance, seed=seed,
        motion_strength=motion, prompt_schedule=schedule,
    )


def snap_frames(defaults: ModelDefaults, num_frames: int, notices: list[str]) -> int:
    """Snap a frame count to the model's rule ``frame_offset + k * frame_step`` (nearest, ties up),
    within ``[min_frames, max_frames]``; a count above ``max_frames`` cannot run and is refused."""
    step = getattr(defaults, "frame_step", 1)
    offset = getattr(defaults, "frame_offset", 0)
    low = max(2, getattr(defaults, "min_frames", 2))
    high = getattr(defaults, "max_frames", None)
    if high is not None and num_frames > high:
        raise InvalidRequestError(
            f"num_frames {num_frames} is more than this model can generate (at most {high}; rule {defaults.frame_rule})"
        )
    snapped = num_frames
    if step > 1:
        snapped = offset + math.floor((num_frames - offset) / step + 0.5) * step
    while snapped < low:
        snapped += step
    while high is not None and snapped > high:
        snapped -= step
    if snapped != num_frames:
        notices.append(f"num_frames {num_frames} does not fit the model's rule ({defaults.frame_rule}); "
                       f"snapped to {snapped}")
    return snapped


def fill_size(defaults: ModelDefaults, request: GenerationRequest, notices: list[str]) -> GenerationRequest:
    """Choose an unset height/width from the model's size policy and the input image (reported)."""
    d = defaults
    if d.size_policy in ("default", "fixed"):
        return request
    if request.height is not None and request.width is not None:
        return request
    for side in (request.height, request.width):  # leave a bad given side to resolve_common's typed error
        if side is not None and (isinstance(side, bool) or not isinstance(side, numbers.Real)
                                 or not (math.isfinite(side) and 0 < side <= MAX_SIDE)):
            return request
    width, height = image_size(request.image)
    aspect = height / width
    if request.height is not None:  # one side given: the other follows the image's aspect ratio
        return replace(request, width=max(1, round(request.height / aspect)))
    if request.width is not None:
        return replace(request, height=max(1, round(request.width * aspect)))
    if d.size_policy == "orient":
        long, short = max(d.height, d.width), min(d.height, d.width)
        h, w = (long, short) if height > width else (short, long) if width > height else (d.height, d.width)
    else:  # "aspect": the default's pixel area at the image's aspect ratio
        h, w = aspect_size(d.height * d.width, aspect, d.size_multiple)
    if (h, w) != (d.height, d.width):
        notices.append(f"size {w}x{h} chosen for the {width}x{height} input (model default {d.width}x{d.height}, "
                       f"{'same orientation' if d.size_policy == 'orient' else 'same pixel area'})")
    return replace(request, height=h, width=w)


def image_size(image) -> tuple[int, int]:
    """(width, height) of the request's image, after EXIF orientation (validated like any input)."""
    import numpy as np
    from PIL import Image

    from ..io.images import load_image

    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return int(image.shape[1]), int(image.shape[0])
    return load_image(image).size


def aspect_size(area: int, aspect: float, multiple: int) -> tuple[int, int]:
    """(height, width) with ``height / width = aspect`` and about ``area`` pixels, rounded down to
    ``multiple`` (the Wan recipe: ``round(sqrt(area * aspect)) // mod * mod``)."""
    height = max(multiple, round(math.sqrt(area * aspect)) // multiple * multiple)
    width = max(multiple, round(math.sqrt(area / aspect)) // multiple * multiple)
    return height, width


def init_video_frames(defaults: ModelDefaults, request: GenerationRequest, notices: list[str]) -> tuple[
        GenerationRequest, int]:
    """Probe a request's init video (before any weights load); an unset ``num_frames`` becomes the
    video's length, at most the model's default, rounded down to the model's rule."""
    from ..io.video_input import probe_input_video

    available = probe_input_video(request.init_video)
    if request.num_frames is not None or request.duration is not None:
        return request, available
    count = min(available, defaults.num_frames)
    step, offset = getattr(defaults, "frame_step", 1), getattr(defaults, "frame_offset", 0)
    if step > 1 and count >= offset:
        count = offset + (count - offset) // step * step
    low = max(2, getattr(defaults, "min_frames", 2))
    if count < low:
        raise InvalidRequestError(f"the init video has {available} frames; this model needs at least {low}")
    notices.append(f"num_frames {count} from the init video ({available} frames)")
    return replace(request, num_frames=count), available


def resolve_strength(request: GenerationRequest, settings: ResolvedSettings, available: int,
                     notices: list[str]) -> None:
    """Check video-to-video's strength against the run; record the denoising steps it runs
    (``int(steps * strength)``, diffusers' rule: the first steps of the schedule are skipped)."""
    if settings.num_frames > available:
        raise InvalidRequestError(f"num_frames {settings.num_frames} is more than the init video's {available} "
                                  "frames")
    strength = request.strength
    if strength is None:
        strength = DEFAULT_STRENGTH
        notices.append(f"no strength given for the init video; using {DEFAULT_STRENGTH:g}")
    strength = _finite("strength", strength, low=0)
    if not 0 < strength <= 1:
        raise InvalidRequestError(f"strength must be in (0, 1] (1 re-generates the whole video), got {strength:g}")
    steps = int(settings.num_inference_steps * strength)
    if steps < 1:
        raise InvalidRequestError(f"strength {strength:g} with {settings.num_inference_steps} steps runs no denoising "
                                  f"step (int(steps x strength) = 0); raise the strength or the steps")
    settings.strength = strength
    settings.extras.update(init_video_frames=available, denoising_steps=steps)


def resolve_window(family, spec, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
    """Check a chained run (``request.window``) and record its plan in ``settings.extras["chain"]``."""
    from ..long_video import plan_chain

    name = spec.name
    own = family.denoise_window(spec, settings.num_frames, {"prompt_schedule": settings.prompt_schedule})
    if own is not None:  # this model and run go through the family's own long-video pipeline
        raise InvalidRequestError(f"{name} makes this video in its own windows; leave the window out")
    if family.sound:
        raise InvalidRequestError(f"{name} makes one sound track per pass; chained windows would cut it")
    for given, what in ((request.last_image, "a last image (last_image)"),
                        (request.init_video, "an init video (init_video)")):
        if given is not None:
            raise InvalidRequestError(f"chained windows (window) cannot take {what}: each window starts from a "
                                      "frame of the one before")
    window = _positive_int("window", request.window)
    window = snap_frames(spec.defaults, max(window, 2), notices)
    plan = plan_chain(settings.num_frames, window, settings.fps, settings.prompt, settings.prompt_schedule,
                      spec.defaults)
    notices.append(f"{settings.num_frames} frames in {len(plan.lengths)} windows of {window} frames overlapping by "
                   f"{plan.overlap}, each starting from a frame of the one before")
    settings.extras["chain"] = plan.as_dict()


MAX_MOTION_PIXELS = 2**27  # frames x height x width of a run with a camera path or trajectories (81 at 720p fits)


def resolve_motion(request: GenerationRequest, settings: ResolvedSettings) -> None:
    """Check a request's camera path and trajectories against the video (``i2v.motion``) and record
    their canonical text in ``settings.extras`` (``camera_path``, ``trajectory``)."""
    if request.camera_path is None and request.trajectory is None:
        return
    pixels = settings.num_frames * settings.height * settings.width
    if pixels > MAX_MOTION_PIXELS:  # the flow field is 8 bytes a pixel of every frame, and its rendering more
        raise InvalidRequestError(f"a camera path or trajectories over {settings.num_frames} frames of "
                                  f"{settings.width}x{settings.height} is {pixels / 1e6:.0f}M pixels of motion; at most "
                                  f"{MAX_MOTION_PIXELS / 1e6:.0f}M (fewer frames or a smaller size)")
    if request.camera_path is not None:
        from ..motion.camera_path import resolve_camera_path

        settings.extras["camera_path"] = resolve_camera_path(request.camera_path, settings.num_frames, settings.fps)[0]
    if request.trajectory is not None:
        from ..motion.trajectory import resolve_trajectories

        settings.extras["trajectory"] = resolve_trajectories(request.trajectory, settings.num_frames, settings.fps)[0]
