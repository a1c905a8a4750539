"""Stable Video Diffusion through i2v vs stock diffusers, side by side in one run.

    .venv/bin/python benchmarks/bench_svd.py [--steps 25] [--sizes 64 128] [--frames 14] [--memory-frames 25]

The model is a small seeded SVD (the real architecture, ~10M-parameter U-Net, 8x VAE), saved
as safetensors and loaded by both sides from the same folder. Same image, seed, steps, size and
frames on both sides.

* speed: stock ``StableVideoDiffusionPipeline.__call__`` (fp32) vs ``i2v generate --speed``, warm
  (after a 2-step warm-up call), both in one fresh process per size, timed in turn, the best of 5
  each; output PSNR of i2v against stock; MFU of each (the FLOPs a generation executes over its
  time) against this machine's measured peak matmul rate for the dtype it runs in.
* memory: peak RSS of a generation (above the process before the weights were loaded), stock vs
  ``i2v generate --memory``, at ``--memory-frames`` frames, each in a fresh process; the median of
  ``--memory-runs`` (glibc's heap makes single peaks vary by ~20%).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
from measure import count_flops, matmul_peak_flops, mib, psnr, reset_peak_rss, rss_bytes, run_child

SEED = 0
REPEATS = 5


def build_small_svd(num_frames: int = 14):
    """SVD's architecture at a laptop size: U-Net (64, 128, 128) with 32-wide attention heads, an 8x
    temporal-decoder VAE, a 2-layer CLIP vision tower. Seeded; random weights."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(SEED)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(64, 128, 128), layers_per_block=1, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=64, num_attention_heads=(2, 4, 4), projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32, num_frames=num_frames)
    # SVD's own scheduler settings (stabilityai/stable-video-diffusion-img2vid-xt scheduler_config.json)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002, steps_offset=1,
        timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True)
    torch.manual_seed(SEED)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 32, 64, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D"] * 4, latent_channels=4)
    torch.manual_seed(SEED)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=64, projection_dim=64, num_hidden_layers=2, num_attention_heads=4, image_size=224,
        intermediate_size=128, patch_size=32))
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))


def test_image(size: int):
    from PIL import Image

    rng = np.random.default_rng(SEED)
    arr = np.full((size, size, 3), 100, np.uint8)
    arr[size // 4: size // 2, size // 4: size // 2] = (220, 40, 40)
    arr = np.clip(arr + rng.integers(0, 20, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


# ---- children: one measurement each, in a fresh process --------------------------------------

def load_side(side: str, mode: str, folder: str, size: int, frames: int):
    """(generate(n_steps) -> frames, dtype name) for stock diffusers, or for i2v with profile ``mode``."""
    import torch

    image = test_image(size)
    if side == "stock":
        from diffusers import StableVideoDiffusionPipeline

        pipe = StableVideoDiffusionPipeline.from_pretrained(folder, use_safetensors=True)
        pipe.set_progress_bar_config(disable=True)

        def generate(n_steps: int):
            return pipe(image=image, height=size, width=size, num_frames=frames, num_inference_steps=n_steps,
                        generator=torch.Generator().manual_seed(SEED), output_type="np").frames[0]
        return generate, "fp32"
    from i2v import GenerationRequest, ImageToVideoGenerator

    gen = ImageToVideoGenerator(folder, device="cpu", profile=mode.split("+")[0])
    # speed and memory+full: decode all frames at once like stock; memory: the profile's 2-frame chunks
    chunk = None if mode == "memory" else frames

    def generate(n_steps: int):
        request = GenerationRequest(image=image, num_frames=frames, height=size, width=size,
                                    num_inference_steps=n_steps, seed=SEED, decode_chunk_size=chunk)
        return gen.run(request).frames
    return generate, gen.backend.dtype_name


def as_uint8(frames) -> np.ndarray:
    frames = np.asarray(frames)
    return frames if frames.dtype == np.uint8 else (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def child_speed(folder: str, size: int, frames: int, steps: int, out: str) -> dict:
    """Both sides in one process, timed in turn (stock, i2v, stock, i2v, ...) so that a slow spell on
    this shared machine hits both; the best of ``REPEATS`` each. FLOPs are the ones a generation
    executes (a cached step does less work), counted in a separate untimed run."""
    sides = {side: load_side(side, "speed", folder, size, frames) for side in ("stock", "i2v")}
    for generate, _ in sides.values():
        generate(2)  # warm-up: first-call allocations, oneDNN primitive creation
    seconds = {side: float("inf") for side in sides}
    outputs = {}
    for _ in range(REPEATS):
        for side, (generate, _) in sides.items():
            t0 = time.perf_counter()
            outputs[side] = generate(steps)
            seconds[side] = min(seconds[side], time.perf_counter() - t0)
    result = {}
    for side, (generate, dtype) in sides.items():
        np.save(f"{out}.{side}.npy", as_uint8(outputs[side]))
        result[side] = {"seconds": seconds[side], "dtype": dtype, "flops": count_flops(lambda: generate(steps))}
    return result


def child_memory(side: str, mode: str, folder: str, size: int, frames: int, steps: int, out: str) -> dict:
    # both sides' code is imported before the baseline: only weights and the generation count
    from diffusers import StableVideoDiffusionPipeline  # noqa: F401

    import i2v.api
    import i2v.backends.diffusers.svd  # noqa: F401

    baseline = rss_bytes()
    generate, dtype = load_side(side, mode, folder, size, frames)
    reset_peak_rss()
    frames_out = generate(steps)
    peak = rss_bytes("VmHWM") - baseline
    np.save(out, as_uint8(frames_out))
    return {"peak_bytes": peak, "dtype": dtype}


# ---- parent ----------------------------------------------------------------------------------

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--frames", type=int, default=14)
    p.add_argument("--memory-frames", type=int, default=25)
    p.add_argument("--memory-size", type=int, default=128)
    p.add_argument("--memory-runs", type=int, default=3)
    args = p.parse_args()
    script = Path(__file__).resolve()
    peaks = {d: matmul_peak_flops(d) for d in ("fp32", "bf16")}
    print(f"measured peak matmul rate: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "small-svd"
        build_small_svd(args.frames).save_pretrained(folder)
        print(f"\nspeed: {args.frames} frames, {args.steps} steps, warm, both sides timed in turn in one process, "
              f"best of {REPEATS} ({folder.name}, seed {SEED})")
        print(f"{'size':>5} {'stock s':>8} {'i2v s':>7} {'speed-up':>9} {'PSNR dB':>8} {'MFU stock':>10} {'MFU i2v':>8}  "
              f"i2v dtype; GFLOP executed, stock / i2v")
        for size in args.sizes:
            out = str(Path(tmp) / f"speed-{size}")
            r = run_child(script, ["speed", str(folder), str(size), str(args.frames), str(args.steps), out])
            mfu = {s: r[s]["flops"] / r[s]["seconds"] / peaks[r[s]["dtype"]] for s in r}
            frames = {s: np.load(f"{out}.{s}.npy") for s in r}
            print(f"{size:>5} {r['stock']['seconds']:>8.2f} {r['i2v']['seconds']:>7.2f} "
                  f"{r['stock']['seconds'] / r['i2v']['seconds']:>8.2f}x {psnr(frames['i2v'], frames['stock']):>8.1f} "
                  f"{mfu['stock']:>10.1%} {mfu['i2v']:>8.1%}  {r['i2v']['dtype']}; "
                  f"{r['stock']['flops'] / 1e9:.0f} / {r['i2v']['flops'] / 1e9:.0f}")
        size, frames = args.memory_size, args.memory_frames
        print(f"\nmemory: {frames} frames at {size}x{size}, {args.steps} steps (peak RSS above the pre-load process; "
              f"median of {args.memory_runs} fresh processes per row, run in turn; min-max in brackets)")
        configs = (("stock", "memory"), ("i2v", "memory"), ("i2v", "memory+full"))
        peaks_by = {c: [] for c in configs}
        outputs, dtypes = {}, {}
        for _ in range(args.memory_runs):  # in turn, so that a noisy spell does not fall on one row only
            for side, mode in configs:
                out = str(Path(tmp) / f"{side}-{mode}.npy")
                r = run_child(script, ["memory", side, mode, str(folder), str(size), str(frames), str(args.steps), out])
                peaks_by[(side, mode)].append(r["peak_bytes"])
                outputs[(side, mode)], dtypes[(side, mode)] = np.load(out), r["dtype"]
        med = {c: statistics.median(v) for c, v in peaks_by.items()}
        stock = med[configs[0]]

        def spread(c) -> str:
            return f"[{mib(min(peaks_by[c]))}-{mib(max(peaks_by[c]))}]"
        print(f"  {'stock diffusers (fp32)':<44} {mib(stock):>9} {spread(configs[0])}")
        for c, label in ((configs[1], f"i2v --memory ({dtypes[configs[1]]}, 2-frame decode chunks)"),
                         (configs[2], f"i2v --memory --decode-chunk-size {frames} ({dtypes[configs[2]]})")):
            print(f"  {label:<44} {mib(med[c]):>9} {spread(c)}  ratio {med[c] / stock:.2f}x (target <= 0.6x), "
                  f"PSNR vs stock {psnr(outputs[c], outputs[configs[0]]):.1f} dB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "speed":
            folder, size, frames, steps, out = sys.argv[3:8]
            print(json.dumps(child_speed(folder, int(size), int(frames), int(steps), out)))
        else:
            side, mode, folder, size, frames, steps, out = sys.argv[3:10]
            print(json.dumps(child_memory(side, mode, folder, int(size), int(frames), int(steps), out)))
    else:
        main()
