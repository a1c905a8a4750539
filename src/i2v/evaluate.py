"""``i2v evaluate``: measure what an image-to-video model did, one clip at a time.

    i2v evaluate out.mp4 --image in.png --prompt "the camera pans left"
    i2v evaluate out.mp4 --image in.png --json
    i2v evaluate out.mp4 --image in.png --prompt "..." --clip ~/w/clip-vit-base-patch32 --dino ~/w/dino-vitb16
    i2v evaluate gen/*.mp4 --i3d ~/w/i3d_torchscript.pt --reference real/*.mp4      # + FVD of the set
    i2v evaluate gen/*.mp4 --inception ~/w/inception_v3_torchscript.pt                  # + Inception Score

Always computed (no weights; ``i2v.metrics``): temporal flicker, dynamic degree and mean flow
magnitude from OpenCV flow, motion smoothness (flow interpolation), warping error, the camera
motion class, and with ``--image`` the first-frame PSNR/SSIM against the input and their drift
over the clip. With local weights the user points at (never downloaded): CLIP text-video score
and frame consistency (``--clip``), DINO subject consistency and I2V subject score (``--dino``),
FVD against reference clips with StyleGAN-V's I3D TorchScript file (``--i3d``), and the
Inception Score of every frame with a TorchScript Inception-v3 classifier (``--inception``). The output
names every weight file used. Python API: ``evaluate_video(frames, image, prompt, ...)``.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import sys

import numpy as np

from .errors import InvalidRequestError

# name -> (what it measures, which way is better); the order of the printed table
METRIC_NOTES: dict[str, str] = {
    "temporal_flicker": "VBench flicker: 1 = no frame-to-frame change (higher = steadier)",
    "dynamic_degree_cv": "VBench dynamic-degree rule on OpenCV flow (True = clearly moving)",
    "mean_flow_magnitude": "mean optical flow, pixels per frame",
    "motion_smoothness_cv": "flow interpolation of odd frames, 1 = perfectly predictable motion",
    "warping_error": "EvalCrafter warping error, 0 = consistent (lower is better)",
    "camera_motion": "camera motion class (VBench edge rules; 'pan left' = content moves right)",
    "first_frame_psnr": "frame 0 vs input image, dB (inf = exact)",
    "first_frame_ssim": "frame 0 vs input image, 1 = exact",
    "last_frame_psnr": "last frame vs input image, dB (drift)",
    "last_frame_ssim": "last frame vs input image (drift)",
    "clip_text_score": "CLIP cosine(frame, prompt), mean over frames (higher = on prompt)",
    "clip_consistency": "VBench background consistency on CLIP (1 = consistent)",
    "dino_subject_consistency": "VBench subject consistency on DINO (1 = consistent)",
    "dino_i2v_subject": "VBench++ I2V subject on DINO: frames vs input image (1 = faithful)",
}


def check_fps(fps, flag: str = "fps") -> float:
    """A frame rate must be a finite number > 0 (dynamic degree scales its thresholds by it)."""
    try:
        value = float(fps) if isinstance(fps, numbers.Real) and not isinstance(fps, bool) else math.nan
    except OverflowError:  # an int too large for a float
        value = math.inf
    if not (math.isfinite(value) and value > 0):
        raise InvalidRequestError(f"{flag} must be a positive number of frames per second, got {fps!r}")
    return value


def motion_metrics(frames, fps: float = 8.0, flows=None, flow_method: str = "farneback") -> dict:
    """The two flow-magnitude numbers the benchmark reports per case:
    ``{"dynamic_degree_cv": bool, "mean_flow_magnitude": pixels per frame}``."""
    from .metrics.flow import dynamic_degree_cv, mean_flow_magnitude, video_flow

    frames = np.asarray(frames)
    if flows is None:
        flows = video_flow(frames, method=flow_method)
    return {"dynamic_degree_cv": dynamic_degree_cv(frames, fps, flows=flows, method=flow_method)["dynamic"],
            "mean_flow_magnitude": mean_flow_magnitude(frames, flows=flows)}


def evaluate_video(frames, image=None, prompt: str | None = None, *, fps: float = 8.0, clip=None, dino=None,
                   flow_method: str = "farneback", device: str = "cpu") -> dict:
    """Per-video metrics of a clip ``(T, H, W, 3)`` uint8 made from ``image`` and ``prompt``.

    ``image``: the conditioning image (path, PIL image or ``(H, W, 3)`` uint8), resized to the
    video for the fidelity metrics; ``None`` skips them. ``clip`` / ``dino``: a local model
    folder path or a network from ``i2v.metrics.learned.load_clip`` / ``load_dino``; ``None``
    skips those metrics. Returns a JSON-friendly dict:

    - ``metrics``: flat ``{name: number | bool | str}`` (names in ``METRIC_NOTES``; metrics
      that could not be computed are absent);
    - ``curves``: per-frame ``psnr_to_input`` / ``ssim_to_input`` (with ``image``) and
      per-pair ``dynamic_degree_cv_scores`` (top-5% flow magnitude, pixels);
    - ``details``: the camera-motion and dynamic-degree measurements behind the labels;
    - ``video``: ``num_frames, height, width, fps``; ``networks``: the weight paths used.
    """
    from .metrics import learned
    from .metrics.camera import camera_motion_class
    from .metrics.fidelity import temporal_flicker
    from .metrics.first_frame import fidelity_drift
    from .metrics.flow import dynamic_degree_cv, mean_flow_magnitude, motion_smoothness_cv, video_flow, warping_error

    # 1. Check inputs
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) < 2:  # flicker, flow and motion need two frames; 1.0 and 0 would read as measured
        raise InvalidRequestError(f"a video of {len(frames)} frame has no motion to measure; evaluate needs at least "
                                  "2 frames")
    check_fps(fps)
    t, h, w = frames.shape[:3]
    if image is not None and not isinstance(image, np.ndarray):
        from .io.images import load_image

        image = np.asarray(load_image(image))
    if clip is not None and not isinstance(clip, learned.ClipNetwork):
        clip = learned.load_clip(clip, device=device)
    if dino is not None and not isinstance(dino, learned.DinoNetwork):
        dino = learned.load_dino(dino, device=device)
    metrics: dict = {}
    curves: dict = {}
    details: dict = {}

    # 2. Signal-processing metrics (one set of flows shared by all of them)
    metrics["temporal_flicker"] = temporal_flicker(frames)
    forward = video_flow(frames, method=flow_method)
    backward = video_flow(frames, backward=True, method=flow_method)
    dynamic = dynamic_degree_cv(frames, fps, flows=forward, method=flow_method)
    metrics["dynamic_degree_cv"] = dynamic["dynamic"]
    metrics["mean_flow_magnitude"] = mean_flow_magnitude(frames, flows=forward)
    smooth = motion_smoothness_cv(frames, method=flow_method)
    if smooth is not None:
        metrics["motion_smoothness_cv"] = smooth
    warp_err = warping_error(frames, forward, backward, method=flow_method)
    if warp_err is not None:
        metrics["warping_error"] = warp_err
    if t > 1:
        camera = camera_motion_class(frames, flows=forward, backward_flows=backward, method=flow_method)
        metrics["camera_motion"] = camera["label"]
        details["camera_motion"] = camera
    curves["dynamic_degree_cv_scores"] = dynamic.pop("scores")
    details["dynamic_degree_cv"] = dynamic

    # 3. Fidelity to the input image
    if image is not None:
        drift = fidelity_drift(frames, image)
        metrics["first_frame_psnr"], metrics["first_frame_ssim"] = drift["psnr"][0], drift["ssim"][0]
        metrics["last_frame_psnr"], metrics["last_frame_ssim"] = drift["psnr"][-1], drift["ssim"][-1]
        curves["psnr_to_input"], curves["ssim_to_input"] = drift["psnr"], drift["ssim"]

    # 4. Networks the user pointed at
    networks = {}
    if clip is not None:
        feats = learned.clip_image_features(frames, clip)
        metrics["clip_consistency"] = learned.clip_consistency(frames, clip, image_features=feats)
        if prompt:
            metrics["clip_text_score"] = learned.clip_text_score(frames, prompt, clip, image_features=feats)
        networks["clip"] = clip.path
    if dino is not None:
        feats = learned.dino_features(frames, dino)
        metrics["dino_subject_consistency"] = learned.dino_subject_consistency(frames, dino, features=feats)
        if image is not None:
            metrics["dino_i2v_subject"] = learned.dino_i2v_subject(frames, image, dino, features=feats)
        networks["dino"] = dino.path

    return {"video": {"num_frames": t, "height": h, "width": w, "fps": float(fps)}, "prompt": prompt,
            "metrics": metrics, "curves": curves, "details": details, "networks": networks}


# ---- output ----------------------------------------------------------------------------------
def _fmt(value) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if value != 0.0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def format_table(result: dict, name: str | None = None) -> str:
    """A plain-text table of ``evaluate_video``'s metrics, with what each one means."""
    v = result["video"]
    lines = [f"{name or 'video'}: {v['num_frames']} frames, {v['width']}x{v['height']}, {v['fps']:g} fps"]
    metrics = result["metrics"]
    names = [k for k in METRIC_NOTES if k in metrics] + [k for k in metrics if k not in METRIC_NOTES]
    width = max([len(k) for k in names] + [6])
    values = {k: _fmt(metrics[k]) for k in names}
    vwidth = max([len(s) for s in values.values()] + [5])
    lines.append(f"  {'metric'.ljust(width)}  {'value'.ljust(vwidth)}  meaning")
    for k in names:
        lines.append(f"  {k.ljust(width)}  {values[k].ljust(vwidth)}  {METRIC_NOTES.get(k, '')}")
    for kind, path in result.get("networks", {}).items():
        lines.append(f"  {kind} weights: {path}")
    return "\n".join(lines)


def _jsonable(value):
    """Replace non-finite floats (JSON has none) with the strings "inf", "-inf", "nan"."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ---- CLI -------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="video file(s): mp4, webm, gif, webp or a PNG-frame folder")
    p.add_argument("--image", "-i", default=None, help="the input image the video was made from (fidelity metrics)")
    p.add_argument("--prompt", "-p", default=None, help="the prompt the video was made from (CLIP text score)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate to assume where the file records none (PNG folders); default 8")
    p.add_argument("--clip", default=None, metavar="DIR",
                   help="local transformers CLIP folder: CLIP text score and frame consistency")
    p.add_argument("--dino", default=None, metavar="DIR",
                   help="local transformers ViT/DINOv2 folder (e.g. dino-vitb16): subject consistency")
    p.add_argument("--i3d", default=None, metavar="FILE",
                   help="StyleGAN-V i3d_torchscript.pt (a TorchScript archive: code + weights; only pass a "
                        "file you trust): FVD of VIDEOs against --reference")
    p.add_argument("--inception", default=None, metavar="FILE",
                   help="a TorchScript Inception-v3 classifier (code + weights; only pass a file you trust): "
                        "Inception Score over every frame of the VIDEOs")
    p.add_argument("--reference", nargs="+", default=None, metavar="VIDEO",
                   help="reference videos for FVD (same frame count and size as VIDEOs)")
    p.add_argument("--flow", default="farneback", choices=["farneback", "dis"], help="OpenCV optical flow method")
    p.add_argument("--device", default="cpu", help="device for the networks (cpu, cuda, ...)")


def main(args: argparse.Namespace) -> int:
    from .io.video import read_video
    from .metrics.learned import WeightsError, fvd, inception_score, load_clip, load_dino, load_i3d, load_inception

    if (args.i3d is None) != (args.reference is None):
        print("error: FVD needs both --i3d FILE and --reference VIDEO ...", file=sys.stderr)
        return 2
    if args.fps is not None:
        check_fps(args.fps, "--fps")  # InvalidRequestError: the CLI prints it and exits 2
    try:
        clip = load_clip(args.clip, args.device) if args.clip else None
        dino = load_dino(args.dino, args.device) if args.dino else None
        i3d = load_i3d(args.i3d, args.device) if args.i3d else None
        inception = load_inception(args.inception, args.device) if args.inception else None
    except WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    image = None
    if args.image is not None:
        from .io.images import load_image

        image = np.asarray(load_image(args.image))

    results, clips = [], []
    for path in args.videos:
        frames, fps = read_video(path, default_fps=8.0 if args.fps is None else args.fps)
        result = evaluate_video(frames, image, args.prompt, fps=fps, clip=clip, dino=dino, flow_method=args.flow,
                                device=args.device)
        result["path"] = str(path)
        if args.image is not None:
            result["image"] = str(args.image)
        results.append(result)
        clips.append(frames)
    report: dict = {"videos": results}
    if i3d is not None:
        reference = [read_video(p, default_fps=8.0 if args.fps is None else args.fps)[0] for p in args.reference]
        try:
            value = fvd(clips, reference, i3d)
        except ValueError as err:
            print(f"error: FVD: {err}", file=sys.stderr)
            return 2
        report["fvd"] = {"value": value, "num_videos": len(clips), "num_reference": len(reference),
                         "i3d": i3d.path}

    if inception is not None:
        mean, spread = inception_score(clips, inception)
        report["inception_score"] = {"value": mean, "std": spread, "num_frames": sum(len(c) for c in clips),
                                     "inception": inception.path}

    if args.json:
        print(json.dumps(_jsonable(report), indent=2))
        return 0
    for result in results:
        print(format_table(result, result["path"]))
    if "fvd" in report:
        f = report["fvd"]
        print(f"FVD (StyleGAN-V I3D, {f['num_videos']} videos vs {f['num_reference']} reference): "
              f"{f['value']:.2f}   i3d weights: {f['i3d']}")
    if "inception_score" in report:
        s = report["inception_score"]
        print(f"Inception Score ({s['num_frames']} frames): {s['value']:.3f}   inception weights: {s['inception']}")
    return 0
