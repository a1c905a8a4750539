"""OpenCV-flow motion metrics on clips whose motion is known by construction."""

import numpy as np
import pytest

from i2v.world.scenes import render, sample_scene
from i2v.metrics import dynamic_degree_cv, mean_flow_magnitude, motion_smoothness_cv, optical_flow, warping_error
from i2v.metrics.flow import interpolate_midframe, occlusion_mask, video_flow, warp

from .synthetic import flicker_clip, jitter_clip, pan_clip, static_clip


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_flow_recovers_a_known_translation(method):
    clip = pan_clip(3.0, -2.0, num_frames=2)
    flow = optical_flow(clip[0], clip[1], method)
    assert flow.shape == (64, 64, 2) and flow.dtype == np.float32
    inner = flow[8:-8, 8:-8].reshape(-1, 2)  # away from the border where content enters
    np.testing.assert_allclose(np.median(inner, 0), [3.0, -2.0], atol=0.2)


def test_flow_sees_colour_edges_that_greyscale_hides():
    # a green square on a grey of the same luminance: invisible in greyscale, found in colour
    frames = np.full((2, 64, 64, 3), (120, 120, 120), np.uint8)
    frames[0, 20:40, 20:40] = (30, 180, 50)  # luma ~ 120
    frames[1, 20:40, 23:43] = (30, 180, 50)
    flow = optical_flow(frames[0], frames[1])
    assert np.linalg.norm(flow, axis=-1).max() == pytest.approx(3.0, abs=0.4)


def test_static_clip_has_no_motion():
    clip = static_clip()
    dyn = dynamic_degree_cv(clip)
    assert dyn["dynamic"] is False and max(dyn["scores"]) == 0.0
    assert mean_flow_magnitude(clip) == 0.0
    assert motion_smoothness_cv(clip) == 1.0
    assert warping_error(clip) == 0.0


def test_dynamic_degree_follows_vbench_thresholds():
    # 64 px at 8 fps: threshold 6 * 64 / 256 = 1.5 px per frame; 8 frames need round(4 * 8/16) = 2 pairs
    fast = dynamic_degree_cv(pan_clip(3.0, 0.0))
    assert fast["threshold"] == pytest.approx(1.5) and fast["count_needed"] == 2
    assert fast["dynamic"] is True
    np.testing.assert_allclose(fast["scores"], 3.0, atol=0.3)
    slow = dynamic_degree_cv(pan_clip(0.5, 0.0))
    assert slow["dynamic"] is False and max(slow["scores"]) < 1.0
    # 4 fps doubles the threshold (factor 8 / fps): 2 px per frame no longer counts
    two = pan_clip(2.0, 0.0)
    assert dynamic_degree_cv(two, fps=8)["dynamic"] is True
    assert dynamic_degree_cv(two, fps=4)["threshold"] == pytest.approx(3.0)
    assert dynamic_degree_cv(two, fps=4)["dynamic"] is False
    # 24 fps: every 3rd frame is used, so 1 px per frame is 3 px per compared pair
    fast24 = dynamic_degree_cv(pan_clip(1.0, 0.0, num_frames=13), fps=24)
    assert fast24["frame_interval"] == 3 and len(fast24["scores"]) == 4
    assert fast24["dynamic"] is True
    with pytest.raises(ValueError, match="fps"):
        dynamic_degree_cv(two, fps=0)


def test_mean_flow_magnitude_of_a_pan():
    clip = pan_clip(2.0, 1.0)
    assert mean_flow_magnitude(clip) == pytest.approx(np.hypot(2.0, 1.0), rel=0.1)
    flows = video_flow(clip)
    assert flows.shape == (7, 64, 64, 2)
    assert mean_flow_magnitude(clip, flows=flows) == mean_flow_magnitude(clip)


def test_interpolated_midframe_matches_the_true_middle():
    clip = pan_clip(2.0, 1.0, num_frames=3)
    mid = interpolate_midframe(clip[0], clip[2])
    err = np.abs(mid - clip[1].astype(np.float32))[6:-6, 6:-6]
    assert err.mean() < 1.5


def test_motion_smoothness_ranks_steady_above_jitter_and_flicker():
    steady = motion_smoothness_cv(pan_clip(2.0, 0.0))
    assert steady > 0.99
    assert motion_smoothness_cv(jitter_clip(3.0)) < steady - 0.01
    assert motion_smoothness_cv(flicker_clip(40)) < 0.9  # odd frames 40 brighter than predicted
    assert motion_smoothness_cv(static_clip(num_frames=2)) is None


def test_warping_error_pan_is_small_and_flicker_is_its_squared_step():
    assert warping_error(pan_clip(2.0, 1.0)) < 1e-3
    # a still picture alternately brightened by 40: the flow is ~0 and every pixel is off by
    # 40/255 on each of the 3 channels; EvalCrafter / Lai et al. average over visible pixels x 3
    # channels, so the error is (40/255)^2
    assert warping_error(flicker_clip(40)) == pytest.approx((40 / 255) ** 2, rel=0.05)
    assert warping_error(static_clip(num_frames=1)) is None


def test_occlusion_mask_flags_consistent_flow_leaving_the_frame_only():
    fw = np.zeros((16, 20, 2), np.float32)
    fw[..., 0] = 3.0
    bw = -fw
    occ = occlusion_mask(fw, bw)
    assert not occ[:, :16].any() and occ[:, 17:].all()  # x + 3 > 19 leaves the frame
    # an inconsistent backward flow (no return) is occluded everywhere
    assert occlusion_mask(fw, np.zeros_like(fw)).all()


def test_warp_is_a_backward_lookup():
    img = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = 1.0
    out, valid = warp(img, flow)
    np.testing.assert_allclose(out[:, :5], img[:, 1:], atol=1e-3)
    assert valid[:, :5].all() and not valid[:, 5].any()


def test_ground_truth_procedural_clip_scores_smooth_and_consistent():
    frames = render(sample_scene(2, motion="pan_left"), size=64)
    assert motion_smoothness_cv(frames) > 0.99
    assert warping_error(frames) < 1e-3


def test_bad_inputs():
    clip = static_clip(num_frames=2)
    with pytest.raises(ValueError, match="method"):
        optical_flow(clip[0], clip[1], "raft")
    with pytest.raises(ValueError, match="uint8"):
        mean_flow_magnitude(clip.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        optical_flow(clip[0], clip[1, :32])
