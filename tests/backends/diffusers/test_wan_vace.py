"""Wan VACE backend on a tiny seeded ``WanVACEPipeline`` folder.

The registered models' defaults come from Wan's generate.py, VACE's inference script and the Wan
README (see the module docstring of ``i2v.backends.diffusers.wan_vace``); the folder here is built by
``tests/backends/tiny_wan_vace.py`` the way diffusers' own fast test builds its pipeline.

A tiny model's random weights cannot keep anything, so "frame 0 is the input image" is checked with a
denoiser that does exactly what VACE is trained to do (``keep_the_kept``): if i2v's conditioning
video or mask were wrong (the image elsewhere, the mask's black and white swapped), frame 0 would
not come back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.api import check_request, load_backend
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import probe_video, read_metadata, read_video
from i2v.registry import MODELS, resolve_model

from ..tiny_components import psnr, save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32)
PROMPT = "the red square moves left"


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("wan_vace"), device="cpu")


@pytest.fixture(scope="module")
def base_frames(gen, square_image):
    return gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST)).frames


def reference_generator(folder: str) -> ImageToVideoGenerator:
    """The folder in reference (subject-to-video) mode: the mode is a model extra (the registered
    ``-r2v`` names set it), given here through the Python API."""
    gen = ImageToVideoGenerator(folder, device="cpu")
    gen.spec = replace(gen.spec, extras={**gen.spec.extras, "vace_mode": "reference"})
    gen.backend = load_backend(gen.spec, "cpu")
    return gen


def copy_folder(folder: str, target, **transformer_config):
    """A copy of the tiny folder, with its transformer config changed (nothing loads it)."""
    shutil.copytree(folder, target)
    config_file = target / "transformer" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **transformer_config}))
    return target


def control_inputs(gen):
    """The VACE control states each transformer pass gets (the pipeline's encoded video and mask), and
    the hook's handle (remove it when done)."""
    seen: list[torch.Tensor] = []
    handle = gen.backend.pipeline.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["control_hidden_states"].clone()), with_kwargs=True)
    return seen, handle


def keep_the_kept(pipe) -> list[torch.Tensor]:
    """Make the transformer do what VACE learns for the kept frames, exactly: predict the flow to the
    latents of the conditioning video's kept content (the "inactive" stream, ``video * (1 - mask)``:
    the black-masked pixels, grey elsewhere). Returns the list the latents the VAE decodes are put in.

    (The control's mask channels cannot say which frames are kept: VACE samples the mask at the
    latents' frame rate with ``nearest-exact``, which reads pixel frame 1 for latent frame 0; the kept
    first frame is told by the inactive and reactive streams, as in VACE's own ``vace_encode_masks``.)"""
    def forward(hidden_states, timestep, encoder_hidden_states=None, control_hidden_states=None,
                control_hidden_states_scale=None, attention_kwargs=None, return_dict=True):
        kept = control_hidden_states[:, :hidden_states.shape[1]]
        scheduler = pipe.scheduler
        sigma = scheduler.sigmas[(scheduler.timesteps.to(timestep) - timestep[0]).abs().argmin()]
        return ((hidden_states - kept) / sigma.to(hidden_states),)

    pipe.transformer.forward = forward
    decoded: list[torch.Tensor] = []
    decode = pipe.vae.decode
    pipe.vae.decode = lambda z, *args, **kwargs: decoded.append(z.clone()) or decode(z, *args, **kwargs)
    return decoded


def encode_first_frame(pipe, image: Image.Image) -> torch.Tensor:
    """The VAE's latent of an image as the first frame of a video (the causal VAE encodes it alone)."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1)
    with torch.no_grad():
        return pipe.vae.encode(x.permute(2, 0, 1)[None, :, None]).latent_dist.mode()[:, :, 0]


def block_calls(gen) -> list[int]:
    """How often the transformer's last block really runs (a block a cache skips runs no attention)."""
    calls = [0]
    gen.backend.pipeline.transformer.blocks[-1].attn1.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


# -- the registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, source, size, mode", [
    ("wan2.1-vace-1.3b", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", (480, 832), "first_frame"),
    ("wan2.1-vace-14b", "Wan-AI/Wan2.1-VACE-14B-diffusers", (720, 1280), "first_frame"),
    ("wan2.1-vace-1.3b-r2v", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", (480, 832), "reference"),
    ("wan2.1-vace-14b-r2v", "Wan-AI/Wan2.1-VACE-14B-diffusers", (720, 1280), "reference"),
])
def test_registered_models_have_the_wan_defaults(name, source, size, mode):
    """Wan generate.py / VACE vace_wan_inference.py: 81 frames, 50 steps, guidance 5, shift 16; the
    README: VACE-1.3B at 480P, VACE-14B at 720P; 16 fps (Wan's sample_fps)."""
    spec = MODELS[name]
    d, e = spec.defaults, spec.extras
    assert spec.family == "wan_vace" and spec.source == source
    assert (d.num_frames, (d.height, d.width), d.fps, d.num_inference_steps, d.guidance_scale) == (
        81, size, 16.0, 50, 5.0)
    assert (d.frame_step, d.frame_offset, d.size_multiple, d.size_policy, d.frame_rule) == (4, 1, 16, "aspect", "4n+1")
    assert (e["vace_mode"], e["flow_shift"], e["conditioning_scale"], e["max_sequence_length"]) == (
        mode, 16.0, 1.0, 512)
    assert e["dtype"] == "bf16" and e["fp32_components"] == ["vae"]
    assert e["negative_prompt"].startswith("Bright tones, overexposed")
    assert resolve_model(source).extras["vace_mode"] == "first_frame"  # a hub id names the image-to-video model


# -- folders --------------------------------------------------------------------------------------


def test_the_folder_is_recognised_with_its_own_defaults(tiny_folder, tmp_path):
    folder = tiny_folder("wan_vace")
    spec = resolve_model(folder)
    d, e = spec.defaults, spec.extras
    assert spec.family == "wan_vace" and spec.source == folder
    assert (d.num_frames, d.height, d.width, d.fps, d.size_multiple, d.frame_rule) == (81, 480, 832, 16.0, 16, "4n+1")
    assert (d.num_inference_steps, d.guidance_scale, e["flow_shift"], e["vace_mode"]) == (50, 5.0, 16.0, "first_frame")
    assert e["two_experts"] is False
    # a 14B-wide transformer (40 heads of 128): 720p like the registered 14B model
    big = resolve_model(str(copy_folder(folder, tmp_path / "big", num_attention_heads=40, attention_head_dim=128)))
    assert (big.defaults.height, big.defaults.width) == (720, 1280)


# -- the command line and the Python API ----------------------------------------------------------


# (the CLI run, its notices and its sidecar: test_families_common.py)


def test_python_api_is_reproducible_sets_the_flow_shift_and_routes_the_prompt(gen, square_image, base_frames):
    steps: list[tuple[int, int]] = []
    again = gen.generate(image_path=square_image, prompt=PROMPT, callback=lambda i, n: steps.append((i, n)), **FAST)
    assert again.shape == (5, 32, 32, 3) and np.array_equal(again, base_frames)  # same seed, same frames
    assert steps == [(1, 2), (2, 2)]
    assert gen.backend.pipeline.scheduler.config.flow_shift == 16.0  # the folder's scheduler says 3.0
    other = gen.run(GenerationRequest(image=square_image, prompt="the camera zooms in", **FAST))
    assert not np.array_equal(other.frames, base_frames)  # the prompt reaches the model
    assert gen.last_result.settings["flow_shift"] == 16.0


def test_portrait_images_keep_their_aspect_ratio(gen, portrait_image):
    """VACE resizes its inputs to the model's area at their own aspect ratio (size policy "aspect")."""
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert s.height > s.width and s.height % 16 == 0 and s.width % 16 == 0
    assert abs(s.height * s.width - 480 * 832) / (480 * 832) < 0.1 and (s.num_frames, s.fps) == (81, 16.0)


def test_the_image_is_kept_as_frame_0(gen, square_image, portrait_image):
    """With a denoiser that keeps what the mask keeps (what VACE is trained to do), the latent i2v decodes
    for frame 0 is the input image's own, and frame 0 of the video is the image as the VAE gives it back
    (a random tiny VAE gives back little of any image: its reconstruction is what "the image" can mean).
    With the mask's black and white swapped, frame 0 would be grey; with the image elsewhere, another."""
    from i2v.io.images import fit_image

    pipe = gen.backend.pipeline
    decoded = keep_the_kept(pipe)
    try:
        result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    finally:  # the module's generator is shared: give it its own transformer and VAE back
        del pipe.transformer.forward, pipe.vae.decode
    image, _ = fit_image(Image.open(square_image), 32, 32)
    other, _ = fit_image(Image.open(portrait_image), 32, 32)
    kept, wanted, elsewhere = decoded[0][:, :, 0], encode_first_frame(pipe, image), encode_first_frame(pipe, other)
    assert (kept - wanted).abs().max() < 1e-3 * (wanted - elsewhere).abs().max()
    with torch.no_grad():
        own = pipe.vae.decode(wanted[:, :, None]).sample[0, :, 0]  # the VAE's reconstruction of the image
    own = ((own.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(result.frames[0].astype(float) - own).max() <= 1


def test_last_image_keyframes(tiny_folder, gen, square_image, portrait_image, tmp_path):
    """--last-image: the last frame of the conditioning video is the last image, kept by the mask; the
    control stream changes only in the last latent frame. (On the tiny random VAE the change is far below
    one grey level of the decoded video, so it is checked where the model receives it.)"""
    folder = tiny_folder("wan_vace")
    out = tmp_path / "keyframes.gif"
    assert main(["generate", str(square_image), "-m", folder, "--last-image", str(portrait_image), "-p", PROMPT,
                 "--num-frames", "9", "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0",
                 "-q", "-o", str(out)]) == 0
    meta = sidecar(out)
    assert meta["first_last_frame"] is True and meta["last_image"] == str(portrait_image)
    assert meta["kept_frames"] == [0, 8] and meta["flow_shift"] == 16.0
    assert probe_video(out)["num_frames"] == 9

    seen, handle = control_inputs(gen)
    request = dict(image=square_image, prompt=PROMPT, **{**FAST, "num_frames": 9})
    try:
        plain = gen.run(GenerationRequest(**request))
        both = gen.run(GenerationRequest(**request, last_image=portrait_image))
    finally:
        handle.remove()
    assert both.frames.shape == plain.frames.shape == (9, 32, 32, 3)
    without, with_last = seen[0], seen[-1]  # (1, 96 channels, 3 latent frames, 4, 4)
    assert torch.equal(without[:, :, :2], with_last[:, :, :2])  # frame 0 and the frames between: unchanged
    assert not torch.equal(without[:, :, 2], with_last[:, :, 2])  # the last 4 frames' latent holds the last image


def test_reference_mode_takes_the_image_as_a_subject(tiny_folder, square_image, base_frames, monkeypatch):
    gen = reference_generator(tiny_folder("wan_vace"))
    calls: list[dict] = []
    pipe_class = type(gen.backend.pipeline)
    original = pipe_class.__call__
    monkeypatch.setattr(pipe_class, "__call__", lambda self, **kw: calls.append(kw) or original(self, **kw))
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **FAST))
    assert result.frames.shape == (5, 32, 32, 3) and not np.array_equal(result.frames, base_frames)
    (kwargs,) = calls
    assert "video" not in kwargs and "mask" not in kwargs and len(kwargs["reference_images"]) == 1
    assert kwargs["reference_images"][0].size == (32, 32)  # the image fitted to the output size
    assert (result.settings["vace_mode"], result.settings["kept_frames"]) == ("reference", [])
    with pytest.raises(InvalidRequestError, match="reference.*cannot take a last image"):
        gen.run(GenerationRequest(image=square_image, last_image=square_image, **FAST))


# -- refusals before any weights load -------------------------------------------------------------


# (the requests and caches refused, the dry run, and the listing in `i2v models`: test_families_common.py)


def test_vace_settings_the_pipeline_cannot_run_are_refused_before_loading(tiny_folder, square_image):
    spec = resolve_model(tiny_folder("wan_vace"))
    reference = replace(spec, extras={**spec.extras, "vace_mode": "reference"})
    with pytest.raises(InvalidRequestError, match="cannot take a last image"):  # what a server checks on submit
        check_request(reference, GenerationRequest(image=square_image, last_image=square_image, **FAST))
    with pytest.raises(InvalidRequestError, match="cannot take a last image"):
        check_request(MODELS["wan2.1-vace-14b-r2v"], GenerationRequest(image=square_image, last_image=square_image))
    with pytest.raises(InvalidRequestError, match="vace_mode must be one of"):
        check_request(replace(spec, extras={**spec.extras, "vace_mode": "inpaint"}),
                      GenerationRequest(image=square_image, **FAST))
    scaled = load_backend(replace(spec, extras={**spec.extras, "conditioning_scale": float("nan")}), "cpu")
    with pytest.raises(InvalidRequestError, match="conditioning_scale must be a finite number"):
        scaled.resolve(GenerationRequest(image=square_image, **FAST), [])
    assert scaled._pipe is None


# -- speed switches and LoRA ----------------------------------------------------------------------


MANY_STEPS = {**FAST, "num_inference_steps": 12}


@pytest.fixture(scope="module")
def many_steps_plain(tiny_folder, square_image):
    plain = ImageToVideoGenerator(tiny_folder("wan_vace"), device="cpu")
    calls = block_calls(plain)
    frames = plain.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS)).frames
    return frames, calls[0]


@pytest.mark.parametrize("cache", ["pab", "taylorseer"])
def test_the_listed_caches_run_and_stay_close(tiny_folder, square_image, many_steps_plain, cache):
    plain, plain_calls = many_steps_plain
    gen = ImageToVideoGenerator(tiny_folder("wan_vace"), device="cpu", cache=cache)
    calls = block_calls(gen)
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, **MANY_STEPS))
    assert result.settings["acceleration"] == {"cache": cache}
    assert psnr(result.frames, plain) > 30
    assert calls[0] == plain_calls  # both cache attention outputs inside the blocks, not whole blocks


def test_first_block_cache_would_count_the_hints_twice(tiny_folder):
    """Why fbcache (and magcache, which skips blocks the same way) is refused: VACE adds its hints between
    the blocks in the transformer's own forward, so a cached step adds them on top of a kept residual
    that already holds them. Given the very same input twice, the cached second pass should equal the
    first; on the VACE transformer it does not."""
    from diffusers import WanVACETransformer3DModel
    from diffusers.hooks import FirstBlockCacheConfig

    transformer = WanVACETransformer3DModel.from_pretrained(tiny_folder("wan_vace"), subfolder="transformer")
    torch.manual_seed(1)
    inputs = dict(hidden_states=torch.randn(1, 16, 2, 4, 4), timestep=torch.tensor([500.0]),
                  encoder_hidden_states=torch.randn(1, 8, 32), control_hidden_states=torch.randn(1, 96, 2, 4, 4),
                  return_dict=False)
    with torch.no_grad():
        plain = transformer(**inputs)[0]
        transformer.enable_cache(FirstBlockCacheConfig(threshold=0.05))
        with transformer.cache_context("cond"):
            computed, cached = transformer(**inputs)[0], transformer(**inputs)[0]
    assert torch.allclose(computed, plain, atol=1e-6)
    assert (cached - plain).abs().max() > 0.1 * plain.abs().max()


def test_lora_scale_zero_is_a_no_op_and_scale_one_changes_the_video(tiny_folder, square_image, base_frames, tmp_path):
    from diffusers import WanVACEPipeline

    folder = tiny_folder("wan_vace")
    lora = save_random_lora(WanVACEPipeline.from_pretrained(folder), tmp_path, ["to_q", "to_out.0"])
    kw = dict(image=square_image, prompt=PROMPT, **FAST)
    off = ImageToVideoGenerator(folder, device="cpu", loras=[f"{lora}:0"]).run(GenerationRequest(**kw))
    np.testing.assert_array_equal(off.frames, base_frames)
    on = ImageToVideoGenerator(folder, device="cpu", loras=[str(lora)]).run(GenerationRequest(**kw))
    assert not np.array_equal(on.frames, base_frames)
    assert on.settings["loras"] == [{"source": str(lora), "scale": 1.0}]


# -- parity with the stock diffusers pipeline -----------------------------------------------------


def stock_kwargs(s: dict, image: Image.Image, last: Image.Image) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it: the conditioning
    video and mask of the diffusers docs' ``prepare_video_and_mask`` (the image first, gray frames, the
    last image last; black keeps, white generates), or the image as a reference image. The same branch
    ``tests/backends/diffusers/test_parity.py`` takes for this family."""
    n, size = s["num_frames"], (s["width"], s["height"])
    if s["vace_mode"] == "reference":
        condition = dict(reference_images=[image])
    else:
        video = [image] + [Image.new("RGB", size, (128, 128, 128))] * (n - 1)
        mask = [Image.new("L", size, 0)] + [Image.new("L", size, 255)] * (n - 1)
        if s["first_last_frame"]:
            video[-1], mask[-1] = last, Image.new("L", size, 0)
        condition = dict(video=video, mask=mask)
    return dict(prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None, height=s["height"],
                width=s["width"], num_frames=n, num_inference_steps=s["num_inference_steps"],
                guidance_scale=s["guidance_scale"], conditioning_scale=s["conditioning_scale"],
                max_sequence_length=s["max_sequence_length"], **condition)


@pytest.mark.parametrize("mode, last", [("first_frame", False), ("first_frame", True), ("reference", False)])
def test_i2v_gives_the_stock_pipelines_frames(tiny_folder, tmp_path, mode, last):
    from diffusers import DiffusionPipeline

    folder = tiny_folder("wan_vace")
    frames, height, width = 9, 32, 48
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    last_image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    last_image.save(tmp_path / "last.png")
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated, no video codec between
    if mode == "first_frame":
        flags = ["--last-image", str(tmp_path / "last.png")] if last else []
        assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                     "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                     "--num-inference-steps", "2", "--seed", "3", "-o", str(out), *flags]) == 0
    else:  # the reference mode is a model extra: run through the Python API, saved the same way
        result = reference_generator(folder).run(GenerationRequest(
            image=tmp_path / "image.png", prompt="a red ball rolls to the left", num_frames=frames, height=height,
            width=width, num_inference_steps=2, seed=3))
        result.save(out)
    settings = read_metadata(out)
    ours, _ = read_video(out)
    assert settings["vace_mode"] == mode and settings["first_last_frame"] is last

    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    assert type(pipe.scheduler).__name__ == settings["scheduler"]
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, flow_shift=settings["flow_shift"])
    kwargs = stock_kwargs(settings, image, last_image)
    with torch.inference_mode():
        stock_result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(settings["seed"]),
                            output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in stock_result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)


def test_a_camera_path_becomes_the_control_video_and_its_mask(gen, square_image, monkeypatch):
    """The control video is the image moved along the path; the mask keeps what the image shows and leaves
    the revealed border to the model."""
    from i2v.io.images import fit_image

    calls: list[dict] = []
    pipe_class = type(gen.backend.pipeline)
    original = pipe_class.__call__
    monkeypatch.setattr(pipe_class, "__call__", lambda self, **kw: calls.append(kw) or original(self, **kw))
    # 5 frames at 16 fps: 0.25 s is frame 4, where the camera has turned a quarter of the frame to the right
    result = gen.run(GenerationRequest(image=square_image, prompt=PROMPT, camera_path="0.25s: pan right 0.25", **FAST))
    assert result.frames.shape == (5, 32, 32, 3) and result.settings["camera_path"] == "0.25s: pan 0.25"
    (kwargs,) = calls
    video = np.stack([np.asarray(f) for f in kwargs["video"]]).astype(int)
    mask = np.stack([np.asarray(m) for m in kwargs["mask"]])
    image = np.asarray(fit_image(Image.open(square_image), 32, 32)[0]).astype(int)
    assert np.array_equal(video[0], image) and not mask[0].any()  # frame 0: the image, kept
    assert np.abs(video[4][:, :24] - image[:, 8:]).max() <= 1  # the picture slid 8 pixels left
    assert (mask[4][:, 24:] == 255).all() and not mask[4][:, :23].any()  # the revealed strip is generated
    with pytest.raises(InvalidRequestError, match="not both"):
        check_request(gen.spec, GenerationRequest(image=square_image, last_image=square_image, camera_path="0.25s: pan 0.1"))
    with pytest.raises(InvalidRequestError, match="cannot move objects along trajectories"):
        check_request(MODELS["wan2.1-vace-14b-r2v"], GenerationRequest(image=square_image, trajectory="a: 0.2,0.2 -> 0.5,0.5"))
