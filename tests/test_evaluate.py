"""``i2v evaluate`` and ``evaluate_video``: per-video metrics on clips with known answers."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from i2v.cli import main
from i2v.evaluate import METRIC_NOTES, evaluate_video, format_table, motion_metrics
from i2v.io.video import write_video
from i2v.world.scenes import render, sample_scene

from .metrics.synthetic import flicker_clip, pan_clip
from .metrics.tiny_networks import make_tiny_clip, make_tiny_i3d, make_tiny_inception, make_tiny_vit

SIGNAL_METRICS = {"temporal_flicker", "dynamic_degree_cv", "mean_flow_magnitude", "motion_smoothness_cv",
                  "warping_error", "camera_motion"}


@pytest.fixture(scope="module")
def pan_video():
    return render(sample_scene(0, motion="pan_left"), size=64)  # ground truth: (16, 64, 64, 3)


def test_ground_truth_clip_scores_near_perfect(pan_video):
    result = evaluate_video(pan_video, pan_video[0], "the camera pans left")
    m = result["metrics"]
    assert SIGNAL_METRICS | {"first_frame_psnr", "first_frame_ssim", "last_frame_psnr", "last_frame_ssim"} == set(m)
    assert m["first_frame_psnr"] == math.inf and m["first_frame_ssim"] == 1.0
    assert m["camera_motion"] == "pan_left"
    assert m["motion_smoothness_cv"] > 0.99 and m["warping_error"] < 1e-3
    assert m["temporal_flicker"] > 0.95
    assert m["mean_flow_magnitude"] > 0.0 and m["last_frame_ssim"] < 1.0
    assert len(result["curves"]["psnr_to_input"]) == len(pan_video)
    assert len(result["curves"]["dynamic_degree_cv_scores"]) == len(pan_video) - 1
    assert result["video"] == {"num_frames": 16, "height": 64, "width": 64, "fps": 8.0}
    assert result["networks"] == {}


def test_still_copy_of_the_first_frame_scores_zero_motion(pan_video):
    still = np.repeat(pan_video[:1], 8, axis=0)
    m = evaluate_video(still, pan_video[0])["metrics"]
    assert m["dynamic_degree_cv"] is False and m["mean_flow_magnitude"] == 0.0
    assert m["camera_motion"] == "static"
    assert m["motion_smoothness_cv"] == 1.0 and m["warping_error"] == 0.0 and m["temporal_flicker"] == 1.0
    assert m["last_frame_psnr"] == math.inf


def test_wrong_way_and_flicker_are_visible(pan_video):
    backwards = evaluate_video(np.ascontiguousarray(pan_video[::-1]))["metrics"]
    assert backwards["camera_motion"] == "pan_right"
    assert "first_frame_psnr" not in backwards  # no image given
    flicker = evaluate_video(flicker_clip(40))["metrics"]
    # every pixel off by 40/255 on each channel: warping error (40/255)^2 (mean over pixels x channels)
    assert flicker["temporal_flicker"] < 0.9 and flicker["warping_error"] == pytest.approx((40 / 255) ** 2, rel=0.1)


def test_single_frame_and_bad_input():
    """A one-frame video has no motion to measure: refused, not reported as flicker 1.0 and flow 0."""
    from i2v.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="at least 2 frames"):
        evaluate_video(pan_clip(1.0, 0.0, num_frames=1))
    assert evaluate_video(pan_clip(1.0, 0.0, num_frames=2))["metrics"]["temporal_flicker"] < 1.0
    with pytest.raises(ValueError, match="uint8"):
        evaluate_video(np.zeros((4, 8, 8, 3), np.float32))


def test_motion_metrics_for_the_benchmark():
    fast = motion_metrics(pan_clip(3.0, 0.0))
    assert fast["dynamic_degree_cv"] is True and fast["mean_flow_magnitude"] == pytest.approx(3.0, rel=0.1)


def test_networks_are_used_only_when_given_and_named(tmp_path, pan_video):
    clip, dino = make_tiny_clip(tmp_path / "clip"), make_tiny_vit(tmp_path / "dino")
    clip_frames = pan_video[:4]
    result = evaluate_video(clip_frames, clip_frames[0], "the camera pans left", clip=str(clip), dino=str(dino))
    m = result["metrics"]
    assert {"clip_text_score", "clip_consistency", "dino_subject_consistency", "dino_i2v_subject"} <= set(m)
    assert result["networks"] == {"clip": str(clip), "dino": str(dino)}
    assert "clip weights: " + str(clip) in format_table(result)
    assert "clip_text_score" not in evaluate_video(clip_frames, clip=str(clip))["metrics"]  # needs a prompt


def _write_inputs(tmp_path, frames):
    video = tmp_path / "clip"  # a PNG-frame folder: lossless, so the first frame stays exact
    write_video(frames, video, fps=8)
    image = tmp_path / "input.png"
    Image.fromarray(frames[0]).save(image)
    return video, image


def test_cli_table_and_json(tmp_path, capsys, pan_video):
    video, image = _write_inputs(tmp_path, pan_video)
    assert main(["evaluate", str(video), "--image", str(image), "--prompt", "the camera pans left"]) == 0
    table = capsys.readouterr().out
    for name in SIGNAL_METRICS | {"first_frame_psnr"}:
        assert name in table and METRIC_NOTES[name] in table
    assert main(["evaluate", str(video), "--image", str(image), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (entry,) = report["videos"]
    assert entry["path"] == str(video) and entry["image"] == str(image)
    assert entry["metrics"]["first_frame_psnr"] == "inf" and entry["metrics"]["camera_motion"] == "pan_left"
    assert entry["video"]["fps"] == 8.0 and "fvd" not in report


def test_cli_fvd_with_a_user_supplied_i3d(tmp_path, capsys, pan_video):
    i3d = make_tiny_i3d(tmp_path / "i3d_torchscript.pt")
    gen, ref = [], []
    for k in range(3):
        write_video(pan_video[k:k + 8], tmp_path / f"gen{k}.gif", fps=8)
        write_video(pan_video[8 - k:16 - k], tmp_path / f"ref{k}.gif", fps=8)
        gen.append(str(tmp_path / f"gen{k}.gif"))
        ref.append(str(tmp_path / f"ref{k}.gif"))
    assert main(["evaluate", *gen, "--i3d", str(i3d), "--reference", *ref, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["videos"]) == 3
    assert report["fvd"]["i3d"] == str(i3d) and report["fvd"]["value"] >= 0.0
    assert report["fvd"]["num_videos"] == report["fvd"]["num_reference"] == 3


def test_cli_inception_score_with_a_user_supplied_classifier(tmp_path, capsys, pan_video):
    net = make_tiny_inception(tmp_path / "inception.pt")
    write_video(pan_video[:6], tmp_path / "a.gif", fps=8)
    assert main(["evaluate", str(tmp_path / "a.gif"), "--inception", str(net), "--json"]) == 0
    score = json.loads(capsys.readouterr().out)["inception_score"]
    assert score["inception"] == str(net) and score["num_frames"] == 6 and 1.0 <= score["value"] <= 10.0
    assert main(["evaluate", str(tmp_path / "a.gif"), "--inception", str(tmp_path / "missing.pt")]) == 2


def test_inception_score_is_one_for_identical_frames_and_the_class_count_at_most(tmp_path):
    import numpy as np

    from i2v.metrics.learned import inception_score, load_inception

    net = load_inception(make_tiny_inception(tmp_path / "inception.pt"))
    same = np.full((8, 32, 32, 3), 120, np.uint8)
    assert inception_score([same], net)[0] == pytest.approx(1.0)  # one class distribution: no information
    rng = np.random.default_rng(0)
    varied = [rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8) * (k % 2) for k in range(6)]
    varied += [np.full((4, 32, 32, 3), v, np.uint8) for v in (0, 60, 255)]
    value, spread = inception_score(varied, net, splits=2)
    assert 1.0 < value <= 10.0 and spread >= 0.0
    with pytest.raises(ValueError, match="splits"):
        inception_score([same], net, splits=0)


def test_cli_refuses_missing_or_half_given_weights(tmp_path, capsys, pan_video):
    video, _ = _write_inputs(tmp_path, pan_video[:4])
    assert main(["evaluate", str(video), "--clip", str(tmp_path / "nope")]) == 2
    assert "no such CLIP folder" in capsys.readouterr().err
    assert main(["evaluate", str(video), "--i3d", str(tmp_path / "i3d.pt")]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.mp4")]) == 2


def test_benchmark_reports_motion_amount(tiny_model_dir, tmp_path):
    from i2v.world.benchmark import run_benchmark

    report = run_benchmark(str(tiny_model_dir), cases=1, out=tmp_path, num_inference_steps=1, log=lambda *_: None)
    case = report["cases"][0]
    assert isinstance(case["dynamic_degree_cv"], bool) and case["mean_flow_magnitude"] >= 0.0
    assert report["summary"]["dynamic_degree_cv"] in (0.0, 1.0)
    assert report["summary"]["mean_flow_magnitude"] == pytest.approx(case["mean_flow_magnitude"])
    assert "dynamic degree (cv)" in (tmp_path / "summary.md").read_text()
