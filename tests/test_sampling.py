import pytest
import torch

from i2v.sampling import add_noise, flow_sigmas, get_sampler, sample_euler, sample_heun


def test_flow_sigmas_run_from_one_to_zero():
    s = flow_sigmas(10)
    assert s.shape == (11,)
    assert s[0] == 1 and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])


def test_shift_spends_more_steps_at_high_noise():
    assert torch.all(flow_sigmas(10, shift=3.0)[1:-1] > flow_sigmas(10, shift=1.0)[1:-1])


def test_bad_step_count_raises():
    with pytest.raises(ValueError, match="num_steps"):
        flow_sigmas(0)


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
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
