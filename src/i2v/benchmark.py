"""``i2v benchmark``: run a model over the held-out split of the procedural world and score it.

Every case is a held-out scene (never trained on) with a held-out phrasing of its motion. The
model gets the scene's first frame and the prompt; the clip is scored against the scene's known
ground truth (``i2v.metrics.world_score``). Writes ``report.json``, ``summary.md`` and
``contact_sheet.png`` (a row of frames per case, prompt underneath) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path



def run_benchmark(model: str | None = None, cases: int = 48, out: str | Path | None = None, seed: int = 0,
                  num_inference_steps: int | None = None, device: str | None = None, log=print,
                  dtype: str | None = None, scheduler: str | None = None,
                  guidance_scale: float | None = None) -> dict:
    from .api import GenerationRequest, ImageToVideoGenerator
    from .contact_sheet import contact_sheet
    from .data.world import render
    from .evaluate import motion_metrics
    from .metrics.world_score import heldout_cases, score_case, summarise

    gen = ImageToVideoGenerator(model_name=model, device=device, dtype=dtype, scheduler=scheduler)
    results, rows = [], []
    for k, (scene, prompt) in enumerate(heldout_cases(cases)):
        first = render(scene)[0]
        t0 = time.perf_counter()
        result = gen.run(GenerationRequest(image=first, prompt=prompt, seed=seed + k,
                                           num_inference_steps=num_inference_steps, guidance_scale=guidance_scale))
        seconds = time.perf_counter() - t0
        score = score_case(result.frames, scene, first)
        score.update(motion_metrics(result.frames, result.fps))  # dynamic_degree_cv, mean_flow_magnitude
        score.update(prompt=prompt, seconds=seconds, case=k)
        results.append(score)
        rows.append((result.frames, f"{'PASS' if score['passed'] else 'fail'} {scene.motion}: {prompt}"))
        log(f"[{k + 1}/{cases}] {scene.motion:<15} {'pass' if score['passed'] else 'FAIL'}  {prompt}")
    summary = summarise(results)
    summary["seconds_per_video"] = sum(r["seconds"] for r in results) / max(1, len(results))
    summary["model"] = gen.spec.name
    summary["motion_accuracy"] = sum(bool(r["passed"]) for r in results) / max(1, len(results))
    summary["settings"] = {k: results and gen.last_result.settings.get(k)
                           for k in ("num_inference_steps", "guidance_scale", "sampler", "dtype")}
    # OpenCV-flow motion amount: share of clips VBench's dynamic-degree rule calls moving, mean flow
    summary["dynamic_degree_cv"] = sum(bool(r["dynamic_degree_cv"]) for r in results) / max(1, len(results))
    summary["mean_flow_magnitude"] = sum(r["mean_flow_magnitude"] for r in results) / max(1, len(results))
    report = {"summary": summary, "cases": results}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / "report.json", json.dumps(report, indent=2, default=_jsonable))
        _write_text(out / "summary.md", summary_markdown(summary))
        contact_sheet(rows, out / "contact_sheet.png")
    return report


def summary_markdown(summary: dict) -> str:
    from .metrics.world_score import CATEGORIES, QUALITY_BAR

    lines = ["| measure | value | cases | target |", "|---|---|---|---|"]
    for cat in CATEGORIES:
        c = summary["per_category"][cat]
        lines.append(f"| {cat} pass rate | {_fmt(c['pass_rate'], '.0%')} | {c['n']} | >= {QUALITY_BAR[cat]:.0%} |")
    lines.append(f"| non-target objects still | {_fmt(summary['others_still_rate'], '.0%')} | "
                 f"{summary['others_still_n']} | |")
    lines.append(f"| first-frame PSNR (dB) | {_fmt(summary['first_frame_psnr'], '.2f')} | {summary['n']} | "
                 f">= {QUALITY_BAR['first_frame_psnr']} |")
    lines.append(f"| temporal flicker | {_fmt(summary['flicker'], '.4f')} | {summary['n']} | "
                 f">= {QUALITY_BAR['flicker']} |")
    if "dynamic_degree_cv" in summary:
        lines.append(f"| dynamic degree (cv) | {_fmt(summary['dynamic_degree_cv'], '.0%')} | {summary['n']} | |")
        lines.append(f"| mean flow (px/frame) | {_fmt(summary['mean_flow_magnitude'], '.2f')} | {summary['n']} | |")
    if "motion_accuracy" in summary:
        lines.append(f"| motion accuracy (all cases) | {summary['motion_accuracy']:.1%} | {summary['n']} | |")
    lines.append(f"| seconds per video | {summary['seconds_per_video']:.2f} | {summary['n']} | |")
    return "\n".join(lines) + "\n"


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None, help="model name or folder (default: the embedded i2v-tiny)")
    p.add_argument("--cases", type=int, default=48, help="number of held-out cases (motions cycled evenly)")
    p.add_argument("--out", default="outputs/benchmark", help="folder for report.json, summary.md, contact_sheet.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-inference-steps", type=int, default=None)
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the model's")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"], help="default: the model's fastest")
    p.add_argument("--scheduler", default=None, help="sampler (embedded model: euler, heun, dpmpp_2m)")


def main(args: argparse.Namespace) -> int:
    report = run_benchmark(args.model, args.cases, args.out, args.seed, args.num_inference_steps, args.device,
                           dtype=args.dtype, scheduler=args.scheduler, guidance_scale=args.guidance_scale)
    print(summary_markdown(report["summary"]))
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0
