"""HunyuanVideo I2V backend on tiny seeded folders (token_replace 16ch and latent_concat 33ch)."""

from __future__ import annotations


from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.hunyuan import prompt_template
from i2v.cli import main
from i2v.registry import resolve_model
from i2v.io.video import probe_video

from ..tiny_components import sidecar

FAST = dict(num_inference_steps=2, seed=0, num_frames=5, height=16, width=16)


def test_folder_defaults(tiny_folder):
    d = resolve_model(tiny_folder("hunyuan")).defaults
    assert (d.num_frames, d.fps, d.guidance_scale, d.frame_rule, d.size_multiple) == (129, 24.0, 6.0, "4n+1", 16)
    assert resolve_model(tiny_folder("hunyuan-33ch")).defaults.guidance_scale == 1.0


def test_cli_16ch_embedded_guidance(tiny_folder, square_image, tmp_path, capsys):
    out = tmp_path / "hy.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder("hunyuan"), "-p", "the red square moves left",
                 "--negative-prompt", "blurry", "--num-frames", "5", "--height", "16", "--width", "16",
                 "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    assert "does not use a negative prompt" in capsys.readouterr().err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == (5, 16, 16, 24)
    meta = sidecar(out)
    assert meta["embedded_guidance_scale"] == 6.0 and meta["negative_prompt_used"] is False


def test_33ch_returns_exactly_the_requested_frames(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("hunyuan-33ch"), device="cpu")
    result = gen.run(GenerationRequest(image=square_image, prompt="x", negative_prompt="blurry", guidance_scale=2.0,
                                       **FAST))
    assert result.frames.shape == (5, 16, 16, 3)
    assert result.settings["pipeline_num_frames"] == 9  # the pipeline drops its first 4 decoded frames
    assert result.settings["true_cfg_scale"] == 2.0 and result.settings["negative_prompt_used"] is True


def test_prompt_template_offsets_fit_the_text_encoder(tiny_folder):
    gen = ImageToVideoGenerator(tiny_folder("hunyuan"), device="cpu")
    pipe = gen.backend.pipeline
    template = prompt_template(pipe)
    ids = pipe.tokenizer(template["template"].split("{}")[0]).input_ids
    assert template["crop_start"] == len(ids)
    assert ids[template["image_emb_start"]] == pipe.text_encoder.config.image_token_index
    assert template["image_emb_len"] == 49  # 224 / 32 patches, squared
