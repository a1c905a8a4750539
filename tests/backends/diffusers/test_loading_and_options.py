"""Shared plumbing of the diffusers backends: safe loading, options, registry table, resolution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v import lora
from i2v.backends import resolve
from i2v.backends.diffusers import base as diffusers_base
from i2v.backends.diffusers import loading, options, schedulers
from i2v.errors import UnsafeModelError
from i2v.errors import InvalidRequestError
from i2v.backends.resolve import snap_frames
from i2v.cli import main
from i2v.registry import FOLDER_CLASSES, MODELS, UnknownModelError, resolve_model

FAMILIES = ("svd", "animatediff", "wan", "cogvideox", "ltx", "hunyuan")


# -- the registry table -------------------------------------------------------------------------


def test_every_family_is_registered_with_hub_sources_and_folder_classes():
    families = {spec.family for spec in MODELS.values()}
    assert set(FAMILIES) <= families
    expected = {
        "svd": "stabilityai/stable-video-diffusion-img2vid-xt",
        "wan2.1-i2v-14b-480p": "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        "cogvideox-5b-i2v": "THUDM/CogVideoX-5b-I2V",
        "ltx-video": "Lightricks/LTX-Video",
    }
    sources = {spec.source for spec in MODELS.values()}
    assert set(expected.values()) <= sources
    for cls in ("StableVideoDiffusionPipeline", "AnimateDiffSparseControlNetPipeline", "WanImageToVideoPipeline",
                "CogVideoXImageToVideoPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline",
                "HunyuanVideoImageToVideoPipeline"):
        assert cls in FOLDER_CLASSES


@pytest.mark.parametrize("name, frames, size, fps, rule", [
    ("svd-xt", 25, (576, 1024), 7, (1, 0)),
    ("svd", 14, (576, 1024), 7, (1, 0)),
    ("animatediff-sparsectrl-rgb", 16, (512, 512), 8, (1, 0)),
    ("wan2.1-i2v-14b-480p", 81, (480, 832), 16, (4, 1)),
    ("wan2.1-i2v-14b-720p", 81, (720, 1280), 16, (4, 1)),
    ("cogvideox-5b-i2v", 49, (480, 720), 8, (8, 1)),
    ("ltx-video", 161, (480, 704), 24, (8, 1)),
    ("hunyuanvideo-i2v", 129, (720, 1280), 24, (4, 1)),
])
def test_registered_defaults(name, frames, size, fps, rule):
    d = MODELS[name].defaults
    assert (d.num_frames, (d.height, d.width), d.fps, (d.frame_step, d.frame_offset)) == (frames, size, fps, rule)
    assert (d.num_frames - d.frame_offset) % d.frame_step == 0
    assert d.height % d.size_multiple == 0 and d.width % d.size_multiple == 0


def test_svd_and_wan_model_specific_defaults():
    svd = MODELS["svd-xt"]
    assert not svd.defaults.uses_prompt
    assert (svd.extras["motion_bucket_id"], svd.extras["noise_aug_strength"], svd.extras["min_guidance_scale"]) == (
        127, 0.02, 1.0)
    wan = MODELS["wan2.1-i2v-14b-480p"].extras
    assert (wan["flow_shift_480p"], wan["flow_shift_720p"]) == (3.0, 5.0)


def test_models_command_prints_every_family(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("svd-xt", "wan2.1-i2v-14b-480p", "cogvideox-5b-i2v", "ltx-video", "hunyuanvideo-i2v",
                 "animatediff-sparsectrl-rgb", "motion_bucket_id=127"):
        assert name in out
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["svd-xt"]["extras"]["motion_bucket_id"] == 127 and rows["svd-xt"]["uses_prompt"] is False


# -- frame and size rules (no weights needed) ------------------------------------------------------


@pytest.mark.parametrize("name, asked, expected", [
    ("wan2.1-i2v-14b-480p", 80, 81), ("wan2.1-i2v-14b-480p", 2, 5), ("wan2.1-i2v-14b-480p", 33, 33),
    ("cogvideox-5b-i2v", 30, 33), ("ltx-video", 100, 97), ("svd-xt", 13, 13),
])
def test_snap_frames(name, asked, expected):
    notices = []
    assert snap_frames(MODELS[name].defaults, asked, notices) == expected
    assert bool(notices) == (asked != expected)


def test_too_many_frames_is_refused():
    with pytest.raises(InvalidRequestError, match="at most 49"):
        snap_frames(MODELS["cogvideox-5b-i2v"].defaults, 57, [])


def test_aspect_size_follows_the_wan_recipe():
    # Wan docs: height = round(sqrt(max_area * aspect)) // mod * mod
    assert resolve.aspect_size(480 * 832, 1.0, 16) == (624, 624)
    h, w = resolve.aspect_size(480 * 832, 832 / 480, 16)
    assert (h, w) == (832, 480)


def test_resolution_runs_before_and_without_weights(portrait_image):
    """Registered hub models resolve (defaults, snapping, refusals) with no download and no weights."""
    gen = ImageToVideoGenerator("wan2.1-i2v-14b-480p", device="cpu")
    notices: list[str] = []
    s = gen.backend.resolve(GenerationRequest(image=portrait_image, num_frames=50, seed=0), notices)
    assert (s.num_frames, s.fps) == (49, 16.0)
    assert s.height > s.width and s.height % 16 == 0 and s.width % 16 == 0
    assert abs(s.height * s.width - 480 * 832) / (480 * 832) < 0.1  # max area kept at the image's aspect
    assert s.extras["flow_shift"] == 3.0 and s.extras["dtype"] == "fp32" and s.extras["offload"] == "none"
    assert any("snapped to 49" in n for n in notices) and any("chosen for the 60x100" in n for n in notices)
    s720 = ImageToVideoGenerator("wan2.1-i2v-14b-720p", device="cpu").backend.resolve(
        GenerationRequest(image=portrait_image, seed=0), [])
    assert s720.extras["flow_shift"] == 5.0
    assert gen.backend._pipe is None


def test_impossible_request_fails_before_loading(square_image, monkeypatch):
    gen = ImageToVideoGenerator("cogvideox-5b-i2v", device="cpu")
    monkeypatch.setattr(gen.backend, "load", lambda: pytest.fail("weights loaded for an impossible request"))
    with pytest.raises(InvalidRequestError, match="only generates 720x480"):
        gen.run(GenerationRequest(image=square_image, height=512, width=512, seed=0))
    with pytest.raises(InvalidRequestError, match="at most 49"):
        gen.run(GenerationRequest(image=square_image, num_frames=97, seed=0))
    with pytest.raises(InvalidRequestError, match="last image"):
        gen.run(GenerationRequest(image=square_image, last_image=square_image, seed=0))


def test_cli_reports_impossible_requests_with_exit_2(square_image, tmp_path, capsys):
    code = main(["generate", str(square_image), "-m", "wan2.1-i2v-14b-480p", "--last-image", str(square_image),
                 "--device", "cpu", "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "first-last-frame" in capsys.readouterr().err
    code = main(["generate", str(square_image), "-m", "svd-xt", "--motion-strength", "3", "--device", "cpu",
                 "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "motion_strength must be in [0, 1]" in capsys.readouterr().err


# -- safe loading ------------------------------------------------------------------------------------


@pytest.fixture
def wan_copy(tiny_folder, tmp_path):
    folder = tmp_path / "wan"
    shutil.copytree(tiny_folder("wan"), folder)
    return folder


def test_a_folder_with_pipeline_py_is_refused(wan_copy):
    (wan_copy / "pipeline.py").write_text("import os\nos.system('echo pwned')\n")
    with pytest.raises(UnsafeModelError, match="pipeline.py"):
        resolve_model(str(wan_copy))
    with pytest.raises(UnknownModelError, match="Python code"):
        ImageToVideoGenerator(str(wan_copy), device="cpu")


def test_a_pickle_only_folder_is_refused(wan_copy, square_image, tmp_path, capsys):
    weights = wan_copy / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))  # a pickle file's name, never opened
    with pytest.raises(UnsafeModelError, match=r"pickle.*transformer/diffusion_pytorch_model.bin"):
        resolve_model(str(wan_copy))
    code = main(["generate", str(square_image), "-m", str(wan_copy), "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "safetensors only" in capsys.readouterr().err


def test_custom_component_code_is_refused(wan_copy):
    index = json.loads((wan_copy / "model_index.json").read_text())
    index["transformer"] = ["my_transformer", "MyTransformer"]
    (wan_copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UnsafeModelError, match="my_transformer"):
        resolve_model(str(wan_copy))
    index["_class_name"] = ["pipeline", "MyPipeline"]
    (wan_copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UnknownModelError):
        resolve_model(str(wan_copy))


def test_loading_passes_use_safetensors_and_never_remote_code(tiny_folder, monkeypatch):
    import diffusers

    calls = []
    original = diffusers.DiffusionPipeline.from_pretrained.__func__

    def spy(cls, path, **kwargs):
        calls.append(kwargs)
        return original(cls, path, **kwargs)

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", classmethod(spy))
    gen = ImageToVideoGenerator(tiny_folder("ltx"), device="cpu")
    gen.backend.load()
    assert calls and calls[0]["use_safetensors"] is True
    assert "trust_remote_code" not in calls[0] and "custom_pipeline" not in calls[0]


# -- options ------------------------------------------------------------------------------------------


def test_dtype_defaults():
    assert options.pick_dtype(None, "cpu", {"dtype": "bf16"}) == ("fp32", torch.float32)
    name, dtypes = options.pick_dtype(None, "cuda", MODELS["wan2.1-i2v-14b-480p"].extras)
    assert name == "bf16" and dtypes == {"default": torch.bfloat16, "vae": torch.float32,
                                         "image_encoder": torch.float32}
    assert options.pick_dtype("fp16", "cuda", {}) == ("fp16", torch.float16)
    name, dtypes = options.pick_dtype(None, "cuda", MODELS["hunyuanvideo-i2v"].extras)
    assert dtypes == {"default": torch.float16, "transformer": torch.bfloat16}


def test_offload_validation():
    assert options.check_offload(None, "cpu") == "none"
    assert options.check_offload("auto", "cuda") == "auto"
    assert options.check_offload("group", "cpu") == "group"
    with pytest.raises(InvalidRequestError, match="device is cpu"):
        options.check_offload("model", "cpu")
    with pytest.raises(InvalidRequestError, match="offload must be one of"):
        options.check_offload("disk", "cuda")


@pytest.mark.parametrize("free_gib, expected", [(1000, "none"), (0.0001, "sequential")])
def test_auto_offload_follows_the_memory_plan(tiny_folder, square_image, monkeypatch, free_gib, expected):
    """--offload auto takes the planner's options for the run: the run and --dry-run agree."""
    import i2v.memory
    from i2v.backends.diffusers.wan import WanBackend
    from i2v.types import GenerationRequest, LoadOptions

    monkeypatch.setattr(i2v.memory, "device_free_bytes", lambda device: int(free_gib * 2**30))
    spec = resolve_model(tiny_folder("wan"))
    backend = WanBackend(spec, "cuda", LoadOptions(offload="auto"))
    assert backend.needs_memory_plan()
    notices: list[str] = []
    settings = backend.resolve(GenerationRequest(image=str(square_image), num_frames=5, seed=0), notices)
    plan = i2v.memory.plan_memory(spec, settings, device="cuda", dtype=backend.dtype_name)
    backend.follow_memory_plan(plan.options, settings, notices)
    assert backend.offload == plan.options.get("offload", "none") == expected == settings.extras["offload"]
    assert plan.options.get("vae_tiling", False) <= backend.vae_tiling  # decode options the plan chose are on
    assert any(n.startswith("memory plan (--offload auto)") for n in notices)
    cpu = WanBackend(spec, "cpu", LoadOptions(offload="auto"))
    assert cpu.offload == "none" and not cpu.needs_memory_plan()  # on a CPU every weight already is in RAM


@pytest.mark.parametrize("mode, method", [("model", "enable_model_cpu_offload"),
                                          ("sequential", "enable_sequential_cpu_offload"),
                                          ("group", "enable_group_offload")])
def test_offload_modes_call_the_diffusers_method(tiny_folder, monkeypatch, mode, method):
    """On a GPU device each mode reaches its diffusers method (spied: no accelerator here)."""
    import diffusers

    from i2v.backends.diffusers.wan import WanBackend
    from i2v.types import LoadOptions

    calls = []
    monkeypatch.setattr(diffusers.DiffusionPipeline, method, lambda self, **kw: calls.append(kw))
    monkeypatch.setattr(diffusers.DiffusionPipeline, "to", lambda self, *a, **kw: pytest.fail("moved to device"))
    spec = resolve_model(tiny_folder("wan"))
    backend = WanBackend(spec, "cuda", LoadOptions(offload=mode))
    backend.load()
    assert len(calls) == 1
    if mode == "group":
        assert calls[0]["onload_device"] == torch.device("cuda") and calls[0]["offload_type"] == "leaf_level"
    else:
        assert calls[0] == {"device": "cuda"}


def test_lora_argument_parsing(tmp_path):
    assert lora.parse_lora("a/b.safetensors") == ("a/b.safetensors", 1.0)
    assert lora.parse_lora("a/b.safetensors:0.6") == ("a/b.safetensors", 0.6)
    assert lora.parse_lora("C:/x/b.safetensors") == ("C:/x/b.safetensors", 1.0)
    with pytest.raises(InvalidRequestError, match="pickle"):
        lora.check_lora_source("style.bin", {})
    with pytest.raises(InvalidRequestError, match="no such file"):
        lora.check_lora_source("./missing.safetensors", {})
    assert lora.check_lora_source("zoom-in", {"zoom-in": "guoyww/animatediff-motion-lora-zoom-in"}) == \
        "guoyww/animatediff-motion-lora-zoom-in"
    (tmp_path / "x.safetensors").write_bytes(b"")
    assert lora.check_lora_source(str(tmp_path), {}) == str(tmp_path / "x.safetensors")


def test_tiny_backend_refuses_diffusers_only_options(tiny_model_dir):
    with pytest.raises(InvalidRequestError, match="offload"):
        ImageToVideoGenerator(str(tiny_model_dir), device="cpu", offload="group")


def test_components_from_diffusers_pipeline_modules_are_accepted(tiny_folder, tmp_path):
    """SD 1.5 folders list ``"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]``: a
    diffusers pipeline module (diffusers resolves it inside ``diffusers.pipelines``), not custom code."""
    folder = tmp_path / "sd15-based"
    shutil.copytree(tiny_folder("animatediff"), folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
    (folder / "model_index.json").write_text(json.dumps(index))
    assert loading.check_model_folder(folder)["safety_checker"][0] == "stable_diffusion"
    gen = ImageToVideoGenerator(str(folder), device="cpu")
    assert type(gen.backend.pipeline).__name__ == "AnimateDiffSparseControlNetPipeline"
    for library in ("os", "evil_module", "stable_diffusion.evil", "../stable_diffusion"):
        (folder / "model_index.json").write_text(json.dumps({**index, "safety_checker": [library, "X"]}))
        with pytest.raises(UnsafeModelError, match="no custom code"):
            loading.check_model_folder(folder)


# -- schedulers ----------------------------------------------------------------------------------------


def test_scheduler_choices_follow_the_models_schedule():
    flow = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 3.0}
    assert schedulers.scheduler_names("UniPCMultistepScheduler", flow) == [
        "DEISMultistepScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler",
        "UniPCMultistepScheduler"]
    assert schedulers.scheduler_names("FlowMatchEulerDiscreteScheduler", {"shift": 7.0}) == ["FlowMatchEulerDiscreteScheduler"]
    svd = {"prediction_type": "v_prediction", "timestep_type": "continuous", "use_karras_sigmas": True}
    assert schedulers.scheduler_names("EulerDiscreteScheduler", svd) == ["EulerDiscreteScheduler"]
    discrete = schedulers.scheduler_names("DDIMScheduler", {"prediction_type": "epsilon"})
    assert {"DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "UniPCMultistepScheduler"} <= set(discrete)
    assert not any(n.startswith("EDM") for n in discrete)
    import diffusers
    from diffusers.utils import DummyObject

    assert not any(isinstance(getattr(diffusers, n), DummyObject) for n in discrete)  # importable here


@pytest.mark.parametrize("family, bad, valid", [
    ("wan", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler"),
    ("svd", "DPMSolverMultistepScheduler", "valid names: EulerDiscreteScheduler"),
    ("ltx", "UniPCMultistepScheduler", "valid names: FlowMatchEulerDiscreteScheduler"),
])
def test_a_scheduler_that_cannot_run_the_model_is_refused_before_loading(tiny_folder, square_image, tmp_path,
                                                                           capsys, family, bad, valid):
    with pytest.raises(InvalidRequestError, match=valid):
        ImageToVideoGenerator(tiny_folder(family), device="cpu", scheduler=bad)
    code = main(["generate", str(square_image), "-m", tiny_folder(family), "--scheduler", bad,
                 "-o", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and f"scheduler {bad!r} cannot replace" in err and valid in err


def test_hub_model_scheduler_is_checked_once_its_configs_are_here(tiny_folder, monkeypatch):
    with pytest.raises(InvalidRequestError, match="not a diffusers scheduler"):
        ImageToVideoGenerator("wan2.1-i2v-14b-480p", device="cpu", scheduler="NoSuchScheduler")
    gen = ImageToVideoGenerator("wan2.1-i2v-14b-480p", device="cpu", scheduler="EulerDiscreteScheduler")
    monkeypatch.setattr(diffusers_base, "local_model_folder", lambda source, variant=None: Path(tiny_folder("wan")))
    monkeypatch.setattr(gen.backend, "load_pipeline", lambda folder: pytest.fail("weights loaded"))
    with pytest.raises(InvalidRequestError, match="flow-matching"):
        gen.backend.load()


# -- weights variants ------------------------------------------------------------------------------------


def test_a_folder_with_only_fp16_variant_files_loads_with_that_variant(tmp_path):
    from ..tiny_components import build_ltx

    folder = tmp_path / "ltx-fp16"
    build_ltx().save_pretrained(folder, variant="fp16")
    assert (folder / "transformer" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    gen = ImageToVideoGenerator(str(folder), device="cpu")
    assert gen.backend.variant == "fp16"
    assert type(gen.backend.pipeline).__name__ == "LTXImageToVideoPipeline"
    index = loading.read_model_index(folder)
    assert loading.component_weight_files(folder / "transformer", "fp16")  # the variant files are found
    # plain files next to the variant ones: plain unless the variant is asked for
    for file in folder.glob("*/*.fp16.safetensors"):
        shutil.copy(file, file.with_name(file.name.replace(".fp16", "")))
    assert loading.folder_variant(folder, index) is None and loading.folder_variant(folder, index, "fp16") == "fp16"
