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


def fake_photo_folder(root):
    """A gathered-photos folder (manifest + train/heldout files) with procedural 'photos'."""
    import json

    from PIL import Image

    from i2v.world.photos.procedural import fractal_noise

    images = []
    for i, split in enumerate(["train", "train", "heldout"]):
        path = root / split / f"p{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fractal_noise(i, 96, 128)).save(path)
        images.append({"file": f"{split}/p{i}.png", "split": split})
    (root / "manifest.json").write_text(json.dumps({"images": images}))
    return root


def test_photos_mix_and_anchored_fine_tune(tmp_path):
    from i2v.models.autoencoder import build_autoencoder

    torch.manual_seed(1)
    build_autoencoder("test").save_pretrained(tmp_path / "init")
    photos = fake_photo_folder(tmp_path / "photos")
    args = ["--output-dir", str(tmp_path / "run"), "--photos", str(photos), "--init-from", str(tmp_path / "init"),
            "--anchor-weight", "1.0", "--learning-rate", "1e-3", "--warmup-steps", "1"] + ARGS
    losses = main(args)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    with open(tmp_path / "run" / "loss_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["anchor"]) == pytest.approx(0.0, abs=1e-6)  # step 1 starts at the initial encoder
    assert float(rows[-1]["anchor"]) > 0  # and drifts as it learns
    AutoencoderKL.from_pretrained(tmp_path / "run" / "final", use_safetensors=True)


def test_mix_counts_and_bad_flags(tmp_path):
    from i2v.errors import TrainingSetupError
    from i2v.training.train_vae import mix_counts

    assert mix_counts("0.25,0.6,0.15", 32) == (8, 19, 5)
    assert sum(mix_counts("1,1,1", 32)) == 32
    for bad in ("1,2", "a,b,c", "-1,1,1", "0,0,0"):
        with pytest.raises(TrainingSetupError, match="--mix"):
            mix_counts(bad, 32)
    with pytest.raises(TrainingSetupError, match="--init-from"):
        main(["--output-dir", str(tmp_path), "--anchor-weight", "1"] + ARGS)


@pytest.mark.parametrize("flag, value", [("--learning-rate", "nan"), ("--learning-rate", "0"), ("--warmup-steps", "-1"),
                                         ("--anchor-weight", "-1")])
def test_bad_training_numbers_are_refused_before_anything_is_written(tmp_path, flag, value):
    from i2v.errors import TrainingSetupError

    with pytest.raises(TrainingSetupError):
        main(["--output-dir", str(tmp_path / "run"), flag, value] + ARGS)
    assert not (tmp_path / "run").exists()


def test_patch_autoencoder_starts_from_the_photos_principal_components(tmp_path):
    from i2v.models.autoencoder import load_autoencoder
    from i2v.models.patch_autoencoder import PatchAutoencoder

    photos = fake_photo_folder(tmp_path / "photos")
    args = ["--output-dir", str(tmp_path / "run"), "--photos", str(photos), "--preset", "patch-test",
            "--max-steps", "2", "--checkpoint-every", "2", "--mixed-precision", "no"]
    losses = main(args)
    assert len(losses) == 2
    vae = load_autoencoder(tmp_path / "run" / "final")
    assert isinstance(vae, PatchAutoencoder) and vae.config.scaling_factor != 1.0
    assert len(vae.config.latents_mean) == len(vae.config.latents_std) == 8 and min(vae.config.latents_std) > 0
    basis = vae.linear_decode.weight[:, :, 0, 0].detach()  # (48, 8): near-orthonormal after 2 small steps
    assert torch.allclose(basis.T @ basis, torch.eye(8), atol=0.05)


def test_anchor_refused_for_a_patch_autoencoder(tmp_path):
    from i2v.errors import TrainingSetupError
    from i2v.models.autoencoder import build_autoencoder

    build_autoencoder("patch-test").save_pretrained(tmp_path / "init")
    with pytest.raises(TrainingSetupError, match="AutoencoderKL"):
        main(["--output-dir", str(tmp_path / "run"), "--init-from", str(tmp_path / "init"), "--anchor-weight", "1"]
             + ARGS)
