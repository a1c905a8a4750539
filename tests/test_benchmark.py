import json

import pytest

from i2v.benchmark import run_benchmark
from i2v.cli import main
from i2v.metrics.world_score import QUALITY_BAR


def test_benchmark_writes_report_summary_and_contact_sheet(tiny_model_dir, tmp_path):
    report = run_benchmark(str(tiny_model_dir), cases=3, out=tmp_path, num_inference_steps=1, log=lambda *_: None)
    assert len(report["cases"]) == 3
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"]["n"] == 3
    assert "first-frame PSNR" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "contact_sheet.png").stat().st_size > 0
    # the cases cycle through the motion kinds, so three cases cover three categories
    assert len({c["category"] for c in report["cases"]}) == 3
    assert {c["category"] for c in report["cases"]} <= set(QUALITY_BAR)


def test_benchmark_cli(tiny_model_dir, tmp_path, capsys):
    assert main(["benchmark", "-m", str(tiny_model_dir), "--cases", "1", "--num-inference-steps", "1",
                 "--guidance-scale", "5", "--out", str(tmp_path)]) == 0
    assert "pass rate" in capsys.readouterr().out
    settings = json.loads((tmp_path / "report.json").read_text())["summary"]["settings"]
    assert settings["guidance_scale"] == 5.0 and settings["num_inference_steps"] == 1


def test_both_phrasings_score_the_same_scenes_and_seeds_and_report_the_gap(tiny_model_dir, tmp_path):
    report = run_benchmark(str(tiny_model_dir), cases=2, out=tmp_path, num_inference_steps=1, log=lambda *_: None,
                           phrasing="both")
    cases = report["cases"]
    assert [c["phrasing"] for c in cases] == ["heldout", "heldout", "train", "train"]
    assert [c["case"] for c in cases] == [0, 1, 0, 1]
    assert [c["motion"] for c in cases[:2]] == [c["motion"] for c in cases[2:]]  # same scenes, other words
    assert [c["prompt"] for c in cases[:2]] != [c["prompt"] for c in cases[2:]]
    summary = report["summary"]
    assert summary["phrasing"] == "heldout" and summary["n"] == 2  # the headline stays the held-out one
    by = summary["motion_accuracy_by_phrasing"]
    assert by["heldout"] == summary["motion_accuracy"]
    assert by["train"] == sum(c["passed"] for c in cases[2:]) / 2
    assert "paraphrase gap" in (tmp_path / "summary.md").read_text()


def test_unknown_phrasing_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="phrasing"):
        run_benchmark(str(tiny_model_dir), cases=1, phrasing="poetic", log=lambda *_: None)
