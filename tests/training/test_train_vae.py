import csv

import pytest
import torch
from diffusers import AutoencoderKL

from i2v.training.checkpoint import latest_checkpoint, list_checkpoints
from i2v.training.train_vae import main


def _losses(folder):
    with open(folder / "loss_log.csv") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


ARGS = ["--preset", "test", "--max-steps", "4", "--checkpoint-every", "2", "--mixed-precision", "no"]


def test_tiny_run_writes_checkpoints_log_and_model(tmp_path):
    losses = main(["--output-dir", str(tmp_path)] + ARGS)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002", "step_00000004"]
    vae = AutoencoderKL.from_pretrained(tmp_path / "final", use_safetensors=True)
    assert vae.config.scaling_factor != 0.18215  # calibrated on world frames


def test_killed_run_resumes_with_the_same_losses(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    main(["--output-dir", str(full)] + ARGS)
    main(["--output-dir", str(killed), "--stop-at-step", "3"] + ARGS)  # dies after step 3; last checkpoint: 2
    assert latest_checkpoint(killed / "checkpoints").name == "step_00000002"
    resumed = main(["--output-dir", str(killed), "--resume", "latest"] + ARGS)
    assert sorted(resumed) == [3, 4]
    expected = _losses(full)
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], rel=1e-5)
    assert _losses(killed) == pytest.approx(expected, rel=1e-5)  # the log has no duplicate rows
