import json

import numpy as np
import pytest
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.errors import InvalidRequestError
from i2v.io.images import CorruptImageError, ImageNotFoundError, NotAnImageError
from i2v.io.video import probe_video, read_metadata, read_video
from i2v.registry import UnknownModelError


@pytest.fixture(scope="module")
def gen(tiny_model_dir):
    return ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu")


def test_defaults_come_from_the_model(gen, sample_image_path):
    result = gen.run(GenerationRequest(image=sample_image_path, prompt="the red square moves left", seed=0,
                                       num_inference_steps=2))
    d = gen.defaults
    assert result.frames.shape == (d.num_frames, d.height, d.width, 3)
    assert result.fps == d.fps
    assert result.settings["num_frames"] == d.num_frames
    # the 96x80 input was fitted to the model's square size, and that was reported
    assert any("centre-cropped" in n for n in result.notices)


def test_brief_usage_generate_and_save_video(gen, sample_image_path, tmp_path):
    frames = gen.generate(image_path=str(sample_image_path), prompt="the red square moves right", num_frames=6,
                          fps=12, seed=4, num_inference_steps=2)
    assert isinstance(frames, np.ndarray) and frames.shape == (6, 64, 64, 3)
    out = gen.save_video(frames, tmp_path / "out.mp4")
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (6, 64, 64, 12)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    meta = read_metadata(out)
    for key in ("model", "prompt", "seed", "num_inference_steps", "guidance_scale", "height", "width",
                "num_frames", "fps", "i2v_version"):
        assert key in meta
    assert meta["seed"] == 4 and meta["prompt"] == "the red square moves right"


def test_save_video_fps_override(gen, sample_image_path, tmp_path):
    frames = gen.generate(image_path=sample_image_path, prompt="x", seed=0, num_inference_steps=1)
    _, fps = read_video(gen.save_video(frames, tmp_path / "o.webm", fps=5))
    assert fps == 5


def test_same_seed_same_frames(gen, sample_image_path):
    kw = dict(image_path=sample_image_path, prompt="the red square grows", num_inference_steps=2, seed=11)
    np.testing.assert_array_equal(gen.generate(**kw), gen.generate(**kw))


def test_missing_seed_is_chosen_and_recorded(gen, sample_image_path):
    result = gen.run(GenerationRequest(image=sample_image_path, num_inference_steps=1))
    again = gen.run(GenerationRequest(image=sample_image_path, num_inference_steps=1, seed=result.settings["seed"]))
    np.testing.assert_array_equal(result.frames, again.frames)


def test_size_is_snapped_and_reported(gen, sample_image_path):
    result = gen.run(GenerationRequest(image=sample_image_path, height=40, width=70, seed=0, num_inference_steps=1))
    m = gen.defaults.size_multiple
    assert result.frames.shape[1] % m == 0 and result.frames.shape[2] % m == 0
    assert any("snap" in n or "rounded" in n for n in result.notices)


@pytest.mark.parametrize("field, value", [("num_frames", 1), ("num_frames", 2.5), ("fps", 0), ("fps", float("nan")),
                                          ("num_inference_steps", 0), ("guidance_scale", -1.0), ("seed", -3),
                                          # NaN / inf in integer fields: a typed error, not int()'s ValueError
                                          ("num_frames", float("nan")), ("height", float("inf")),
                                          ("width", float("-inf")), ("num_inference_steps", float("nan")),
                                          ("fps", 10**400)])
def test_invalid_request_values_raise_before_any_work(gen, sample_image_path, field, value):
    with pytest.raises(InvalidRequestError, match=field.split("_")[0]):
        gen.run(GenerationRequest(image=sample_image_path, **{field: value}))


def test_bad_images_raise_typed_errors(gen, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    broken = tmp_path / "broken.png"
    from PIL import Image
    Image.new("RGB", (64, 64), (255, 0, 0)).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    with pytest.raises(ImageNotFoundError, match="nope.png"):
        gen.generate(image_path=tmp_path / "nope.png", prompt="x")
    with pytest.raises(NotAnImageError, match="notes.png"):
        gen.generate(image_path=text, prompt="x")
    with pytest.raises(CorruptImageError, match="broken.png"):
        gen.generate(image_path=broken, prompt="x")


def test_unknown_model_raises():
    with pytest.raises(UnknownModelError, match="no-such-model"):
        ImageToVideoGenerator(model_name="no-such-model")


def test_generate_needs_exactly_one_image(gen):
    with pytest.raises(ValueError, match="exactly one"):
        gen.generate(prompt="x")


def test_result_save_writes_settings_sidecar(gen, sample_image_path, tmp_path):
    result = gen.run(GenerationRequest(image=sample_image_path, prompt="p", seed=1, num_inference_steps=1))
    path = result.save(tmp_path / "clip.gif")
    sidecar = json.loads((tmp_path / "clip.gif.json").read_text())
    assert sidecar["prompt"] == "p" and sidecar["seed"] == 1
    frames, fps = read_video(path)
    assert frames.shape == result.frames.shape and fps == pytest.approx(result.fps)


def test_embedded_model_stays_warm_across_generators(tiny_model_dir):
    first = ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu", dtype="fp32")
    again = ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu", dtype="fp32")
    assert again.backend.pipeline is first.backend.pipeline  # same weights object: no second load
    other = ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu", dtype="bf16")
    assert other.backend.pipeline is not first.backend.pipeline


def test_embedded_defaults_record_sampler_and_dtype(gen, sample_image_path):
    from i2v.devices import cpu_has_fast_bf16

    result = gen.run(GenerationRequest(image=sample_image_path, seed=0, num_frames=4))
    s = result.settings
    assert (s["sampler"], s["num_inference_steps"]) == ("dpmpp_2m", 10)
    assert s["dtype"] == ("bf16" if cpu_has_fast_bf16() else "fp32")


def test_embedded_sampler_is_chosen_by_name_and_checked(tiny_model_dir, sample_image_path):
    euler = ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu", scheduler="euler")
    r = euler.run(GenerationRequest(image=sample_image_path, seed=0, num_frames=4, num_inference_steps=2))
    assert r.settings["sampler"] == "euler"
    with pytest.raises(InvalidRequestError, match="unknown sampler 'ddim'"):
        ImageToVideoGenerator(scheduler="ddim")


def test_embedded_memory_profile_decodes_in_chunks_with_the_same_frames(gen, tiny_model_dir, sample_image_path):
    request = GenerationRequest(image=sample_image_path, seed=3, num_frames=6, num_inference_steps=2)
    lean = ImageToVideoGenerator(model_name=str(tiny_model_dir), device="cpu", profile="memory")
    assert lean.backend.decode_chunk_size == 2
    # the embedded VAE decodes frame by frame, so chunking changes memory, not pixels
    np.testing.assert_array_equal(lean.run(request).frames, gen.run(request).frames)
    with pytest.raises(InvalidRequestError, match="unknown profile"):
        ImageToVideoGenerator(profile="turbo")


def test_warm_cache_reloads_a_rewritten_model_folder(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    first = ImageToVideoGenerator(model_name=str(folder), device="cpu", dtype="fp32")
    weights = next(folder.glob("unet/*.safetensors"))
    weights.write_bytes(weights.read_bytes())  # a new export: same bytes, new file stamp
    again = ImageToVideoGenerator(model_name=str(folder), device="cpu", dtype="fp32")
    assert again.backend.pipeline is not first.backend.pipeline


def test_a_prompt_past_the_token_limit_is_reported(gen, sample_image_path):
    long = "the red circle moves to the right " * 12
    result = gen.run(GenerationRequest(image=sample_image_path, prompt=long, seed=0, num_inference_steps=1,
                                       num_frames=2))
    assert any("prompt is" in n and "reads the first 32" in n for n in result.notices)
    short = gen.run(GenerationRequest(image=sample_image_path, prompt="the camera zooms in", seed=0,
                                      num_inference_steps=1, num_frames=2))
    assert not any("tokens long" in n for n in short.notices)


def test_an_animated_input_is_noticed(gen, tmp_path):
    frames = [Image.new("RGB", (64, 64), c) for c in ((200, 0, 0), (0, 200, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    result = gen.run(GenerationRequest(image=str(tmp_path / "a.gif"), prompt="x", num_frames=2,
                                       num_inference_steps=1, seed=0))
    assert any("holds 2 frames" in n for n in result.notices)
