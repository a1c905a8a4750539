"""The ``i2v`` command: a thin shell over ``i2v.api``.

    i2v generate IMAGE --prompt TEXT -o OUT.mp4     one clip (mp4/webm/gif/webp/PNG folder)
    i2v models                                      the models and their defaults
    i2v train --model M --data CSV_OR_DIR -o DIR    train / fine-tune on your videos (i2v model or SVD, LoRA)
    i2v train vae|video|reader ...                  train the embedded model on the procedural world
    i2v benchmark                                   score a model on the held-out procedural world
    i2v evaluate VIDEO --image IMAGE [--prompt TEXT] per-video metrics (flicker, motion, fidelity, ...)
    i2v serve [--port 8000] [--workers N]           the REST job API with a persistent queue
    i2v ui                                          the same with the web UI, opened in the browser
    i2v worker --db URL                             run queued jobs (on this or another machine)
    i2v submit IMAGE --prompt TEXT -o OUT.mp4       a job on a server, waited for and downloaded
    i2v batch MANIFEST.csv --out DIR                one video per row, resumable (local or on Ray)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from . import __version__
from .motion import MOTION_INPUTS  # taken per model (``Backend.takes_motion``), not per family

EXIT_BAD_INPUT = 2


def motion_summary(spec, request) -> list[str]:
    """--dry-run's lines for a camera path and trajectories, checked against the model and the video as
    the run checks them (a refusal is the run's error), in the canonical text the output records."""
    if request.camera_path is None and request.trajectory is None:
        return []
    from .registry import backend_class

    settings = backend_class(spec.family).resolve_for(spec, request, [])
    video = f"{settings.num_frames} frames at {settings.fps:g} fps"
    return [f"{label}: {settings.extras[key]} ({video})" for key, label in (("camera_path", "camera path"),
                                                                          ("trajectory", "trajectory"))
            if key in settings.extras]


def _add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", help="generate a video from an image and a prompt",
        description="Generate a short video whose first frame is IMAGE and whose motion follows --prompt. "
                    "Unset options take the model's defaults (see `i2v models`). The output format follows "
                    "the extension of -o: .mp4 (H.264), .webm, .gif, .webp, or a folder (PNG frames). "
                    "The settings are saved next to the output as OUT.json.",
    )
    p.add_argument("image", help="input image (first frame): PNG, JPEG, WebP, ...")
    p.add_argument("--prompt", "-p", default="",
                   help="text describing the motion; or a prompt schedule, one prompt per stretch of the video: "
                        "'0s: the ball rolls right; 3s: it rolls up' (the models that take one: `i2v models`)")
    p.add_argument("--negative-prompt", default="", help="what to steer away from")
    p.add_argument("--model", "-m", default=None, help="model name (see `i2v models`) or local model folder; "
                                                       "default: the embedded i2v-photo")
    p.add_argument("--num-frames", type=int, default=None, help="number of frames")
    p.add_argument("--fps", type=float, default=None, help="frames per second written to the file")
    p.add_argument("--height", type=int, default=None, help="output height in pixels (snapped to the model's multiple)")
    p.add_argument("--width", type=int, default=None, help="output width in pixels (snapped to the model's multiple)")
    p.add_argument("--num-inference-steps", type=int, default=None, help="denoising steps")
    p.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed + settings = same frames)")
    p.add_argument("--motion-strength", type=float, default=None,
                   help="motion amount in [0, 1] for models that take one (Stable Video Diffusion: "
                        "motion_bucket_id = round(254 * value); 0.5 ~ the default 127)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="video length in seconds instead of --num-frames (frames = seconds x fps, then the "
                        "model's frame rule)")
    p.add_argument("--window", type=int, default=None, metavar="FRAMES",
                   help="make a long video in chained windows of this many frames, each starting from a frame "
                        "of the one before (a quarter-window overlap, cross-faded), colours matched to the first "
                        "(any model; with a prompt schedule, one prompt per window)")
    p.add_argument("--init-video", default=None, metavar="VIDEO",
                   help="video-to-video: start from this video's frames (mp4/webm/gif/webp/PNG folder) instead of "
                        "noise; frame 0 stays IMAGE (the models that take one list 'init video' in `i2v models`)")
    p.add_argument("--strength", type=float, default=None,
                   help="with --init-video: how much of it is re-generated, in (0, 1] (default 0.7; lower keeps "
                        "more of the video)")
    from .io.motion_input import add_motion_arguments

    add_motion_arguments(p)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                   help="weights dtype (default: the embedded model bf16 on CPUs with native bf16, else fp32; "
                        "diffusers models fp32 on CPU, their own bf16/fp16 on a GPU)")
    g = p.add_argument_group("diffusers models (see `i2v models`)")
    g.add_argument("--last-image", default=None, metavar="IMAGE",
                   help="last frame to end on (Wan first-last-frame models, LTX-Video conditions)")
    g.add_argument("--offload", default=None, choices=["auto", "none", "model", "sequential", "group"],
                   help="CPU offload to fit GPU memory: model (whole components), sequential (layer by layer, "
                        "slowest), group (layer groups, streamed); default auto: none on CPU, else what the memory "
                        "plan (--dry-run) chooses for the run")
    g.add_argument("--vae-tiling", action="store_true", help="decode the video in spatial tiles (less memory)")
    g.add_argument("--vae-slicing", action="store_true", help="decode the batch one video at a time (less memory)")
    g.add_argument("--decode-chunk-size", type=int, default=None, metavar="N",
                   help="Stable Video Diffusion: frames decoded at once (lower = less memory)")
    g.add_argument("--lora", dest="loras", action="append", default=None, metavar="PATH[:SCALE]",
                   help="LoRA adapter (.safetensors file, folder, hf:ORG/NAME for a hub repo, or a named motion "
                        "LoRA) with an optional scale, default 1.0; repeatable")
    g.add_argument("--scheduler", default=None, metavar="NAME",
                   help="scheduler class from the model's compatible schedulers (an invalid name lists them)")
    a = p.add_argument_group("speed and memory (see README: Speed and memory)")
    prof = a.add_mutually_exclusive_group()
    prof.add_argument("--speed", dest="profile", action="store_const", const="speed",
                      help="fastest settings for this model and device (cache, compile on GPUs, native bf16 on CPUs)")
    prof.add_argument("--memory", dest="profile", action="store_const", const="memory",
                      help="least memory (group offload with streams and fp8 weight storage on GPUs, native bf16 "
                           "on CPUs, VAE tiling/slicing, chunked feed-forward and decoding)")
    a.add_argument("--cache", default=None, choices=["deepcache", "pab", "fbcache", "fastercache", "taylorseer",
                                                     "magcache"],
                   help="step cache: DeepCache (U-Nets), Pyramid Attention Broadcast, First Block Cache, FasterCache, "
                        "TaylorSeer, MagCache (transformers; MagCache after `i2v calibrate-cache`)")
    a.add_argument("--cache-interval", type=int, default=None, metavar="N",
                   help="deepcache and taylorseer: one full step in every N (default 3); larger is faster, drifts more")
    a.add_argument("--cfg-cache", type=int, nargs="?", const=2, default=0, metavar="N",
                   help="U-Net models (SVD, AnimateDiff), FasterCache's CFG cache: in the middle of the schedule "
                        "only 1 step in N (default 2) runs the unconditional half; 3 is faster, drifts more")
    a.add_argument("--compile", action="store_true", help="torch.compile the denoiser's repeated blocks")
    a.add_argument("--fp8-storage", action="store_true", help="store the denoiser's weights in float8 (layerwise casting)")
    a.add_argument("--quantize", default=None, choices=["torchao-int8", "bnb-8bit", "bnb-4bit"],
                   help="load the denoiser quantized (needs torchao or bitsandbytes)")
    a.add_argument("--forward-chunk", action="store_true", help="run feed-forward layers in chunks (less memory)")
    a.add_argument("--no-memory-check", dest="check_memory", action="store_false",
                   help="run even when the memory plan says the run does not fit in the device's free memory")
    a.add_argument("--dry-run", action="store_true",
                   help="print the memory plan (estimated peak memory and the options that make the run fit), "
                        "load nothing, generate nothing")
    p.add_argument("--output", "-o", required=True, help="output path: .mp4 .webm .gif .webp or a folder/")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no notices")
    p.add_argument("--timings", action="store_true", help="print the time breakdown (load, encode, denoise, decode, write)")


def cmd_generate(args) -> int:
    from .api import ImageToVideoGenerator
    from .io.motion_input import read_motion_arguments
    from .io.video import FILE_RECORD_KEY, read_metadata
    from .types import GenerationRequest, LoadOptions, from_fields
    from .validate import check_output_file, check_output_target

    t_start = time.perf_counter()
    from .registry import resolve_model

    spec = resolve_model(args.model)
    # the output is checked before anything loads: format, folder, rights, GIF's frame rate, inputs
    fps = args.fps if args.fps is not None else spec.defaults.fps
    check_output_target(args.output, fps=fps if isinstance(fps, (int, float)) and math.isfinite(fps) else None)
    read_motion_arguments(args)  # --camera / --trajectory @FILE: what the file holds
    request = from_fields(GenerationRequest, args)
    source = Path(spec.source)  # the shipped weights and local folders are protected
    check_output_file(args.output, [args.image, args.last_image, args.init_video],
                      model_folder=source if source.is_dir() else None)
    if args.dry_run:
        from .devices import pick_device
        from .memory import plan_memory

        settings = {k: getattr(request, k) for k in ("num_frames", "height", "width", "guidance_scale",
                                                      "decode_chunk_size") if getattr(request, k) is not None}
        if request.duration is not None and request.num_frames is None:  # the frame count it asks for
            settings["num_frames"] = max(2, round(request.duration * (request.fps or spec.defaults.fps)))
        motion = motion_summary(spec, request)  # a camera path / trajectories, resolved (or refused) first
        plan = plan_memory(args.model, settings, device=pick_device(args.device), dtype=args.dtype)
        print("\n".join([plan.describe(), *motion]))
        return EXIT_BAD_INPUT if plan.fits is False else 0
    gen = ImageToVideoGenerator(model_name=args.model, device=args.device, check_memory=args.check_memory,
                                show_progress=not args.quiet and sys.stderr.isatty(),
                                options=from_fields(LoadOptions, args))
    result = gen.generate_to_file(request, args.output)  # a chained run streams its windows into the file
    if not args.quiet:  # a GIF/WebP/PNG output's notes name the WAV its sound went to
        for notice in result.notices:
            print(f"note: {notice}", file=sys.stderr)
    path = Path(args.output)
    written = read_metadata(path)[FILE_RECORD_KEY]
    sound = "" if result.audio is None else f", {result.audio.shape[1] / result.audio_sample_rate:.2f} s of sound"
    print(f"wrote {path} ({written['num_frames']} frames, {written['width']}x{written['height']}, "
          f"{result.fps:g} fps, seed {result.settings['seed']}{sound})")
    if args.timings:
        t = result.timings
        rows = [("load", gen.load_seconds + t.get("load", 0.0)), ("encode", t.get("encode", 0.0)),
                ("denoise", t.get("denoise", 0.0)), ("decode", t.get("decode", 0.0)),
                ("write", t.get("write", 0.0)), ("total", time.perf_counter() - t_start)]
        print("  ".join(f"{k} {v:.2f}s" for k, v in rows))
    return 0


def family_capabilities(family, motion=None) -> dict:
    """What a family takes and what runs on it, as ``i2v models`` lists it. ``motion(name)``: how a
    motion input the family declares is listed (None: left out); default: by its name."""
    takes = ["image"]
    if any(m.defaults.uses_prompt for m in family.models):
        takes.append("text")
    for name in sorted(family.inputs):
        label = motion(name) if motion is not None and name in MOTION_INPUTS else name.replace("_", " ")
        if label:
            takes.append(label)
    if family.long_video:
        takes.append("long video")
    return {"takes": takes, "gives": ["video", "sound"] if family.sound else ["video"],
            "caches": list(family.caches), "loras": family.loras,
            "memory": sorted(family.memory_options), "pipelines": list(family.pipeline_classes)}


def model_capabilities(cls, spec) -> dict:
    """One model's capabilities: its family's, with a camera path / trajectories only where the model
    takes them (the embedded family: the models with a warping denoiser)."""
    return family_capabilities(cls.family, lambda name: name.replace("_", " ") if cls.takes_motion(spec, name)
                               else None)


def family_summary(cls) -> dict:
    """A family's capabilities for its line of ``i2v models``: a motion input that only some of its
    registered models take names them."""
    def motion(name: str) -> str:
        takers = [m.name for m in cls.family.models if cls.takes_motion(m, name)]
        label = name.replace("_", " ")
        if len(takers) == len(cls.family.models):
            return label
        return f"{label} ({', '.join(takers)} only)" if takers else f"{label} (none of its registered models)"

    return family_capabilities(cls.family, motion)


def cmd_models(args) -> int:
    from .registry import families, list_models

    capabilities = {name: family_summary(cls) for name, cls in families().items()}
    rows = [{**m.as_row(), **model_capabilities(families()[m.family], m)} for m in list_models()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["name", "family", "num_frames", "frame_rule", "height", "width", "size_multiple", "fps",
            "num_inference_steps", "guidance_scale", "uses_prompt"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    print("\nsources and model-specific defaults:")
    for r in rows:
        extras = {k: v for k, v in r.get("extras", {}).items()
                  if not isinstance(v, (list, dict)) and k != "negative_prompt"}
        shipped = Path(r["source"]).resolve().is_relative_to(Path(__file__).resolve().parent)
        print(f"  {r['name']}: {'(shipped)' if shipped else r['source']}"
              + "".join(f"  {k}={v}" for k, v in extras.items()))
    presets = [(name, p) for name, cls in families().items() for p in cls.family.few_step_loras]
    if presets:
        print("\nfew-step LoRAs (--lora NAME; files named lightx2v/lightning/..._distill are recognised too):")
        for family_name, p in presets:
            print(f"  {p.name} ({family_name}; {', '.join(p.models)}): {p.description}; {p.steps} steps, guidance "
                  f"{p.guidance_scale:g}, {p.scheduler} shift {p.shift:g}")
    print("\nfamilies (any folder or hub id org/name[@revision] of these pipeline classes runs too):")
    for name, c in capabilities.items():
        print(f"  {name}: takes {', '.join(c['takes'])}; gives {' and '.join(c['gives'])}; "
              f"caches {', '.join(c['caches']) or 'none'}; "
              f"LoRA {'yes' if c['loras'] else 'no'}; memory {', '.join(c['memory']) or 'none'}; "
              f"pipelines {', '.join(c['pipelines'])}")
    return 0


def cmd_calibrate_cache(args) -> int:
    from .acceleration.mag_cache import calibrate
    from .api import ImageToVideoGenerator
    from .types import GenerationRequest

    image = args.image or str(Path(__file__).parent / "assets" / "sample.png")
    request = GenerationRequest(image=image, prompt=args.prompt, num_inference_steps=args.num_inference_steps,
                                num_frames=args.num_frames, height=args.height, width=args.width, seed=args.seed)
    ratios, path = calibrate(ImageToVideoGenerator(args.model, device=args.device, dtype=args.dtype), request)
    print(f"MagCache ratios of {args.model} over {len(ratios)} steps: {', '.join(f'{r:.4f}' for r in ratios)}")
    print(f"saved to {path}; `--cache magcache` on this model now uses them")
    return 0


def cmd_batch(args) -> int:
    from .batch import run_batch

    devices = [d.strip() or None for d in args.devices.split(",")] if args.devices else None
    results = run_batch(args.manifest, args.out, model=args.model, fmt=args.format, engine=args.engine,
                        devices=devices, base_seed=args.seed, ray_address=args.ray_address, ray_actors=args.ray_actors,
                        ray_gpus_per_actor=args.ray_gpus_per_actor, show_progress=not args.quiet)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed", "invalid")}
    for r in sorted(results, key=lambda r: r.row.number):
        if r.status in ("failed", "invalid"):
            print(f"row {r.row.number}: {r.status}: {r.error}", file=sys.stderr)
    print(", ".join(f"{n} {s}" for s, n in counts.items()) + f"; results in {Path(args.out) / 'results.csv'}")
    return EXIT_BAD_INPUT if counts["failed"] or counts["invalid"] else 0


def cmd_train(argv: list[str]) -> int:
    """``i2v train vae|video|reader ...`` (procedural world) or ``i2v train --model ... --data ...`` (your videos)."""
    if argv and argv[0] == "vae":
        from .training.train_vae import main
    elif argv and argv[0] == "video":
        from .training.train_video import main
    elif argv and argv[0] == "reader":
        from .training.train_reader import main
    else:
        from .training.finetune import main

        main(argv)
        return 0
    main(argv[1:])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="i2v", description="Image + text prompt -> short video.")
    parser.add_argument("--version", action="version", version=f"i2v {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate(sub)
    p = sub.add_parser("models", help="list the available models and their defaults",
                       description="List the registered models with their default frames, size, fps, steps and guidance.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.add_parser("train", help="train or fine-tune: your videos (i2v model or SVD, full or LoRA), or the "
                                 "embedded model's stages on the procedural world (vae, video, reader)", add_help=False,
                   description="`i2v train --help`: training on your own videos; `i2v train vae --help`, "
                               "`i2v train video --help` and `i2v train reader --help`: the embedded model's stages.")
    from .world.benchmark import add_arguments

    p = sub.add_parser("benchmark", help="score a model on the held-out procedural world",
                       description="Run a model over held-out scenes and phrasings of i2v's procedural world and "
                                   "report motion accuracy per category, first-frame PSNR, flicker and speed.")
    add_arguments(p)
    from .evaluate import add_arguments as add_evaluate_arguments

    p = sub.add_parser("evaluate", help="measure a generated video (motion, fidelity, consistency)",
                       description="Per-video metrics of an image-to-video clip: flicker, dynamic degree, flow, "
                                   "motion smoothness, warping error, camera motion, first-frame fidelity; CLIP, "
                                   "DINO and FVD (I3D) with local weights you point at (never downloaded).")
    add_evaluate_arguments(p)
    from .server.cli import add_serve_arguments, add_submit_arguments, add_worker_arguments

    p = sub.add_parser("serve", help="serve the REST job API (queue, workers, events, metrics)",
                       description="Serve image-to-video jobs over HTTP: a persistent queue in SQLite (or "
                                   "PostgreSQL with --db), local workers that keep models warm, OpenAPI docs at "
                                   "/docs. Binds loopback unless told otherwise; other addresses need --token.")
    add_serve_arguments(p)
    p = sub.add_parser("ui", help="start a local server with the web UI and open it in the browser",
                       description="`i2v serve --ui --workers 1` on this machine, then open the page.")
    add_serve_arguments(p)
    p.add_argument("--no-browser", dest="open_browser", action="store_false", help="do not open a browser")
    p.set_defaults(ui=True, open_browser=True)
    p = sub.add_parser("worker", help="run queued jobs from a server's database",
                       description="Claim jobs from the job database and run them, keeping models loaded. Start "
                                   "one per device, on any machine that reaches the database and the data dir.")
    add_worker_arguments(p)
    p = sub.add_parser("submit", help="submit a job to a server, wait for it and download the video",
                       description="Send IMAGE and the generation fields to `i2v serve`, follow the job's progress "
                                   "and write its video to -o (settings beside it as OUT.json).")
    add_submit_arguments(p)
    p = sub.add_parser("calibrate-cache", help="measure a model's MagCache ratios once, for --cache magcache",
                       description="Run one generation with nothing skipped, record the per-step ratio of the "
                                   "transformer blocks' residual magnitudes, and save it beside the model "
                                   "(i2v_magcache.json; hub models: $I2V_HOME/magcache/).")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("--image", default=None, help="input image (default: the bundled sample)")
    p.add_argument("--prompt", "-p", default="the camera slowly pans to the right")
    p.add_argument("--num-inference-steps", type=int, default=None, help="the steps you will run (default: the model's)")
    p.add_argument("--num-frames", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p = sub.add_parser("batch", help="one video per manifest row, resumable, locally or on a Ray cluster",
                       description="Run a CSV or JSONL manifest (columns: image, and any of model, output, prompt, "
                                   "num_frames, seed, ... per row) into --out. A rerun skips rows whose output exists "
                                   "with the same settings; results.csv lists every row's status.")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="output folder (videos and results.csv)")
    p.add_argument("--model", "-m", default=None, help="model for rows that name none (default: the embedded one)")
    p.add_argument("--format", default="mp4", choices=["mp4", "webm", "gif", "webp"])
    p.add_argument("--seed", type=int, default=0, help="a row without a seed gets this + its row number")
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--devices", default=None, help="local engine: comma-separated devices, one process each "
                                                   "(default: every GPU when there are several, else one)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (auto: the running cluster)")
    p.add_argument("--ray-actors", type=int, default=None, help="actors (default: one per GPU, else one)")
    p.add_argument("--ray-gpus-per-actor", type=float, default=0.0)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that partial outputs are cleaned up the same way."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention
EXIT_TERMINATED = 143  # 128 + SIGTERM


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: partial outputs are gone; no traceback
        terminated = isinstance(exc, Terminated)
        print(f"error: {'terminated' if terminated else 'interrupted'}; partial outputs were removed",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    from .errors import I2VError

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":  # the training scripts own their arguments (and --help)
        try:
            return cmd_train(argv[1:])
        except (I2VError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "benchmark":
            from .world.benchmark import main as benchmark_main

            return benchmark_main(args)
        if args.command == "evaluate":
            from .evaluate import main as evaluate_main

            return evaluate_main(args)
        if args.command == "batch":
            return cmd_batch(args)
        if args.command == "calibrate-cache":
            return cmd_calibrate_cache(args)
        if args.command in ("serve", "ui", "worker", "submit"):
            from .server import cli as server_cli

            return getattr(server_cli, f"{'serve' if args.command == 'ui' else args.command}_main")(args)
        return 0
    except (I2VError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


FAST_EXIT_COMMANDS = ("generate", "models")


def run() -> None:
    """The console-script entry point: ``main()``, then exit.

    After ``generate`` (and ``models``) the process ends with ``os._exit``: tearing down the
    interpreter with torch, diffusers and transformers loaded costs about a second (see
    benchmarks/bench_generate.py) and frees nothing the OS would not. Every output file is
    already written atomically and closed by then; stdout and stderr are flushed here. Other
    commands (training, with its logging threads and process groups) exit normally.
    """
    import signal

    signal.signal(signal.SIGTERM, _raise_terminated)
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in FAST_EXIT_COMMANDS:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
