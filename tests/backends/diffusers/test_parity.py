"""i2v changes nothing: for every family, ``i2v generate`` with no speed or memory options gives the
frames the stock diffusers pipeline gives when called directly on the same folder, with the same seed
and the settings i2v reports in its sidecar (``np.array_equal``).

The stock side is what a diffusers user writes: ``DiffusionPipeline.from_pretrained(folder)``, the
scheduler set as the sidecar says, the call's arguments read from the sidecar, ``output_type="pil"``.
The input image is already at the output size, so neither side resizes it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2v.cli import main

from ..tiny_cosmos import DummyCosmosSafetyChecker

CASES = {  # folder builder name: (num_frames, height, width)
    "svd": (3, 16, 16),
    "animatediff": (4, 32, 32),
    "wan": (5, 32, 32),
    "wan-flf": (5, 32, 32),
    "cogvideox": (9, 16, 16),
    "ltx": (9, 32, 32),
    "hunyuan": (5, 16, 16),
    "hunyuan-33ch": (5, 16, 16),
    "hunyuan15": (5, 32, 32),
    "skyreels": (9, 32, 32),
    "skyreels-df": (9, 32, 32),
    "wan_vace": (9, 32, 32),
    "cosmos": (9, 32, 48),
    "cosmos-25": (9, 48, 32),
    "ltx2": (9, 32, 32),
    "framepack": (73, 32, 32),  # two sections of 36 frames after the image
    "kandinsky5": (17, 32, 32),  # at least 5 latent frames
    "sana_video": (9, 32, 32),
    "helios": (33, 32, 32),
    "helios-mid": (33, 64, 128),  # pyramid sides: a multiple of 64; CFG-Zero* needs two patches at 1/4 size
    "helios-distilled": (65, 64, 64),  # two chunks of 33 frames (trimmed to 4n+1), the first amplified
    "motif_video": (9, 32, 32),
}


def stock_kwargs(family: str, s: dict, image: Image.Image, last: Image.Image, pipe) -> dict:
    """The stock pipeline's call for a sidecar ``s``, as a diffusers user writes it."""
    common = dict(height=s["height"], width=s["width"], num_inference_steps=s["num_inference_steps"])
    negative = s["negative_prompt"] or None
    if family == "svd":
        return dict(image=image, num_frames=s["num_frames"], min_guidance_scale=s["min_guidance_scale"],
                    max_guidance_scale=s["max_guidance_scale"], fps=s["fps_conditioning"],
                    motion_bucket_id=s["motion_bucket_id"], noise_aug_strength=s["noise_aug_strength"],
                    decode_chunk_size=s["decode_chunk_size"], **common)
    if family == "animatediff":
        return dict(prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                    guidance_scale=s["guidance_scale"], conditioning_frames=[image],
                    controlnet_frame_indices=s["controlnet_frame_indices"],
                    controlnet_conditioning_scale=s["controlnet_conditioning_scale"], **common)
    if family == "wan":
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                    guidance_scale=s["guidance_scale"], max_sequence_length=s["max_sequence_length"],
                    **({"last_image": last} if s["first_last_frame"] else {}), **common)
    if family == "cogvideox":
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                    guidance_scale=s["guidance_scale"], use_dynamic_cfg=s["use_dynamic_cfg"],
                    max_sequence_length=s["max_sequence_length"], **common)
    if family == "ltx":
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                    frame_rate=s["frame_rate"], guidance_scale=s["guidance_scale"],
                    max_sequence_length=s["max_sequence_length"], **common)
    if family == "hunyuan":
        # the tiny LLaVA text encoder's image tokens sit elsewhere than the released one's: the
        # template offsets must fit it (the released encoder takes diffusers' default template)
        from i2v.backends.diffusers.hunyuan import prompt_template

        return dict(image=image, prompt=s["prompt"], negative_prompt=negative if s["negative_prompt_used"] else None,
                    num_frames=s["pipeline_num_frames"], guidance_scale=s["embedded_guidance_scale"],
                    true_cfg_scale=s["true_cfg_scale"], max_sequence_length=s["max_sequence_length"],
                    prompt_template=prompt_template(pipe), **common)
    if family == "hunyuan15":  # no height/width: the pipeline buckets the image's own size
        pipe.guider = pipe.guider.new(guidance_scale=s["guidance_scale"])  # guidance is the guider's (diffusers' docs)
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative if s["negative_prompt_used"] else None,
                    num_frames=s["num_frames"], num_inference_steps=s["num_inference_steps"])
    if family == "skyreels":
        kwargs = dict(image=image, prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                      guidance_scale=s["guidance_scale"], max_sequence_length=s["max_sequence_length"],
                      **({"last_image": last} if s["first_last_frame"] else {}), **common)
        if s["diffusion_forcing"]:
            kwargs.update(base_num_frames=s["base_num_frames"], overlap_history=s["overlap_history"],
                          addnoise_condition=s["addnoise_condition"], ar_step=s["ar_step"],
                          causal_block_size=s["causal_block_size"], fps=s["fps_conditioning"])
            torch.manual_seed(s["torch_manual_seed"])  # its conditioning noise comes from torch's global generator
        return kwargs
    if family == "wan_vace":  # the conditioning video and mask of the diffusers docs' prepare_video_and_mask
        n, size = s["num_frames"], (s["width"], s["height"])
        video = [image] + [Image.new("RGB", size, (128, 128, 128))] * (n - 1)
        mask = [Image.new("L", size, 0)] + [Image.new("L", size, 255)] * (n - 1)
        if s["first_last_frame"]:
            video[-1], mask[-1] = last, Image.new("L", size, 0)
        condition = dict(reference_images=[image]) if s["vace_mode"] == "reference" else dict(video=video, mask=mask)
        return dict(prompt=s["prompt"], negative_prompt=negative, num_frames=n, guidance_scale=s["guidance_scale"],
                    conditioning_scale=s["conditioning_scale"], max_sequence_length=s["max_sequence_length"],
                    **condition, **common)
    if family == "cosmos":  # Predict2.5: the image as a one-frame video (what the sidecar records)
        kwargs = dict(prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                      guidance_scale=s["guidance_scale"], max_sequence_length=s["max_sequence_length"], **common)
        if s["pipeline"] == "Cosmos2VideoToWorldPipeline":
            return dict(image=image, fps=s["fps_conditioning"], **kwargs)
        return dict(video=[image], num_latent_conditional_frames=s["num_latent_conditional_frames"], **kwargs)
    if family == "ltx2":  # video with sound: the multimodal guidance and the image's H.264 CRF, as recorded
        guidance = ("stg_scale", "modality_scale", "guidance_rescale", "audio_guidance_scale", "audio_stg_scale",
                    "audio_modality_scale", "audio_guidance_rescale")
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative, num_frames=s["num_frames"],
                    frame_rate=s["frame_rate"], guidance_scale=s["guidance_scale"], **{k: s[k] for k in guidance},
                    spatio_temporal_guidance_blocks=s["stg_blocks"], use_cross_timestep=s["use_cross_timestep"],
                    image_crf=s["image_crf"], max_sequence_length=s["max_sequence_length"],
                    **({"sigmas": s["sigmas"]} if s["sigmas"] else {}), **common)
    if family == "framepack":  # the tiny tokenizer is not Llama-3's: the template crop the sidecar records
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

        return dict(image=image, prompt=s["prompt"], negative_prompt=negative if s["negative_prompt_used"] else None,
                    num_frames=s["pipeline_num_frames"], latent_window_size=s["latent_window_size"],
                    guidance_scale=s["distilled_guidance_scale"], true_cfg_scale=s["true_cfg_scale"],
                    max_sequence_length=s["max_sequence_length"], sampling_type=s["sampling_type"],
                    prompt_template={"template": DEFAULT_PROMPT_TEMPLATE["template"],
                                     "crop_start": s["prompt_template_crop_start"]}, **common)
    if family == "kandinsky5":  # the folder's own flow shift (recorded); the default negative prompt while guided
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative if s["negative_prompt_used"] else None,
                    num_frames=s["num_frames"], guidance_scale=s["guidance_scale"],
                    max_sequence_length=s["max_sequence_length"], **common)
    if family == "sana_video":  # the docs' I2V recipe: flow-Euler at the sidecar's shift, motion-scored prompt
        if s["shift"] is not None:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, shift=s["shift"])
        return dict(image=image, prompt=s["pipeline_prompt"],
                    negative_prompt=s["negative_prompt"] if s["negative_prompt_used"] else "",
                    frames=s["num_frames"], guidance_scale=s["guidance_scale"],
                    max_sequence_length=s["max_sequence_length"],
                    use_resolution_binning=s["use_resolution_binning"], **common)
    if family == "helios":  # the pyramid pipelines take their steps per stage, as the sidecar's list
        kwargs = dict(image=image, prompt=s["prompt"], negative_prompt=negative, height=s["height"], width=s["width"],
                      num_frames=s["num_frames"], guidance_scale=s["guidance_scale"],
                      max_sequence_length=s["max_sequence_length"])
        if s["pyramid"]:
            return dict(pyramid_num_inference_steps_list=s["pyramid_num_inference_steps_list"],
                        use_zero_init=s["use_zero_init"], zero_steps=s["zero_steps"],
                        is_amplify_first_chunk=s["is_amplify_first_chunk"], **kwargs)
        return dict(num_inference_steps=s["num_inference_steps"], **kwargs)
    if family == "motif_video":  # guidance is the guider's (diffusers' guider API)
        pipe.guider = pipe.guider.new(guidance_scale=s["guidance_scale"])
        return dict(image=image, prompt=s["prompt"], negative_prompt=negative if s["negative_prompt_used"] else None,
                    num_frames=s["num_frames"], max_sequence_length=s["max_sequence_length"], **common)
    raise AssertionError(family)


@pytest.mark.parametrize("name", sorted(CASES))
def test_i2v_gives_the_stock_pipelines_frames(name, tiny_folder, tmp_path, monkeypatch):
    from diffusers import DiffusionPipeline

    from i2v.io.video import read_metadata, read_video

    # Cosmos: cosmos_guardrail is not installed; both sides run without it (i2v by the user's explicit
    # choice, the stock pipeline with diffusers' fast tests' pass-through guardrail)
    monkeypatch.setenv("I2V_COSMOS_NO_GUARDRAIL", "1")
    frames, height, width = CASES[name]
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    last = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "image.png")
    last.save(tmp_path / "last.png")
    folder = tiny_folder(name)
    out = tmp_path / "frames"  # a folder of PNG frames: exactly as generated, no video codec between
    flags = ["--last-image", str(tmp_path / "last.png")] if name == "wan-flf" else []  # it needs one
    assert main(["generate", str(tmp_path / "image.png"), "-m", folder, "-p", "a red ball rolls to the left",
                 "--num-frames", str(frames), "--height", str(height), "--width", str(width),
                 "--num-inference-steps", "2", "--seed", "3", "-o", str(out), *flags]) == 0
    settings = read_metadata(out)
    ours, _ = read_video(out)

    guard = {"safety_checker": DummyCosmosSafetyChecker()} if name.startswith("cosmos") else {}
    pipe = DiffusionPipeline.from_pretrained(folder, use_safetensors=True, **guard)
    assert type(pipe.scheduler).__name__ == settings["scheduler"] or "flow_shift" in settings
    if "flow_shift" in settings:  # Wan: the shift the sidecar names, on the folder's scheduler
        config = pipe.scheduler.config
        pipe.scheduler = type(pipe.scheduler).from_config(config, flow_shift=settings["flow_shift"])
    kwargs = stock_kwargs(name.split("-")[0], settings, image, last, pipe)
    with torch.inference_mode():
        result = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(settings["seed"]), output_type="pil")
    stock = np.stack([np.asarray(frame.convert("RGB")) for frame in result.frames[0]])
    assert ours.shape == stock.shape == (frames, height, width, 3)
    assert np.array_equal(ours, stock)
