"""Long videos by chained windows, for any image-to-video model (``--window FRAMES``).

A model that makes one clip from one image makes a longer video window by window: each window
starts from a frame near the end of the video so far as its image (the handover every
image-to-video model takes) and re-makes the frames after it, which are cross-faded with the
previous window's (``overlap`` frames from the handover on), so the video has no cut. Each window's prompt is
the prompt schedule's segment at its middle frame, and its seed the run's plus its index. Colours
drift a little with every handover; each window is pulled back toward the first window's colours
(the mean and spread of each CIE Lab channel), from none of the correction at its first frame (the
handover, already corrected) to all of it at its last. A model that can take its first frame as
latents (the embedded model) is handed the previous window's latents instead of a decoded frame, so
the handover makes no trip through the autoencoder (one such trip shifts a shape's colour by about 4
Delta E), and its window is corrected in full; one whose denoiser was trained with history frames
is handed the shared frames' latents, held as they are, with the first frame as its image (the
anchor), and is not colour-corrected. Windows are generated one at a time, so the
device holds one window's activations whatever the length; written straight to a file
(``ImageToVideoGenerator.generate_to_file``), memory holds about one window's frames too.

The families with their own long-video pipelines (LTX-Video, SkyReels-V2 diffusion forcing,
FramePack, Helios) use those instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidRequestError
from .prompt_schedule import PromptSegment, window_prompts


@dataclass(frozen=True)
class ChainPlan:
    """Windows of a chained run: each window's frame count, the new frames it adds to the video, and
    how many frames consecutive windows share (the handover and the cross-faded frames after it)."""

    window: int  # frames of a full window
    overlap: int  # frames a window shares with the video before it (the handover frame first)
    lengths: tuple[int, ...]  # frames each window generates (the last may make more than it keeps)
    kept: tuple[int, ...]  # new frames each window adds to the video
    prompts: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"window": self.window, "overlap": self.overlap, "window_frames": list(self.lengths),
                "kept_frames": list(self.kept), "window_prompts": list(self.prompts),
                "handover": "the video's frame an overlap before its end, cross-faded over the overlap",
                "colour_match": "CIE Lab mean and spread toward the first window"}


def covering_count(need: int, defaults) -> int:
    """The model's smallest valid frame count of at least ``need`` (its rule: ``offset + k * step``)."""
    step, offset = getattr(defaults, "frame_step", 1), getattr(defaults, "frame_offset", 0)
    count = max(need, getattr(defaults, "min_frames", 2))
    if step > 1:
        count = offset + -(-(count - offset) // step) * step
    return count


def default_overlap(window: int) -> int:
    """Frames consecutive windows share: a quarter of a window, at least the handover frame."""
    return max(1, window // 4)


def plan_chain(num_frames: int, window: int, fps: float, prompt: str, schedule: tuple[PromptSegment, ...],
               defaults, overlap: int | None = None) -> ChainPlan:
    """Windows of ``window`` frames (already valid for the model) covering ``num_frames``: each after
    the first starts ``overlap`` frames before the video's end so far; the last is the model's
    smallest count that covers what is left (frames past the video's end are dropped)."""
    if window >= num_frames:
        raise InvalidRequestError(f"window {window} is not shorter than the video ({num_frames} frames): one pass "
                                  "makes it; leave the window out")
    overlap = default_overlap(window) if overlap is None else overlap
    if not 1 <= overlap < window:
        raise InvalidRequestError(f"overlap {overlap} must be at least 1 and less than the window ({window})")
    lengths, kept, starts = [window], [window], [0]
    while sum(kept) < num_frames:
        left = num_frames - sum(kept)
        starts.append(sum(kept) - overlap)  # the handover frame
        lengths.append(window if left + overlap >= window else covering_count(left + overlap, defaults))
        kept.append(min(lengths[-1] - overlap, left))
    middles = [start + (length - 1) // 2 for start, length in zip(starts, lengths)]
    prompts = window_prompts(prompt, schedule, middles, fps, f"a window of {window} frames lasts {window / fps:.2f}s: "
                             "make each segment at least that long, or the window shorter")
    return ChainPlan(window=window, overlap=overlap, lengths=tuple(lengths), kept=tuple(kept), prompts=tuple(prompts))


def append_window(video: list[np.ndarray], part: np.ndarray, overlap: int, kept: int) -> None:
    """Add a window's frames to ``video`` (a list of frames): its first frame is the handover (the
    video's frame ``overlap`` from the end), its next ``overlap - 1`` are cross-faded into the video's
    last ones (the new window's weight rising), then ``kept`` new frames follow."""
    for j in range(1, overlap):
        weight = j / overlap
        index = len(video) - overlap + j
        video[index] = np.round((1 - weight) * video[index] + weight * part[j].astype(np.float64)).astype(np.uint8)
    video.extend(part[overlap: overlap + kept])


def pop_final(video: list[np.ndarray], hold: int) -> np.ndarray:
    """Remove from ``video`` (a list of frames) and return as ``(t, H, W, 3)`` the frames no later
    window changes: all but the last ``hold`` (those the next window cross-fades)."""
    count = len(video) - hold
    final = np.stack(video[:count])
    del video[:count]
    return final


def lab_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of each CIE Lab channel over (T, H, W, 3) uint8 frames."""
    import cv2

    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in frames]).reshape(-1, 3).astype(np.float64)
    return lab.mean(axis=0), lab.std(axis=0) + 1e-6


def match_colours(frames: np.ndarray, reference: tuple[np.ndarray, np.ndarray], ramp: bool = True) -> np.ndarray:
    """Pull a window's colours toward ``reference`` (``lab_stats`` of the first window): per Lab
    channel ``(x - mean) / spread * ref_spread + ref_mean``. With ``ramp``, applied in full at the
    last frame and not at all at the first (a handover frame the previous window already matched);
    without, in full everywhere (a window that started from the previous one's unmatched latents)."""
    import cv2

    mean, spread = lab_stats(frames)
    ref_mean, ref_spread = reference
    out = frames.copy()
    count = len(frames)
    for t in range(1 if ramp else 0, count):
        weight = t / (count - 1) if ramp else 1.0
        lab = cv2.cvtColor(frames[t], cv2.COLOR_RGB2LAB).astype(np.float64)
        matched = (lab - mean) / spread * ref_spread + ref_mean
        lab = np.clip(lab + weight * (matched - lab), 0, 255).round().astype(np.uint8)
        out[t] = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return out
