"""Metrics over standard networks: formulas on hand-made embeddings, loading and plumbing with
tiny random stand-in networks (their scores mean nothing)."""

import numpy as np
import pytest
import torch

from i2v.metrics import frechet_distance_from_features
from i2v.metrics.learned import (WeightsError, clip_consistency, clip_image_features, clip_text_features,
                                 clip_text_score, consistency_score, dino_features, dino_i2v_subject,
                                 dino_subject_consistency, fvd, i2v_subject_score, i3d_features, load_clip,
                                 load_dino, load_i3d)

from .synthetic import pan_clip, static_clip
from .tiny_networks import make_tiny_clip, make_tiny_i3d, make_tiny_vit


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp("networks")
    return {"clip": make_tiny_clip(root / "clip"), "dino": make_tiny_vit(root / "dino"),
            "i3d": make_tiny_i3d(root / "i3d_torchscript.pt")}


def test_consistency_formula_of_vbench():
    same = np.tile([[1.0, 2.0, 3.0]], (4, 1))
    assert consistency_score(same) == pytest.approx(1.0)
    assert consistency_score(same[:1]) == 1.0
    # frames e0, e1, e0: frame 1 scores (0 + 0)/2, frame 2 scores (0 + 1)/2 -> mean 0.25
    e0, e1 = [1.0, 0.0], [0.0, 1.0]
    assert consistency_score([e0, e1, e0]) == pytest.approx(0.25)
    # negative cosines count as 0
    assert consistency_score([e0, [-1.0, 0.0]]) == 0.0


def test_i2v_subject_formula_of_vbench_plus_plus():
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert i2v_subject_score(e0, [e0, e0, e0]) == pytest.approx(1.0)
    # best match to the input 1, consecutive similarities (0, 0): 0.5 * 1 + 0.5 * 0
    assert i2v_subject_score(e0, [e0, e1, e0]) == pytest.approx(0.5)
    assert i2v_subject_score(e1 * 3, [e0, e0]) == pytest.approx(0.5)  # never matches, but steady


def test_clip_plumbing(networks):
    clip = load_clip(networks["clip"])
    clip_frames = pan_clip(2.0, 0.0, num_frames=4, size=40)
    feats = clip_image_features(clip_frames, clip)
    assert feats.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    text = clip_text_features("the camera pans left", clip)
    assert text.shape == (8,)
    score = clip_text_score(clip_frames, "the camera pans left", clip)
    assert -1.0 <= score <= 1.0
    assert score == pytest.approx(float(np.mean(feats @ text)), abs=1e-6)
    assert clip_consistency(static_clip(num_frames=3, size=40), clip) == pytest.approx(1.0, abs=1e-6)


def test_dino_plumbing(networks):
    dino = load_dino(networks["dino"])
    frames = pan_clip(2.0, 0.0, num_frames=3, size=40)
    assert dino_features(frames, dino).shape == (3, 16)
    still = static_clip(num_frames=3, size=48)
    assert dino_subject_consistency(still, dino) == pytest.approx(1.0, abs=1e-6)
    assert dino_i2v_subject(still, still[0], dino) == pytest.approx(1.0, abs=1e-6)
    non_square = np.zeros((2, 32, 48, 3), np.uint8)  # short side -> 32, position embeddings interpolated
    assert dino_features(non_square, dino).shape == (2, 16)


def test_i3d_is_called_like_stylegan_v_and_fvd_is_the_frechet_distance(networks):
    i3d = load_i3d(networks["i3d"])
    # rescale=True maps 0 to -1: an all-black clip has channel means -1 and stds 0
    black = np.zeros((8, 24, 24, 3), np.uint8)
    expected = i3d.model.proj(torch.tensor([[-1.0, -1.0, -1.0, 0.0, 0.0, 0.0]])).detach().numpy()
    np.testing.assert_allclose(i3d_features([black], i3d), expected, atol=1e-5)

    videos = [pan_clip(1.0, 0.0, num_frames=8, size=24, seed=s) for s in range(6)]
    brighter = [np.clip(v.astype(int) + 30, 0, 255).astype(np.uint8) for v in videos]
    assert fvd(videos, videos, i3d) == pytest.approx(0.0, abs=1e-6)
    value = fvd(videos, brighter, i3d, batch_size=4)
    expected = frechet_distance_from_features(i3d_features(videos, i3d), i3d_features(brighter, i3d))
    assert value > 0.0 and value == pytest.approx(expected)
    with pytest.raises(ValueError, match="same"):
        i3d_features([black, black[:4]], i3d)


def test_weights_errors_name_the_path(networks, tmp_path):
    with pytest.raises(WeightsError, match="no such CLIP folder"):
        load_clip(tmp_path / "missing")
    with pytest.raises(WeightsError, match="not a transformers CLIP"):
        load_clip(networks["dino"])  # a ViT folder is not CLIP
    with pytest.raises(WeightsError, match="not a ViT / DINOv2"):
        load_dino(networks["clip"])
    with pytest.raises(WeightsError, match="expected the I3D TorchScript file"):
        load_i3d(tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torchscript archive")
    with pytest.raises(WeightsError, match="not a TorchScript archive"):
        load_i3d(junk)
