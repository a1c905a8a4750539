"""LTX-Video backend on a tiny seeded LTXImageToVideoPipeline folder."""

from __future__ import annotations

import numpy as np
import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32)


@pytest.fixture(scope="module")
def gen(tiny_folder):
    return ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")


def test_folder_defaults(tiny_folder):
    d = resolve_model(tiny_folder("ltx")).defaults
    assert (d.num_frames, d.fps, d.size_multiple, d.max_frames) == (161, 24.0, 32, 1025)
    assert d.frame_rule.startswith("8n+1; above 257 or with a prompt schedule: windows of 80 frames")


def test_cli_writes_24_fps_and_frame_rate(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "ltx.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("ltx"), "-p", "the camera pans left",
                 "--num-frames", "12", "--height", "40", "--width", "40", "--num-inference-steps", "2",
                 "--seed", "0", "--timings", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "snapped to 9" in err and "snapped to 32x32" in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (9, 32, 32, 24)
    meta = sidecar(out)
    assert meta["frame_rate"] == 24 and meta["negative_prompt"].startswith("worst quality")


def test_default_size_keeps_the_image_aspect(gen, portrait_image):
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, seed=0), [])
    assert s.height > s.width and s.height % 32 == 0 and s.width % 32 == 0
    assert abs(s.height * s.width - 480 * 704) / (480 * 704) < 0.15


def test_last_image_runs_the_condition_pipeline(gen, square_image, portrait_image):
    first = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST))
    both = gen.run(GenerationRequest(image=square_image, last_image=portrait_image, prompt="x", **FAST))
    assert type(gen.backend.active).__name__ == "LTXConditionPipeline"
    assert both.frames.shape == first.frames.shape == (9, 32, 32, 3)
    assert both.settings["first_last_frame"] is True and not np.array_equal(both.frames, first.frames)
    # the condition pipeline shares the loaded weights (from_pipe), nothing is loaded twice
    assert gen.backend.active.transformer is gen.backend.pipeline.transformer


def test_vae_tiling_keeps_the_output(tiny_folder, gen, square_image):
    plain = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    tiled = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu", vae_tiling=True).run(
        GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    assert np.abs(plain.astype(int) - tiled).max() <= 2


def test_condition_pipeline_keeps_the_loaded_dtypes(tiny_folder):
    """The LTXConditionPipeline built for a last image shares the loaded (bf16) models without casting
    them (diffusers' ``from_pipe`` with no dtype would turn them all to fp32)."""
    import torch

    gen = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    pipe = gen.backend.pipeline
    pipe.transformer.to(torch.bfloat16)
    pipe.text_encoder.to(torch.bfloat16)
    condition = gen.backend.condition_pipeline()
    assert type(condition).__name__ == "LTXConditionPipeline"
    assert condition.transformer is pipe.transformer and condition.vae is pipe.vae
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32  # each component keeps its own dtype


# -- long videos and prompt schedules: LTXI2VLongMultiPromptPipeline --------------------------------

SCHEDULE = "0s: a red ball rolls right; 2s: a blue ball rolls up"
LONG = dict(num_inference_steps=3, seed=5, num_frames=97, height=32, width=32)


def test_long_windows_are_the_pipelines_own():
    from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import split_into_temporal_windows

    from i2v.backends.diffusers.ltx import long_video_windows

    for latent_frames in range(1, 140, 7):
        for window, overlap in ((10, 3), (20, 6), (4, 0)):
            assert long_video_windows(latent_frames, window, overlap) == split_into_temporal_windows(
                latent_frames, window, overlap, 8)


def test_a_prompt_schedule_runs_one_prompt_per_window(gen, square_image):
    calls = []
    result = gen.run(GenerationRequest(image=square_image, prompt=SCHEDULE, **LONG),
                     callback=lambda step, total: calls.append((step, total)))
    assert type(gen.backend.active).__name__ == "LTXI2VLongMultiPromptPipeline"
    assert type(gen.backend.active.scheduler).__name__ == "LTXEulerAncestralRFScheduler"
    assert gen.backend.active.transformer is gen.backend.pipeline.transformer  # shared, not reloaded
    assert result.frames.shape == (97, 32, 32, 3)
    plan = result.settings["long_video"]
    # the tiny VAE compresses time 4x: 25 latent frames in windows of 20 overlapping by 6
    assert plan["windows"] == [[0, 20], [14, 25]]
    assert plan["window_prompts"] == ["a red ball rolls right", "a blue ball rolls up"]
    assert result.settings["prompt"] == SCHEDULE
    assert list(result.settings["prompt_schedule"]) == [{"start": 0.0, "prompt": "a red ball rolls right"},
                                                  {"start": 2.0, "prompt": "a blue ball rolls up"}]
    # every denoising pass of every window is one progress step, ending at the total
    assert calls == [(i, 4) for i in range(1, 5)] and plan["denoising_passes"] == 4
    # the next plain request runs the image-to-video pipeline again
    gen.run(GenerationRequest(image=square_image, prompt="x", **FAST))
    assert type(gen.backend.active).__name__ == "LTXImageToVideoPipeline"


def test_the_schedule_changes_the_video_where_it_changes(gen, square_image):
    one = gen.run(GenerationRequest(image=square_image, prompt="0s: a red ball rolls right; 2s: a red ball rolls "
                                    "right", **LONG)).frames
    two = gen.run(GenerationRequest(image=square_image, prompt=SCHEDULE, **LONG)).frames
    # the second prompt starts in the second window (latent frames 14-25, pixel frames 53-96): the
    # frames before it are the same (but for the non-causal tiny VAE's decoding across time), the
    # frames it makes differ
    diff = np.abs(one.astype(int) - two).reshape(len(one), -1).mean(axis=1)
    assert np.array_equal(one[:20], two[:20]) and diff[:40].mean() < 0.05 and diff[-20:].mean() > 0.5


def test_long_schedule_matches_the_stock_pipeline(tiny_folder, square_image, tmp_path):
    """``i2v generate`` with a schedule gives the frames of ``LTXI2VLongMultiPromptPipeline`` called as
    its docs show, with the window prompts and settings the sidecar records."""
    import torch
    from diffusers import LTXEulerAncestralRFScheduler, LTXI2VLongMultiPromptPipeline
    from PIL import Image

    from i2v.io.video import read_metadata, read_video

    image = Image.open(square_image).convert("RGB").resize((32, 32))
    image.save(tmp_path / "image.png")
    out = tmp_path / "frames"
    assert main(["generate", str(tmp_path / "image.png"), "-m", tiny_folder("ltx"), "-p", SCHEDULE, "--num-frames",
                 "97", "--height", "32", "--width", "32", "--num-inference-steps", "3", "--seed", "5",
                 "-o", str(out)]) == 0
    s = read_metadata(out)
    ours, _ = read_video(out)
    pipe = LTXI2VLongMultiPromptPipeline.from_pretrained(tiny_folder("ltx"))
    pipe.scheduler = LTXEulerAncestralRFScheduler.from_config(pipe.scheduler.config)
    plan = s["long_video"]
    segments = [{"start_window": i, "end_window": i, "text": t} for i, t in enumerate(plan["window_prompts"])]
    with torch.inference_mode():
        frames = pipe(prompt=plan["window_prompts"][0], prompt_segments=segments,
                      negative_prompt=s["negative_prompt"] or None, height=32, width=32, num_frames=97,
                      frame_rate=s["frame_rate"], guidance_scale=s["guidance_scale"], num_inference_steps=3,
                      seed=s["seed"], generator=torch.Generator("cpu").manual_seed(s["seed"]), cond_image=image,
                      cond_strength=1.0, temporal_tile_size=plan["temporal_tile_size"],
                      temporal_overlap=plan["temporal_overlap"], max_sequence_length=s["max_sequence_length"],
                      decode_horizontal_tiles=plan["decode_horizontal_tiles"],
                      decode_vertical_tiles=plan["decode_vertical_tiles"], decode_timestep=None,
                      decode_noise_scale=None, output_type="pil").frames[0]
    stock = np.stack([np.asarray(f.convert("RGB")) for f in frames])
    assert ours.shape == stock.shape == (97, 32, 32, 3)
    assert np.array_equal(ours, stock)


def test_more_frames_than_one_window_run_in_windows(gen, square_image):
    notices = []
    settings = gen.backend.resolve(GenerationRequest(image=square_image, prompt="x", **{**FAST, "num_frames": 265}),
                                   notices)
    assert settings.extras["long_video"]["window_prompts"] == ["x"] * 5
    assert any("more than one LTX-Video window (257); generating in 5 windows" in n for n in notices)
    native = gen.backend.resolve(GenerationRequest(image=square_image, prompt="x", **{**FAST, "num_frames": 257}), [])
    assert "long_video" not in native.extras


@pytest.mark.parametrize("request_fields, message", [
    (dict(prompt=SCHEDULE, last_image="LAST"), "takes only a first image"),
    (dict(prompt="0s: a; 2s: b; 2.5s: c"), "the segment at 2s would play in no window"),
    (dict(prompt="0s: a; 5s: b"), "starts after the video ends"),
])
def test_long_requests_it_cannot_run_are_refused_before_loading(tiny_folder, square_image, portrait_image,
                                                               request_fields, message):
    from i2v.errors import InvalidRequestError

    if request_fields.get("last_image") == "LAST":
        request_fields = {**request_fields, "last_image": portrait_image}
    fresh = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    with pytest.raises(InvalidRequestError, match=message):
        fresh.backend.resolve(GenerationRequest(image=square_image, **{**LONG, **request_fields}), [])
    assert not fresh.backend.weights_resident()


# -- video-to-video: LTXConditionPipeline's denoise_strength -----------------------------------------


def test_video_to_video_keeps_more_of_the_video_as_the_strength_falls(gen, square_image):
    from i2v.metrics.fidelity import psnr

    init = gen.run(GenerationRequest(image=square_image, prompt="x", **FAST)).frames
    scores = []
    for strength in (1.0, 0.5, 0.25):
        result = gen.run(GenerationRequest(image=square_image, prompt="y", init_video=init, strength=strength,
                                           **{**FAST, "num_inference_steps": 4}))
        assert type(gen.backend.active).__name__ == "LTXConditionPipeline"
        assert result.settings["denoising_steps"] == int(4 * strength)
        scores.append(psnr(result.frames[1:], init[1:]))
    assert scores == sorted(scores), scores


def test_video_to_video_matches_the_stock_condition_pipeline(tiny_folder, square_image, tmp_path):
    """``i2v generate --init-video`` gives the frames of ``LTXConditionPipeline`` called as a diffusers
    user does for video-to-video: the image as the frame-0 condition, the video's normalised latents as
    ``latents`` and ``denoise_strength``."""
    import torch
    from diffusers import LTXConditionPipeline
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    from i2v.io.video import read_metadata, read_video, write_video

    rng = np.random.default_rng(1)
    image = Image.open(square_image).convert("RGB").resize((32, 32))
    image.save(tmp_path / "image.png")
    video = rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    write_video(video, tmp_path / "init", fps=24)  # PNG frames: no codec between
    out = tmp_path / "frames"
    assert main(["generate", str(tmp_path / "image.png"), "-m", tiny_folder("ltx"), "-p", "a ball",
                 "--init-video", str(tmp_path / "init"), "--strength", "0.5", "--num-inference-steps", "4",
                 "--height", "32", "--width", "32", "--seed", "3", "-o", str(out)]) == 0
    s = read_metadata(out)
    ours, _ = read_video(out)
    pipe = LTXConditionPipeline.from_pretrained(tiny_folder("ltx"))
    frames = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.inference_mode():
        latents = pipe._normalize_latents(pipe.vae.encode(frames).latent_dist.mode(), pipe.vae.latents_mean,
                                          pipe.vae.latents_std, pipe.vae.config.scaling_factor)
        stock = pipe(conditions=[LTXVideoCondition(image=image, frame_index=0)], latents=latents,
                     denoise_strength=0.5, prompt="a ball", negative_prompt=s["negative_prompt"] or None,
                     height=32, width=32, num_frames=9, frame_rate=s["frame_rate"],
                     guidance_scale=s["guidance_scale"], num_inference_steps=4,
                     max_sequence_length=s["max_sequence_length"], generator=torch.Generator("cpu").manual_seed(3),
                     output_type="pil").frames[0]
    stock = np.stack([np.asarray(f.convert("RGB")) for f in stock])
    assert s["strength"] == 0.5 and s["denoising_steps"] == 2
    assert ours.shape == stock.shape == (9, 32, 32, 3) and np.array_equal(ours, stock)


def test_video_to_video_with_a_schedule_is_refused_before_loading(tiny_folder, square_image):
    from i2v.errors import InvalidRequestError

    fresh = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    video = np.zeros((97, 32, 32, 3), np.uint8)
    with pytest.raises(InvalidRequestError, match="starts from noise"):
        fresh.backend.resolve(GenerationRequest(image=square_image, prompt=SCHEDULE, init_video=video, **LONG), [])
    assert not fresh.backend.weights_resident()
