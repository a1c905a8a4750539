import numpy as np
import pytest
import torch

from i2v.models.autoencoder import to_diffusion_latents
from i2v.pipelines.pipeline_i2v import I2VPipeline

from ..conftest import dummy_components


@pytest.fixture(scope="module", params=["test", "patch-test"])  # both autoencoder kinds
def pipe(request, text_encoder):
    p = I2VPipeline(**dummy_components(vae_preset=request.param))
    p.text_encoder = text_encoder
    p.set_progress_bar_config(disable=True)
    return p


def _image(size=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def test_output_frames_shape_and_dtype(pipe):
    frames = pipe(image=_image(), prompt="the red circle moves left", num_inference_steps=2, seed=0).frames
    assert frames.shape == (4, 64, 64, 3)
    assert frames.dtype == np.uint8


def test_same_seed_same_frames_other_seed_other_frames(pipe):
    kw = dict(image=_image(), prompt="the blue square moves up", num_inference_steps=2)
    a, b, c = pipe(seed=1, **kw).frames, pipe(seed=1, **kw).frames, pipe(seed=2, **kw).frames
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_first_frame_is_the_autoencoded_image(pipe):
    img = _image()
    frames = pipe(image=img, prompt="x", num_inference_steps=2, seed=0).frames
    with torch.no_grad():
        x = pipe.image_to_tensor(img, 64, 64)
        z = to_diffusion_latents(pipe.vae, pipe.vae.encode(x).latent_dist.mean)
        expected = pipe.decode_latents(z[:, :, None])[0]
    np.testing.assert_allclose(frames[0].astype(int), expected.astype(int), atol=1)


def test_prompt_changes_the_video(pipe):
    kw = dict(image=_image(), num_inference_steps=2, seed=0, guidance_scale=3.0)
    a = pipe(prompt="the red circle moves left", **kw).frames
    b = pipe(prompt="the camera zooms out", **kw).frames
    assert not np.array_equal(a[1:], b[1:])


def test_guidance_one_skips_the_unconditional_branch(pipe):
    calls = []
    hook = pipe.unet.register_forward_hook(lambda m, args, kw_out: calls.append(args[0].shape[0]))
    try:
        pipe(image=_image(), prompt="x", num_inference_steps=2, seed=0, guidance_scale=1.0)
        pipe(image=_image(), prompt="x", num_inference_steps=2, seed=0, guidance_scale=2.0)
    finally:
        hook.remove()
    assert calls == [1, 1, 2, 2]  # CFG batches both branches into one forward


def test_callback_reports_progress(pipe):
    seen = []
    pipe(image=_image(), prompt="x", num_inference_steps=3, seed=0, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_frames=1), "num_frames"),
    (dict(height=60), "height"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(guidance_scale=-1.0), "guidance_scale"),
])
def test_invalid_arguments_raise(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe(image=_image(), prompt="x", **kwargs)


def test_save_and_load_folder(pipe, tmp_path, text_encoder):
    pipe.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"model_index.json", "vae", "unet", "scheduler"}
    assert not list(tmp_path.rglob("*.bin")), "weights must be safetensors only"
    loaded = I2VPipeline.from_folder(tmp_path, text_encoder=text_encoder)
    loaded.set_progress_bar_config(disable=True)
    kw = dict(image=_image(), prompt="the red circle moves left", num_inference_steps=2, seed=3)
    # same weights; a reloaded model may round a few values the other way (conv algorithm choice)
    diff = np.abs(pipe(**kw).frames.astype(int) - loaded(**kw).frames.astype(int))
    assert diff.max() <= 1


def test_saved_patch_autoencoder_model_loads_back_and_generates_the_same(tmp_path, text_encoder):
    from i2v.models.patch_autoencoder import PatchAutoencoder

    saved = I2VPipeline(**dummy_components(vae_preset="patch-test"))
    saved.save_pretrained(tmp_path / "model")
    loaded = I2VPipeline.from_folder(tmp_path / "model", text_encoder=text_encoder)
    saved.text_encoder = text_encoder
    assert isinstance(loaded.vae, PatchAutoencoder) and loaded.vae_scale_factor == 4
    kw = dict(image=_image(), prompt="the camera pans left", num_inference_steps=2, seed=3)
    np.testing.assert_array_equal(saved(**kw).frames, loaded(**kw).frames)


def test_a_warping_denoiser_plans_its_motion_once_guided_and_then_runs_without_cfg(text_encoder, monkeypatch):
    """One forward with both prompts at the first noise level gives the flow (the prompt's, pushed from the
    negative prompt's by the guidance, fitted to a camera motion); every step after runs the prompt alone
    with that flow held."""
    from i2v.models.unet import fit_affine_flow

    p = I2VPipeline(**dummy_components(vae_preset="patch-test", prediction="warp"))
    p.text_encoder = text_encoder
    p.set_progress_bar_config(disable=True)
    calls, plans = [], []
    hook = p.unet.register_forward_hook(lambda m, args, kwargs, out: calls.append(
        (args[0].shape[0], kwargs.get("flow") is not None)), with_kwargs=True)
    plan = p.motion_plan
    monkeypatch.setattr(p, "motion_plan", lambda *a: plans.append((a, plan(*a))) or plans[-1][1])
    try:
        frames = p(image=_image(), prompt="the camera pans left", num_inference_steps=3, seed=0,
                   guidance_scale=2.5).frames
        planned, calls[:] = list(calls), []
        # video-to-video starts part-way down from the init video, whose latents drive the flow: no plan
        p(image=_image(), prompt="the camera pans left", num_inference_steps=4, seed=0, guidance_scale=2.5,
          init_video=np.stack([_image()] * 4), strength=0.5)
    finally:
        hook.remove()
    assert frames.shape == (4, 64, 64, 3)
    assert planned == [(2, False), (1, True), (1, True), (1, True)]
    (xin, s, image_cond, text, scale), flow = plans[0]
    with torch.no_grad():
        _, raw = p.unet(xin, s, image_cond, text.states, text.pooled, text.mask, return_flow=True)
    neg, pos = raw.float().chunk(2)
    assert scale == 2.5 and flow.shape == (1, 2, 4, 16, 16)
    torch.testing.assert_close(flow, fit_affine_flow(neg + 2.5 * (pos - neg), time_degree=2))
    assert p.default_settings["guidance_scale"] == 1.0  # guidance scales the motion: 1 by default
    assert calls == [(2, False), (2, False)] and len(plans) == 1


def test_generation_builds_no_autograd_graph(pipe, monkeypatch):
    """Encoding, denoising and decoding run without gradients (a graph kept through the decoder holds
    its activations: the memory planner's estimate would be 3x short)."""
    grad = []
    hook = pipe.unet.register_forward_hook(lambda m, args, out: grad.append(torch.is_grad_enabled()))
    for name in ("encode_prompt", "decode_latents"):
        original = getattr(pipe, name)
        monkeypatch.setattr(pipe, name, lambda *a, _f=original, **k: grad.append(torch.is_grad_enabled()) or _f(*a, **k))
    try:
        pipe(image=_image(), prompt="x", num_inference_steps=2, seed=0)
    finally:
        hook.remove()
    assert len(grad) >= 4 and not any(grad)


def _warping_pipe(text_encoder):
    p = I2VPipeline(**dummy_components(vae_preset="patch-test", prediction="warp"))
    p.text_encoder = text_encoder
    p.set_progress_bar_config(disable=True)
    return p


def test_a_camera_path_replaces_the_motion_plan(text_encoder, monkeypatch):
    """A caller's motion that covers the frame is held at every step; the model plans nothing."""
    from i2v.motion.camera_path import resolve_camera_path
    from i2v.motion.motion_field import camera_motion

    p = _warping_pipe(text_encoder)
    motion = camera_motion(resolve_camera_path("0.375s: pan right 0.3", 4, 8)[1], 4, 8, 64, 64)
    monkeypatch.setattr(p, "motion_plan", lambda *a: pytest.fail("planned a motion that was given"))
    held = []
    hook = p.unet.register_forward_hook(lambda m, args, kwargs, out: held.append(
        (kwargs["flow"], kwargs["residual_keep"])), with_kwargs=True)
    try:
        frames = p(image=_image(), prompt="", num_inference_steps=3, seed=0, motion=motion).frames
    finally:
        hook.remove()
    assert frames.shape == (4, 64, 64, 3) and len(held) == 3
    assert all(flow is motion.flow and keep is None for flow, keep in held)


def test_trajectories_are_held_over_the_models_plan_without_its_residual_there(text_encoder, monkeypatch):
    from i2v.motion.motion_field import trajectory_motion
    from i2v.motion.trajectory import resolve_trajectories

    p = _warping_pipe(text_encoder)
    image = _image()
    motion = trajectory_motion(image, resolve_trajectories("a: 0.3,0.3 -> 0.6,0.6", 4, 8)[1], 4, 8)
    plans, held = [], []
    plan = p.motion_plan
    monkeypatch.setattr(p, "motion_plan", lambda *a: plans.append(plan(*a)) or plans[-1])
    hook = p.unet.register_forward_hook(lambda m, args, kwargs, out: held.append(
        (kwargs.get("flow"), kwargs.get("residual_keep"))), with_kwargs=True)
    try:
        p(image=image, prompt="", num_inference_steps=2, seed=0, motion=motion)
    finally:
        hook.remove()
    assert len(plans) == 1
    flow, keep = held[-1]
    torch.testing.assert_close(flow, motion.over(plans[0]))
    torch.testing.assert_close(keep, motion.residual_keep(16, 16))


def test_motion_needs_a_warping_denoiser_of_the_runs_shape(pipe, text_encoder):
    from i2v.motion.motion_field import MotionField

    with pytest.raises(ValueError, match="needs a warping denoiser"):
        pipe(image=_image(), num_inference_steps=1, motion=MotionField(torch.zeros(1, 2, 4, 64, 64)))
    with pytest.raises(ValueError, match=r"motion.flow must be \(1, 2, 4, 64, 64\)"):
        _warping_pipe(text_encoder)(image=_image(), num_inference_steps=1,
                                    motion=MotionField(torch.zeros(1, 2, 4, 32, 32)))


def _history_pipe(text_encoder, history_frames=2, num_frames=6):
    from i2v.models.unet import build_unet

    from ..conftest import randomize_zero_init

    parts = dummy_components(num_frames=num_frames)
    torch.manual_seed(1)
    parts["unet"] = build_unet("test", num_frames=num_frames, sample_size=parts["unet"].config.sample_size,
                               latent_channels=parts["vae"].config.latent_channels, history_frames=history_frames)
    randomize_zero_init(parts["unet"])
    p = I2VPipeline(**parts)
    p.text_encoder = text_encoder
    p.set_progress_bar_config(disable=True)
    return p


def test_a_history_window_keeps_its_given_frames_and_is_anchored_at_the_image(text_encoder):
    """A denoiser trained with history frames: a window's first k frames are the history latents as given
    (the frames it continues), the rest are made anew; the image stays its anchor (another image, another
    window); without history its frame 0 is the image, as for any denoiser."""
    pipe = _history_pipe(text_encoder)
    g = torch.Generator().manual_seed(3)
    history = torch.randn(1, 4, 2, 16, 16, generator=g)
    kw = {"prompt": "the red circle moves left", "num_frames": 6, "num_inference_steps": 2, "seed": 0,
          "return_latents": True}
    out = pipe(image=_image(), history_latents=history, **kw)
    torch.testing.assert_close(out.latents[:, :, :2], history)
    np.testing.assert_allclose(out.frames[:2].astype(int), pipe.decode_latents(history).astype(int), atol=1)
    other_anchor = pipe(image=255 - _image(), history_latents=history, **kw)
    assert not torch.allclose(other_anchor.latents[:, :, 2:], out.latents[:, :, 2:])
    for wrong in (torch.randn(1, 4, 6, 16, 16), torch.randn(1, 3, 2, 16, 16), torch.randn(1, 4, 2, 8, 8),
                  torch.randn(4, 2, 16, 16)):
        with pytest.raises(ValueError, match="history_latents must be"):
            pipe(image=_image(), history_latents=wrong, **kw)


def test_the_denoiser_is_told_which_frames_are_given_in_both_halves_of_a_guided_batch(text_encoder, monkeypatch):
    pipe = _history_pipe(text_encoder)
    seen = []
    forward = type(pipe.unet).forward

    def spy(self, *args, held=None, **kwargs):
        seen.append(held.clone())
        return forward(self, *args, held=held, **kwargs)

    monkeypatch.setattr(type(pipe.unet), "forward", spy)
    pipe(image=_image(), prompt="x", num_frames=6, num_inference_steps=1, guidance_scale=3.0,
         history_latents=torch.zeros(1, 4, 2, 16, 16))
    pipe(image=_image(), prompt="x", num_frames=6, num_inference_steps=1, guidance_scale=1.0)
    assert seen[0].tolist() == [[1, 1, 0, 0, 0, 0]] * 2  # the prompt's and the negative's halves
    assert seen[-1].tolist() == [[1, 0, 0, 0, 0, 0]]  # no history: the image at frame 0


def test_history_needs_a_denoiser_trained_with_it(pipe):
    with pytest.raises(ValueError, match="history frames"):
        pipe(image=_image(), prompt="x", num_inference_steps=1, history_latents=torch.zeros(1, 4, 1, 16, 16))
