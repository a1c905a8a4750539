"""The memory planner: estimates from configs and safetensors headers only, options picked in order.

Tiny seeded diffusers folders (tests/backends/tiny_components.py) give real config.json files;
"cuda" here is a device being planned for, never touched: every plan on it gets ``free_bytes``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from i2v.errors import InvalidRequestError
from i2v.types import ResolvedSettings
from i2v.devices import device_free_bytes, host_available_bytes
from i2v.memory import (
    MemoryEstimate,
    MemoryPlan,
    candidates,
    estimate_memory,
    frame_settings,
    plan_memory,
    read_configs,
)
from i2v.registry import MODELS, UnknownModelError, resolve_model

from .backends.tiny_components import build_animatediff, build_svd, build_wan

MiB = 2**20


@pytest.fixture(scope="module")
def svd_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memory-svd")
    build_svd().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def animatediff_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memory-animatediff")
    build_animatediff().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memory-wan")
    build_wan().save_pretrained(folder)
    return folder


def header_numel(folder: Path) -> int:
    """Values in a component folder's safetensors files, read independently of i2v."""
    total = 0
    for file in folder.glob("*.safetensors"):
        with open(file, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def fit_budget(total: int, margin: float = 0.1) -> int:
    """Free bytes whose budget (after the safety margin) is just ``total``."""
    return math.ceil(total / (1 - margin)) + 1


# ---------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["i2v-tiny", "svd", "wan"])
def test_estimate_grows_with_frames_and_resolution(model, svd_folder, wan_folder):
    source = {"i2v-tiny": "i2v-tiny", "svd": str(svd_folder), "wan": str(wan_folder)}[model]

    def estimate(frames, size):
        return estimate_memory(source, {"num_frames": frames, "height": size, "width": size}, device="cpu")

    small, longer, larger = estimate(9, 64), estimate(33, 64), estimate(9, 128)
    for bigger in (longer, larger):
        assert bigger.denoiser_activations > small.denoiser_activations
        assert bigger.decode > small.decode
        assert bigger.total > small.total
        assert bigger.weights == small.weights  # the weights do not depend on the request
    assert larger.details["latent"][2] == 2 * small.details["latent"][2]


def test_video_vae_latent_frames_follow_the_temporal_compression(wan_folder):
    # Wan's VAE keeps frame 0 and packs every 4 later frames into one latent frame: (T - 1) // 4 + 1
    e = estimate_memory(str(wan_folder), {"num_frames": 17, "height": 64, "width": 64}, device="cpu")
    assert e.details["latent"] == [16, 5, 8, 8]
    assert e.details["batch"] == 1  # Wan runs the unconditional pass separately


def test_weights_match_the_safetensors_headers(svd_folder):
    fp16 = estimate_memory(str(svd_folder), device="cuda", dtype="fp16")
    fp32 = estimate_memory(str(svd_folder), device="cpu")
    expected = {name: header_numel(svd_folder / name) for name in ("unet", "vae", "image_encoder")}
    assert fp16.components == {name: 2 * n for name, n in expected.items()}
    assert fp32.components == {name: 4 * n for name, n in expected.items()}
    assert fp32.weights == sum(fp32.components.values())


def test_embedded_model_counts_its_packaged_text_encoder():
    from i2v.conditioning import minilm_path

    e = estimate_memory("i2v-tiny", device="cpu", dtype="fp32")
    folder = Path(MODELS["i2v-tiny"].source)
    assert e.components == {"unet": 4 * header_numel(folder / "unet"), "vae": 4 * header_numel(folder / "vae"),
                            "text_encoder": 4 * header_numel(minilm_path())}
    # the default 16 frames at 128x128: latents 4 x 16 x 32 x 32, CFG batched
    assert e.details["latent"] == [4, 16, 32, 32] and e.details["batch"] == 2
    # on a GPU MiniLM stays on the CPU: not device memory
    gpu = estimate_memory("i2v-tiny", device="cuda", dtype="fp16")
    assert gpu.weights == gpu.components["unet"] + gpu.components["vae"]


def test_guidance_off_halves_the_batched_denoiser(svd_folder):
    on = estimate_memory(str(svd_folder), {"guidance_scale": 3.0}, device="cpu")
    off = estimate_memory(str(svd_folder), {"guidance_scale": 1.0}, device="cpu")
    assert (on.details["batch"], off.details["batch"]) == (2, 1)
    assert on.denoiser_activations == 2 * off.denoiser_activations


def test_options_lower_the_parts_they_act_on(svd_folder, animatediff_folder):
    settings = {"num_frames": 16, "height": 256, "width": 256}
    base = estimate_memory(str(svd_folder), settings, device="cuda")
    chunked = estimate_memory(str(svd_folder), settings, device="cuda", options={"decode_chunk_size": 2})
    assert chunked.decode < base.decode and chunked.details["decode_frames"] == 2
    offloaded = estimate_memory(str(svd_folder), settings, device="cuda", options={"offload": "model"})
    assert offloaded.weights == max(base.components.values()) < base.weights
    ad = estimate_memory(str(animatediff_folder), settings, device="cuda")
    for option in ("vae_slicing", "vae_tiling"):
        lower = estimate_memory(str(animatediff_folder), settings, device="cuda", options={option: True})
        assert lower.decode < ad.decode


def test_resolved_settings_from_a_backend(svd_folder):
    from i2v.api import GenerationRequest, load_backend

    backend = load_backend(resolve_model(str(svd_folder)), "cpu")  # no weights are read
    request = GenerationRequest(image=Image.new("RGB", (64, 64)), num_frames=6, height=64, width=64,
                                decode_chunk_size=2, seed=0)
    settings = backend.resolve(request, [])
    assert isinstance(settings, ResolvedSettings)
    plan = plan_memory(str(svd_folder), settings, device="cpu", free_bytes=2**40)
    assert plan.settings == {"num_frames": 6, "height": 64, "width": 64, "guidance_scale": settings.guidance_scale,
                             "decode_chunk_size": 2}
    assert plan.before.details["decode_frames"] == 2


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


def test_plenty_of_memory_changes_nothing(svd_folder):
    plan = plan_memory(str(svd_folder), device="cuda", free_bytes=2**40)
    assert plan.fits is True and plan.options == {}
    assert plan.after.total == plan.before.total


def test_candidates_follow_the_stated_order(svd_folder, animatediff_folder):
    def order(folder, device, **settings):
        spec = resolve_model(str(folder))
        fs = frame_settings(spec, settings)
        return candidates(spec, read_configs(spec, folder, device, None), fs, device)

    # SVD: nothing, smaller decode chunks, then model / group / sequential offload (each alone, then + chunks)
    svd = order(svd_folder, "cuda", num_frames=8, height=64, width=64)
    chunks = [{"decode_chunk_size": c} for c in (4, 2, 1)]
    assert svd[:4] == [{}] + chunks
    assert [c.get("offload") for c in svd[4::4]] == ["model", "group", "sequential"]
    assert svd[4:8] == [{"offload": "model"}] + [{"offload": "model", **c} for c in chunks]
    # the other VAEs: slicing first, then tiling (64x64 frames are larger than the 32x32 tiles)
    ad = order(animatediff_folder, "cuda", num_frames=8, height=64, width=64)
    assert ad[:3] == [{}, {"vae_slicing": True}, {"vae_tiling": True}]
    # on a CPU there is nothing to offload to
    assert all("offload" not in c for c in order(svd_folder, "cpu", num_frames=8, height=64, width=64))


def test_small_budget_picks_decode_options_before_offload(svd_folder):
    folder = str(svd_folder)
    settings = {"num_frames": 16, "height": 256, "width": 256, "guidance_scale": 1.0}
    base = estimate_memory(folder, settings, device="cuda")
    chunk4 = estimate_memory(folder, settings, device="cuda", options={"decode_chunk_size": 4})
    assert base.decode > base.denoiser_activations and chunk4.total < base.total  # the decode is the peak

    plan = plan_memory(folder, settings, device="cuda", free_bytes=fit_budget(chunk4.total))
    assert plan.fits is True
    assert plan.options == {"decode_chunk_size": 4}  # 8 (the default) did not fit, 4 does: no offload needed
    assert plan.after.total <= plan.budget_bytes < plan.before.total
    assert plan.after.decode < plan.before.decode and plan.after.weights == plan.before.weights


def test_smaller_budgets_offload_model_then_group_then_sequential(svd_folder):
    folder = str(svd_folder)
    settings = {"num_frames": 2, "height": 16, "width": 16}  # weights dominate: offloading is what helps

    def total(**options):
        return estimate_memory(folder, settings, device="cuda", options=options).total

    best_without_offload = min(total(), *(total(decode_chunk_size=c) for c in (1,)))
    previous = best_without_offload
    for mode in ("model", "group", "sequential"):
        needed = total(offload=mode)
        assert needed < previous  # each mode is smaller than everything tried before it
        plan = plan_memory(folder, settings, device="cuda", free_bytes=fit_budget(needed))
        assert plan.fits is True and plan.options == {"offload": mode}
        assert plan.after.weights < plan.before.weights
        previous = min(total(offload=mode, decode_chunk_size=c) for c in (1, 2))


def test_cpu_never_offloads(svd_folder):
    settings = {"num_frames": 16, "height": 256, "width": 256, "guidance_scale": 1.0}  # the decode is the peak
    plan = plan_memory(str(svd_folder), settings, device="cpu", free_bytes=8 * MiB)
    assert "offload" not in plan.options
    assert plan.options["decode_chunk_size"] < 8  # the CPU-side option, taken as far as it lowers the peak
    assert plan.fits is False and plan.after.total < plan.before.total


def test_impossible_budget_does_not_fit_and_says_so(svd_folder):
    plan = plan_memory(str(svd_folder), device="cuda", free_bytes=1024)
    assert plan.fits is False
    assert plan.options.get("offload") == "sequential"  # the most frugal it could do
    assert any("does not fit" in note for note in plan.notes)
    assert plan.after.total > plan.budget_bytes


def test_embedded_model_takes_no_options():
    plan = plan_memory("i2v-tiny", device="cuda", dtype="fp16", free_bytes=MiB)
    assert plan.options == {} and plan.fits is False
    assert any("takes no offload" in note for note in plan.notes)


def test_hub_model_without_local_configs_is_an_unknown_estimate(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    plan = plan_memory("svd-xt", device="cuda", free_bytes=24 * 2**30)
    assert plan.fits is None and plan.options == {}
    assert plan.before.total is None and plan.before.weights is None and not plan.before.known
    assert any("configs not available locally" in note for note in plan.notes)
    assert "unknown" in plan.describe()
    assert not estimate_memory("wan2.1-i2v-14b-480p", device="cuda").known


def test_describe_and_as_dict(svd_folder):
    plan = plan_memory(str(svd_folder), {"num_frames": 16, "height": 256, "width": 256}, device="cuda",
                       free_bytes=fit_budget(estimate_memory(str(svd_folder), {"num_frames": 16, "height": 256,
                                                                                "width": 256}, device="cuda",
                                                             options={"offload": "model"}).total))
    assert isinstance(plan, MemoryPlan) and isinstance(plan.after, MemoryEstimate)
    text = plan.describe()
    for word in ("weights on device", "denoiser activations", "VAE decode", "peak", "options:", "fits:", "MiB"):
        assert word in text
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["options"] == plan.options and data["budget_bytes"] == plan.budget_bytes
    assert data["before"]["total"] == plan.before.total


# ---------------------------------------------------------------------------------------------
# Errors and free memory
# ---------------------------------------------------------------------------------------------


def test_unknown_model_is_a_typed_error():
    with pytest.raises(UnknownModelError):
        plan_memory("no-such-model", free_bytes=2**30)


@pytest.mark.parametrize("settings", [{"num_frames": 0}, {"height": -64}, {"width": 64.5}, {"frames": 16},
                                      {"decode_chunk_size": 0}, {"guidance_scale": -1.0}])
def test_impossible_settings_are_refused(settings, svd_folder):
    with pytest.raises(InvalidRequestError):
        plan_memory(str(svd_folder), settings, device="cuda", free_bytes=2**30)


@pytest.mark.parametrize("options", [{"vae_tiling": True}, {"offload": "model"}, {"offload": "bogus"}, {"fp4": True}])
def test_options_the_model_or_device_cannot_take_are_refused(options, svd_folder):
    with pytest.raises(InvalidRequestError):  # SVD has no VAE tiling; no model offload on a CPU
        estimate_memory(str(svd_folder), device="cpu", options=options)


@pytest.mark.parametrize("kwargs", [{"free_bytes": -1}, {"safety_margin": 1.0}, {"safety_margin": -0.1}])
def test_bad_budget_is_refused(kwargs, svd_folder):
    with pytest.raises(InvalidRequestError):
        plan_memory(str(svd_folder), device="cuda", **{"free_bytes": 2**30, **kwargs})


def test_device_free_bytes():
    free = device_free_bytes("cpu")
    assert 0 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert abs(free - host_available_bytes()) < 512 * MiB
    with pytest.raises(InvalidRequestError):
        device_free_bytes("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InvalidRequestError):
            device_free_bytes("cuda")


def test_default_free_bytes_is_measured(svd_folder):
    plan = plan_memory(str(svd_folder), {"num_frames": 4, "height": 32, "width": 32}, device="cpu")
    assert plan.free_bytes > 0 and plan.fits is True


# ---------------------------------------------------------------------------------------------
# Against a real generation
# ---------------------------------------------------------------------------------------------

MEASURE = r"""
import json, re, sys
import numpy as np
import torch

torch.set_num_threads(1)
import i2v.api  # the imports (torch, diffusers, transformers) are not part of the generation
import i2v.pipelines.pipeline_i2v, i2v.conditioning, transformers  # noqa: E401,F401


def status(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+) kB", f.read()).group(1)) * 1024


try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current one
except OSError:
    sys.exit(77)
base = status("VmRSS")
if status("VmHWM") > base + 16 * 2**20:
    sys.exit(77)  # the kernel did not reset the peak
gen = i2v.api.ImageToVideoGenerator()
gen.generate(image=np.full((128, 128, 3), 120, np.uint8), prompt="the red circle moves to the left",
             num_frames=16, height=128, width=128, num_inference_steps=2, seed=0)
print(json.dumps({"peak_increase": status("VmHWM") - base}))
"""


def test_embedded_model_estimate_is_close_to_a_measured_generation():
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("/proc/self/clear_refs is not writable: cannot reset the peak RSS")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    if run.returncode == 77:
        pytest.skip("the kernel does not reset VmHWM through clear_refs")
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])["peak_increase"]
    estimate = estimate_memory("i2v-tiny", {"num_frames": 16, "height": 128, "width": 128}, device="cpu")
    assert 0.5 <= estimate.total / measured <= 3, (estimate.total / MiB, measured / MiB)
