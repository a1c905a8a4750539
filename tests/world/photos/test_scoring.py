"""The photo scorer on clips whose answer is known: ground truth passes, frozen and reversed clips
fail, and invented content lowers warp fidelity (as the shapes scorer is validated)."""

from __future__ import annotations

import numpy as np
import pytest

from i2v.world.photos.camera import CAMERA_MOTIONS, render_camera_clip, sample_camera_move
from i2v.world.photos.procedural import dead_leaves
from i2v.world.photos.scoring import category_of, masked_psnr, score_photo_case, summarise

SIZE = (128, 128)


def photo(seed: int = 0) -> np.ndarray:
    return dead_leaves(seed, 600, 800)  # textured enough for corners everywhere


def clip(kind: str, seed: int = 0, size=SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    move = sample_camera_move(rng, photo(seed).shape, size, kind=kind)
    return render_camera_clip(photo(seed), move, size)


@pytest.mark.parametrize("kind", CAMERA_MOTIONS)
def test_ground_truth_passes_with_high_warp_fidelity(kind):
    frames = clip(kind)
    result = score_photo_case(frames, kind, image=frames[0])
    assert result["passed"], result["reasons"]
    assert result["first_frame_psnr"] == 100.0 and result["warp_fidelity"] > 25
    assert result["category"] == category_of(kind)


@pytest.mark.parametrize("kind", [k for k in CAMERA_MOTIONS if k != "static"])
def test_frozen_and_reversed_clips_fail(kind):
    frames = clip(kind, seed=1)
    frozen = np.repeat(frames[:1], len(frames), axis=0)
    assert not score_photo_case(frozen, kind)["passed"]
    assert score_photo_case(frozen, "static")["passed"]  # a frozen clip is a perfect still shot
    assert not score_photo_case(frames[::-1].copy(), kind)["passed"]


def test_a_pan_is_not_a_still_shot():
    assert not score_photo_case(clip("pan_left", seed=2), "static")["passed"]


def test_invented_content_lowers_warp_fidelity():
    frames = clip("pan_right", seed=3)
    smeared = frames.copy()
    rng = np.random.default_rng(0)
    for k in range(4, len(frames)):  # blobs painted over the later frames, as the old model did
        y, x = rng.integers(0, 96, size=2)
        smeared[k, y:y + 32, x:x + 32] = (230, 40, 40)
    clean = score_photo_case(frames, "pan_right")["warp_fidelity"]
    assert score_photo_case(smeared, "pan_right")["warp_fidelity"] < clean - 3


def test_non_square_sizes():
    frames = clip("pan_up", seed=4, size=(144, 256))
    result = score_photo_case(frames, "pan_up", image=frames[0])
    assert result["passed"] and result["size"] == [144, 256]


def test_masked_psnr_and_summary():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255
    mask = np.ones((4, 4), bool)
    mask[0, 0] = False
    assert masked_psnr(a, b, mask) == 100.0 and masked_psnr(a, b, np.ones((4, 4), bool)) < 20
    results = [score_photo_case(clip(k, seed=5), k, image=clip(k, seed=5)[0]) for k in ("zoom_in", "static")]
    results[0]["true_flicker"] = 0.5
    summary = summarise(results)
    assert summary["cases"] == 2 and summary["rates"]["still"] == 1.0 and summary["camera"] == 1.0
    assert summary["meets_bar"]["camera"] and summary["meets_bar"]["first_frame_psnr_128"]
    # flicker's bar is judged on the still shot alone (VBench's protocol); the zoom's is reported beside its truth's
    assert summary["flicker"] == results[1]["flicker"] == 1.0 and summary["meets_bar"]["flicker"]
    assert summary["flicker_moves"] == results[0]["flicker"] < 1.0 and summary["flicker_moves_true"] == 0.5


def test_photo_benchmark_end_to_end_on_a_fake_photo_folder(tmp_path):
    """The CLI's --world photos path on two fake held-out photos with the shipped model, 3 cases."""
    import json

    from PIL import Image

    from i2v.cli import main

    images = []
    for i in range(2):
        (tmp_path / "photos" / "heldout").mkdir(parents=True, exist_ok=True)
        Image.fromarray(dead_leaves(i, 300, 400)).save(tmp_path / "photos" / "heldout" / f"{i}.png")
        images.append({"file": f"heldout/{i}.png", "split": "heldout"})
    (tmp_path / "photos" / "manifest.json").write_text(json.dumps({"images": images}))
    out = tmp_path / "out"
    code = main(["benchmark", "--world", "photos", "--photos", str(tmp_path / "photos"), "--cases", "2",
                 "--first-case", "6", "--num-inference-steps", "2", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["cases"] == 2 and report["summary"]["world"] == "photos"
    assert [c["kind"] for c in report["cases"]] == ["static", "shapes"]
    assert report["cases"][0]["warp_fidelity"] > 0 and report["cases"][1]["category"] == "shapes_direction"
    assert all(c["first_frame_psnr"] is not None for c in report["cases"])
    assert report["cases"][0]["true_flicker"] == 1.0  # a true still clip does not change
    assert "flicker, still shots" in (out / "summary.md").read_text()
    assert (out / "contact_sheet.png").stat().st_size > 0 and "Photo benchmark" in (out / "summary.md").read_text()


def test_photo_cases_are_fixed_by_their_index():
    from i2v.world.photos.benchmark import photo_cases

    photos = [photo(0), photo(1)]
    a, b = photo_cases(photos, 10), photo_cases(photos, 4, first_case=6)
    assert [(c.kind, c.prompt, c.photo) for c in a[6:]] == [(c.kind, c.prompt, c.photo) for c in b]
    assert {c.kind for c in a} >= {"pan_left", "zoom_in", "static", "shapes"}
    assert all(c.prompt for c in a)


def test_shapes_cases_over_photos_are_scorable_on_their_truth():
    """Every shapes case's true clip passes the shapes scorer; a frozen clip does not."""
    from i2v.world.photos.benchmark import SHAPES, photo_cases
    from i2v.world.scoring import score_case

    photos = [photo(0), photo(1)]
    cases = [c for c in photo_cases(photos, 16) if c.kind == SHAPES]
    assert len(cases) == 2
    for case in cases:
        truth = case.frames(photos)
        assert truth.shape == (16, 128, 128, 3) and case.scene.background == "photo"
        assert score_case(truth, case.scene, truth[0])["passed"]
        frozen = np.repeat(truth[:1], 16, axis=0)
        assert not score_case(frozen, case.scene, truth[0])["passed"]


def test_cases_of_chosen_kinds_keep_their_numbers():
    from i2v.world.photos.benchmark import SHAPES, photo_cases

    photos = [photo(0), photo(1)]
    every = photo_cases(photos, 16)
    chosen = photo_cases(photos, 3, kinds=(SHAPES, "zoom_in"))
    wanted = [c for c in every if c.kind in (SHAPES, "zoom_in")][:3]
    assert [(c.index, c.kind, c.prompt) for c in chosen] == [(c.index, c.kind, c.prompt) for c in wanted]
    with pytest.raises(ValueError, match="kinds must be"):
        photo_cases(photos, 2, kinds=("dolly",))


@pytest.mark.parametrize("args, message", [(["--world", "photos", "--kinds", "dolly"], "--kinds takes some of"),
                                           (["--world", "photos", "--kinds", "shapes,"], "--kinds takes some of"),
                                           (["--kinds", "shapes"], "give --world photos")])
def test_bad_kinds_are_refused_before_any_work(tmp_path, args, message, capsys):
    from i2v.cli import main

    assert main(["benchmark", *args, "--out", str(tmp_path / "out")]) != 0
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()
