"""Wan image-to-video backend on tiny seeded Wan 2.1 I2V and FLF2V folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.errors import InvalidRequestError
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("wan"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt="the red square moves left", **FAST)).frames


@pytest.fixture(scope="module")
def lora_file(tiny_folder, tmp_path_factory):
    """A random LoRA on the tiny transformer's attention, saved the diffusers way (safetensors)."""
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline.from_pretrained(tiny_folder("wan"))
    return save_random_lora(pipe, tmp_path_factory.mktemp("wan-lora"), ["to_q", "to_out.0"])


def test_folder_defaults(tiny_folder):
    spec = resolve_model(tiny_folder("wan"))
    d = spec.defaults
    assert spec.family == "wan" and (d.num_frames, d.fps, d.size_multiple, d.frame_rule) == (81, 16.0, 16, "4n+1")
    assert spec.extras["first_last_frame"] is False  # Wan 2.1 I2V: one CLIP image only
    assert resolve_model(tiny_folder("wan-flf")).extras["first_last_frame"] is True


def test_cli_snaps_frames_and_size_and_writes_16_fps(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "wan.mp4"
    code = main(["generate", str(square_image), "-m", tiny_folder("wan"), "-p", "the red square moves left",
                 "--negative-prompt", "blurry", "--num-frames", "7", "--height", "30", "--width", "40",
                 "--num-inference-steps", "2", "--seed", "0", "-o", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "snapped to 9" in err and "snapped to 48x32" in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (9, 48, 32, 16)
    meta = sidecar(out)
    assert meta["prompt"] == "the red square moves left" and meta["negative_prompt"] == "blurry"
    assert meta["prompt_used"] is True and meta["flow_shift"] == 3.0 and meta["scheduler"] == "UniPCMultistepScheduler"


def test_default_negative_prompt_and_prompt_routing(gen, square_image, base_frames):
    result = gen.run(GenerationRequest(image=square_image, prompt="the red square moves left", **FAST))
    assert result.settings["negative_prompt"].startswith("Bright tones, overexposed")
    assert np.array_equal(result.frames, base_frames)  # same seed, same settings
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model


def test_first_last_frame(tiny_folder, square_image, portrait_image, tmp_path):
    out = tmp_path / "flf.gif"
    assert main(["generate", str(square_image), "-m", tiny_folder("wan-flf"), "--last-image", str(portrait_image),
                 "--num-frames", "5", "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0",
                 "-q", "-o", str(out)]) == 0
    meta = sidecar(out)
    assert meta["first_last_frame"] is True and meta["last_image"] == str(portrait_image)
    assert meta["flow_shift"] == 16.0  # Wan 2.1 FLF2V's own shift (Wan generate.py), not the I2V 3.0/5.0
    assert probe_video(out)["num_frames"] == 5


def test_a_text_to_video_wan_folder_is_refused(tiny_folder, tmp_path):
    import json
    import shutil

    from i2v.registry import UnknownModelError

    folder = tmp_path / "t2v"
    shutil.copytree(tiny_folder("wan"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
    with pytest.raises(UnknownModelError, match="text-to-video"):
        resolve_model(str(folder))


def test_last_image_is_refused_by_a_plain_i2v_model_before_loading(gen, square_image):
    with pytest.raises(InvalidRequestError, match="first-last-frame"):
        gen.run(GenerationRequest(image=square_image, last_image=square_image, **FAST))


def test_an_flf2v_model_without_a_last_image_is_refused_before_loading(tiny_folder, square_image):
    """Wan 2.1 FLF2V embeds two CLIP images; with one, the transformer would fail mid-run."""
    flf = ImageToVideoGenerator(tiny_folder("wan-flf"), device="cpu")
    with pytest.raises(InvalidRequestError, match="needs a last image"):
        flf.run(GenerationRequest(image=square_image, **FAST))
    assert flf.backend._pipe is None


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames,
                                                                    lora_file):
    kw = dict(image=square_image, prompt="the red square moves left", **FAST)
    off = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[f"{lora_file}:0"]).run(GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[str(lora_file.parent)]).run(
        GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora_file), "scale": 1.0}]


def test_pickle_lora_is_refused(tiny_folder, tmp_path):
    bad = tmp_path / "style.bin"
    bad.write_bytes(b"not read")
    with pytest.raises(InvalidRequestError, match="safetensors"):
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[str(bad)])


def test_scheduler_swap_and_invalid_name(tiny_folder, square_image, capsys, tmp_path):
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", scheduler="DPMSolverMultistepScheduler")
    result = gen.run(GenerationRequest(image=square_image, **FAST))
    assert result.settings["scheduler"] == "DPMSolverMultistepScheduler"
    code = main(["generate", str(square_image), "-m", tiny_folder("wan"), "--scheduler", "NoSuchScheduler",
                 "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "valid names:" in err and "UniPCMultistepScheduler" in err


def test_memory_options_keep_the_output(tiny_folder, square_image, base_frames, monkeypatch):
    """Group offload (onload to CPU here) and VAE slicing are exact; VAE tiling (forced onto small
    tiles so that it really tiles a 64x64 video) stays within a small tolerance."""
    kw = dict(image=square_image, prompt="the red square moves left", **FAST)
    grouped = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", offload="group", vae_slicing=True)
    result = grouped.run(GenerationRequest(**kw))
    assert result.settings["offload"] == "group" and result.settings["vae_slicing"] is True
    np.testing.assert_array_equal(result.frames, base_frames)

    from diffusers import AutoencoderKLWan

    original = AutoencoderKLWan.enable_tiling
    monkeypatch.setattr(AutoencoderKLWan, "enable_tiling", lambda self: original(
        self, tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=16,
        tile_sample_stride_width=16))
    big = dict(kw, height=64, width=64)
    plain = ImageToVideoGenerator(tiny_folder("wan"), device="cpu").run(GenerationRequest(**big)).frames
    tiled_gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", vae_tiling=True)
    tiled = tiled_gen.run(GenerationRequest(**big)).frames
    assert tiled_gen.backend.pipeline.vae.use_tiling
    assert np.abs(plain.astype(int) - tiled).mean() < 8


@pytest.mark.parametrize("name, shift_480p, shift_720p", [
    ("wan2.1-i2v-14b-480p", 3.0, 5.0),  # Wan generate.py: i2v at 480x832 -> 3.0, else 5.0
    ("wan2.1-i2v-14b-720p", 3.0, 5.0),
    ("wan2.1-flf2v-14b-720p", 16.0, 16.0),  # generate.py: "flf2v" -> sample_shift = 16
    ("wan2.2-i2v-a14b", 5.0, 5.0),  # wan_i2v_A14B.py: sample_shift = 5.0
    ("wan2.2-ti2v-5b", 5.0, 5.0),  # wan_ti2v_5B.py: sample_shift = 5.0
])
def test_registered_wan_models_record_their_own_flow_shift(name, shift_480p, shift_720p, square_image):
    from i2v.registry import MODELS

    assert MODELS[name].family == "wan"
    backend = ImageToVideoGenerator(name, device="cpu").backend
    last = square_image if "flf2v" in name else None  # FLF2V needs its last image
    for (height, width), shift in (((480, 832), shift_480p), ((720, 1280), shift_720p)):
        s = backend.resolve(GenerationRequest(image=square_image, last_image=last, height=height, width=width,
                                              seed=0), [])
        assert s.extras["flow_shift"] == shift, (name, height, width)
    assert backend._pipe is None  # decided without weights


def test_local_flf2v_and_a14b_folders_take_their_flow_shift(tiny_folder, square_image, tmp_path):
    import json
    import shutil

    flf = ImageToVideoGenerator(tiny_folder("wan-flf"), device="cpu").backend
    assert flf.resolve(GenerationRequest(image=square_image, last_image=square_image, seed=0,
                                         **{k: FAST[k] for k in ("height", "width")}), []).extras["flow_shift"] == 16.0
    assert resolve_model(tiny_folder("wan")).extras["flow_shift_480p"] == 3.0  # plain Wan 2.1 I2V
    folder = tmp_path / "a14b"  # Wan 2.2 I2V-A14B: two experts, no CLIP image tokens
    shutil.copytree(tiny_folder("wan"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["transformer_2"] = ["diffusers", "WanTransformer3DModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    config = json.loads((folder / "transformer" / "config.json").read_text())
    (folder / "transformer" / "config.json").write_text(json.dumps({**config, "image_dim": None}))
    spec = resolve_model(str(folder))
    assert (spec.extras["flow_shift_480p"], spec.extras["flow_shift_720p"]) == (5.0, 5.0)


def test_lora_alpha_from_the_safetensors_metadata_is_kept(tiny_folder, tmp_path):
    """A LoRA saved with lora_alpha != r (alpha in the file's adapter metadata) loads with that alpha:
    the file is loaded by path, so diffusers reads its header (a bare state dict would get alpha = r)."""
    from diffusers import WanImageToVideoPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = WanImageToVideoPipeline.from_pretrained(tiny_folder("wan"))
    torch.manual_seed(0)
    config = LoraConfig(r=2, lora_alpha=8, target_modules=["to_q", "to_out.0"], init_lora_weights=False)
    pipe.transformer.add_adapter(config)
    WanImageToVideoPipeline.save_lora_weights(tmp_path, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
                                              transformer_lora_adapter_metadata=config.to_dict())
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu",
                                loras=[f"{tmp_path / 'pytorch_lora_weights.safetensors'}:0.5"])
    loaded = gen.backend.pipeline.transformer.peft_config["lora0"]
    assert (loaded.r, loaded.lora_alpha) == (2, 8)


def test_a_missing_relative_lora_file_is_refused_before_loading(tiny_folder, square_image, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidRequestError, match="no such file"):
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=["loras/style.safetensors"])
    code = main(["generate", str(square_image), "-m", tiny_folder("wan"), "--lora", "loras/style.safetensors:0.8",
                 "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "loras/style.safetensors: no such file" in capsys.readouterr().err


# -- video-to-video: SDEdit through the pipeline's latents ------------------------------------------


@pytest.mark.parametrize("strength", [1.0, 0.6, 0.3])
def test_video_to_video_starts_where_the_stock_video_to_video_pipeline_does(gen, square_image, strength):
    """The run starts from the latents and runs the timesteps of diffusers' ``WanVideoToVideoPipeline``
    at the same strength: the video encoded and normalised as it does, noised by the scheduler to the
    first step it keeps (checked on the transformer's first input and every timestep it is given)."""
    from diffusers import WanVideoToVideoPipeline
    from PIL import Image

    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    seen = []
    pipe = gen.backend.pipeline
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((kwargs["hidden_states"].clone(), kwargs["timestep"].clone())),
        with_kwargs=True)
    try:
        result = gen.run(GenerationRequest(image=square_image, prompt="x", init_video=video, strength=strength,
                                           **{**FAST, "num_frames": 9, "num_inference_steps": 5}))
    finally:
        hook.remove()
    steps = int(5 * strength)
    assert result.settings["denoising_steps"] == steps and result.frames.shape == (9, 32, 32, 3)

    stock = WanVideoToVideoPipeline(**{k: v for k, v in pipe.components.items()
                                       if k in ("vae", "text_encoder", "tokenizer", "transformer", "scheduler")})
    stock.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    stock.scheduler.set_timesteps(5)
    timesteps, count = stock.get_timesteps(5, stock.scheduler.timesteps, strength, "cpu")
    passes = 2 if result.settings["guidance_scale"] > 1 else 1  # Wan guides with a second pass
    assert count == steps and len(seen) == steps * passes
    seen = seen[::passes]
    assert [int(t.flatten()[0]) for _, t in seen] == [int(t) for t in timesteps]
    frames = stock.video_processor.preprocess_video([Image.fromarray(f) for f in video], height=32, width=32)
    expected = stock.prepare_latents(frames, 1, stock.vae.config.z_dim, 32, 32, torch.float32, torch.device("cpu"),
                                     torch.Generator("cpu").manual_seed(FAST["seed"] + 1), None, timesteps[:1])
    first = seen[0][0][:, : stock.vae.config.z_dim].float()
    assert torch.allclose(first, expected, atol=1e-5)
