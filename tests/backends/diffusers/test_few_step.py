"""Few-step (distillation) LoRAs on Wan: written in lightx2v's and Lightning's own key layouts, remapped
on load, and the run switched to their 4 steps, guidance 1 and Euler steps at shift 5."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers.few_step import recognise
from i2v.backends.diffusers.wan import WanBackend
from i2v.cli import main
from i2v.lora import check_loras

from ..tiny_components import sidecar

FAST = dict(seed=0, num_frames=5, height=32, width=32)
INNER = 24  # the tiny Wan transformer: 2 heads x 12


def original_layout_lora(path, up="lora_up", down="lora_down", alpha=None, rank=2, seed=0):
    """A LoRA in Wan's original module names (``diffusion_model.blocks.N.self_attn.q``), as lightx2v
    (lora_down / lora_up) and Lightning (lora_A / lora_B with .alpha) ship them."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for block in range(2):
        for attn in ("self_attn", "cross_attn"):
            for proj in ("q", "k", "v", "o"):
                key = f"diffusion_model.blocks.{block}.{attn}.{proj}"
                state[f"{key}.{down}.weight"] = torch.randn(rank, INNER, generator=g) * 0.5
                state[f"{key}.{up}.weight"] = torch.randn(INNER, rank, generator=g) * 0.5
                if alpha is not None:
                    state[f"{key}.alpha"] = torch.tensor(float(alpha))
    save_file(state, str(path))
    return path


def lora_b_norm(module) -> float:
    return sum(float(p.detach().abs().sum()) for n, p in module.named_parameters() if "lora_B" in n)


def test_a_lightx2v_file_is_remapped_and_switches_the_run_to_four_steps(tiny_folder, square_image, tmp_path):
    lora = original_layout_lora(tmp_path / "lightx2v_I2V_tiny_cfg_step_distill_rank2.safetensors")
    out = tmp_path / "fast.gif"
    assert main(["generate", str(square_image), "-m", tiny_folder("wan"), "--lora", str(lora), "-p", "a cat",
                 "--num-frames", "5", "--height", "32", "--width", "32", "--seed", "0", "-o", str(out)]) == 0
    meta = sidecar(out)
    assert (meta["num_inference_steps"], meta["guidance_scale"], meta["flow_shift"]) == (4, 1.0, 5.0)
    assert meta["scheduler"] == "DPMSolverMultistepScheduler"
    assert meta["few_step_lora"]["recognised_by"].startswith("the file name")
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[str(lora)])
    result = gen.run(GenerationRequest(image=square_image, prompt="a cat", **FAST))
    pipe = gen.backend.pipeline
    assert lora_b_norm(pipe.transformer) > 0  # the original-layout keys reached the diffusers modules
    assert pipe.scheduler.config.solver_order == 1  # Euler, at Lightning's own noise levels
    torch.testing.assert_close(pipe.scheduler.sigmas[:4].float(), torch.tensor([1.0, 0.9375, 0.8333, 0.625]),
                               atol=1e-3, rtol=0)
    assert any("few-step LoRA" in n for n in result.notices)
    # explicit settings win; the LoRA at scale 0 is not a few-step run
    mine = gen.backend.resolve(GenerationRequest(image=square_image, num_inference_steps=6, guidance_scale=2.0,
                                                 **FAST), [])
    assert (mine.num_inference_steps, mine.guidance_scale) == (6, 2.0)
    off = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[f"{lora}:0"])
    assert off.backend.few_step is None
    assert off.backend.resolve(GenerationRequest(image=square_image, **FAST), []).num_inference_steps == 50


def test_lightning_pair_loads_one_lora_per_expert(tiny_folder, square_image, tmp_path):
    """Wan 2.2 A14B: the high-noise LoRA into ``transformer``, ``transformer_2:`` into the low-noise expert."""
    folder = tmp_path / "a14b"
    shutil.copytree(tiny_folder("wan"), folder)
    shutil.copytree(folder / "transformer", folder / "transformer_2")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(transformer_2=["diffusers", "WanTransformer3DModel"], boundary_ratio=0.9)
    (folder / "model_index.json").write_text(json.dumps(index))
    high = original_layout_lora(tmp_path / "high_noise_model.safetensors", "lora_B", "lora_A", alpha=4, seed=1)
    low = original_layout_lora(tmp_path / "low_noise_model.safetensors", "lora_B", "lora_A", alpha=4, seed=2)
    gen = ImageToVideoGenerator(str(folder), device="cpu", loras=[str(high), f"transformer_2:{low}"])
    assert gen.backend.few_step is None  # these file names do not say "distilled": the user's defaults stay
    result = gen.run(GenerationRequest(image=square_image, num_inference_steps=2, **FAST))
    pipe = gen.backend.pipeline
    assert lora_b_norm(pipe.transformer) > 0 and lora_b_norm(pipe.transformer_2) > 0
    assert result.frames.shape == (5, 32, 32, 3) and np.isfinite(result.frames).all()
    with pytest.raises(Exception, match="transformer_2"):  # a one-expert model has no second transformer
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", loras=[f"transformer_2:{low}"]).run(
            GenerationRequest(image=square_image, num_inference_steps=2, **FAST))


def test_presets_expand_to_their_hub_files_and_are_listed(capsys):
    presets = WanBackend.family.few_step_loras
    aliases = {p.name: p.sources for p in presets}
    pair = check_loras(["lightning-wan2.2-i2v-a14b:0.8"], aliases)
    assert [s for s, _ in pair][0].endswith("high_noise_model.safetensors")
    assert pair[1][0].startswith("transformer_2:") and {k for _, k in pair} == {0.8}
    found = recognise(pair, ["lightning-wan2.2-i2v-a14b"], presets)
    assert found[0].name == "lightning-wan2.2-i2v-a14b" and found[0].steps == 4
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "lightx2v-wan2.1-i2v" in out and "lightning-wan2.2-i2v-a14b" in out


@pytest.mark.parametrize("name, steps", [
    ("lightx2v_I2V_14B_480p_cfg_step_distill_rank128_bf16.safetensors", 4),
    ("Wan2.2-Lightning_I2V-A14B-8steps-lora_HIGH_fp16.safetensors", 8),
    ("Wan21_CausVid_14B_T2V_lora_rank32.safetensors", 4),
    ("my_style_lora.safetensors", None),
    ("rank64_epoch10.safetensors", None),
])
def test_distilled_loras_are_recognised_by_their_file_names(name, steps):
    found = recognise([(f"/loras/{name}", 1.0)], [name], WanBackend.family.few_step_loras)
    assert (found[0].steps if found else None) == steps
