"""The checks every diffusers family's tests make, once, parametrized over the families' tiny folders
(``tiny_folder`` in ``tests/backends/conftest.py``), the way ``test_parity.py`` parametrizes its parity check.

Each table row holds what differs between the families (flags, the numbers a run snaps to, the notices,
the settings recorded, the messages of the refusals); what is particular to one family in substance stays
in that family's own file (``test_cosmos.py``, ``test_helios.py``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.backends.diffusers import cosmos, kandinsky5, sana_video
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.io.video import probe_video

from .. import tiny_hunyuan15, tiny_kandinsky5, tiny_motif_video, tiny_sana_video
from ..tiny_components import sidecar

PROMPT = "the red square moves left"
IMAGE = "{image}"  # in a row's flags or fields: the input image (as the last image)


@pytest.fixture(autouse=True)
def without_guardrail(monkeypatch):
    """cosmos_guardrail is not installed here: Cosmos runs without it, as a user's explicit choice (the
    other families do not read this)."""
    monkeypatch.setenv("I2V_COSMOS_NO_GUARDRAIL", "1")


def with_image(values, image):
    """``values`` (flags or request fields) with ``IMAGE`` replaced by the input image."""
    if isinstance(values, dict):
        return {k: image if v == IMAGE else v for k, v in values.items()}
    return [str(image) if v == IMAGE else v for v in values]


# -- the registry ---------------------------------------------------------------------------------

LISTED = {  # family: what `i2v models` shows of it
    "cosmos": ("cosmos-predict2-2b-video2world", "cosmos-predict2.5-2b"),
    "helios": ("helios-distilled", "HeliosPyramidPipeline"),
    "framepack": ("framepack-i2v", "framepack-f1-i2v", "HunyuanVideoFramepackPipeline"),
    "skyreels": ("skyreels-v2-df-14b-540p", "SkyReelsV2DiffusionForcingImageToVideoPipeline"),
    "ltx2": ("ltx-2", "ltx-2.3-distilled"),
    "wan_vace": ("wan2.1-vace-14b-r2v", "WanVACEPipeline"),
}


@pytest.mark.parametrize("family", LISTED)
def test_models_lists_the_family(family, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for shown in LISTED[family]:
        assert shown in out


# -- the command line: the video and its sidecar --------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    """``i2v generate IMAGE -m FOLDER -p PROMPT *flags --num-inference-steps 2 --seed 0 -o OUT.mp4`` and
    what it must give."""

    folder: str  # the tiny_folder name
    flags: tuple[str, ...]
    notices: tuple[str, ...]  # on stderr
    video: tuple[int, int, int, int]  # the file's (frames, width, height, fps)
    recorded: dict  # sidecar values (True, False and None: those very values)
    prefixes: dict = field(default_factory=dict)  # how sidecar strings begin
    absent: tuple[str, ...] = ()  # sidecar keys not written


CLI_RUNS = {
    "cosmos": CliRun(
        "cosmos", ("--num-frames", "7", "--height", "30", "--width", "40"),
        ("snapped to 9", "snapped to 48x32", "default negative prompt", "cosmos_guardrail is not installed",
         "NVIDIA Open Model License"),
        (9, 48, 32, 16),
        {"prompt": PROMPT, "pipeline": cosmos.PREDICT2, "guardrail": None, "fps_conditioning": 16,
         "max_sequence_length": 512, "scheduler": "FlowMatchEulerDiscreteScheduler", "guidance_scale": 7.0},
        {"negative_prompt": "The video captures a series"}),
    "cosmos-25": CliRun(  # Predict2.5 takes no frame rate: the file's is the asked one, none conditions the model
        "cosmos-25", ("--num-frames", "9", "--height", "32", "--width", "48", "--fps", "24"),
        ("takes no frame rate", "cosmos_guardrail is not installed"),
        (9, 48, 32, 24),
        {"prompt": PROMPT, "pipeline": cosmos.PREDICT25, "num_latent_conditional_frames": 1, "guardrail": None,
         "scheduler": "UniPCMultistepScheduler"},
        absent=("fps_conditioning",)),
    "helios": CliRun(  # frames snap to whole chunks of 33
        "helios", ("--num-frames", "40", "--height", "30", "--width", "40"),
        ("num_frames 40 does not fit", "snapped to 33", "snapped to 48x32", "default negative prompt"),
        (33, 48, 32, 24),
        {"prompt": PROMPT, "chunks": 1, "chunk_frames": 33, "pyramid": False, "denoising_steps": 2,
         "scheduler": "HeliosScheduler", "max_sequence_length": 512},
        {"negative_prompt": "Bright tones, overexposed"}),
    "framepack": CliRun(  # frames snap to whole sections (36n+1); true_cfg_scale 1: no negative prompt
        "framepack", ("--negative-prompt", "blurry", "--num-frames", "45", "--height", "30", "--width", "40"),
        ("snapped to 37", "snapped to 48x32", "does not use a negative prompt"),
        (37, 48, 32, 30),
        {"prompt": PROMPT, "scheduler": "FlowMatchEulerDiscreteScheduler", "sampling_type": "inverted_anti_drifting",
         "latent_window_size": 9, "sections": 1, "pipeline_num_frames": 33, "distilled_guidance_scale": 10.0,
         "true_cfg_scale": 1.0, "negative_prompt_used": False, "first_last_frame": False,
         "max_sequence_length": 256}),
    "skyreels": CliRun(
        "skyreels", ("--num-frames", "7", "--height", "30", "--width", "40"),
        ("snapped to 9", "snapped to 48x32", "default negative prompt"),
        (9, 48, 32, 24),
        {"prompt": PROMPT, "flow_shift": 5.0, "scheduler": "UniPCMultistepScheduler", "diffusion_forcing": False,
         "first_last_frame": False},
        {"negative_prompt": "Bright tones, overexposed"}),
    "skyreels-df": CliRun(  # a diffusion-forcing model records its settings
        "skyreels-df", ("--num-frames", "9", "--height", "32", "--width", "32", "-q"),
        (),
        (9, 32, 32, 24),
        {"prompt": PROMPT, "diffusion_forcing": True, "base_num_frames": 97, "overlap_history": 17,
         "addnoise_condition": 20, "ar_step": 0, "causal_block_size": 1, "windows": 1, "fps_conditioning": 24,
         "denoising_passes": 2},
        {"negative_prompt": "色调艳丽"}),
    "hunyuan15": CliRun(  # 7 -> 9 frames (4n+1); 40x30 -> 40x32 (a multiple of 4) -> 32x28, the bucket nearest 5:4
        "hunyuan15", ("--negative-prompt", "blurry", "--num-frames", "7", "--height", "30", "--width", "40"),
        ("snapped to 9", "snapped to 40x32", "snapped to 32x28"),
        (9, 32, 28, 24),
        {"prompt": PROMPT, "negative_prompt": "blurry", "negative_prompt_used": True,
         "guidance_scale": tiny_hunyuan15.GUIDANCE_SCALE, "shift": 5.0, "target_size": tiny_hunyuan15.TARGET_SIZE,
         "scheduler": "FlowMatchEulerDiscreteScheduler", "num_inference_steps": 2}),
    "kandinsky5": CliRun(  # at least 17 frames (fewer than 5 latent frames come out NaN)
        "kandinsky5", ("--num-frames", "10", "--height", "30", "--width", "40"),
        ("snapped to 17", "default negative prompt"),
        (17, 48, 32, 24),
        {"prompt": PROMPT, "negative_prompt": kandinsky5.NEGATIVE, "negative_prompt_used": True, "num_frames": 17,
         "guidance_scale": 5.0, "max_sequence_length": 512, "scheduler": "FlowMatchEulerDiscreteScheduler",
         "shift": tiny_kandinsky5.SHIFT, "rope_scale": [1.0, 3.16, 3.16], "resolution_mode": "HD"}),
    "motif_video": CliRun(
        "motif_video", ("--num-frames", "7", "--height", "30", "--width", "40"),
        ("snapped to 9", "snapped to 48x32", "default negative prompt"),
        (9, 48, 32, 24),
        {"prompt": PROMPT, "negative_prompt_used": True, "guider": "AdaptiveProjectedGuidance",
         "guidance_scale": tiny_motif_video.GUIDANCE_SCALE, "shift": tiny_motif_video.SHIFT,
         "scheduler": "FlowMatchEulerDiscreteScheduler"},
        {"negative_prompt": "worst quality"}),
    "sana_video": CliRun(  # sides a multiple of 32; the motion score appended to the prompt the pipeline gets
        "sana_video", ("--num-frames", "8", "--height", "30", "--width", "60"),
        ("snapped to 9", "motion score: 30."),
        (9, 64, 32, 16),
        {"prompt": PROMPT, "pipeline_prompt": PROMPT + " motion score: 30.", "negative_prompt": sana_video.NEGATIVE,
         "negative_prompt_used": True, "motion_score": 30, "scheduler": "FlowMatchEulerDiscreteScheduler",
         "shift": tiny_sana_video.SHIFT, "max_sequence_length": 300, "use_resolution_binning": False,
         "guidance_scale": 6.0}),
    "wan_vace": CliRun(
        "wan_vace", ("--num-frames", "7", "--height", "30", "--width", "40"),
        ("snapped to 9", "snapped to 48x32", "default negative prompt"),
        (9, 48, 32, 16),
        {"prompt": PROMPT, "flow_shift": 16.0, "scheduler": "UniPCMultistepScheduler", "vace_mode": "first_frame",
         "kept_frames": [0], "conditioning_scale": 1.0, "first_last_frame": False, "num_frames": 9, "height": 32,
         "width": 48, "num_inference_steps": 2},
        {"negative_prompt": "Bright tones, overexposed"}),
}


@pytest.mark.parametrize("name", CLI_RUNS)
def test_cli_snaps_frames_and_size_and_writes_the_video_with_a_sidecar(name, tiny_folder, square_image, tmp_path,
                                                                      capsys):
    run = CLI_RUNS[name]
    out = tmp_path / f"{name}.mp4"
    assert main(["generate", str(square_image), "-m", tiny_folder(run.folder), "-p", PROMPT, *run.flags,
                 "--num-inference-steps", "2", "--seed", "0", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    for notice in run.notices:
        assert notice in err
    info = probe_video(out)
    assert (info["num_frames"], info["width"], info["height"], info["fps"]) == run.video
    meta = sidecar(out)
    assert {key: meta[key] for key in run.recorded} == run.recorded
    for key, value in run.recorded.items():
        if value is None or isinstance(value, bool):
            assert meta[key] is value, key
    for key, start in run.prefixes.items():
        assert meta[key].startswith(start), key
    for key in run.absent:
        assert key not in meta


# -- refusals before any weights load -------------------------------------------------------------


@dataclass(frozen=True)
class Refusals:
    """Requests a tiny folder refuses before any weights load, through the Python API and the CLI."""

    folder: str  # the tiny_folder name
    fast: dict  # the family's quick request
    requests: tuple[tuple[dict, str], ...]  # (fields changed from ``fast``, the refusal's message)
    cli: tuple[str, ...] | None = None  # `i2v generate IMAGE -m FOLDER *cli -o OUT` exits 2, writing nothing
    cli_message: str = ""  # on its stderr


LAST = {"last_image": IMAGE}
TOO_LONG = ({"num_frames": 2000}, "num_frames 2000 is more than i2v runs")
FAST = {  # each family's quick request (its own file's FAST)
    "cosmos": dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32),
    "helios": dict(num_inference_steps=2, seed=0, num_frames=33, height=32, width=32),
    "framepack": dict(num_inference_steps=2, seed=0, num_frames=37, height=32, width=32),
    "skyreels": dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32),
    "hunyuan15": dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32),
    "kandinsky5": dict(num_inference_steps=2, seed=0, num_frames=17, height=32, width=32),
    "motif_video": dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32),
    "sana_video": dict(num_inference_steps=2, seed=0, num_frames=9, height=32, width=32),
    "wan_vace": dict(num_inference_steps=2, seed=0, num_frames=5, height=32, width=32),
}
LAST_IMAGE_CLI = ("--last-image", IMAGE)

REFUSALS = {
    "cosmos": Refusals("cosmos", FAST["cosmos"], (
        (LAST, "cannot take a last image"),
        ({"num_frames": 17}, "num_frames 17 is more than this model can generate"),
        ({"width": 272}, "positional tables cover 256 pixels")),
        ("--num-frames", "17"), "more than this model can generate"),
    "helios": Refusals("helios", FAST["helios"], ((LAST, "cannot take a last image"), TOO_LONG),
                       LAST_IMAGE_CLI, "cannot take a last image"),
    "helios-mid": Refusals("helios-mid", FAST["helios"], (  # CFG-Zero*: one patch at the smallest stage
        ({"height": 64, "width": 64}, "CFG-Zero"),)),
    "framepack": Refusals("framepack", FAST["framepack"], (({"num_frames": 2000}, "more than i2v runs"),)),
    "framepack-f1": Refusals("framepack-f1", FAST["framepack"], ((LAST, "samples forward"),)),
    "skyreels": Refusals("skyreels", FAST["skyreels"], ((LAST, "cannot condition on a last image"),),
                         LAST_IMAGE_CLI, "skyreels-v2-df"),  # the hint: the DF models take one
    "skyreels-df": Refusals("skyreels-df", FAST["skyreels"], (
        ({**LAST, "num_frames": 101}, "within one diffusion-forcing window"),)),
    "hunyuan15": Refusals("hunyuan15", FAST["hunyuan15"], ((LAST, "cannot take a last image"), TOO_LONG),
                          LAST_IMAGE_CLI, "cannot take a last image"),
    "kandinsky5": Refusals("kandinsky5", FAST["kandinsky5"], ((LAST, "cannot take a last image"), TOO_LONG),
                           LAST_IMAGE_CLI, "cannot take a last image"),
    "motif_video": Refusals("motif_video", FAST["motif_video"], ((LAST, "cannot take a last image"), TOO_LONG),
                            LAST_IMAGE_CLI, "cannot take a last image"),
    "sana_video": Refusals("sana_video", FAST["sana_video"], ((LAST, "cannot take a last image"), TOO_LONG),
                           LAST_IMAGE_CLI, "cannot take a last image"),
    "wan_vace": Refusals("wan_vace", FAST["wan_vace"], (TOO_LONG, ({"num_frames": 1}, "num_frames must be >= 2")),
                         ("--num-frames", "2000"), "num_frames 2000"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_impossible_requests_are_refused_before_loading(name, tiny_folder, square_image, tmp_path, capsys):
    case = REFUSALS[name]
    folder = tiny_folder(case.folder)
    gen = ImageToVideoGenerator(folder, device="cpu")
    for fields, message in case.requests:
        with pytest.raises(InvalidRequestError, match=message):
            gen.run(GenerationRequest(image=square_image, **with_image({**case.fast, **fields}, square_image)))
    assert gen.backend._pipe is None
    if case.cli is not None:
        out = tmp_path / "refused.mp4"
        assert main(["generate", str(square_image), "-m", folder, *with_image(case.cli, square_image),
                     "-o", str(out)]) == 2
        assert case.cli_message in capsys.readouterr().err and not out.exists()


NO_ENABLE_CACHE = "does not run on .*no enable_cache"
SEPARATE_GUIDANCE = "runs its guidance passes separately"
CACHES_REFUSED = [  # (tiny folder, cache, the refusal's message)
    *[("cosmos", cache, f"cache '{cache}' {NO_ENABLE_CACHE}")
      for cache in ("pab", "fbcache", "taylorseer", "magcache", "fastercache")],
    ("helios", "fastercache", SEPARATE_GUIDANCE),
    *[("helios-distilled", cache, "pyramid sampling") for cache in ("fbcache", "taylorseer", "magcache")],
    *[("framepack", cache, "does not run on framepack") for cache in ("fbcache", "taylorseer")],  # no cache context
    ("framepack", "fastercache", SEPARATE_GUIDANCE),
    ("skyreels", "fastercache", SEPARATE_GUIDANCE),
    ("skyreels-df", "fbcache", "diffusion forcing"),
    ("hunyuan15", "fbcache", "'fbcache' does not run on hunyuan15"),  # no block metadata
    ("hunyuan15", "fastercache", SEPARATE_GUIDANCE),
    # each tried on this model: none runs (kandinsky5.py's NO_CACHE says why)
    *[("kandinsky5", cache, f"cache '{cache}' does not run on") for cache in kandinsky5.NO_CACHE],
    *[("ltx2", cache, "does not run") for cache in ("pab", "fbcache", "magcache", "fastercache", "deepcache")],
    ("motif_video", "fbcache", "'fbcache' does not run on motif_video"),  # the DDT decoder blocks
    ("motif_video", "fastercache", SEPARATE_GUIDANCE),
    # none runs: SanaVideoTransformer3DModel has no enable_cache (each failed on this model, at load)
    *[("sana_video", cache, f"cache '{cache}' {NO_ENABLE_CACHE}")
      for cache in ("pab", "fbcache", "taylorseer", "magcache", "fastercache")],
    ("wan_vace", "fbcache", "'fbcache' does not run on wan_vace"),
    ("wan_vace", "magcache", "'magcache' does not run on wan_vace"),
    ("wan_vace", "fastercache", SEPARATE_GUIDANCE),
]


@pytest.mark.parametrize("folder, cache, message", CACHES_REFUSED,
                         ids=[f"{folder}-{cache}" for folder, cache, _ in CACHES_REFUSED])
def test_caches_that_do_not_run_are_refused_before_loading(tiny_folder, folder, cache, message):
    with pytest.raises(InvalidRequestError, match=message):
        ImageToVideoGenerator(tiny_folder(folder), device="cpu", cache=cache)


LORAS_REFUSED = {  # tiny folder: the refusal's message
    "cosmos": "has no LoRA loader",
    "hunyuan15": "does not support LoRA adapters",
    "motif_video": "does not support LoRA adapters",
}


@pytest.mark.parametrize("folder", LORAS_REFUSED)
def test_a_lora_is_refused_before_loading(tiny_folder, folder, tmp_path):
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"not read")
    with pytest.raises(InvalidRequestError, match=LORAS_REFUSED[folder]):
        ImageToVideoGenerator(tiny_folder(folder), device="cpu", loras=[str(lora)])


DRY_RUNS = {  # tiny folder: (flags, what the printed plan shows)
    "helios-mid": (("--num-frames", "65", "--height", "64", "--width", "128"), ("memory plan", "65 frames 128x64")),
    "framepack": (("--num-frames", "109", "--height", "32", "--width", "32"), ("memory plan",)),
    "skyreels-df": (("--num-frames", "177", "--height", "32", "--width", "32"), ("memory plan",)),
    "motif_video": (("--num-frames", "17", "--height", "32", "--width", "32"), ("memory plan", "17 frames 32x32")),
    "wan_vace": (("--last-image", IMAGE, "--num-frames", "9", "--height", "32", "--width", "32"), ("memory plan",)),
}


@pytest.mark.parametrize("folder", DRY_RUNS)
def test_dry_run_plans_the_folder_without_loading(tiny_folder, folder, square_image, tmp_path, capsys):
    flags, shown = DRY_RUNS[folder]
    assert main(["generate", str(square_image), "-m", tiny_folder(folder), *with_image(flags, square_image),
                 "--dry-run", "-o", str(tmp_path / "o.mp4")]) == 0
    out = capsys.readouterr().out
    for text in shown:
        assert text in out
    assert not (tmp_path / "o.mp4").exists()
