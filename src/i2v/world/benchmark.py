"""``i2v benchmark``: run a model over the held-out split of the procedural world and score it.

Every case is a held-out scene (never trained on) with a held-out phrasing of its motion. The
model gets the scene's first frame and the prompt; the clip is scored against the scene's known
ground truth (``i2v.world.scoring``). Writes ``report.json``, ``summary.md`` and
``contact_sheet.png`` (a row of frames per case, prompt underneath) to ``--out``.

``--phrasing both`` runs every scene twice, with the same seed: once in held-out phrasings and
once in training phrasings. The summary stays the held-out one and adds the accuracy of each
and their gap, which is how well paraphrases never seen in training work. The gap is broken down
(``paraphrase_breakdown``) into cases whose held-out prompt only has a new sentence shape, cases
using held-out words, and each held-out word.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PHRASINGS = ("heldout", "train", "both")


def run_benchmark(model: str | None = None, cases: int = 48, out: str | Path | None = None, seed: int = 0,
                  num_inference_steps: int | None = None, device: str | None = None, log=print,
                  dtype: str | None = None, scheduler: str | None = None,
                  guidance_scale: float | None = None, phrasing: str = "heldout", first_case: int = 0) -> dict:
    from ..api import GenerationRequest, ImageToVideoGenerator
    from ..evaluate import motion_metrics
    from ..io.reports import write_benchmark
    from .scenes import render
    from .scoring import heldout_cases, score_case, summarise

    if phrasing not in PHRASINGS:
        raise ValueError(f"unknown phrasing {phrasing!r}; expected one of {PHRASINGS}")
    if first_case < 0:
        raise ValueError(f"first_case must be >= 0, got {first_case}")
    splits = ["heldout", "train"] if phrasing == "both" else [phrasing]
    gen = ImageToVideoGenerator(model_name=model, device=device, dtype=dtype, scheduler=scheduler)
    results, rows = [], []
    for split in splits:
        # case k is the same scene, prompt and seed whatever the run's size or first case
        for k, (scene, prompt) in enumerate(heldout_cases(cases, seed_offset=first_case, phrasing=split), first_case):
            first = render(scene)[0]
            t0 = time.perf_counter()
            result = gen.run(GenerationRequest(image=first, prompt=prompt, seed=seed + k,
                                               num_inference_steps=num_inference_steps,
                                               guidance_scale=guidance_scale))
            seconds = time.perf_counter() - t0
            score = score_case(result.frames, scene, first)
            score.update(motion_metrics(result.frames, result.fps))  # dynamic_degree_cv, mean_flow_magnitude
            score.update(prompt=prompt, phrasing=split, seconds=seconds, case=k,
                         prompt_motion=result.settings.get("prompt_motion"))  # a move the model's reader planned
            results.append(score)
            rows.append((result.frames, f"{'PASS' if score['passed'] else 'fail'} {scene.motion}: {prompt}"))
            tag = f"{split} " if len(splits) > 1 else ""
            log(f"[{tag}{k + 1 - first_case}/{cases}] {scene.motion:<15} {'pass' if score['passed'] else 'FAIL'}  {prompt}")
    primary = [r for r in results if r["phrasing"] == splits[0]]
    summary = summarise(primary)
    summary["phrasing"] = splits[0]
    summary["first_case"] = first_case  # cases first_case .. first_case + n - 1
    summary["seconds_per_video"] = _mean(r["seconds"] for r in results)
    summary["model"] = gen.spec.name
    summary["motion_accuracy"] = _mean(bool(r["passed"]) for r in primary)
    summary["settings"] = {k: results and gen.last_result.settings.get(k)
                           for k in ("num_inference_steps", "guidance_scale", "sampler", "dtype")}
    # OpenCV-flow motion amount: share of clips VBench's dynamic-degree rule calls moving, mean flow
    summary["dynamic_degree_cv"] = _mean(bool(r["dynamic_degree_cv"]) for r in primary)
    summary["mean_flow_magnitude"] = _mean(r["mean_flow_magnitude"] for r in primary)
    if len(splits) > 1:
        summary["motion_accuracy_by_phrasing"] = {
            split: _mean(bool(r["passed"]) for r in results if r["phrasing"] == split) for split in splits}
        summary["paraphrase_breakdown"] = paraphrase_breakdown(results)
    report = {"summary": summary, "cases": results}
    if out is not None:
        write_benchmark(out, report, summary_markdown(summary), rows)
    return report


def paraphrase_breakdown(results: list[dict], unplaced: set[str] | None = None) -> dict:
    """Where the paraphrase gap comes from: held-out and training phrasing pass rates of the same cases,
    for the cases whose held-out prompt only changes the sentence shape (every word a training word),
    for those using held-out words, and for each held-out word.

    -> {"sentence_shape_only": group, "heldout_words": group, "by_word": {word: group}}, where a group is
    {"n": cases, "heldout": pass rate, "train": pass rate of the same cases in training phrasings}.

    With ``unplaced``, held-out words the frozen text encoder puts nearer training words of another class
    (``benchmarks/probe_text_encoder.py`` finds them; no denoiser trained on the training words can read
    them), the held-out-word cases are also split into "placed" (none of their words unplaced) and
    "unplaced" (at least one).
    """
    from .captions import heldout_words_in

    passed_in_training = {r["case"]: bool(r["passed"]) for r in results if r["phrasing"] == "train"}
    members: dict[str, list[dict]] = {"sentence_shape_only": [], "heldout_words": []}
    if unplaced is not None:
        members.update(placed=[], unplaced=[])
    by_word: dict[str, list[dict]] = {}
    for r in results:
        if r["phrasing"] != "heldout":
            continue
        words = heldout_words_in(r["prompt"])
        members["heldout_words" if words else "sentence_shape_only"].append(r)
        if words and unplaced is not None:
            members["unplaced" if unplaced.intersection(words) else "placed"].append(r)
        for word in words:
            by_word.setdefault(word, []).append(r)

    return {**{k: _phrasing_group(rs, passed_in_training) for k, rs in members.items()},
            "by_word": {w: _phrasing_group(rs, passed_in_training) for w, rs in sorted(by_word.items())}}


def _phrasing_group(rs: list[dict], passed_in_training: dict[int, bool]) -> dict:
    """{"n", "heldout": pass rate of these held-out cases, "train": of the same cases in training phrasings}."""
    return {"n": len(rs), "heldout": _mean(bool(r["passed"]) for r in rs),
            "train": _mean(passed_in_training[r["case"]] for r in rs)}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / max(1, len(values))


def summary_markdown(summary: dict) -> str:
    from .scoring import CATEGORIES, QUALITY_BAR

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
    by_phrasing = summary.get("motion_accuracy_by_phrasing")
    if by_phrasing:
        lines.append(f"| motion accuracy, training phrasings of the same scenes | {by_phrasing['train']:.1%} | "
                     f"{summary['n']} | |")
        lines.append(f"| paraphrase gap (held-out minus training phrasings) | "
                     f"{100 * (by_phrasing['heldout'] - by_phrasing['train']):+.1f} points | {summary['n']} | |")
        breakdown = summary["paraphrase_breakdown"]
        for key, label in (("sentence_shape_only", "new sentence shapes, training words only"),
                           ("heldout_words", "held-out words")):
            g = breakdown[key]
            lines.append(f"| paraphrase gap, {label} | {_gap(g)} | {g['n']} | |")
    lines.append(f"| seconds per video | {summary['seconds_per_video']:.2f} | {summary['n']} | |")
    text = "\n".join(lines) + "\n"
    if by_phrasing:  # one row per held-out word, the worst gap first
        words = sorted(summary["paraphrase_breakdown"]["by_word"].items(),
                       key=lambda item: (item[1]["heldout"] - item[1]["train"], item[0]))
        text += "\n| held-out word | cases | held-out phrasing | training phrasing | gap |\n|---|---|---|---|---|\n"
        text += "".join(f"| {w} | {g['n']} | {g['heldout']:.0%} | {g['train']:.0%} | {_gap(g)} |\n" for w, g in words)
    return text


def _gap(group: dict) -> str:
    """Held-out minus training phrasing pass rate of a paraphrase_breakdown group, in points."""
    return "n/a" if not group["n"] else f"{100 * (group['heldout'] - group['train']):+.1f} points"


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--world", default="shapes", choices=["shapes", "photos"],
                   help="shapes: the procedural shapes world (default); photos: camera moves over the held-out "
                        "photographs of --photos")
    p.add_argument("--photos", default="data/photos", metavar="DIR",
                   help="with --world photos: the folder `make photos` gathered (its held-out split is used)")
    p.add_argument("--model", "-m", default=None, help="model name or folder (default: the embedded i2v-photo)")
    p.add_argument("--cases", type=int, default=48, help="number of held-out cases (motions cycled evenly)")
    p.add_argument("--first-case", type=int, default=0,
                   help="start at this case (case k is the same whatever --cases is, so runs can be split)")
    p.add_argument("--out", default=None,
                   help="folder for report.json, summary.md, contact_sheet.png (default: outputs/benchmark, "
                        "or outputs/benchmark-photos with --world photos)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-inference-steps", type=int, default=None)
    p.add_argument("--guidance-scale", type=float, default=None, help="default: the model's")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"], help="default: the model's fastest")
    p.add_argument("--scheduler", default=None, help="sampler (embedded model: euler, heun, dpmpp_2m)")
    p.add_argument("--kinds", default=None, metavar="K1,K2",
                   help="with --world photos: only cases of these kinds (of pan_left, pan_right, pan_up, pan_down, "
                        "zoom_in, zoom_out, static, shapes), each still its own case number")
    p.add_argument("--phrasing", default="heldout", choices=PHRASINGS,
                   help="prompt phrasings: held-out (default), training, or both on the same scenes and seeds, "
                        "which adds the paraphrase gap to the summary")


def main(args: argparse.Namespace) -> int:
    from ..errors import InvalidRequestError

    if args.cases < 1 or args.first_case < 0:
        raise InvalidRequestError(f"--cases must be >= 1 and --first-case >= 0, got {args.cases} and {args.first_case}")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise InvalidRequestError(f"--out {args.out} is a file; the benchmark writes a folder")
    if args.kinds is not None and args.world != "photos":
        raise InvalidRequestError("--kinds picks the photo benchmark's cases; give --world photos")
    if args.world == "photos":
        from .photos.benchmark import run_photo_benchmark
        from .photos.benchmark import summary_markdown as photo_summary

        if args.phrasing != "heldout":
            raise InvalidRequestError("--phrasing applies to the shapes world; the photo benchmark asks in held-out "
                                      "phrasings only")
        from .photos.benchmark import CASE_KINDS

        kinds = None if args.kinds is None else tuple(k.strip() for k in args.kinds.split(","))
        if kinds is not None and (not all(kinds) or set(kinds) - set(CASE_KINDS)):
            raise InvalidRequestError(f"--kinds takes some of {', '.join(CASE_KINDS)}; got {args.kinds!r}")
        args.out = args.out or "outputs/benchmark-photos"
        report = run_photo_benchmark(args.model, args.photos, args.cases, args.out, args.seed, args.first_case,
                                     args.num_inference_steps, args.device, dtype=args.dtype, scheduler=args.scheduler,
                                     guidance_scale=args.guidance_scale, kinds=kinds)
        print(photo_summary(report["summary"]))
        print(f"report: {Path(args.out) / 'report.json'}")
        return 0
    args.out = args.out or "outputs/benchmark"
    report = run_benchmark(args.model, args.cases, args.out, args.seed, args.num_inference_steps, args.device,
                           dtype=args.dtype, scheduler=args.scheduler, guidance_scale=args.guidance_scale,
                           phrasing=args.phrasing, first_case=args.first_case)
    print(summary_markdown(report["summary"]))
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0
