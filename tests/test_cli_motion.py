"""`i2v generate --camera / --trajectory` (text or @FILE), their --dry-run lines, and `i2v models` per model:
only the models whose denoiser warps (``prediction="warp"``) take a camera path or trajectories."""

from __future__ import annotations

import json

import pytest

from i2v.cli import build_parser, main
from i2v.io.video import read_metadata

# the test models make 4 frames at 8 fps: the video ends at 0.375 s
CAMERA = "0.25s: pan right 0.1; 0.375s: zoom in 1.2"
CAMERA_CANONICAL = "0.25s: pan 0.1; 0.375s: zoom 1.2"
TRAJECTORY = "red square: 0.45,0.45 -> 0.6,0.45"


def test_the_flags_and_their_alias_parse():
    parser = build_parser()
    args = parser.parse_args(["generate", "in.png", "--camera", CAMERA, "--trajectory", TRAJECTORY, "-o", "o.mp4"])
    assert (args.camera_path, args.trajectory) == (CAMERA, TRAJECTORY)
    args = parser.parse_args(["generate", "in.png", "--camera-path", CAMERA, "-o", "o.mp4"])
    assert args.camera_path == CAMERA and args.trajectory is None
    help_text = parser._subparsers._group_actions[0].choices["generate"].format_help()
    assert "--camera PATH, --camera-path PATH" in help_text and "--trajectory PATHS" in help_text
    assert "1s: pan right 0.25; 1.5s: zoom in" in help_text and "red ball: 0.3,0.5 -> 0.7,0.5" in help_text


def test_dry_run_shows_them_resolved_from_text_and_files(warp_model_dir, sample_image_path, tmp_path, capsys):
    out = tmp_path / "never.mp4"
    base = ["generate", str(sample_image_path), "-m", str(warp_model_dir), "--dry-run", "-o", str(out)]
    assert main([*base, "--camera", CAMERA, "--trajectory", TRAJECTORY]) == 0
    text = capsys.readouterr().out
    assert "memory plan:" in text
    assert f"camera path: {CAMERA_CANONICAL} (4 frames at 8 fps)" in text
    assert "trajectory: red square: 0.45,0.45 -> 0.6,0.45 (4 frames at 8 fps)" in text

    (tmp_path / "camera.txt").write_text(CAMERA + "\n")
    (tmp_path / "camera.json").write_text(json.dumps([{"time": 0.25, "pan": 0.1}, {"time": 0.375, "zoom": 1.2}]))
    (tmp_path / "paths.json").write_text(json.dumps({"red square": [[0.45, 0.45], [0.6, 0.45]]}))
    for camera in ("camera.txt", "camera.json"):
        assert main([*base, "--camera", f"@{tmp_path / camera}", "--trajectory", f"@{tmp_path / 'paths.json'}"]) == 0
        text = capsys.readouterr().out
        assert f"camera path: {CAMERA_CANONICAL}" in text and "trajectory: red square: 0.45,0.45 -> 0.6,0.45" in text
    assert not out.exists()


@pytest.mark.parametrize("make, message", [
    (lambda d: f"@{d / 'missing.txt'}", "no such file"),
    (lambda d: "@", "name the file after the @"),
    (lambda d: f"@{d}", "cannot read it"),  # a folder
    (lambda d: (d / "bad.json").write_text("[{\"time\": 1,") and f"@{d / 'bad.json'}", "not valid JSON"),
    (lambda d: (d / "empty.txt").write_text(" \n") and f"@{d / 'empty.txt'}", "the file is empty"),
    (lambda d: (d / "latin1.txt").write_bytes(b"1s: pan \xe9") and f"@{d / 'latin1.txt'}", "cannot read it"),
])
def test_a_file_that_cannot_be_read_is_bad_input(warp_model_dir, sample_image_path, tmp_path, capsys, make,
                                                 message):
    folder = tmp_path / "files"
    folder.mkdir()
    value = make(folder)
    code = main(["generate", str(sample_image_path), "-m", str(warp_model_dir), "--camera", value, "--dry-run",
                 "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "--camera" in err


def test_bad_paths_and_models_that_do_not_take_them_exit_2(warp_model_dir, tiny_model_dir, sample_image_path, tmp_path,
                                                           capsys):
    base = ["generate", str(sample_image_path), "--dry-run", "-o", str(tmp_path / "o.mp4")]
    assert main([*base, "-m", str(warp_model_dir), "--camera", "3s: pan right 0.2"]) == 2
    assert "after the video ends" in capsys.readouterr().err
    assert main([*base, "-m", str(warp_model_dir), "--trajectory", "ball: 1.5,0.5 -> 0.2,0.2"]) == 2
    assert "outside the frame" in capsys.readouterr().err
    assert main([*base, "-m", str(tiny_model_dir), "--camera", CAMERA]) == 2  # a velocity denoiser
    assert "cannot follow a camera path" in capsys.readouterr().err
    assert main([*base, "-m", str(tiny_model_dir), "--trajectory", TRAJECTORY]) == 2
    assert "cannot move objects along trajectories" in capsys.readouterr().err
    assert not list(tmp_path.glob("o.*"))


def test_generate_records_the_resolved_camera_path(warp_model_dir, sample_image_path, tmp_path):
    (tmp_path / "camera.json").write_text(json.dumps([{"time": 0.25, "pan": 0.1}, {"time": 0.375, "zoom": 1.2}]))
    out = tmp_path / "o.mp4"
    assert main(["generate", str(sample_image_path), "-m", str(warp_model_dir), "--camera",
                 f"@{tmp_path / 'camera.json'}", "--num-inference-steps", "1", "--seed", "0", "-q",
                 "-o", str(out)]) == 0
    assert read_metadata(out)["camera_path"] == CAMERA_CANONICAL  # the extras are recorded at the top level


def test_models_lists_camera_path_and_trajectory_per_model(warp_model_dir, tiny_model_dir, capsys):
    from i2v.cli import model_capabilities
    from i2v.registry import backend_class, resolve_model

    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert not {"camera path", "trajectory"} & set(rows["i2v-tiny"]["takes"])  # its denoiser predicts velocity
    assert {"camera path", "trajectory", "init video"} <= set(rows["i2v-photo"]["takes"])  # it warps
    # beyond the embedded models, Wan VACE takes them in first-frame mode (the path as its control video)
    takers = {name for name, r in rows.items() if "camera path" in r["takes"] and r["family"] != "tiny"}
    assert takers == {"wan2.1-vace-1.3b", "wan2.1-vace-14b"}
    for folder, takes in ((warp_model_dir, True), (tiny_model_dir, False)):
        spec = resolve_model(str(folder))
        listed = model_capabilities(backend_class(spec.family), spec)["takes"]
        assert ("camera path" in listed, "trajectory" in listed) == (takes, takes)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "  tiny: takes image, text, camera path (i2v-photo only), init video, trajectory (i2v-photo only);" in out
