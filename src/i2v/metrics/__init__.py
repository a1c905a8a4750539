"""Evaluation metrics: pure functions over uint8 frame arrays ``(T, H, W, 3)``.

``fidelity``: PSNR, first-frame PSNR, VBench temporal flicker. ``tracking``: colour-based
object tracking and camera-motion estimation on the procedural world. ``world_score``: scoring
a generated clip against a held-out scene's ground truth, and the benchmark summary.
"""

from .fidelity import first_frame_psnr, psnr, temporal_flicker
from .tracking import (ObjectTrack, colour_mask, colour_masks, estimate_camera_motion, track_colour, track_object,
                       track_objects)
from .world_score import QUALITY_BAR, heldout_cases, score_case, summarise

__all__ = [
    "psnr", "first_frame_psnr", "temporal_flicker",
    "track_colour", "track_object", "track_objects", "colour_mask", "colour_masks", "ObjectTrack", "estimate_camera_motion",
    "score_case", "summarise", "heldout_cases", "QUALITY_BAR",
]
