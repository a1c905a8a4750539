"""An output never replaces an input: checked before any weights load, from the CLI, the API and training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from i2v.errors import OutputPathError
from i2v.validate import check_output_file, check_output_folder


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.webp"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


def test_the_cli_refuses_to_write_over_its_input_image(image, capsys):
    from i2v.cli import main

    before = image.read_bytes()
    assert main(["generate", str(image), "-o", str(image)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert image.read_bytes() == before and len(list(image.parent.iterdir())) == 1  # nothing else written


def test_same_file_through_another_name_and_the_sidecar(image, tmp_path):
    link = tmp_path / "link.webp"
    link.symlink_to(image)
    with pytest.raises(OutputPathError):
        check_output_file(link, [image])
    sidecar_input = tmp_path / "clip.mp4.json"
    sidecar_input.write_text("{}")
    with pytest.raises(OutputPathError, match="would overwrite"):
        check_output_file(tmp_path / "clip.mp4", [sidecar_input])  # the sidecar would replace it
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    (frames_dir / "in.png").write_bytes(b"")
    with pytest.raises(OutputPathError):
        check_output_file(frames_dir, [frames_dir / "in.png"])  # a PNG-frames folder holding the input
    check_output_file(tmp_path / "out.mp4", [image, None, np.zeros(3)])  # in-memory inputs: nothing to protect


def test_outputs_that_would_replace_the_model_folder_or_its_files_are_refused(tmp_path):
    model = tmp_path / "model"
    (model / "unet").mkdir(parents=True)
    (model / "model_index.json").write_text("{}")
    for bad in (model, tmp_path, model / "model_index.json"):  # a frames folder over the model, or one of its files
        with pytest.raises(OutputPathError, match="would replace"):
            check_output_file(bad, [], model_folder=model)
    check_output_file(model / "samples" / "new.mp4", [], model_folder=model)  # a new file beside the model: fine
    check_output_file(tmp_path / "out.mp4", [], model_folder=model)
    check_output_file(tmp_path / "out.mp4", [], model_folder="svd")  # a registered name, not a folder


def test_the_api_refuses_to_save_over_the_input(image):
    from i2v import ImageToVideoGenerator

    gen = ImageToVideoGenerator()
    frames = gen.generate(image_path=str(image), prompt="the camera zooms in", seed=0, num_inference_steps=1,
                          num_frames=2)
    with pytest.raises(OutputPathError):
        gen.save_video(frames, image)
    with pytest.raises(OutputPathError):
        gen.last_result.save(image)
    assert Image.open(image).size == (64, 64)


def test_training_output_folders_never_overlap_their_inputs(tmp_path):
    model = tmp_path / "mymodel"
    shutil.copytree("src/i2v/weights/i2v-tiny", model)
    for bad in (model, model / "runs"):
        with pytest.raises(OutputPathError, match="is inside"):
            check_output_folder(bad, [model])
    check_output_folder(tmp_path / "elsewhere", [model, None, tmp_path / "missing"])
    check_output_folder(tmp_path, [model])  # a folder that holds the model: the run writes only named subfolders
    from i2v.training.finetune import main as finetune

    before = sorted(p.name for p in model.rglob("*"))
    with pytest.raises(OutputPathError):
        finetune(["--model", str(model), "--data", str(tmp_path), "--output-dir", str(model), "--max-steps", "1"])
    assert sorted(p.name for p in model.rglob("*")) == before


@pytest.mark.parametrize("field, value", [("num_frames", 100_000), ("num_frames", 99999999999999999999),
                                          ("num_inference_steps", 100_000), ("height", 100_000), ("width", 10**30)])
def test_values_past_the_limits_are_refused_before_any_work(image, field, value, capsys):
    from i2v.cli import main

    flag = "--" + field.replace("_", "-")
    assert main(["generate", str(image), flag, str(value), "-o", str(image.parent / "out.mp4")]) == 2
    err = capsys.readouterr().err
    assert "at most" in err and field in err and "Traceback" not in err


def test_a_run_that_cannot_fit_is_refused_naming_the_estimate(image, monkeypatch):
    """With (pretend) 64 MiB free, a 16-frame 512x512 run of the embedded model does not fit: refused
    before the denoiser runs, naming what it needs; --dry-run says NO and exits 2."""
    import i2v.memory
    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.cli import main
    from i2v.errors import MemoryLimitError

    monkeypatch.setattr(i2v.memory, "device_free_bytes", lambda device: 64 * 2**20)
    gen = ImageToVideoGenerator()
    with pytest.raises(MemoryLimitError, match=r"needs about .* more than the .* free on cpu"):
        gen.run(GenerationRequest(image=str(image), height=512, width=512, seed=0))
    out = image.parent / "out.mp4"
    assert main(["generate", str(image), "--height", "512", "--width", "512", "--dry-run", "-o", str(out)]) == 2
    assert not out.exists()
    monkeypatch.setattr(i2v.memory, "device_free_bytes", lambda device: 64 * 2**30)
    result = gen.run(GenerationRequest(image=str(image), seed=0, num_inference_steps=1, num_frames=2))
    assert result.frames.shape[0] == 2


def test_loaded_weights_are_not_counted_twice():
    """Once the weights are loaded, the free memory no longer includes them: only the run's working
    memory must fit (a generator reused for many runs is not refused on its second)."""
    from i2v.errors import MemoryLimitError
    from i2v.memory import check_run_fits, estimate_memory
    from i2v.registry import resolve_model
    from i2v.types import ResolvedSettings

    spec = resolve_model("i2v-tiny")
    settings = ResolvedSettings(prompt="", negative_prompt="", num_frames=16, fps=8.0, height=128, width=128,
                                num_inference_steps=10, guidance_scale=3.0, seed=0, extras={"dtype": "fp32"})
    estimate = estimate_memory(spec, settings, device="cpu", dtype="fp32")
    free = int((estimate.total - estimate.weights // 2) / 0.9)  # room for all but half the weights
    with pytest.raises(MemoryLimitError):
        check_run_fits(spec, settings, "cpu", dtype="fp32", free_bytes=free)
    assert check_run_fits(spec, settings, "cpu", dtype="fp32", free_bytes=free, weights_resident=True) is not None


@pytest.mark.parametrize("make_output, message", [
    (lambda tmp: "", "empty"),
    (lambda tmp: tmp / "out.avi", "unsupported video extension"),
    (lambda tmp: (tmp / "adir.mp4").mkdir() or tmp / "adir.mp4", "existing folder"),
    (lambda tmp: (tmp / "afile").write_text("x") and tmp / "afile" / "out.mp4", "is a file"),
    (lambda tmp: tmp / "out.gif", "GIF cannot store 120 fps"),
])
def test_bad_outputs_are_refused_before_anything_loads(image, tmp_path, monkeypatch, make_output, message, capsys):
    """Output faults surface before the model loads (exit 2 naming the path), not after the whole generation."""
    import i2v.api
    from i2v.cli import main

    monkeypatch.setattr(i2v.api, "load_backend", lambda *a, **k: pytest.fail("the model was loaded"))
    output = make_output(tmp_path)
    assert main(["generate", str(image), "--fps", "120", "-o", str(output)]) == 2
    assert message in capsys.readouterr().err


def test_an_unwritable_folder_is_refused_first(image, tmp_path, monkeypatch, capsys):
    """A folder the user cannot write to (simulated: the tests run as root, who can write anywhere)."""
    import os

    import i2v.validate
    from i2v.cli import main

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(i2v.validate.os, "access",
                        lambda path, mode: False if os.fspath(path) == str(locked) else real_access(path, mode))
    assert main(["generate", str(image), "-o", str(locked / "out.mp4")]) == 2
    assert "cannot be written" in capsys.readouterr().err and not list(locked.iterdir())


def test_a_missing_lora_path_is_an_error_not_a_download(tmp_path):
    """`--lora some-user/some-lora` that does not exist here is refused at once; hf:ORG/NAME goes online."""
    from i2v.errors import InvalidRequestError
    from i2v.lora import check_lora_source

    with pytest.raises(InvalidRequestError, match="write hf:some-user/some-lora"):
        check_lora_source("some-user/some-lora", {})
    with pytest.raises(InvalidRequestError, match="no such file or folder"):
        check_lora_source("runs/svd-lora", {})
    assert check_lora_source("hf:some-user/some-lora", {}) == "some-user/some-lora"
    for bad in ("hf:", "hf:name", "hf:/abs/path", "hf:a/b/c"):
        with pytest.raises(InvalidRequestError, match="hf:ORG/NAME"):
            check_lora_source(bad, {})
    assert check_lora_source("zoom-in", {"zoom-in": "guoyww/animatediff-motion-lora-zoom-in"}) == \
        "guoyww/animatediff-motion-lora-zoom-in"


def test_non_finite_latents_are_a_named_error_not_a_black_video(image, capsys):
    """A guidance far past any model's is refused up front; latents that still turn NaN (broken weights,
    simulated here) stop the run with a typed error instead of writing a black clip."""
    import torch

    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.cli import main
    from i2v.errors import NonFiniteError

    out = image.parent / "out.mp4"
    assert main(["generate", str(image), "--guidance-scale", "1e30", "-o", str(out)]) == 2
    assert "guidance_scale" in capsys.readouterr().err and not out.exists()
    gen = ImageToVideoGenerator()
    unet = gen.backend.pipeline.unet
    real_forward = unet.forward
    def broken(x, *args, **kwargs):  # every output NaN (a warping denoiser's plan also returns its flow)
        out = real_forward(x, *args, **kwargs)
        return tuple(torch.full_like(t, float("nan")) for t in out) if isinstance(out, tuple) else \
            torch.full_like(out, float("nan"))

    unet.forward = broken
    try:
        with pytest.raises(NonFiniteError, match="NaN or infinite at denoising step 1"):
            gen.run(GenerationRequest(image=str(image), seed=0, num_inference_steps=2, num_frames=2))
    finally:
        del unet.forward


def test_a_prompt_that_is_not_utf8_is_a_typed_error(image, capsys):
    """Bytes that are not UTF-8 on the command line reach Python as lone surrogates."""
    from i2v.cli import main

    bad = b"the camera \xff pans".decode("utf-8", "surrogateescape")
    assert main(["generate", str(image), "-p", bad, "-o", str(image.parent / "out.mp4")]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_a_training_output_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_folder(tmp_path / "afile", [])
