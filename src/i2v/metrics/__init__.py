"""Evaluation metrics: pure functions over uint8 frame arrays ``(T, H, W, 3)``.

``fidelity``: PSNR, first-frame PSNR, VBench temporal flicker.
``flow``: OpenCV optical-flow motion metrics (dynamic degree, flow magnitude, motion smoothness,
warping error). ``first_frame``: SSIM and fidelity to the input image over time. ``camera``:
camera-motion class. ``frechet``: Fréchet distance (FID/FVD) without scipy. ``learned`` (not
imported here): CLIP, DINO and I3D metrics from local weights.
"""

from .camera import CAMERA_CLASSES, camera_motion_class
from .fidelity import first_frame_psnr, psnr, temporal_flicker
from .first_frame import fidelity_drift, first_frame_fidelity, ssim
from .flow import dynamic_degree_cv, mean_flow_magnitude, motion_smoothness_cv, optical_flow, video_flow, warping_error
from .frechet import frechet_distance, frechet_distance_from_features, gaussian_stats, sqrtm_psd

__all__ = [
    "psnr", "first_frame_psnr", "temporal_flicker",
    "optical_flow", "video_flow", "dynamic_degree_cv", "mean_flow_magnitude", "motion_smoothness_cv", "warping_error",
    "ssim", "first_frame_fidelity", "fidelity_drift", "camera_motion_class", "CAMERA_CLASSES",
    "frechet_distance", "frechet_distance_from_features", "gaussian_stats", "sqrtm_psd",
]
