from pathlib import Path
import json
import re
import subprocess
import sys

import pytest

from i2v.cli import build_parser, main
from i2v.registry import DEFAULT_MODEL
from i2v.io.video import probe_video, read_metadata, read_video


def test_generate_writes_mp4_with_requested_fps(tiny_model_dir, sample_image_path, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    code = main(["generate", str(sample_image_path), "--prompt", "the red square moves left", "--model",
                 str(tiny_model_dir), "--num-frames", "5", "--fps", "10", "--num-inference-steps", "2", "--seed", "3",
                 "--timings", "-o", str(out)])
    assert code == 0
    info = probe_video(out)
    assert (info["num_frames"], info["fps"], info["codec"]) == (5, 10, "h264")
    printed = capsys.readouterr().out
    for stage in ("load", "encode", "denoise", "decode", "write", "total"):
        assert stage in printed
    assert read_metadata(out)["seed"] == 3


@pytest.mark.parametrize("name", ["clip.webm", "clip.gif", "clip.webp", "frames/"])
def test_every_output_format(tiny_model_dir, sample_image_path, tmp_path, name):
    out = tmp_path / name
    assert main(["generate", str(sample_image_path), "-p", "x", "-m", str(tiny_model_dir), "--num-inference-steps",
                 "1", "--seed", "0", "-q", "-o", str(out)]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (4, 64, 64, 3) and fps == pytest.approx(8)


def test_cli_and_api_give_the_same_frames(tiny_model_dir, sample_image_path, tmp_path):
    from i2v import ImageToVideoGenerator

    out = tmp_path / "frames/"
    main(["generate", str(sample_image_path), "-p", "the red square grows", "-m", str(tiny_model_dir),
          "--num-inference-steps", "2", "--seed", "9", "-q", "-o", str(out)])
    frames, _ = read_video(out)
    api = ImageToVideoGenerator(str(tiny_model_dir)).generate(image_path=sample_image_path, prompt="the red square grows",
                                                              num_inference_steps=2, seed=9)
    assert (frames == api).all()


def test_bad_inputs_exit_2_with_a_message(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["generate", str(bad), "-m", str(tiny_model_dir), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["generate", str(bad), "-o", str(tmp_path / "o.avi")]) == 2
    assert ".avi" in capsys.readouterr().err
    assert main(["generate", str(bad), "-m", "not-a-model", "-o", str(tmp_path / "o.mp4")]) == 2
    assert not list(tmp_path.glob("o.*"))


def test_models_lists_defaults(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    tiny = next(r for r in rows if r["name"] == "i2v-tiny")
    assert (tiny["num_frames"], tiny["height"], tiny["width"], tiny["fps"]) == (16, 128, 128, 8)
    wan = next(r for r in rows if r["family"] == "wan")
    assert "last image" in wan["takes"] and "text" in wan["takes"] and "fbcache" in wan["caches"]
    svd = next(r for r in rows if r["family"] == "svd")
    assert "text" not in svd["takes"] and "motion strength" in svd["takes"]
    by_family = {r["family"]: r for r in rows}
    assert {"prompt schedule", "long video"} <= set(by_family["ltx"]["takes"])
    assert {f for f, r in by_family.items() if "long video" in r["takes"]} == {"ltx", "skyreels", "framepack", "helios"}
    assert by_family["ltx2"]["gives"] == ["video", "sound"] and wan["gives"] == ["video"]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "i2v-tiny" in out and "families (any folder or hub id" in out
    assert "  wan: takes image, text, init video, last image; gives video; caches pab, fbcache, taylorseer" in out


def test_help_is_complete():
    parser = build_parser()
    text = parser.format_help()
    for command in ("generate", "models", "train"):
        assert command in text
    gen_help = subprocess.run([sys.executable, "-m", "i2v.cli", "generate", "--help"], capture_output=True, text=True)
    for flag in ("--prompt", "--negative-prompt", "--model", "--num-frames", "--fps", "--height", "--width",
                 "--num-inference-steps", "--guidance-scale", "--seed", "--output"):
        assert flag in gen_help.stdout
    train_help = subprocess.run([sys.executable, "-m", "i2v.cli", "train", "video", "--help"], capture_output=True,
                                text=True)
    assert "--resume" in train_help.stdout and "--max-steps" in train_help.stdout


@pytest.mark.parametrize("device, cuda, message", [
    ("cuda", False, "CUDA is not available"),
    ("cuda:0", False, "CUDA is not available"),
    ("gpu", False, "not a device name"),
    ("cuda:3", True, "1 CUDA device(s)"),
])
def test_an_unavailable_device_is_a_typed_error_and_exit_2(tiny_model_dir, sample_image_path, tmp_path, capsys,
                                                             monkeypatch, device, cuda, message):
    import torch

    from i2v.devices import DeviceUnavailableError, pick_device
    from i2v.errors import InvalidRequestError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceUnavailableError, match=re.escape(message)):
        pick_device(device)
    assert issubclass(DeviceUnavailableError, InvalidRequestError)
    code = main(["generate", str(sample_image_path), "-m", str(tiny_model_dir), "--device", device,
                 "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and device in err
    assert pick_device("cpu") == "cpu"


@pytest.mark.parametrize("fps", ["-3", "0", "nan"])
def test_evaluate_refuses_a_bad_fps_with_exit_2(tmp_path, capsys, fps):
    import numpy as np

    from i2v.io.video import write_video

    video = write_video(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "v.gif", fps=8)
    assert main(["evaluate", str(video), "--fps", fps]) == 2
    assert f"--fps must be a positive number of frames per second, got {float(fps)}" in capsys.readouterr().err


def test_dry_run_prints_the_memory_plan_and_writes_nothing(tmp_path, capsys):
    from i2v.cli import main as cli_main

    out = tmp_path / "never.mp4"
    image = Path(__file__).parents[1] / "src/i2v/assets/sample.png"
    assert cli_main(["generate", str(image), "--num-frames", "32", "--dry-run", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"memory plan: {DEFAULT_MODEL}" in text and "32 frames" in text and "peak (estimate)" in text
    assert not out.exists() and not Path(str(out) + ".json").exists()
