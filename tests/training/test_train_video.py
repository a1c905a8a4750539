import csv

import numpy as np
import pytest
import torch

from i2v.errors import TrainingSetupError
from i2v.training.train_video import learning_rate_schedule, main


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory):
    from ..conftest import dummy_components

    folder = tmp_path_factory.mktemp("vae")
    dummy_components(size=128)["vae"].save_pretrained(folder)
    return folder


def _args(vae, out):
    return ["--vae", str(vae), "--output-dir", str(out), "--preset", "test", "--max-steps", "4",
            "--checkpoint-every", "2", "--sample-every", "4", "--mixed-precision", "no"]


def test_tiny_run_trains_and_exports(tiny_vae_dir, tmp_path):
    losses = main(_args(tiny_vae_dir, tmp_path))
    assert len(losses) == 4 and np.isfinite(list(losses.values())).all()
    assert (tmp_path / "ema_unet" / "config.json").exists()
    assert (tmp_path / "samples" / "step_00000004.png").exists()
    assert list((tmp_path / "latents").glob("shard_*.safetensors"))


def test_killed_run_resumes_with_the_same_losses(tiny_vae_dir, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    expected = main(_args(tiny_vae_dir, full))
    main(_args(tiny_vae_dir, killed) + ["--stop-at-step", "3"])
    resumed = main(_args(tiny_vae_dir, killed) + ["--resume", "latest"])
    assert sorted(resumed) == [3, 4]
    for step in (3, 4):
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5)
    with open(killed / "loss_log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]


def test_exported_model_generates_through_the_cli(tiny_vae_dir, tmp_path, sample_image_path):
    from i2v.cli import main as cli
    from i2v.io.video import read_video
    from i2v.training.export import export_model

    main(_args(tiny_vae_dir, tmp_path / "run"))
    model = export_model(tiny_vae_dir, tmp_path / "run" / "ema_unet", tmp_path / "model")
    out = tmp_path / "clip.mp4"
    assert cli(["generate", str(sample_image_path), "-p", "the red square moves up", "-m", str(model),
                "--num-inference-steps", "2", "--seed", "0", "-q", "-o", str(out)]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (16, 128, 128, 3) and fps == 8  # defaults from the exported model's config


def test_export_samples_with_the_shift_the_run_trained_with(tiny_vae_dir, tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from i2v.training.export import export_model

    main(_args(tiny_vae_dir, tmp_path / "run") + ["--sigma-shift", "2.5", "--max-steps", "2"])
    unet = tmp_path / "run" / "ema_unet"
    recorded = export_model(tiny_vae_dir, unet, tmp_path / "recorded")
    assert FlowMatchEulerDiscreteScheduler.from_pretrained(recorded / "scheduler").config.shift == 2.5
    override = export_model(tiny_vae_dir, unet, tmp_path / "override", shift=1.5)
    assert FlowMatchEulerDiscreteScheduler.from_pretrained(override / "scheduler").config.shift == 1.5


def test_export_of_a_unet_without_a_recorded_shift_samples_unshifted(tiny_vae_dir, tmp_path):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from i2v.training.export import export_model

    main(_args(tiny_vae_dir, tmp_path / "run") + ["--max-steps", "2"])
    loose = tmp_path / "loose" / "unet"  # a denoiser folder copied out of its run
    loose.parent.mkdir()
    (tmp_path / "run" / "ema_unet").rename(loose)
    model = export_model(tiny_vae_dir, loose, tmp_path / "model")
    assert FlowMatchEulerDiscreteScheduler.from_pretrained(model / "scheduler").config.shift == 1.0


def test_cooldown_decays_the_logged_learning_rate_to_zero(tiny_vae_dir, tmp_path):
    main(_args(tiny_vae_dir, tmp_path) + ["--max-steps", "6", "--cooldown-steps", "1"])
    with open(tmp_path / "loss_log.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert len(lrs) == 6 and lrs[-1] == 0.0 and lrs[-2] > 0.0


def _one_parameter_optimizer():
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_constant_run_resumed_with_a_cooldown_branches_into_it():
    constant_opt = _one_parameter_optimizer()
    constant = learning_rate_schedule(constant_opt, max_steps=100, cooldown_steps=0, warmup_steps=10)
    for _ in range(60):
        constant_opt.step()
        constant.step()
    assert constant.get_last_lr()[0] == 1.0
    branch = learning_rate_schedule(_one_parameter_optimizer(), max_steps=80, cooldown_steps=20, warmup_steps=10)
    branch.load_state_dict(constant.state_dict())  # what --resume does with the checkpoint
    lrs = []
    for _ in range(20):
        branch.optimizer.step()
        branch.step()
        lrs.append(branch.get_last_lr()[0])
    assert lrs[0] == pytest.approx(0.95) and lrs[9] == pytest.approx(0.5) and lrs[-1] == 0.0
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_cooldown_longer_than_the_run_is_refused_before_anything_is_written(tiny_vae_dir, tmp_path):
    with pytest.raises(TrainingSetupError, match="--cooldown-steps 5 does not fit in --max-steps 6"):
        main(_args(tiny_vae_dir, tmp_path / "run") + ["--max-steps", "6", "--cooldown-steps", "5"])
    assert not (tmp_path / "run").exists()


def test_learning_rate_and_warmup_override_the_preset(tiny_vae_dir, tmp_path):
    main(_args(tiny_vae_dir, tmp_path) + ["--max-steps", "3", "--learning-rate", "5e-4", "--warmup-steps", "0"])
    with open(tmp_path / "loss_log.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs == [pytest.approx(5e-4)] * 3  # the test preset's own is 1e-3 after 2 warmup steps


@pytest.mark.parametrize("flags", [["--learning-rate", "0"], ["--warmup-steps", "-1"]])
def test_bad_learning_rate_or_warmup_is_refused_before_anything_is_written(tiny_vae_dir, tmp_path, flags):
    with pytest.raises(TrainingSetupError, match="--learning-rate must be > 0"):
        main(_args(tiny_vae_dir, tmp_path / "run") + flags)
    assert not (tmp_path / "run").exists()


def test_photo_clips_join_the_batches(tiny_vae_dir, tmp_path):
    from .test_train_vae import fake_photo_folder

    photos = fake_photo_folder(tmp_path / "photos")
    losses = main(_args(tiny_vae_dir, tmp_path / "run") + ["--photos", str(photos), "--photo-clips", "3",
                                                           "--photo-share", "0.5", "--scenes-over-photos", "1"])
    assert len(losses) == 4 and np.isfinite(list(losses.values())).all()
    from i2v.training.latent_cache import load_latent_cache, load_shards

    latents, records = load_shards(tmp_path / "run" / "photo_latents")
    world, _ = load_latent_cache(tmp_path / "run" / "latents")
    assert latents.shape[0] == 3 and latents.shape[1:] == world.shape[1:]  # same clip shape as the world's
    from i2v.world.photos.camera import CAMERA_MOTIONS

    assert {r["move"]["kind"] for r in records} <= set(CAMERA_MOTIONS) and all(r["photo"] in (0, 1) for r in records)
    _, scenes = load_latent_cache(tmp_path / "run" / "latents")
    assert all(s.background == "photo" and s.meta["photo"] in (0, 1) for s in scenes)  # every scene over a photo
    with pytest.raises(TrainingSetupError, match="--photo-share"):
        main(_args(tiny_vae_dir, tmp_path / "bad") + ["--photos", str(photos), "--photo-share", "0"])


def test_a_warping_denoiser_trains_on_photo_clips_with_their_flow(tmp_path):
    """--prediction warp on the photo autoencoder: the run trains, and its exported denoiser warps."""
    from i2v.models.autoencoder import build_autoencoder
    from i2v.models.unet import SpaceTimeUNet

    from .test_train_vae import fake_photo_folder

    torch.manual_seed(0)
    vae = build_autoencoder("patch-test", sample_size=128)
    vae.fit_linear_path(torch.rand(4, 3, 32, 32) * 2 - 1)
    vae.save_pretrained(tmp_path / "vae")
    photos = fake_photo_folder(tmp_path / "photos")
    losses = main(_args(tmp_path / "vae", tmp_path / "run") + ["--photos", str(photos), "--photo-clips", "3",
                                                             "--prediction", "warp", "--flow-weight", "2"])
    assert len(losses) == 4 and np.isfinite(list(losses.values())).all()
    unet = SpaceTimeUNet.from_pretrained(tmp_path / "run" / "ema_unet")
    assert unet.config.prediction == "warp"
    torch.testing.assert_close(unet.warp.to_patches, vae.linear_decode.weight[:, :, 0, 0].detach())


def test_photo_batch_mirrors_pans_and_captions_them():
    """Each mirrored clip of a pan left is captioned as a pan right, and each unmirrored one as a pan left;
    its flow points the way the content came from (left for a pan left, whose content slides right)."""
    from i2v.training.train_video import PhotoBucket, photo_batch
    from i2v.world.photos.camera import CameraMove

    latents = torch.arange(4 * 2 * 2 * 3, dtype=torch.float16).reshape(1, 4, 2, 2, 3)
    move = CameraMove("pan_left", 0.3, (100.0, 100.0), 48.0, (8, 12))
    bucket = PhotoBucket.from_records(latents, [{"move": move.to_dict()}], compression=4)
    seen = {True: 0, False: 0}
    for seed in range(30):
        batch, captions, flows = photo_batch(np.random.default_rng(seed), bucket, 4)
        assert batch.shape == (4, 4, 2, 2, 3) and len(captions) == 4 and flows.shape == (4, 2, 2, 2, 3)
        for clip, caption, flow in zip(batch, captions, flows):
            mirrored = torch.equal(clip, latents[0].float().flip(-1))
            assert mirrored or torch.equal(clip, latents[0].float())
            # frame 1 of 2 is the whole pan: 0.3 of the width, 0.6 in normalised units
            torch.testing.assert_close(flow[0, 1], torch.full((2, 3), 0.6 if mirrored else -0.6))
            assert flow[:, 0].abs().max() == 0 and flow[1].abs().max() < 1e-6
            if caption and ("left" in caption or "right" in caption):
                assert ("right" in caption) == mirrored, caption
                seen[mirrored] += 1
    assert seen[True] and seen[False]


def test_init_from_a_velocity_denoiser_as_a_warping_one(tmp_path):
    """--prediction warp from a velocity denoiser: the body and patch embedding carry over (the new
    coordinate inputs start at zero), the output starts at zero, and the warp comes from the autoencoder."""
    from i2v.models.autoencoder import build_autoencoder
    from i2v.models.unet import build_unet
    from i2v.training.trainable_i2v import load_unet

    torch.manual_seed(0)
    old = build_unet("test", latent_channels=8, num_frames=4, sample_size=8)
    old.save_pretrained(tmp_path / "unet")
    vae = build_autoencoder("patch-test")
    vae.fit_linear_path(torch.rand(4, 3, 32, 32) * 2 - 1)
    new = load_unet(tmp_path, log=lambda *a: None, prediction="warp", vae=vae)
    assert new.config.prediction == "warp" and new.conv_in.weight.shape[1] == 18
    torch.testing.assert_close(new.conv_in.weight[:, :16], old.conv_in.weight)
    assert new.conv_in.weight[:, 16:].abs().max() == 0 and new.conv_out.weight.abs().max() == 0
    torch.testing.assert_close(new.down[0][0].conv1.weight, old.down[0][0].conv1.weight)
    torch.testing.assert_close(new.warp.to_patches, vae.linear_decode.weight[:, :, 0, 0] / vae.config.scaling_factor)
    with pytest.raises(ValueError, match="autoencoder"):
        load_unet(tmp_path, prediction="warp")


def test_a_latent_cache_built_otherwise_is_refused(tiny_vae_dir, tmp_path):
    from diffusers import AutoencoderKL

    from i2v.errors import StaleCacheError
    from i2v.training.latent_cache import build_photo_latent_cache
    from i2v.world.photos.procedural import fractal_noise

    vae = AutoencoderKL.from_pretrained(tiny_vae_dir)
    photos = [fractal_noise(0, 96, 128)]
    build_photo_latent_cache(vae, tmp_path / "cache", photos, 2, log=lambda *a: None)
    build_photo_latent_cache(vae, tmp_path / "cache", photos, 2, log=lambda *a: None)  # the same: reused
    with pytest.raises(StaleCacheError, match="num_clips: 2 -> 3"):
        build_photo_latent_cache(vae, tmp_path / "cache", photos, 3, log=lambda *a: None)
    with pytest.raises(StaleCacheError, match="photos"):
        build_photo_latent_cache(vae, tmp_path / "cache", [fractal_noise(1, 96, 128)], 2, log=lambda *a: None)


def test_init_from_a_denoiser_of_other_latent_channels_keeps_the_rest(tmp_path):
    """A new autoencoder with 8 latent channels: the shipped 4-channel denoiser's inner weights carry over."""
    from i2v.models.unet import build_unet
    from i2v.training.trainable_i2v import load_unet

    torch.manual_seed(0)
    old = build_unet("test", latent_channels=4, num_frames=4, sample_size=8)
    old.save_pretrained(tmp_path / "unet")
    lines = []
    new = load_unet(tmp_path, latent_channels=8, log=lines.append)
    assert new.config.latent_channels == 8 and "conv_in.weight" in lines[0] and "conv_out.weight" in lines[0]
    old_state, new_state = old.state_dict(), new.state_dict()
    assert new_state["conv_in.weight"].shape[1] == 16 and not new_state["conv_out.weight"].any()
    same = [k for k in old_state if not k.startswith(("conv_in", "conv_out"))]
    assert same and all(torch.equal(old_state[k], new_state[k]) for k in same)
    assert load_unet(tmp_path, latent_channels=4).config.latent_channels == 4


def test_photo_clips_at_several_sizes(tiny_vae_dir, tmp_path):
    """Photo-only steps at another size (here every step at 96x64, width x height), batch scaled by area; a
    cache per size."""
    from i2v.training.latent_cache import load_shards
    from i2v.training.train_video import parse_sizes

    from .test_train_vae import fake_photo_folder

    photos = fake_photo_folder(tmp_path / "photos")
    losses = main(_args(tiny_vae_dir, tmp_path / "run") + ["--photos", str(photos), "--photo-clips", "4",
                                                           "--photo-sizes", "128x128,96x64", "--large-share", "1"])
    assert len(losses) == 4 and np.isfinite(list(losses.values())).all()
    small, _ = load_shards(tmp_path / "run" / "photo_latents" / "96x64")
    assert small.shape[0] == 1 and small.shape[-2:] == (16, 24)  # 4x down-sampled latents of 96x64 clips (h, w)
    assert parse_sizes("128x128,256x144") == [(128, 128), (144, 256)]  # (height, width)
    for bad in ("256x144", "128x128,100x100", "big"):
        with pytest.raises(TrainingSetupError, match="--photo-sizes"):
            parse_sizes(bad)


def test_history_windows_hold_a_windows_first_frames_and_anchor_at_the_clip_start():
    from i2v.training.train_video import bounce, history_windows

    clips = torch.arange(64 * 24, dtype=torch.float32).view(64, 1, 24, 1, 1).expand(64, 2, 24, 3, 3)
    in_view = [24] * 32 + [17] * 16 + [8] * 16  # clips whose object leaves the frame after 17 or 8 frames
    windows, held, anchors, turned = history_windows(clips, np.random.default_rng(0), 16, 4, in_view, sweeps=3)
    assert windows.shape == (64, 2, 16, 3, 3) and held.shape == (64, 16) and turned.shape == (64,)
    torch.testing.assert_close(anchors, clips[:, :, 0])
    kinds = []
    for w, c, h, t, view in zip(windows, clips, held, turned, in_view):
        frames = [int(v) for v in w[0, :, 0, 0] - c[0, 0, 0, 0]]  # which clip frame each window frame is
        k = int(h.sum())
        assert h[:k].all() and not h[k:].any() and 1 <= k <= 4  # its first k frames
        steps = np.diff(frames)
        if frames == list(range(16)):
            kinds.append("start")  # a clip's start (frame 0 held alone), or a forward sweep back at frame 0
            assert not t
        elif (steps == 1).all():
            kinds.append("later")
            assert frames[0] >= 1 and frames[-1] < view and not t  # a later stretch, its object in view
        else:
            kinds.append("turn")
            assert set(steps) <= {1, -1} and max(frames) <= 15  # the first 16 frames, to and fro
            made = np.diff(frames[k - 1:])  # from the last held frame on: one sweep
            assert len(set(made)) == 1 and bool(t) == (made[0] == -1)  # backwards: the motion reversed
    assert {"start", "later", "turn"} <= set(kinds)
    assert [bounce(t, 15) for t in (0, 15, 16, 30, 31, 45)] == [0, 15, 14, 0, 1, 15]


def test_a_history_run_trains_on_long_clips_and_exports_a_denoiser_that_continues(tiny_vae_dir, tmp_path):
    """``--history-frames 2 --clip-frames 20``: a cache of 20-frame clips, windows of 16 with their history
    frames; the exported denoiser records history_frames. A fine-tune from a plain denoiser grows the input."""
    from safetensors.torch import load_file

    losses = main(_args(tiny_vae_dir, tmp_path / "run") + ["--history-frames", "2", "--clip-frames", "20"])
    assert len(losses) == 4 and np.isfinite(list(losses.values())).all()
    shard = load_file(str(next((tmp_path / "run" / "latents").glob("shard_*.safetensors"))))["latents"]
    assert shard.shape[2] == 20
    config = (tmp_path / "run" / "ema_unet" / "config.json").read_text()
    assert '"history_frames": 2' in config and '"num_frames": 16' in config
    main(_args(tiny_vae_dir, tmp_path / "plain"))
    tuned = main(_args(tiny_vae_dir, tmp_path / "tuned") + ["--history-frames", "2", "--clip-frames", "20", "--init-from",
                                                             str(tmp_path / "plain" / "ema_unet"),
                                                             "--cache-dir", str(tmp_path / "run" / "latents")])
    assert np.isfinite(list(tuned.values())).all()


def test_a_turned_windows_caption_names_the_reversed_motion(tiny_vae_dir, tmp_path, monkeypatch):
    """A window played backwards is captioned with its motion reversed ("moves left" for a clip moving right);
    the others with the clip's own (or its mirror's)."""
    from i2v.training import train_video
    from i2v.training.latent_cache import load_latent_cache
    from i2v.world.scenes import REVERSED_MOTION, mirror_scene

    windows = train_video.history_windows
    turn_all = [True]

    def turned_windows(*args, **kwargs):
        w, held, anchors, turned = windows(*args, **kwargs)
        return w, held, anchors, torch.full_like(turned, turn_all[0])

    captioned = []
    monkeypatch.setattr(train_video, "history_windows", turned_windows)
    monkeypatch.setattr(train_video, "caption_scene", lambda scene, *a, **k: captioned.append(scene) or "a caption")
    main(_args(tiny_vae_dir, tmp_path / "run") + ["--history-frames", "2", "--clip-frames", "20", "--max-steps", "2"])
    _, cached = load_latent_cache(tmp_path / "run" / "latents")
    for turned in (True, False):
        turn_all[0], captioned[:] = turned, []
        main(_args(tiny_vae_dir, tmp_path / f"again{turned}") + ["--history-frames", "2", "--clip-frames", "20",
                                                                   "--max-steps", "2", "--cache-dir",
                                                                   str(tmp_path / "run" / "latents")])
        assert captioned
        for scene in captioned:  # the cached scene it shows, as cached or mirrored
            xs = [round(o.x, 6) for o in scene.objects]
            own = next(v for c in cached for v in (c, mirror_scene(c)) if [round(o.x, 6) for o in v.objects] == xs)
            assert scene.motion == (REVERSED_MOTION[own.motion] if turned else own.motion)


@pytest.mark.parametrize("flags", [["--history-frames", "16"], ["--history-frames", "2", "--clip-frames", "12"],
                                   ["--clip-frames", "24"], ["--history-frames", "2", "--prediction", "warp"]])
def test_a_history_run_that_cannot_be_is_refused_before_anything_is_written(tiny_vae_dir, tmp_path, flags):
    with pytest.raises(TrainingSetupError):
        main(_args(tiny_vae_dir, tmp_path / "out") + flags)
    assert not (tmp_path / "out").exists()


def test_history_frames_from_a_warping_model_are_refused_before_anything_is_written(tiny_vae_dir, tmp_path,
                                                                                   warp_model_dir):
    with pytest.raises(TrainingSetupError, match="velocity denoiser"):
        main(_args(tiny_vae_dir, tmp_path / "out") + ["--history-frames", "2", "--init-from", str(warp_model_dir)])
    assert not (tmp_path / "out").exists()


def test_long_clips_are_not_drawn_over_photos(tiny_vae_dir, tmp_path):
    """A longer clip's camera goes on past the photo window's margin: refused."""
    from i2v.models.autoencoder import load_autoencoder
    from i2v.training.latent_cache import build_latent_cache

    photos = [np.zeros((200, 300, 3), np.uint8)]
    with pytest.raises(ValueError, match="clip_frames"):
        build_latent_cache(load_autoencoder(tiny_vae_dir), tmp_path / "cache", 2, photos=photos, photo_share=0.5,
                           clip_frames=24)
