"""Speed/memory switches and profiles (i2v.acceleration) on tiny seeded diffusers folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i2v import GenerationRequest, ImageToVideoGenerator
from i2v.acceleration import (
    Acceleration,
    StepClock,
    apply_acceleration,
    check_acceleration,
    cpu_has_fast_bf16,
    profile_acceleration,
)
from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.registry import backend_class

from .tiny_components import build_wan, psnr, sidecar


def family(name: str):
    return backend_class(name).family


SVD_FAST = dict(num_inference_steps=6, seed=0, height=16, width=16, num_frames=3)
WAN_FAST = dict(num_inference_steps=4, seed=0, height=16, width=16, num_frames=5, prompt="a red ball moves left")


@pytest.fixture(scope="module")
def svd_plain(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu")
    return gen.run(GenerationRequest(image=square_image, **SVD_FAST)).frames


def test_unknown_names_are_refused_before_loading():
    with pytest.raises(InvalidRequestError, match="unknown cache 'nope'"):
        check_acceleration(Acceleration(cache="nope"))
    from i2v.registry import backend_class

    with pytest.raises(InvalidRequestError, match="does not run on svd models"):  # Wan's, calibrated per model
        check_acceleration(Acceleration(cache="magcache"), backend_class("svd").family)
    with pytest.raises(InvalidRequestError, match="unknown quantization"):
        check_acceleration(Acceleration(quantize="int3"))
    with pytest.raises(InvalidRequestError, match="cannot be combined"):
        check_acceleration(Acceleration(cache="pab", cfg_cache=True))
    check_acceleration(Acceleration(cache="deepcache", cfg_cache=3))  # these two combine
    with pytest.raises(InvalidRequestError, match="cache_interval applies to the caches deepcache, taylorseer"):
        check_acceleration(Acceleration(cache="pab", cache_interval=2))
    with pytest.raises(InvalidRequestError, match="integer >= 2"):
        check_acceleration(Acceleration(cache="deepcache", cache_interval=1))
    with pytest.raises(InvalidRequestError, match="unknown profile"):
        profile_acceleration("fastest", family("svd"), "cpu", Acceleration())


@pytest.mark.parametrize("name,package", [("torchao-int8", "torchao"), ("bnb-4bit", "bitsandbytes")])
def test_quantization_without_its_package_names_the_package(name, package):
    import importlib.util

    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    with pytest.raises(InvalidRequestError, match=f"pip install {package}"):
        check_acceleration(Acceleration(quantize=name))


def test_profiles_fill_only_unset_switches():
    acc, opts = profile_acceleration("speed", family("svd"), "cpu", Acceleration())
    assert acc.cache == "deepcache" and acc.cfg_cache == 3 and not acc.compile  # compiling does not pay on CPU
    assert opts.get("dtype") in (None, "bf16") and "offload" not in opts
    acc, _ = profile_acceleration("speed", family("svd"), "cpu", Acceleration(cache="pab"))
    assert acc.cache == "pab" and acc.cfg_cache == 0  # PAB and the CFG cache cannot be combined
    check_acceleration(acc, family("svd"))
    acc, opts = profile_acceleration("speed", family("wan"), "cuda", Acceleration(cache="taylorseer"))
    assert acc.cache == "taylorseer" and acc.compile  # the user's cache wins; compile on GPUs
    acc, opts = profile_acceleration("memory", family("svd"), "cuda", Acceleration())
    assert acc.fp8_storage and acc.forward_chunk and acc.decode_chunk_size == 2
    assert opts == {"vae_tiling": True, "vae_slicing": True, "offload": "group"}
    acc, opts = profile_acceleration("memory", family("svd"), "cpu", Acceleration())
    assert not acc.fp8_storage and "offload" not in opts  # offload means nothing when weights live in RAM
    assert opts.get("dtype") == ("bf16" if cpu_has_fast_bf16() else None)  # bf16 halves weights and activations


def test_pab_on_the_svd_unet_reuses_attention_and_stays_close(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cache="pab")
    unet = gen.backend.pipeline.unet
    calls = {"n": 0}

    def count(module, args, output):
        calls["n"] += 1

    attn = [m for n, m in unet.named_modules() if n.endswith(("attn1", "attn2"))]
    processors = [m.processor for m in attn]
    for m in attn:  # count real attention computations (the processor runs only when not re-used)
        m.processor = _Counting(m.processor, calls)
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    for m, p in zip(attn, processors):
        m.processor = p
    assert result.settings["acceleration"] == {"cache": "pab"}
    assert any("cache pab on the unet" in n for n in result.settings["acceleration_notes"])
    assert calls["n"] < len(attn) * SVD_FAST["num_inference_steps"]  # some steps re-used a broadcast output
    assert result.frames.shape == svd_plain.shape
    assert not np.array_equal(result.frames, svd_plain) and psnr(result.frames, svd_plain) > 25


class _Counting:
    def __init__(self, processor, calls):
        self.processor, self.calls = processor, calls

    def __call__(self, *args, **kwargs):
        self.calls["n"] += 1
        return self.processor(*args, **kwargs)


def test_caches_a_family_cannot_run_are_refused_before_loading(tiny_folder):
    with pytest.raises(InvalidRequestError, match="'fbcache' does not run on svd models; use one of deepcache, pab"):
        ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cache="fbcache")
    with pytest.raises(InvalidRequestError, match="'taylorseer' does not run on hunyuan"):
        ImageToVideoGenerator(tiny_folder("hunyuan"), device="cpu", cache="taylorseer")


def test_memory_profile_on_cpu_chunks_and_tiles(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", profile="memory")
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    s = result.settings
    assert s["profile"] == "memory" and s["decode_chunk_size"] == 2  # (SVD's temporal VAE cannot tile or slice)
    assert s["acceleration"]["forward_chunk"] and any("chunking on" in n for n in s["acceleration_notes"])
    # chunked feed-forward is exact; decoding 2 frames at a time is a (valid) different temporal decode
    assert result.frames.shape == svd_plain.shape and psnr(result.frames, svd_plain) > 20


def test_fp8_storage_keeps_weights_in_float8_and_output_close(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", fp8_storage=True)
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    dtypes = {p.dtype for n, p in gen.backend.pipeline.unet.named_parameters() if n.endswith("weight") and p.dim() > 1}
    assert torch.float8_e4m3fn in dtypes
    assert np.isfinite(result.frames).all() and psnr(result.frames, svd_plain) > 20


@pytest.mark.parametrize("cache", ["fbcache", "taylorseer", "pab"])
def test_transformer_caches_run_on_wan(tiny_folder, square_image, cache):
    plain = ImageToVideoGenerator(tiny_folder("wan"), device="cpu").run(GenerationRequest(image=square_image, **WAN_FAST))
    result = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", cache=cache).run(
        GenerationRequest(image=square_image, **WAN_FAST))
    assert result.frames.shape == plain.frames.shape and result.settings["acceleration"] == {"cache": cache}
    assert psnr(result.frames, plain.frames) > 15


def test_taylorseer_hooks_every_blocks_attention():
    """Wan's and LTX's blocks name their attention attn1/attn2: the cache must hook them (diffusers'
    default patterns, fully matched, found none and the cache did nothing)."""
    from diffusers.hooks import HookRegistry

    pipe = build_wan()
    apply_acceleration(pipe, Acceleration(cache="taylorseer"), "cpu")
    hooked = sorted(name for name, module in pipe.transformer.named_modules()
                    if isinstance(getattr(module, "_diffusers_hook", None), HookRegistry)
                    and module._diffusers_hook.hooks)
    assert hooked == [f"blocks.{b}.attn{a}" for b in range(2) for a in (1, 2)]


def test_compile_wraps_the_repeated_blocks_without_running():
    pipe = build_wan()
    notes = apply_acceleration(pipe, Acceleration(compile=True), "cpu")
    assert "repeated" in notes[0]
    block = pipe.transformer.blocks[0]
    assert getattr(block, "_compiled_call_impl", None) is not None


def test_step_clock_reads_progress_through_the_schedule():
    pipe = build_wan()
    clock = StepClock(pipe, pipe.transformer)
    pipe.scheduler.set_timesteps(5)
    assert clock() == 1000.0  # before the first call
    clock.t = float(pipe.scheduler.timesteps[0])
    assert clock() == 1000.0
    clock.t = float(pipe.scheduler.timesteps[-1])
    assert clock() == 0.0


def test_cli_speed_flag_reaches_the_sidecar(tiny_folder, square_image, tmp_path):
    out = tmp_path / "svd.mp4"
    code = main(["generate", str(square_image), "-m", tiny_folder("svd"), "--speed", "--num-frames", "3",
                 "--height", "16", "--width", "16", "--num-inference-steps", "4", "--seed", "0", "-q", "-o", str(out)])
    assert code == 0
    meta = sidecar(out)
    assert meta["profile"] == "speed" and meta["acceleration"] == {"cache": "deepcache", "cfg_cache": 3}
    with pytest.raises(SystemExit):  # --speed and --memory exclude each other
        main(["generate", str(square_image), "--speed", "--memory", "-o", str(out)])


def test_cli_cache_interval_reaches_the_sidecar(tiny_folder, square_image, tmp_path):
    out = tmp_path / "svd.webm"
    code = main(["generate", str(square_image), "-m", tiny_folder("svd"), "--cache", "deepcache", "--cache-interval",
                 "4", "--num-frames", "3", "--height", "16", "--width", "16", "--num-inference-steps", "4", "-q",
                 "-o", str(out)])
    assert code == 0 and out.stat().st_size > 0
    meta = sidecar(out)
    assert meta["acceleration"] == {"cache": "deepcache", "cache_interval": 4}
    assert any("a full step every 4" in note for note in meta["acceleration_notes"])


def test_cfg_cache_halves_the_batch_on_skip_steps_and_stays_close(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cfg_cache=True)
    batches: list[int] = []
    unet = gen.backend.pipeline.unet
    unet.conv_in.register_forward_hook(lambda m, a, o: batches.append(a[0].shape[0]))
    first = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    frames = SVD_FAST["num_frames"]
    # 6 steps on the 1000 -> 0 clock: 1000, 800, 600, 400, 200, 0; odd calls inside (100, 900) skip
    assert batches == [2 * frames, frames, 2 * frames, frames, 2 * frames, 2 * frames]
    assert not np.array_equal(first.frames, svd_plain) and psnr(first.frames, svd_plain) > 25
    batches.clear()
    again = gen.run(GenerationRequest(image=square_image, **SVD_FAST))  # state is reset between generations
    assert np.array_equal(again.frames, first.frames) and len(batches) == 6


def test_cfg_cache_is_refused_on_transformers(tiny_folder, square_image):
    gen = ImageToVideoGenerator(tiny_folder("wan"), device="cpu", cfg_cache=True)
    with pytest.raises(InvalidRequestError, match="fastercache"):
        gen.run(GenerationRequest(image=square_image, **WAN_FAST))


def test_torchao_int8_quantizes_the_denoiser_weights(tiny_folder, square_image, svd_plain):
    pytest.importorskip("torchao")
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", quantize="torchao-int8")
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    unet = gen.backend.pipeline.unet
    weight = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight
    assert "Int8" in type(weight.data).__name__  # torchao's int8 weight-only tensor, not a float one
    assert result.settings["acceleration"] == {"quantize": "torchao-int8"}
    assert psnr(result.frames, svd_plain) > 25 and not np.array_equal(result.frames, svd_plain)


def test_fastercache_runs_on_cogvideox_and_is_refused_where_cfg_runs_separately(tiny_folder, square_image):
    request = GenerationRequest(image=square_image, num_inference_steps=6, seed=0, num_frames=9, height=16, width=16,
                                prompt="a red ball moves left")
    plain = ImageToVideoGenerator(tiny_folder("cogvideox"), device="cpu").run(request)
    cached = ImageToVideoGenerator(tiny_folder("cogvideox"), device="cpu", cache="fastercache").run(request)
    assert cached.frames.shape == plain.frames.shape and cached.settings["acceleration"] == {"cache": "fastercache"}
    assert psnr(cached.frames, plain.frames) > 15
    with pytest.raises(InvalidRequestError, match="runs its guidance passes separately"):
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", cache="fastercache")


@pytest.mark.parametrize("family,frames,size", [("animatediff", 4, 32), ("cogvideox", 9, 16), ("ltx", 9, 32),
                                               ("hunyuan", 5, 16), ("wan", 5, 32)])
def test_speed_profile_runs_on_every_family(tiny_folder, square_image, family, frames, size):
    gen = ImageToVideoGenerator(tiny_folder(family), device="cpu", profile="speed")
    result = gen.run(GenerationRequest(image=square_image, num_inference_steps=3, seed=0, num_frames=frames,
                                       height=size, width=size, prompt="a red ball moves left"))
    acc = result.settings["acceleration"]
    assert acc.get("cache") == backend_class(family).family.speed_cache and bool(acc.get("cfg_cache")) == (family == "animatediff")
    assert np.isfinite(result.frames.astype(float)).all() and len(result.frames) == frames


def test_cfg_cache_interval_skips_more_steps(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cfg_cache=3)
    batches: list[int] = []
    gen.backend.pipeline.unet.conv_in.register_forward_hook(lambda m, a, o: batches.append(a[0].shape[0]))
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    f = SVD_FAST["num_frames"]
    # clock 1000, 800, 600, 400, 200, 0: calls 1, 2, 4 fall inside (100, 900) and are not multiples of 3
    assert batches == [2 * f, f, f, 2 * f, f, 2 * f]
    assert result.settings["acceleration"] == {"cfg_cache": 3} and psnr(result.frames, svd_plain) > 20
    with pytest.raises(InvalidRequestError, match="interval >= 2"):
        ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cfg_cache=1)


def _count_calls(module, calls: list, key: str) -> None:
    module.register_forward_hook(lambda m, a, o: calls.append(key))


def test_deep_cache_runs_only_the_shallow_branch_on_cached_steps(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cache="deepcache")
    unet = gen.backend.pipeline.unet
    calls: list[str] = []
    _count_calls(unet.conv_in, calls, "in")  # every step
    _count_calls(unet.mid_block.resnets[0], calls, "mid")  # the deep branch: full steps only
    _count_calls(unet.up_blocks[-1].resnets[0], calls, "last_up")  # the shallow branch: every step
    first = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    # clock 1000, 800, 600, 400, 200, 0: calls 1, 2, 4 are not multiples of 3 nor the first or last step
    assert calls.count("in") == calls.count("last_up") == 6 and calls.count("mid") == 3
    assert first.settings["acceleration"] == {"cache": "deepcache"}
    assert not np.array_equal(first.frames, svd_plain) and psnr(first.frames, svd_plain) > 20
    again = gen.run(GenerationRequest(image=square_image, **SVD_FAST))  # the kept feature is reset in between
    assert np.array_equal(again.frames, first.frames)


def test_deep_cache_interval_and_cfg_cache_together(tiny_folder, square_image, svd_plain):
    gen = ImageToVideoGenerator(tiny_folder("svd"), device="cpu", cache="deepcache", cache_interval=2, cfg_cache=2)
    unet = gen.backend.pipeline.unet
    batches: list[int] = []
    deep: list[int] = []
    unet.conv_in.register_forward_hook(lambda m, a, o: batches.append(a[0].shape[0]))
    unet.mid_block.resnets[0].register_forward_hook(lambda m, a, o: deep.append(a[0].shape[0]))
    result = gen.run(GenerationRequest(image=square_image, **SVD_FAST))
    f = SVD_FAST["num_frames"]
    # calls 1 and 3 skip both (call 5 is the last step): the conditional half only, on the kept feature's half
    assert batches == [2 * f, f, 2 * f, f, 2 * f, 2 * f] and deep == [2 * f] * 4
    assert result.settings["acceleration"] == {"cache": "deepcache", "cache_interval": 2, "cfg_cache": 2}
    assert psnr(result.frames, svd_plain) > 20


def test_deep_cache_feeds_the_conditional_half_of_the_kept_feature():
    from diffusers.hooks import HookRegistry

    from i2v.acceleration.deep_cache import _LastUpBlockHook, _Shared

    seen = []

    class Block(torch.nn.Module):
        def forward(self, hidden_states, temb=None):
            seen.append(hidden_states)
            return hidden_states

    block, shared = Block(), _Shared()
    HookRegistry.check_if_exists_or_initialize(block).register_hook(_LastUpBlockHook(shared), "t")
    full = torch.arange(8.0).reshape(4, 2)  # [uncond; cond], 2 rows each
    block(hidden_states=full)
    assert shared.feature is full
    shared.skip = True
    block(hidden_states=torch.zeros(2, 2))  # the CFG cache runs the conditional half
    assert torch.equal(seen[-1], full[2:])
    block(torch.zeros(4, 2))  # a full batch, positional
    assert torch.equal(seen[-1], full)


def test_deep_cache_needs_a_unet(tiny_folder):
    from i2v.acceleration.deep_cache import apply_deep_cache

    with pytest.raises(InvalidRequestError, match="'deepcache' does not run on wan models"):
        ImageToVideoGenerator(tiny_folder("wan"), device="cpu", cache="deepcache")
    with pytest.raises(InvalidRequestError, match="needs a U-Net with down, mid and up blocks"):
        apply_deep_cache(torch.nn.Linear(2, 2), lambda: 500.0)
