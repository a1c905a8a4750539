import json

import pytest

from i2v.cli import main
from i2v.world.benchmark import paraphrase_breakdown, run_benchmark, summary_markdown
from i2v.world.scoring import CATEGORIES, QUALITY_BAR


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


def test_paraphrase_breakdown_splits_cases_by_the_heldout_words_their_prompt_uses():
    def case(k, phrasing, prompt, passed):
        return {"case": k, "phrasing": phrasing, "prompt": prompt, "passed": passed}

    results = [case(0, "heldout", "we see the red circle as it moves left", True),
               case(1, "heldout", "the emerald orb is moving up", False),
               case(2, "heldout", "we see the emerald square as it moves down", True),
               case(0, "train", "the red circle moves left", True),
               case(1, "train", "the green disc moves up", True),
               case(2, "train", "the green box moves down", True)]
    breakdown = paraphrase_breakdown(results)
    assert breakdown["sentence_shape_only"] == {"n": 1, "heldout": 1.0, "train": 1.0}
    assert breakdown["heldout_words"] == {"n": 2, "heldout": 0.5, "train": 1.0}
    assert breakdown["by_word"] == {"emerald": {"n": 2, "heldout": 0.5, "train": 1.0},
                                    "orb": {"n": 1, "heldout": 0.0, "train": 1.0}}
    summary = {"per_category": {c: {"pass_rate": None, "n": 0} for c in CATEGORIES}, "others_still_rate": None,
               "others_still_n": 0, "first_frame_psnr": None, "flicker": None, "n": 3, "seconds_per_video": 1.0, "motion_accuracy": 2 / 3,
               "motion_accuracy_by_phrasing": {"heldout": 2 / 3, "train": 1.0}, "paraphrase_breakdown": breakdown}
    text = summary_markdown(summary)
    assert "| paraphrase gap, held-out words | -50.0 points | 2 |" in text
    assert text.index("| orb |") < text.index("| emerald |")  # the worst word first


def test_paraphrase_breakdown_splits_heldout_word_cases_by_the_encoders_unplaced_words():
    def case(k, phrasing, prompt, passed):
        return {"case": k, "phrasing": phrasing, "prompt": prompt, "passed": passed}

    results = [case(0, "heldout", "we see the red circle as it moves left", True),  # no held-out word: in neither
               case(1, "heldout", "the emerald orb is moving up", False),
               case(2, "heldout", "the navy blue tile is moving down", True),
               case(3, "heldout", "the red orb is moving skyward", False),
               case(0, "train", "the red circle moves left", True),
               case(1, "train", "the green disc moves up", True),
               case(2, "train", "the blue box moves down", False),
               case(3, "train", "the red disc moves up", True)]
    breakdown = paraphrase_breakdown(results, unplaced={"emerald", "skyward"})
    assert {k: breakdown[k] for k in ("placed", "unplaced")} == {"placed": {"n": 1, "heldout": 1.0, "train": 0.0},
                                                                "unplaced": {"n": 2, "heldout": 0.0, "train": 1.0}}
    assert paraphrase_breakdown(results, unplaced=set())["placed"]["n"] == 3
    assert "placed" not in paraphrase_breakdown(results)  # only asked for with the encoder's verdict


def test_a_run_from_a_later_first_case_repeats_those_cases_exactly(tiny_model_dir):
    def run(**kw):
        return run_benchmark(str(tiny_model_dir), num_inference_steps=1, log=lambda *_: None, **kw)

    whole, report = run(cases=3)["cases"], run(cases=2, first_case=1)
    tail = report["cases"]
    assert report["summary"]["first_case"] == 1 and report["summary"]["n"] == 2
    assert [c["case"] for c in tail] == [1, 2]
    for a, b in zip(whole[1:], tail):
        assert a["prompt"] == b["prompt"] and a["passed"] == b["passed"]
        assert a["first_frame_psnr"] == b["first_frame_psnr"] and a["flicker"] == b["flicker"]  # same seed
    with pytest.raises(ValueError, match="first_case"):
        run(cases=1, first_case=-1)


def test_unknown_phrasing_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="phrasing"):
        run_benchmark(str(tiny_model_dir), cases=1, phrasing="poetic", log=lambda *_: None)


@pytest.mark.parametrize("args, message", [(["--cases", "0"], "--cases"), (["--first-case", "-5"], "--first-case")])
def test_bad_benchmark_arguments_are_typed_errors(args, message, capsys):
    from i2v.cli import main

    assert main(["benchmark", *args]) == 2
    assert message in capsys.readouterr().err


def test_benchmark_out_must_be_a_folder(tmp_path, capsys):
    from i2v.cli import main

    (tmp_path / "afile").write_text("x")
    assert main(["benchmark", "--cases", "1", "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_report_files_are_ordinary_files(tmp_path):
    """Reports are written through a temporary file (mkstemp makes 0600) but end up as ordinary files."""
    import os

    from i2v.io.reports import write_json

    umask = os.umask(0o022)
    try:
        path = write_json(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(umask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644) and json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind
