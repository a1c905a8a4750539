"""The shared training loop with a toy stage: a linear regression, in well under a second."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from i2v.training.checkpoint import list_checkpoints
from i2v.training.loop import LoopConfig, Stage, make_accelerator, train


def toy_run(out, nan_at_call: int | None = None, **config) -> dict:
    """Train y = x @ w with noisy targets; returns what the hooks saw."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    seen = {"calls": 0, "finished": False}

    def batch(rng: np.random.Generator):
        x = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))
        return x, x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def loss(model, batch, gen):
        seen["calls"] += 1
        x, y = batch
        value = ((model(x) - y - 0.1 * torch.randn(y.shape, generator=gen)) ** 2).mean()
        if seen["calls"] == nan_at_call:
            value = value * float("nan")
        return value, {"abs_err": (model(x) - y).abs().mean().detach()}

    def after_step(step, checkpointed, weights):
        seen["ema"] = [p.clone() for p in weights.ema.shadow_params]

    def finish(weights):
        seen["finished"] = True

    stage = Stage(model=model, checkpoint_name="toy", optimizer=lambda params: torch.optim.AdamW(params, lr=0.05),
                  lr_schedule=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + s)),
                  batch=batch, loss=loss, log_columns={"abs_err": ".5f"}, after_step=after_step, finish=finish,
                  ema_decay=0.9)
    accelerator = make_accelerator("no", gradient_accumulation_steps=2)
    config = {"max_steps": 6, "checkpoint_every": 2, **config}
    seen["losses"] = train(accelerator, stage, LoopConfig(output_dir=out, **config))
    return seen


def log_rows(out) -> list[dict]:
    with open(out / "loss_log.csv") as f:
        return list(csv.DictReader(f))


def test_killed_run_resumes_bit_for_bit_with_its_ema(tmp_path):
    full = toy_run(tmp_path / "full")
    killed = toy_run(tmp_path / "killed", stop_at_step=3)  # as if killed after step 3; last checkpoint: 2
    assert sorted(killed["losses"]) == [1, 2, 3] and not killed["finished"]
    resumed = toy_run(tmp_path / "killed", resume="latest")
    assert sorted(resumed["losses"]) == [3, 4, 5, 6] and resumed["finished"]
    assert all(resumed["losses"][s] == full["losses"][s] for s in (3, 4, 5, 6))
    assert all(torch.equal(a, b) for a, b in zip(resumed["ema"], full["ema"]))
    rows = log_rows(tmp_path / "killed")  # no duplicate rows from the killed run's step 3
    assert list(rows[0]) == ["step", "loss", "abs_err", "lr", "seconds"]
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["loss"] for r in rows] == [r["loss"] for r in log_rows(tmp_path / "full")]
    assert [p.name for p in list_checkpoints(tmp_path / "full" / "checkpoints")] == ["step_00000004",
                                                                                     "step_00000006"]


def test_non_finite_loss_stops_before_the_update_and_names_the_step(tmp_path):
    with pytest.raises(FloatingPointError, match="at step 2;"):
        toy_run(tmp_path, nan_at_call=4, checkpoint_every=1)  # 2 micro-batches a step: call 4 is step 2's
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000001"]


def test_resume_from_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    from i2v.errors import TrainingSetupError

    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(TrainingSetupError, match="is not a checkpoint"):
        toy_run(tmp_path / "run", resume=str(tmp_path / "elsewhere"))
    with pytest.raises(TrainingSetupError, match="no such checkpoint folder"):
        toy_run(tmp_path / "run", resume=str(tmp_path / "missing"))


@pytest.mark.parametrize("damage", ["weights", "optimizer"])
def test_a_damaged_checkpoint_is_named_with_the_earlier_ones(tmp_path, damage):
    from i2v.errors import TrainingSetupError

    toy_run(tmp_path / "run", checkpoint_every=2)
    ckpts = list_checkpoints(tmp_path / "run" / "checkpoints")
    victim = next(ckpts[-1].glob("*.safetensors" if damage == "weights" else "optimizer.pt"))
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(TrainingSetupError, match=f"{ckpts[-1].name} is damaged.*earlier one \\({ckpts[0].name}\\)"):
        toy_run(tmp_path / "run", resume=str(ckpts[-1]))


def test_disk_full_while_checkpointing_names_the_last_good_checkpoint(tmp_path, monkeypatch):
    import errno

    from i2v.errors import OutputPathError
    from i2v.training import checkpoint

    real = checkpoint.save_file
    calls = {"n": 0}

    def fills_the_disk(tensors, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # the first checkpoint fits, the second does not
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", fills_the_disk)
    with pytest.raises(OutputPathError, match="step 4 checkpoint \\(No space left on device\\); the last complete "
                                              "one is step_00000002"):
        toy_run(tmp_path, checkpoint_every=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002"]  # no partial left


def test_auto_mixed_precision(monkeypatch):
    from i2v.training import loop

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: True)
    assert make_accelerator("auto").mixed_precision == "bf16"
    assert make_accelerator("auto", cpu_bf16=False).mixed_precision == "no"  # fine-tuning: bf16 on GPUs only
    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: False)
    assert make_accelerator("auto").mixed_precision == "no"
    assert make_accelerator("fp16").mixed_precision == "fp16"
