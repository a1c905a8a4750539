import pytest
import torch

from i2v.sampling import (
    add_noise,
    flow_matching_loss,
    flow_sigmas,
    get_sampler,
    sample_dpmpp_2m,
    sample_euler,
    sample_heun,
    sample_training_sigmas,
)


def test_flow_sigmas_run_from_one_to_zero():
    s = flow_sigmas(10)
    assert s.shape == (11,)
    assert s[0] == 1 and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])


def test_shift_spends_more_steps_at_high_noise():
    assert torch.all(flow_sigmas(10, shift=3.0)[1:-1] > flow_sigmas(10, shift=1.0)[1:-1])


def test_training_sigmas_follow_the_shifted_logit_normal():
    gen = torch.Generator().manual_seed(0)
    plain = sample_training_sigmas(20000, gen)
    shifted = sample_training_sigmas(20000, torch.Generator().manual_seed(0), shift=3.0)
    assert plain.shape == (20000,) and 0 < plain.min() and plain.max() < 1
    # logit-normal(0, 1) has median 0.5; shift 3 maps it to 3 * 0.5 / (1 + 2 * 0.5) = 0.75
    assert plain.median().item() == pytest.approx(0.5, abs=0.02)
    assert shifted.median().item() == pytest.approx(0.75, abs=0.02)
    # same draws, warped: the share above 0.8 grows from ~8% to ~39%
    assert (plain > 0.8).float().mean().item() == pytest.approx(0.083, abs=0.01)
    assert (shifted > 0.8).float().mean().item() == pytest.approx(0.387, abs=0.015)


def test_bad_step_count_raises():
    with pytest.raises(ValueError, match="num_steps"):
        flow_sigmas(0)


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun, sample_dpmpp_2m])
def test_samplers_recover_the_data_point_of_a_straight_flow(sampler):
    # for a single data point x0 the exact velocity is (x - x0) / sigma: straight lines to x0
    x0 = torch.tensor([0.5, -1.0, 2.0])
    noise = torch.tensor([1.0, 0.3, -0.7])

    def model(x, sigma):
        return (x - x0) / sigma

    out = sampler(model, noise.clone(), flow_sigmas(4))
    torch.testing.assert_close(out, x0)


def test_callback_sees_every_step():
    seen = []
    sample_euler(lambda x, s: torch.zeros_like(x), torch.zeros(2), flow_sigmas(5), callback=lambda d: seen.append(d["i"]))
    assert seen == [0, 1, 2, 3, 4]


def test_add_noise_endpoints():
    x0, n = torch.ones(2, 3), torch.zeros(2, 3)
    torch.testing.assert_close(add_noise(x0, n, torch.tensor([0.0, 1.0])), torch.tensor([[1.0] * 3, [0.0] * 3]))


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("nope")


def gaussian_velocity(mu: float, tau: float):
    """The exact rectified-flow velocity for data ~ N(mu, tau^2): E[noise - x0 | x_sigma]."""
    def model(x, sigma):
        a = 1 - sigma
        var = a * a * tau * tau + sigma * sigma
        x0 = mu + a * tau * tau * (x - a * mu) / var  # E[x0 | x]
        return (x - x0) / sigma if sigma > 0 else torch.zeros_like(x)
    return model


def test_dpmpp_2m_is_more_accurate_than_euler_at_few_steps():
    # the probability-flow ODE of a Gaussian, solved very finely with Heun as the reference
    model = gaussian_velocity(mu=0.7, tau=0.3)
    noise = torch.linspace(-2, 2, 9, dtype=torch.float64)

    def errors(sigmas_for):
        exact = sample_heun(model, noise.clone(), sigmas_for(4000))
        return {f.__name__: (f(model, noise.clone(), sigmas_for(8)) - exact).abs().max().item()
                for f in (sample_euler, sample_dpmpp_2m)}

    # inside the schedule the multistep update is second order: over 10x closer than Euler
    interior = errors(lambda k: torch.linspace(0.9, 0.1, k + 1, dtype=torch.float64))
    assert interior["sample_dpmpp_2m"] < interior["sample_euler"] / 10
    # the whole schedule ends with a first-order step to sigma = 0 (as in k-diffusion): still ~2x closer
    whole = errors(lambda k: flow_sigmas(k).double())
    assert whole["sample_dpmpp_2m"] < whole["sample_euler"] / 1.8


def test_dpmpp_2m_callback_reports_the_data_prediction():
    seen = []
    x0 = torch.tensor([0.25])
    sample_dpmpp_2m(lambda x, s: (x - x0) / s, torch.ones(1), flow_sigmas(3), callback=seen.append)
    assert [d["i"] for d in seen] == [0, 1, 2]
    torch.testing.assert_close(seen[-1]["denoised"], x0)


def test_flow_matching_loss_keeps_frame_zero_clean_and_scores_frames_after_it():
    from types import SimpleNamespace

    gen = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 4, 3, 5, 5, generator=gen), torch.randn(2, 4, 3, 5, 5, generator=gen)
    sigmas = torch.tensor([0.3, 0.9])
    text = SimpleNamespace(states=torch.zeros(2, 1, 8), pooled=torch.zeros(2, 8), mask=torch.ones(2, 1))
    seen = {}

    def exact(x, sigma, first, states, pooled, mask):
        seen.update(x=x.clone(), first=first)
        v = noise - latents
        v[:, :, 0] = 100.0  # frame 0 is given, not generated: its prediction does not count
        return v

    assert flow_matching_loss(exact, latents, text, sigmas, noise).item() == 0.0
    torch.testing.assert_close(seen["x"][:, :, 0], latents[:, :, 0])
    torch.testing.assert_close(seen["x"][:, :, 1:], add_noise(latents, noise, sigmas)[:, :, 1:])
    torch.testing.assert_close(seen["first"], latents[:, :, 0])
    zero = flow_matching_loss(lambda *args: torch.zeros_like(latents), latents, text, sigmas, noise)
    torch.testing.assert_close(zero, ((noise - latents) ** 2)[:, :, 1:].mean())


def test_flow_matching_loss_floors_small_sigmas_and_fits_known_flows():
    from types import SimpleNamespace

    gen = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 4, 3, 5, 5, generator=gen), torch.randn(2, 4, 3, 5, 5, generator=gen)
    text = SimpleNamespace(states=torch.zeros(2, 1, 8), pooled=torch.zeros(2, 8), mask=torch.ones(2, 1))
    off = torch.ones(2, 4, 3, 5, 5)  # a velocity error of 1 everywhere
    sigmas = torch.tensor([0.05, 0.5])
    plain = flow_matching_loss(lambda *a: noise - latents + off, latents, text, sigmas, noise)
    floored = flow_matching_loss(lambda *a: noise - latents + off, latents, text, sigmas, noise, sigma_floor=0.2)
    assert plain.item() == pytest.approx(1.0)
    assert floored.item() == pytest.approx(((0.05 / 0.2) ** 2 + 1) / 2)  # sigma 0.05 weighs as if at 0.2

    flow = torch.zeros(2, 2, 3, 5, 5)
    target = torch.full((2, 2, 3, 5, 5), float("nan"))
    target[1] = 0.5  # the second clip's flow is known: off by 0.5 from the prediction
    target[1, :, 0] = 99.0  # frame 0 does not count

    def warping(*args, return_flow=False, detach_flow=False):
        assert return_flow and detach_flow
        return noise - latents, flow

    loss = flow_matching_loss(warping, latents, text, sigmas, noise, flow_target=target, flow_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * 0.25)


def test_object_mask_finds_the_object_that_moves_on_its_own_not_the_camera():
    from i2v.sampling import object_mask
    from i2v.world.scenes import sample_scene, scene_flow

    moving = torch.from_numpy(scene_flow(sample_scene(1, motion="move_left"), 32))[None]  # (1, 2, T, 32, 32)
    mask = object_mask(moving)
    assert mask.shape == (1, 1, 16, 32, 32) and 0.01 < mask[0, 0, -1].mean() < 0.1  # the object, not the frame
    assert not object_mask(torch.from_numpy(scene_flow(sample_scene(4, motion="pan_down"), 32))[None]).any()
    unknown = torch.full((1, 2, 4, 8, 8), float("nan"))
    assert not object_mask(unknown).any()


def test_the_object_flow_weight_scales_the_error_on_objects_only():
    """The same flow error costs object_flow_weight times more on an object's pixels; an unknown target
    (NaN) reaches neither the loss nor the gradient."""
    from i2v.sampling import flow_matching_loss

    torch.manual_seed(0)
    target = torch.zeros(1, 2, 3, 8, 8)
    target[:, 0, 1:, 2:4, 2:4] = 0.5  # an object moving on a still background
    target_unknown = torch.cat([target, torch.full_like(target, float("nan"))])

    class FlowOnly(torch.nn.Module):  # velocity 0, flow = a parameter
        def __init__(self):
            super().__init__()
            self.flow = torch.nn.Parameter(torch.zeros(2, 2, 3, 8, 8))

        def forward(self, x, *args, return_flow=False, detach_flow=False):
            return torch.zeros_like(x), self.flow

    def loss(weight):
        model = FlowOnly()
        latents, noise = torch.zeros(2, 4, 3, 8, 8), torch.zeros(2, 4, 3, 8, 8)
        value = flow_matching_loss(model, latents, type("T", (), {"states": None, "pooled": None, "mask": None})(),
                                   torch.full((2,), 0.5), noise, flow_target=target_unknown, object_flow_weight=weight)
        value.backward()
        return value.item(), model.flow.grad

    plain, grad = loss(1.0)
    weighted, weighted_grad = loss(10.0)
    object_error = 0.5**2 * 4 * 2 / (2 * 2 * 8 * 8)  # 4 pixels in 2 frames, over the known entries
    assert weighted - plain == pytest.approx(9 * object_error, rel=1e-5)
    assert torch.isfinite(weighted_grad).all() and not weighted_grad[1].any()
    assert weighted_grad[0, 0, 1, 2, 2] == pytest.approx(10 * grad[0, 0, 1, 2, 2].item())


def test_the_loss_scores_only_the_frames_not_given_and_gives_the_anchor_as_the_image():
    """``held``: a window's history frames stay clean and are not scored; ``anchor`` is the image the
    denoiser sees. Without them, frame 0 is given and is the image (the plain objective)."""
    from i2v.conditioning import TextEmbedding
    from i2v.sampling import flow_matching_loss

    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, x, sigmas, image, states, pooled, mask, held=None):
            seen.update(x=x.clone(), image=image, held=held)
            return torch.zeros_like(x)

    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 4, 6, 8, 8, generator=g), torch.randn(2, 4, 6, 8, 8, generator=g)
    text = TextEmbedding(states=torch.zeros(2, 3, 384), pooled=torch.zeros(2, 384), mask=torch.ones(2, 3))
    sigmas = torch.tensor([0.5, 0.9])
    held = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    anchor = torch.randn(2, 4, 8, 8, generator=g)
    loss = flow_matching_loss(Recorder(), latents, text, sigmas, noise, held=held, anchor=anchor)
    assert torch.equal(seen["x"][0, :, :3], latents[0, :, :3]) and not torch.equal(seen["x"][0, :, 3], latents[0, :, 3])
    assert torch.equal(seen["image"], anchor) and torch.equal(seen["held"], held.float())
    target = (noise - latents) ** 2  # a zero velocity's error
    expected = torch.cat([target[0, :, 3:].flatten(), target[1, :, 1:].flatten()]).mean()
    torch.testing.assert_close(loss, expected)
    plain = flow_matching_loss(Recorder(), latents, text, sigmas, noise)
    torch.testing.assert_close(plain, target[:, :, 1:].mean())
    assert seen["held"] is None and torch.equal(seen["image"], latents[:, :, 0])
