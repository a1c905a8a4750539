"""Prompt schedules: one prompt per stretch of the video.

On the command line a schedule is one string of ``TIME: PROMPT`` segments separated by ``;``::

    --prompt "0s: the red ball rolls right; 3s: it rolls up; 6s: the camera zooms out"

Times are seconds from the first frame (``1.5s`` and ``1.5`` both read as 1.5 s). In the API the
prompt may also be a list: of ``(seconds, prompt)`` pairs, or of plain prompts, which then share the
video evenly. A prompt that does not start with a time is one prompt for the whole video.

``resolve_schedule`` checks a schedule against the video's length (before any weights load) and
returns it with its canonical text, which the output's metadata records; running that text again
gives the same schedule. ``segment_at`` tells which segment plays at a frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidRequestError

# "3s: text" / "1.5 s : text" / "3: text" at the start of a segment
_TIME = r"(\d+(?:\.\d*)?|\.\d+)\s*s\s*:"
_STARTS_WITH_TIME = re.compile(r"^\s*" + _TIME)
# a ";" that ends a segment: the next one starts with a time (a ";" inside a prompt stays)
_BOUNDARY = re.compile(r";(?=\s*" + _TIME.replace("(", "(?:", 1) + ")")
_SEGMENT = re.compile(r"^\s*" + _TIME + r"(.*)$", re.DOTALL)


@dataclass(frozen=True)
class PromptSegment:
    """One prompt and the time (seconds from the first frame) it starts at."""

    start: float
    prompt: str


def is_schedule(prompt) -> bool:
    """Whether a request's prompt is a schedule (a list, or text starting with a time)."""
    if isinstance(prompt, str):
        return _STARTS_WITH_TIME.match(prompt) is not None
    return isinstance(prompt, Sequence)


def parse_schedule_text(text: str) -> list[PromptSegment]:
    """``"0s: a; 3s: b"`` -> segments, unchecked (``resolve_schedule`` checks them)."""
    segments = []
    for part in _BOUNDARY.split(text):
        match = _SEGMENT.match(part)
        if match is None:  # only the first part can lack a time: the text did not start with one
            raise InvalidRequestError(f"prompt schedule: {part.strip()!r} does not start with a time "
                                      "(write segments as '0s: first prompt; 3s: next prompt')")
        segments.append(PromptSegment(float(match.group(1)), match.group(2).strip()))
    return segments


def _segments_from_list(items: Sequence, duration: float) -> list[PromptSegment]:
    if len(items) == 0:
        raise InvalidRequestError("prompt schedule: the list is empty")
    if all(isinstance(item, str) for item in items):  # plain prompts share the video evenly
        return [PromptSegment(duration * i / len(items), item.strip()) for i, item in enumerate(items)]
    segments = []
    for item in items:
        if (not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[1], str)
                or isinstance(item[0], bool) or not isinstance(item[0], (int, float))):
            raise InvalidRequestError(f"prompt schedule: each entry is a prompt, or a (seconds, prompt) pair; got "
                                      f"{item!r}")
        segments.append(PromptSegment(float(item[0]), item[1].strip()))
    return segments


def format_schedule(segments: Sequence[PromptSegment]) -> str:
    """The canonical text of a schedule (what ``parse_schedule_text`` reads back)."""
    return "; ".join(f"{s.start:g}s: {s.prompt}" for s in segments)


def resolve_schedule(prompt, num_frames: int, fps: float) -> tuple[str, tuple[PromptSegment, ...]]:
    """A request's prompt -> (text to record, its segments); no segments for a single prompt.

    Refuses a schedule that cannot play over ``num_frames`` at ``fps``: times that do not rise, a
    first segment after 0 s, a segment that starts at or after the video's end, an empty prompt.
    """
    duration = num_frames / fps
    if isinstance(prompt, str) and not is_schedule(prompt):
        return prompt, ()
    if not isinstance(prompt, (str, Sequence)) or isinstance(prompt, (bytes, bytearray)):
        raise InvalidRequestError(f"prompt must be text or a list (a prompt schedule), got {type(prompt).__name__}")
    segments = parse_schedule_text(prompt) if isinstance(prompt, str) else _segments_from_list(prompt, duration)
    for s in segments:
        if not math.isfinite(s.start):
            raise InvalidRequestError(f"prompt schedule: time {s.start!r} is not a number of seconds")
        if not s.prompt:
            raise InvalidRequestError(f"prompt schedule: the segment at {s.start:g}s has no prompt")
    if segments[0].start != 0:
        raise InvalidRequestError(f"prompt schedule: the first segment must start at 0s (it starts at "
                                  f"{segments[0].start:g}s; what plays before it?)")
    for before, after in zip(segments, segments[1:]):
        if after.start <= before.start:
            raise InvalidRequestError(f"prompt schedule: times must rise; {after.start:g}s comes after "
                                      f"{before.start:g}s")
    last_start = round(segments[-1].start * fps)
    if last_start >= num_frames:
        raise InvalidRequestError(
            f"prompt schedule: the segment at {segments[-1].start:g}s starts after the video ends ({num_frames} "
            f"frames at {fps:g} fps last {duration:g}s); ask for more frames or move it earlier")
    if len(segments) == 1:
        return segments[0].prompt, ()
    return format_schedule(segments), tuple(segments)


def window_prompts(prompt: str, segments: Sequence[PromptSegment], middles: Sequence[int], fps: float,
                   advice: str) -> list[str]:
    """The prompt of each window of a run made in windows: the schedule's segment at the window's
    middle frame (``prompt`` without a schedule). A segment that plays in no window is refused, with
    ``advice`` on how long a segment must be."""
    segments = segments or (PromptSegment(0.0, prompt),)
    indices = [segment_at(segments, middle, fps) for middle in middles]
    missing = [s for i, s in enumerate(segments) if i not in indices]
    if missing:
        raise InvalidRequestError(f"prompt schedule: the segment at {missing[0].start:g}s would play in no window; "
                                  f"{advice}")
    return [segments[i].prompt for i in indices]


def segment_at(segments: Sequence[PromptSegment], frame: int, fps: float) -> int:
    """Index of the segment that plays at ``frame`` (frame ``round(start * fps)`` is its first)."""
    index = 0
    for i, s in enumerate(segments):
        if round(s.start * fps) <= frame:
            index = i
    return index
