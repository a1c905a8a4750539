import math

import torch

from i2v.models.unet import LOG_TAU_START, SpaceTimeUNet, build_unet

from ..conftest import randomize_zero_init


def _inputs(b=2, t=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        sample=torch.randn(b, 4, t, size, size, generator=g),
        timestep=torch.rand(b, generator=g),
        image_latents=torch.randn(b, 4, size, size, generator=g),
        text_states=torch.randn(b, 5, 384, generator=g),
        text_pooled=torch.randn(b, 384, generator=g),
        text_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)[:b],
    )


def _model():
    torch.manual_seed(0)
    m = build_unet("test", num_frames=4, sample_size=16)
    randomize_zero_init(m)
    return m.eval()


def test_output_shape_matches_input():
    out = _model()(**_inputs())
    assert out.shape == (2, 4, 4, 16, 16)
    assert torch.isfinite(out).all()


def test_freshly_built_model_predicts_zero():
    # the output conv is zero-initialised (a stable start for training)
    torch.manual_seed(0)
    out = build_unet("test", num_frames=4, sample_size=16)(**_inputs())
    assert torch.count_nonzero(out) == 0


def test_save_and_load_round_trip(tmp_path):
    m = _model()
    m.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = SpaceTimeUNet.from_pretrained(tmp_path, use_safetensors=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(m(**_inputs()), loaded(**_inputs()))


def test_prompt_and_first_frame_change_the_output():
    m = _model()
    base = _inputs()
    with torch.no_grad():
        out = m(**base)
        other_text = m(**{**base, "text_states": base["text_states"].flip(0), "text_pooled": base["text_pooled"].flip(0)})
        other_image = m(**{**base, "image_latents": base["image_latents"] + 1})
    assert not torch.allclose(out, other_text)
    assert not torch.allclose(out, other_image)


def test_padding_tokens_are_ignored():
    m = _model()
    x = _inputs()
    with torch.no_grad():
        out = m(**x)
        x["text_states"][0, 3:] = 100.0  # masked positions of sample 0
        out2 = m(**x)
    torch.testing.assert_close(out[0], out2[0], atol=1e-4, rtol=1e-4)


def test_frames_are_mixed_in_time():
    # changing only the last frame's input must change the prediction for earlier frames
    m = _model()
    x = _inputs()
    with torch.no_grad():
        out = m(**x)
        x["sample"][:, :, -1] += 1.0
        out2 = m(**x)
    assert not torch.allclose(out[:, :, 0], out2[:, :, 0])


def test_gradient_checkpointing_gives_same_gradients():
    m = _model().train()
    x = _inputs()
    m(**x).square().mean().backward()
    ref = [p.grad.clone() for p in m.parameters() if p.grad is not None]
    m.zero_grad()
    m.enable_gradient_checkpointing()
    m(**x).square().mean().backward()
    got = [p.grad for p in m.parameters() if p.grad is not None]
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_any_even_patch_grid_runs_and_square_multiples_are_unpadded():
    """A 36x64 latent (256x144 frames) runs: the patch grid is edge-padded for the down path and cropped
    back; a grid the down path halves evenly goes through unchanged (no padding)."""
    from i2v.models.unet import build_unet

    torch.manual_seed(0)
    unet = build_unet("test", latent_channels=4, num_frames=3, sample_size=8).eval()
    text = torch.randn(1, 5, unet.config.text_dim)

    def run(h, w):
        g = torch.Generator().manual_seed(1)
        x, cond = torch.randn(1, 4, 3, h, w, generator=g), torch.randn(1, 4, h, w, generator=g)
        with torch.no_grad():
            return unet(x, torch.tensor([0.5]), cond, text, text.mean(1))

    import i2v.models.unet as unet_module

    pads = []
    real_pad = unet_module.F.pad

    def spy(x, pad, *args, **kwargs):
        pads.append(tuple(pad))
        return real_pad(x, pad, *args, **kwargs)

    unet_module.F.pad = spy
    try:
        assert run(10, 6).shape == (1, 4, 3, 10, 6) and pads  # a 5x3 patch grid is padded
        pads.clear()
        square = run(16, 16)
        assert square.shape == (1, 4, 3, 16, 16) and not pads  # an 8x8 grid goes through as before
    finally:
        unet_module.F.pad = real_pad
    assert run(36, 64).shape == (1, 4, 3, 36, 64) and torch.isfinite(run(36, 64)).all()


def _warp_model():
    """A warping test denoiser whose warp is a random full-rank linear patch code for 4 latent channels."""
    torch.manual_seed(0)
    m = build_unet("test", num_frames=4, sample_size=16, prediction="warp", vae_patch_size=4)
    m.warp.to_patches.copy_(torch.randn(48, 4))
    m.warp.from_patches.copy_(torch.linalg.pinv(m.warp.to_patches))
    return m.eval()


def _clean(inputs, v):
    return inputs["sample"] - inputs["timestep"].view(-1, 1, 1, 1, 1) * v


def test_a_fresh_warping_denoiser_fuses_the_first_frame_with_the_sample():
    """Zero output layer: no flow, no residual, the starting spread. At pure noise the predicted clean frames
    are frame 0; near sigma 0 they are the sample; between, the Gaussian fusion of the two."""
    m = _warp_model()
    first = _inputs()["image_latents"][:, :, None]
    for sigma in (1.0, 0.5, 0.05, 1e-5):
        inputs = {**_inputs(), "timestep": torch.full((2,), sigma)}
        with torch.no_grad():
            v, flow = m(**inputs, return_flow=True)
        keep, tau2 = 1 - sigma, math.exp(2 * LOG_TAU_START)
        gain = keep * tau2 / (keep**2 * tau2 + sigma**2)
        expected = first + gain * (inputs["sample"] - keep * first)
        torch.testing.assert_close(_clean(inputs, v), expected.expand_as(v), atol=1e-3, rtol=1e-3)
        assert flow.shape == (2, 2, 4, 16, 16) and flow.abs().max() == 0
    torch.testing.assert_close(_clean(inputs, v), inputs["sample"], atol=5e-3, rtol=5e-3)  # at sigma 1e-5


def test_a_warping_denoisers_flow_moves_frame_zero(tmp_path):
    """A constant flow in the output layer's bias moves every frame (seen at pure noise, where the guess
    is all there is); the folder round trip keeps the warp."""
    m = _warp_model()
    with torch.no_grad():
        m.conv_out.bias.view(7, 4)[4] = -2 / 16  # x flow of every sub-pixel: one latent pixel right
    inputs = {**_inputs(), "timestep": torch.ones(2)}
    with torch.no_grad():
        v, flow = m(**inputs, return_flow=True)
    clean = _clean(inputs, v)
    torch.testing.assert_close(clean[..., 1:], inputs["image_latents"][:, :, None, :, :-1].expand_as(clean[..., 1:]),
                               atol=1e-4, rtol=1e-4)
    m.save_pretrained(tmp_path)
    loaded = SpaceTimeUNet.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.prediction == "warp"
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs), v)


def test_only_a_warping_denoiser_returns_a_flow():
    import pytest

    with pytest.raises(ValueError, match="prediction='warp'"):
        _model()(**_inputs(), return_flow=True)
    with pytest.raises(ValueError, match="prediction"):
        build_unet("test", prediction="x0")


def test_a_detached_flow_gets_no_gradient_from_the_velocity():
    m = _warp_model().train()
    inputs = _inputs()
    torch.nn.init.normal_(m.conv_out.weight, std=0.01)
    v, flow = m(**inputs, return_flow=True, detach_flow=True)
    flow.retain_grad()
    v.square().mean().backward(retain_graph=True)
    assert flow.grad is None or flow.grad.abs().max() == 0
    m.zero_grad()
    v, flow = m(**inputs, return_flow=True)
    flow.retain_grad()
    v.square().mean().backward()
    assert flow.grad.abs().max() > 0


def test_flow_is_one_per_token_interpolated_between_tokens():
    from i2v.models.unet import smooth_flow

    flow = torch.zeros(1, 2, 1, 8, 8)
    flow[..., ::2, ::2] = 4.0  # one sub-position of each 2x2 token: the token's flow is 1
    smooth = smooth_flow(flow, 2)
    torch.testing.assert_close(smooth, torch.ones_like(flow))
    ramp = torch.arange(4.0).repeat_interleave(2).view(1, 1, 1, 1, 8).expand(1, 2, 1, 8, 8)  # token steps
    assert smooth_flow(ramp, 2).diff(dim=-1).abs().max() <= 0.5  # between tokens, a ramp, not steps of 1


def test_the_affine_camera_field_is_a_camera_paths_flow():
    """A pan and a zoom as (a, b, c, d, tx, ty): the flow ``latent_warp.camera_flow`` gives their paths."""
    from i2v.models.latent_warp import camera_flow
    from i2v.models.unet import affine_flow

    h, w, scale, dx, dy = 12, 16, 1.25, 3.0, -2.0
    path = torch.tensor([[[1.0, 0.0, 0.0], [1.0, dx, dy], [scale, 0.0, 0.0]]])  # (B=1, T=3, (scale, dx, dy))
    zoom = 1 / scale - 1
    params = torch.tensor([[[0.0] * 6, [0, 0, 0, 0, -dx * 2 / w, -dy * 2 / h], [zoom, 0, 0, zoom, 0, 0]]])
    torch.testing.assert_close(affine_flow(params, h, w), camera_flow(path, h, w), atol=1e-6, rtol=1e-6)


def test_the_camera_head_starts_at_zero_and_is_added_to_a_warping_denoiser(tmp_path):
    """``load_unet(camera_flow=True)`` keeps every weight of a warping denoiser and adds the head at
    zero: the same velocity and flow; a trained head moves the flow by its affine field."""
    from i2v.models.unet import affine_flow
    from i2v.training.trainable_i2v import load_unet

    class Vae:  # what load_unet reads of a PatchAutoencoder: its linear path and normalisation
        config = type("C", (), {"patch_size": 4, "latents_mean": None, "latents_std": None, "scaling_factor": 1.0})()
        linear_decode = torch.nn.Conv2d(4, 48, 1)

    m = _warp_model()
    torch.nn.init.normal_(m.conv_out.weight, std=0.01)
    m.save_pretrained(tmp_path)
    grown = load_unet(tmp_path, vae=Vae(), camera_flow=True, log=lambda *a: None).eval()
    grown.warp.load_state_dict(m.warp.state_dict())
    assert grown.config.camera_flow and grown.camera_head is not None
    inputs = _inputs()
    with torch.no_grad():
        v, flow = m(**inputs, return_flow=True)
        v2, flow2 = grown(**inputs, return_flow=True)
        torch.testing.assert_close((v2, flow2), (v, flow))
        grown.camera_head[-1].bias.copy_(torch.tensor([0.1, 0, 0, 0.1, 0.05, 0]))
        _, flow3 = grown(**inputs, return_flow=True)
    field = affine_flow(torch.tensor([0.1, 0, 0, 0.1, 0.05, 0]).expand(2, 4, 6), 16, 16)
    torch.testing.assert_close(flow3, flow + field, atol=1e-5, rtol=1e-5)


def test_a_held_flow_replaces_the_predicted_one_and_its_guess_is_the_clean_frame():
    """The sampler's motion plan: with ``flow`` given, the predicted flow is ignored and the clean frames
    are frame 0 moved by it (the fresh model's residual is 0) at every noise level, not a fusion with the
    sample."""
    import pytest

    m = _warp_model()
    held = torch.zeros(2, 2, 4, 16, 16)
    held[:, 0] = -2 / 16  # one latent pixel right
    for sigma in (1.0, 0.5, 0.05):
        inputs = {**_inputs(), "timestep": torch.full((2,), sigma)}
        with torch.no_grad():
            v, flow = m(**inputs, flow=held, return_flow=True)
        clean = _clean(inputs, v)
        torch.testing.assert_close(flow, held)
        moved = inputs["image_latents"][:, :, None, :, :-1].expand_as(clean[..., 1:])
        torch.testing.assert_close(clean[..., 1:], moved, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="prediction='warp'"):
        _model()(**_inputs(), flow=held)


def test_fit_affine_flow_keeps_a_camera_motion_and_drops_local_ripples():
    from i2v.models.unet import affine_flow, fit_affine_flow

    params = torch.tensor([[[0.1, 0.02, -0.03, 0.1, 0.2, -0.1], [0.0, 0.0, 0.0, 0.0, -0.3, 0.05]]])  # (1, T=2, 6)
    camera = affine_flow(params, 12, 16)  # (1, 2, 2, 12, 16)
    torch.testing.assert_close(fit_affine_flow(camera), camera, atol=1e-5, rtol=1e-5)
    ripple = 0.05 * torch.sin(torch.arange(16.0) * math.pi / 2).expand(1, 2, 2, 12, 16)  # zero mean, 4-pixel period
    torch.testing.assert_close(fit_affine_flow(camera + ripple), camera, atol=0.02, rtol=0)
    assert (fit_affine_flow(camera + ripple) - camera).abs().mean() < 0.25 * ripple.abs().mean()


def test_fit_affine_flow_in_time_keeps_a_smooth_camera_and_drops_its_jitter():
    """A pan at constant speed (a line in time) and a zoom (a curve) pass a quadratic in time unchanged; a
    per-frame jitter of the camera is smoothed away, and frame 0 does not move."""
    from i2v.models.unet import affine_flow, fit_affine_flow

    t = torch.linspace(0, 1, 16)
    smooth = torch.zeros(1, 16, 6)
    smooth[0, :, 4] = 0.3 * t  # pan: tx grows linearly
    smooth[0, :, 0] = smooth[0, :, 3] = 0.2 * t**2  # zoom: a and d grow
    camera = affine_flow(smooth, 16, 16)
    torch.testing.assert_close(fit_affine_flow(camera, time_degree=2), camera, atol=1e-4, rtol=0)
    jitter = torch.zeros(1, 16, 6)
    jitter[0, 1:, 4] = 0.02 * torch.tensor([(-1.0) ** k for k in range(15)])
    fitted = fit_affine_flow(affine_flow(smooth + jitter, 16, 16), time_degree=2)
    assert (fitted - camera).abs().max() < 0.25 * 0.02
    assert fitted[:, :, 0].abs().max() < 1e-4


def test_a_robust_affine_fit_is_not_bent_by_a_moving_object():
    from i2v.models.unet import fit_affine_flow

    flow = torch.zeros(1, 2, 4, 16, 16)
    flow[:, 0, 1:, 2:6, 2:6] = 0.8  # an object a sixteenth of the frame moves a lot; the camera holds
    assert fit_affine_flow(flow, robust=True).abs().max() < 1e-4
    assert fit_affine_flow(flow).abs().max() > 0.01  # least squares alone leans toward it


def test_fit_affine_flow_gives_the_same_answer_every_time():
    """(A batched torch.linalg.lstsq over one broadcast design matrix gave one of two answers at random:
    a warping model's chained long video then changed from run to run.)"""
    from i2v.models.unet import fit_affine_flow

    flow = torch.randn(2, 2, 16, 24, 40, generator=torch.Generator().manual_seed(0))
    for kwargs in ({}, {"robust": True}, {"time_degree": 2}):
        first = fit_affine_flow(flow, **kwargs)
        assert all(torch.equal(first, fit_affine_flow(flow, **kwargs)) for _ in range(20))


def test_a_history_denoiser_reads_which_frames_are_given_and_starts_as_the_plain_one(tmp_path):
    """``history_frames``: a channel marks the frames given clean. Grown from a plain denoiser (``load_unet``),
    it starts as that denoiser whatever is held (the new input's weights are zero), and once trained the mark
    changes its output; a plain denoiser refuses frames held past frame 0."""
    import pytest

    from i2v.training.trainable_i2v import load_unet

    plain = _model()
    plain.save_pretrained(tmp_path)
    grown = load_unet(tmp_path, history_frames=2, log=lambda *_: None).eval()
    assert grown.config.history_frames == 2
    inputs = _inputs()
    held = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(grown(**inputs, held=held), plain(**inputs))
        grown.conv_in.weight[:, -1].normal_()  # as if trained
        assert not torch.allclose(grown(**inputs, held=held), grown(**inputs))  # default: frame 0 alone
        with pytest.raises(ValueError, match="history_frames"):
            plain(**inputs, held=held)
    with pytest.raises(ValueError, match="keeps them"):
        grown.save_pretrained(tmp_path / "grown")
        load_unet(tmp_path / "grown", history_frames=0)


def test_history_frames_are_for_a_velocity_denoiser():
    import pytest

    with pytest.raises(ValueError, match="velocity denoiser"):
        build_unet("test", num_frames=4, sample_size=16, prediction="warp", history_frames=2)
