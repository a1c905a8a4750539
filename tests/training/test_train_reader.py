"""`i2v train reader`: a short run writes a reader that loads as a model folder's ``reader/`` and a report
of held-out accuracy; bad arguments fail before any work."""

import json

import pytest

from i2v.cli import main
from i2v.motion.prompt_motion import load_reader


def test_a_short_run_writes_a_loadable_reader_and_its_report(tmp_path):
    out = tmp_path / "model" / "reader"
    assert main(["train", "reader", "--output-dir", str(out), "--examples", "96", "--heldout", "32", "--steps", "40",
                 "--batch-size", "32"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["heldout"]) == {"motion", "colour", "shape", "decision"}
    assert all(0 <= v <= 1 for v in report["heldout"].values())
    assert report["train"]["motion"] > 0.2  # 40 steps learn something of the training prompts
    reader = load_reader(tmp_path / "model")
    assert reader is not None and "move_left" in reader.config.motions
    assert load_reader(tmp_path) is None


@pytest.mark.parametrize("args", [["--steps", "0"], ["--learning-rate", "0"], ["--examples", "-1"]])
def test_bad_arguments_fail_before_any_work(tmp_path, args, capsys):
    assert main(["train", "reader", "--output-dir", str(tmp_path / "r"), *args]) != 0
    assert "must be" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_reader_of_several_layers_trains_loads_and_reads_a_prompt(tmp_path):
    from i2v.conditioning import MiniLMTextEncoder

    out = tmp_path / "model" / "reader"
    assert main(["train", "reader", "--output-dir", str(out), "--examples", "64", "--heldout", "16", "--steps", "10",
                 "--batch-size", "16", "--scenes", "4", "--layers", "0,3,6"]) == 0
    reader = load_reader(tmp_path / "model")
    assert reader.config.layers == [0, 3, 6]
    states, mask = reader.encode(MiniLMTextEncoder(), ["the red ball rolls left", "a dog runs"])
    assert states.shape[:3] == (2, mask.shape[1], 3) and states.shape[3] == 384
    assert len(reader.read(states, mask)) == 2


@pytest.mark.parametrize("layers", ["3,2,6", "0,4", "0,7", "x"])
def test_layers_that_are_not_minilms_rising_to_its_last_fail_before_any_work(tmp_path, layers, capsys):
    assert main(["train", "reader", "--output-dir", str(tmp_path / "r"), "--layers", layers]) != 0
    assert "--layers" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
