"""Video-to-video (``--init-video V --strength S``) on the embedded model, end to end: the CLI and the
API on real files, how the strength trades the init video against the prompt, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import read_video, write_video
from i2v.metrics.fidelity import psnr
from i2v.registry import backend_class, resolve_model

SAMPLE = "src/i2v/assets/sample.png"  # a red circle on the shapes world's background


def red_centroids(frames: np.ndarray) -> np.ndarray:
    """(T, 2) x, y of the red circle in each frame."""
    f = frames.astype(int)
    mask = (f[..., 0] > 150) & (f[..., 1] < 90) & (f[..., 2] < 90)
    return np.array([[np.nonzero(m)[1].mean(), np.nonzero(m)[0].mean()] for m in mask])


@pytest.fixture(scope="module")
def gen():
    # the shapes-world model, whose denoiser follows the video it starts from; the photo model's warping
    # denoiser re-plans the motion from the first frame, and keeps the video less (README, video-to-video)
    return ImageToVideoGenerator("i2v-tiny", device="cpu")


@pytest.fixture(scope="module")
def image():
    return Image.open(SAMPLE).convert("RGB")


@pytest.fixture(scope="module")
def init_video(gen, image):
    """The circle moving right: the video the runs start from."""
    return gen.run(GenerationRequest(image=image, prompt="the red circle moves to the right", seed=1)).frames


def test_the_video_is_kept_more_as_the_strength_falls(gen, image, init_video):
    request = dict(image=image, prompt="the red circle moves to the left", seed=2, init_video=init_video)
    scores = []
    for strength in (1.0, 0.8, 0.6, 0.4, 0.2):
        result = gen.run(GenerationRequest(strength=strength, **request))
        assert result.settings["denoising_steps"] == int(result.settings["num_inference_steps"] * strength)
        assert np.array_equal(result.frames[0], gen.run(GenerationRequest(strength=strength, **request)).frames[0])
        scores.append(psnr(result.frames[1:], init_video[1:]))
    assert scores == sorted(scores) and scores[-1] - scores[0] > 10, scores


def test_a_prompt_still_changes_the_motion_at_0_7(gen, image, init_video):
    def run(prompt):
        return red_centroids(gen.run(GenerationRequest(image=image, prompt=prompt, seed=2, init_video=init_video,
                                                       strength=0.7)).frames)

    right, up = run("the red circle moves to the right"), run("the red circle moves up")
    source = red_centroids(init_video)
    assert right[-1, 0] - right[0, 0] > 20 and source[-1, 0] - source[0, 0] > 20  # as the init video
    assert abs(up[-1, 0] - up[0, 0]) < 5  # the prompt stops the rightward motion


def test_cli_writes_the_run_and_records_its_init_video(init_video, tmp_path, capsys):
    source = tmp_path / "init.mp4"
    write_video(init_video[:9], source, fps=8)
    out = tmp_path / "out.mp4"
    assert main(["generate", SAMPLE, "-p", "the red circle moves up", "--init-video", str(source), "--strength",
                 "0.5", "--seed", "0", "-o", str(out)]) == 0
    assert "num_frames 9 from the init video (9 frames)" in capsys.readouterr().err
    frames, _ = read_video(out)
    assert frames.shape == (9, 128, 128, 3)
    meta = json.loads(out.with_name("out.mp4.json").read_text())
    assert meta["init_video"] == str(source) and meta["strength"] == 0.5 and meta["denoising_steps"] == 5


@pytest.mark.parametrize("flags, message", [
    (["--strength", "0.5"], "give one (init_video)"),
    (["--init-video", "INIT", "--strength", "0"], "strength must be in (0, 1]"),
    (["--init-video", "INIT", "--strength", "1.5"], "strength must be in (0, 1]"),
    (["--init-video", "INIT", "--strength", "0.05"], "runs no denoising step"),
    (["--init-video", "INIT", "--num-frames", "12"], "more than the init video's 9 frames"),
    (["--init-video", "MISSING"], "no such video"),
])
def test_bad_video_to_video_requests_are_refused(init_video, tmp_path, capsys, flags, message):
    source = tmp_path / "init.mp4"
    write_video(init_video[:9], source, fps=8)
    flags = [str(source) if f == "INIT" else str(tmp_path / "nope.mp4") if f == "MISSING" else f for f in flags]
    out = tmp_path / "out.mp4"
    assert main(["generate", SAMPLE, "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_the_output_never_replaces_the_init_video(init_video, tmp_path, capsys):
    source = tmp_path / "init.mp4"
    write_video(init_video[:9], source, fps=8)
    before = source.read_bytes()
    assert main(["generate", SAMPLE, "--init-video", str(source), "-o", str(source)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err and source.read_bytes() == before


def test_a_family_without_video_to_video_refuses_before_loading(init_video):
    spec = resolve_model("svd-xt")
    with pytest.raises(InvalidRequestError, match="cannot start from a video"):
        backend_class(spec.family).resolve_for(spec, GenerationRequest(image=np.zeros((64, 64, 3), np.uint8),
                                                                       init_video=init_video), [])
