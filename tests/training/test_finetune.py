"""`i2v train --model ... --data ...`: the user's own videos, i2v's model or SVD, full or LoRA."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from i2v.cli import main as cli_main
from i2v.training import finetune
from i2v.io.video import read_metadata, read_video, write_video

from ..backends.tiny_components import build_svd


def moving_square(direction: int, frames: int = 10, height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    video = np.zeros((frames, height, width, 3), np.uint8) + rng.integers(40, 120, 3, dtype=np.uint8)
    for t in range(frames):
        x = 8 + direction * 3 * t if direction > 0 else width - 24 + direction * 3 * t
        video[t, 20:36, max(0, x):max(0, x) + 16] = (230, 40, 40)
    return video


@pytest.fixture(scope="module")
def video_csv(tmp_path_factory) -> Path:
    """Five short clips (one landscape) and one corrupt file, indexed by a WebVid-style CSV."""
    root = tmp_path_factory.mktemp("videos")
    rows = []
    for i in range(5):
        direction = 1 if i % 2 == 0 else -1
        shape = dict(height=48, width=80) if i == 4 else {}
        write_video(moving_square(direction, seed=i, **shape), root / f"clip{i}.mp4", fps=8)
        rows.append((f"clip{i}.mp4", f"a red square moves {'right' if direction > 0 else 'left'}"))
    (root / "broken.mp4").write_bytes(os.urandom(2000))
    rows.append(("broken.mp4", "never read"))
    with (root / "metadata.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "caption"])
        writer.writerows(rows)
    return root / "metadata.csv"


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-svd")
    build_svd(num_frames=4).save_pretrained(folder)
    return folder


def train(*args) -> int:
    return cli_main(["train", *map(str, args)])


def logged_losses(out: Path) -> dict[int, float]:
    rows = list(csv.DictReader((out / "loss_log.csv").open()))
    return {int(r["step"]): float(r["loss"]) for r in rows}


def generate(image, out_video: Path, *model_args) -> np.ndarray:
    assert cli_main(["generate", str(image), "-p", "a red square moves right", "--seed", "3",
                     "--num-inference-steps", "2", "-q", "-o", str(out_video), *map(str, model_args)]) == 0
    return read_video(out_video)[0]


def test_full_finetune_of_i2v_model_writes_a_loadable_model(tiny_model_dir, video_csv, tmp_path, sample_image_path):
    out = tmp_path / "run"
    assert train("--model", tiny_model_dir, "--data", video_csv, "--output-dir", out, "--max-steps", 3,
                 "--checkpoint-every", 2, "--learning-rate", 1e-3, "--validation-steps", 2) == 0
    losses = logged_losses(out)
    assert sorted(losses) == [1, 2, 3] and all(np.isfinite(v) for v in losses.values())
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "I2VPipeline"
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step_00000002", "step_00000003"]
    assert (out / "validation" / "step_00000003.mp4").is_file()
    # the weights moved, and the folder generates through the CLI
    from safetensors.torch import load_file

    before = load_file(str(Path(tiny_model_dir) / "unet" / "diffusion_pytorch_model.safetensors"))
    after = load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    frames = generate(sample_image_path, tmp_path / "gen.mp4", "--model", out)
    assert frames.shape == (4, 64, 64, 3)


def test_killed_run_resumes_with_the_same_losses(tiny_model_dir, video_csv, tmp_path):
    common = ["--model", tiny_model_dir, "--data", video_csv, "--max-steps", 4, "--checkpoint-every", 2,
              "--learning-rate", 1e-3, "--no-validation", "--batch-size", 2]
    assert train(*common, "--output-dir", tmp_path / "a") == 0
    assert train(*common, "--output-dir", tmp_path / "b", "--stop-at-step", 3) == 0  # "killed" after step 3
    assert sorted(logged_losses(tmp_path / "b")) == [1, 2, 3]
    assert train(*common, "--output-dir", tmp_path / "b", "--resume", "latest") == 0  # resumes from step 2
    a, b = logged_losses(tmp_path / "a"), logged_losses(tmp_path / "b")
    assert sorted(b) == [1, 2, 3, 4]
    assert [a[s] for s in range(1, 5)] == [b[s] for s in range(1, 5)]


def test_i2v_from_scratch_preset_with_cached_latents(tiny_model_dir, video_csv, tmp_path):
    out = tmp_path / "scratch"
    args = ["--model", tiny_model_dir, "--preset", "test", "--data", video_csv, "--output-dir", out,
            "--max-steps", 2, "--cache-latents", "--clips-per-video", 2, "--no-validation",
            "--gradient-accumulation-steps", 2, "--gradient-checkpointing", "--lr-scheduler", "cosine"]
    assert train(*args) == 0
    manifest = json.loads((out / "clip_cache" / "manifest.json").read_text())
    assert len(manifest["clips"]) == 10  # 5 readable videos x 2 clips; the corrupt one skipped
    assert {tuple(c["size"]) for c in manifest["clips"]} == {(64, 64)}
    assert all(np.isfinite(v) for v in logged_losses(out).values())
    # a cache built for other settings is refused, not silently reused
    assert train(*args[:-8], "--num-frames", 3, "--cache-latents", "--clips-per-video", 2,
                 "--output-dir", out) == 2


def test_lora_on_i2v_model_loads_with_lora_flag(tiny_model_dir, video_csv, tmp_path, sample_image_path):
    out = tmp_path / "lora"
    assert train("--model", tiny_model_dir, "--data", video_csv, "--output-dir", out, "--max-steps", 3,
                 "--lora-rank", 4, "--lora-alpha", 8, "--learning-rate", 5e-2, "--no-validation") == 0
    file = out / "pytorch_lora_weights.safetensors"
    with safe_open(str(file), "pt") as f:
        keys = list(f.keys())
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
    assert keys and all(k.startswith("unet.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    assert meta["unet.r"] == 4 and meta["unet.lora_alpha"] == 8
    assert not (out / "model_index.json").exists()  # a LoRA run writes only the adapter
    # PNG frames, not mp4: the comparison is of the generated frames, not of an encoder's rounding
    base = generate(sample_image_path, f"{tmp_path}/frames-base/", "--model", tiny_model_dir)
    adapted = generate(sample_image_path, f"{tmp_path}/frames-lora/", "--model", tiny_model_dir, "--lora", out)
    again = generate(sample_image_path, f"{tmp_path}/frames-lora2/", "--model", tiny_model_dir, "--lora", out)
    assert np.array_equal(adapted, again) and not np.array_equal(base, adapted)
    assert read_metadata(tmp_path / "frames-lora")["loras"][0]["scale"] == 1.0


def test_svd_finetune_with_text_conditioning(svd_dir, video_csv, tmp_path, sample_image_path):
    out = tmp_path / "svd-text"
    assert train("--model", svd_dir, "--data", video_csv, "--output-dir", out, "--max-steps", 2,
                 "--text-conditioning", "--learning-rate", 1e-3, "--validation-steps", 2,
                 "--aspect-buckets") == 0
    assert all(np.isfinite(v) for v in logged_losses(out).values())
    assert (out / "text_proj" / "config.json").is_file() and (out / "unet").is_dir()
    assert (out / "validation" / "step_00000002.mp4").is_file()
    a = generate(sample_image_path, tmp_path / "a.mp4", "--model", out)
    settings = json.loads((tmp_path / "a.mp4.json").read_text())
    assert settings["prompt_used"] is True
    b_path = tmp_path / "b.mp4"
    assert cli_main(["generate", str(sample_image_path), "-p", "a blue circle zooms in", "--seed", "3",
                     "--num-inference-steps", "2", "-q", "-o", str(b_path), "--model", str(out)]) == 0
    assert a.shape[0] == 4 and not np.array_equal(a, read_video(b_path)[0])  # the prompt steers it


def test_svd_lora_loads_onto_the_unet(svd_dir, video_csv, tmp_path, sample_image_path):
    out = tmp_path / "svd-lora"
    assert train("--model", svd_dir, "--data", video_csv, "--output-dir", out, "--max-steps", 2,
                 "--lora-rank", 2, "--learning-rate", 5e-2, "--no-validation") == 0
    base = generate(sample_image_path, tmp_path / "base.mp4", "--model", svd_dir)
    adapted = generate(sample_image_path, tmp_path / "lora.mp4", "--model", svd_dir, "--lora", out)
    assert base.shape == adapted.shape and not np.array_equal(base, adapted)


def test_non_finite_loss_stops_and_names_the_step(tiny_model_dir, video_csv, tmp_path, monkeypatch):
    from i2v.training.trainable_i2v import I2VTrainable

    real = I2VTrainable.loss
    calls = {"n": 0}

    def loss(self, *args):
        calls["n"] += 1
        value = real(self, *args)
        return value * float("nan") if calls["n"] == 2 else value

    monkeypatch.setattr(I2VTrainable, "loss", loss)
    out = tmp_path / "nan"
    with pytest.raises(FloatingPointError, match="at step 2"):
        finetune.main(["--model", str(tiny_model_dir), "--data", str(video_csv), "--output-dir", str(out),
                       "--max-steps", "3", "--checkpoint-every", "1", "--no-validation"])
    assert [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("step_")] == ["step_00000001"]


@pytest.mark.parametrize("extra, message", [
    (["--preset", "test"], "from scratch"),
    (["--lora-rank", "0"], "--lora-rank"),
])
def test_bad_options_are_refused(svd_dir, video_csv, tmp_path, capsys, extra, message):
    assert train("--model", svd_dir, "--data", video_csv, "--output-dir", tmp_path / "x", *extra) == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_is_refused(tiny_model_dir, video_csv, tmp_path, capsys):
    assert train("--model", tiny_model_dir, "--data", video_csv, "--output-dir", tmp_path / "x",
                 "--preset", "huge") == 2
    assert "unknown --preset 'huge'" in capsys.readouterr().err


def test_unreadable_data_is_refused(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"bad{i}.mp4").write_bytes(os.urandom(500))
    assert train("--model", tiny_model_dir, "--data", tmp_path / "data", "--output-dir", tmp_path / "x") == 2
    assert "bad0.mp4" in capsys.readouterr().err


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ACCELERATE_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def test_two_processes_train_in_sync(tiny_model_dir, video_csv, tmp_path):
    """The distributed path: `accelerate launch` with two CPU processes (DDP over gloo)."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", ACCELERATE_CONFIGS / "cpu_2proc.yaml",
           "--main_process_port", free_port(), "-m", "i2v.training.finetune", "--model", tiny_model_dir,
           "--data", video_csv, "--output-dir", out, "--max-steps", 2, "--checkpoint-every", 2, "--no-validation",
           "--learning-rate", 1e-3]
    run = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "replicas in sync: 2 processes" in run.stdout
    state = json.loads((out / "checkpoints" / "step_00000002" / "state.json").read_text())
    assert state["num_processes"] == 2
    assert (out / "model_index.json").is_file()


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"),
                                        ("cpu_2proc", "MULTI_GPU")])
def test_accelerate_configs_are_valid(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.num_processes >= 2


def test_tensorboard_log_or_a_clear_error(tiny_model_dir, video_csv, tmp_path, capsys):
    import importlib.util

    code = train("--model", tiny_model_dir, "--data", video_csv, "--output-dir", tmp_path / "tb", "--max-steps", 1,
                 "--no-validation", "--report-to", "tensorboard")
    if importlib.util.find_spec("tensorboard") is None:
        assert code == 2 and "pip install tensorboard" in capsys.readouterr().err
    else:
        assert code == 0 and any((tmp_path / "tb" / "logs").rglob("events.out.tfevents.*"))


def test_bf16_mixed_precision_trains_on_cpu(tiny_model_dir, video_csv, tmp_path):
    out = tmp_path / "bf16"
    assert train("--model", tiny_model_dir, "--data", video_csv, "--output-dir", out, "--max-steps", 2,
                 "--mixed-precision", "bf16", "--no-validation") == 0
    assert all(np.isfinite(v) for v in logged_losses(out).values())
