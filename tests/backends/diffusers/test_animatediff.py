"""AnimateDiff + SparseCtrl RGB backend on a tiny seeded AnimateDiffSparseControlNetPipeline folder."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.animatediff import MOTION_LORAS
from i2v.errors import InvalidRequestError
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import save_random_lora, sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=4, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu")


def test_folder_defaults(tiny_folder):
    d = resolve_model(tiny_folder("animatediff")).defaults
    assert (d.num_frames, d.max_frames, d.fps, d.size_multiple) == (16, 32, 8.0, 8)


def test_cli_conditions_frame_zero_on_the_image(tiny_folder, square_image, tmp_path):
    out = tmp_path / "ad.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("animatediff"), "-p", "the red square moves right",
                 "--num-frames", "4", "--height", "32", "--width", "32", "--num-inference-steps", "2", "--seed", "0",
                 "-q", "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (4, 32, 32, 8)
    meta = sidecar(out)
    assert meta["controlnet_frame_indices"] == [0] and meta["controlnet_conditioning_scale"] == 1.0


def test_the_image_reaches_the_model(gen, square_image, portrait_image):
    a = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    b = gen.run(GenerationRequest(image=portrait_image, prompt="x", **FAST)).frames
    assert not np.array_equal(a, b)


def test_more_frames_than_the_motion_module_holds_is_refused(gen, square_image):
    with pytest.raises(InvalidRequestError, match="at most 32"):
        gen.run(GenerationRequest(image=square_image, num_frames=48, seed=0))


def test_motion_lora_aliases_and_a_local_motion_lora(tiny_folder, square_image, tmp_path):
    assert MOTION_LORAS["zoom-in"] == "guoyww/animatediff-motion-lora-zoom-in" and len(MOTION_LORAS) == 8
    from diffusers import AnimateDiffSparseControlNetPipeline

    pipe = AnimateDiffSparseControlNetPipeline.from_pretrained(tiny_folder("animatediff"))
    # a LoRA on the motion modules' attention, as AnimateDiff's motion LoRAs are
    lora = save_random_lora(pipe, tmp_path, r".*motion_modules.*\.(to_q|to_v)", component="unet")
    kw = dict(image=square_image, prompt="x", **FAST)
    base = ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu").run(GenerationRequest(**kw))
    moved = ImageToVideoGenerator(tiny_folder("animatediff"), device="cpu", loras=[f"{lora}:1.5"]).run(
        GenerationRequest(**kw))
    assert moved.settings["loras"][0]["scale"] == 1.5 and not np.array_equal(base.frames, moved.frames)


# -- video-to-video: SDEdit through the pipeline's latents ------------------------------------------


@pytest.mark.parametrize("strength", [1.0, 0.6, 0.3])
def test_video_to_video_starts_where_the_stock_video_to_video_pipeline_does(gen, square_image, strength):
    """The run runs the timesteps of diffusers' ``AnimateDiffVideoToVideoPipeline`` at the same strength,
    from the video's latents (each frame's VAE mean, scaled) noised by the scheduler to the first of them
    (checked on the U-Net's first input and every timestep it is given); frame 0 stays the image's."""
    import torch
    from diffusers import AnimateDiffVideoToVideoPipeline

    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    seen = []
    pipe = gen.backend.pipeline
    hook = pipe.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0].clone(), args[1])), with_kwargs=True)
    try:
        result = gen.run(GenerationRequest(image=square_image, prompt="x", init_video=video, strength=strength,
                                           **{**FAST, "num_inference_steps": 5}))
    finally:
        hook.remove()
    steps = int(5 * strength)
    assert result.settings["denoising_steps"] == steps and result.frames.shape == (4, 32, 32, 3)

    stock = AnimateDiffVideoToVideoPipeline(**{k: v for k, v in pipe.components.items() if k in (
        "vae", "text_encoder", "tokenizer", "unet", "motion_adapter", "scheduler", "feature_extractor",
        "image_encoder")})
    stock.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    stock.scheduler.set_timesteps(5)
    timesteps, count = stock.get_timesteps(5, stock.scheduler.timesteps, strength, "cpu")
    assert count == steps and len(seen) == steps
    assert [int(torch.as_tensor(t).flatten()[0]) for _, t in seen] == [int(t) for t in timesteps]
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        z = stock.vae.encode(frames).latent_dist.mean * stock.vae.config.scaling_factor  # (T, C, h, w)
    noise = torch.randn(z.transpose(0, 1)[None].shape, generator=torch.Generator("cpu").manual_seed(FAST["seed"] + 1))
    expected = stock.scheduler.add_noise(z.transpose(0, 1)[None], noise, timesteps[:1])
    first = seen[0][0][:1]  # the unconditional half of the CFG batch: the same latents
    assert torch.allclose(first, stock.scheduler.scale_model_input(expected, timesteps[0]), atol=1e-5)
