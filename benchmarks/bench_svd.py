"""Stable Video Diffusion through i2v vs stock diffusers, side by side in one run.

    .venv/bin/python benchmarks/bench_svd.py [--steps 25] [--sizes 64 128] [--frames 14] [--memory-frames 25]

The model is a small seeded SVD (the real architecture, ~10M-parameter U-Net, 8x VAE), saved
as safetensors and loaded by both sides from the same folder. Every measurement runs in a fresh
process. Same image, seed, steps, size and frames on both sides.

* speed: stock ``StableVideoDiffusionPipeline.__call__`` (fp32) vs ``i2v generate --speed``,
  warm (after a 2-step warm-up call; the best of 3 runs); output PSNR of i2v against stock; MFU of each against
  this machine's measured peak matmul rate for the dtype it runs in.
* memory: peak RSS of a generation (above the process before the weights were loaded), stock vs
  ``i2v generate --memory``, at ``--memory-frames`` frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
from measure import count_flops, matmul_peak_flops, mib, psnr, reset_peak_rss, rss_bytes, run_child

SEED = 0
REPEATS = 3


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


# ---- children: one configuration each, in a fresh process ------------------------------------

def child(side: str, mode: str, folder: str, size: int, frames: int, steps: int, out: str) -> dict:
    import torch

    baseline = rss_bytes()
    image = test_image(size)
    if side == "stock":
        from diffusers import StableVideoDiffusionPipeline

        pipe = StableVideoDiffusionPipeline.from_pretrained(folder, use_safetensors=True)
        pipe.set_progress_bar_config(disable=True)

        def generate(n_steps: int):
            return pipe(image=image, height=size, width=size, num_frames=frames, num_inference_steps=n_steps,
                        generator=torch.Generator().manual_seed(SEED), output_type="np").frames[0]
        dtype = "fp32"
        denoiser = pipe.unet
    else:
        from i2v import GenerationRequest, ImageToVideoGenerator

        gen = ImageToVideoGenerator(folder, device="cpu", profile=mode.split("+")[0])
        # speed and memory+full: decode all frames at once like stock; memory: the profile's 2-frame chunks
        chunk = None if mode == "memory" else frames

        def generate(n_steps: int):
            request = GenerationRequest(image=image, num_frames=frames, height=size, width=size,
                                        num_inference_steps=n_steps, seed=SEED, decode_chunk_size=chunk)
            return gen.run(request).frames
        pipe = gen.backend.pipeline
        dtype = gen.backend.dtype_name
        denoiser = pipe.unet
    if mode == "speed":
        generate(2)  # warm-up: first-call allocations, oneDNN primitive creation
        seconds = float("inf")
        for _ in range(REPEATS):  # the best of a few: this machine is shared, interference only adds time
            t0 = time.perf_counter()
            frames_out = generate(steps)
            seconds = min(seconds, time.perf_counter() - t0)
        flops = unet_flops(denoiser, frames, size, steps)
        result = {"seconds": seconds, "dtype": dtype, "flops": flops}
    else:
        reset_peak_rss()
        frames_out = generate(steps)
        result = {"peak_bytes": rss_bytes("VmHWM") - baseline}
    frames_out = np.asarray(frames_out)
    if frames_out.dtype != np.uint8:
        frames_out = (np.clip(frames_out, 0, 1) * 255).round().astype(np.uint8)
    np.save(out, frames_out)
    return result


def unet_flops(unet, frames: int, size: int, steps: int) -> int:
    """Denoiser FLOPs of a generation: one CFG-batched forward (counted) times the steps."""
    import torch

    h = size // 8
    param = next(unet.parameters())
    x = torch.zeros(2, frames, 8, h, h, dtype=param.dtype)
    ctx = torch.zeros(2, 1, unet.config.cross_attention_dim, dtype=param.dtype)
    ids = torch.zeros(2, 3, dtype=param.dtype)
    with torch.inference_mode():
        per_step = count_flops(lambda: unet(x, torch.tensor([1.0]), encoder_hidden_states=ctx, added_time_ids=ids))
    return per_step * steps


# ---- parent ----------------------------------------------------------------------------------

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--frames", type=int, default=14)
    p.add_argument("--memory-frames", type=int, default=25)
    p.add_argument("--memory-size", type=int, default=128)
    args = p.parse_args()
    script = Path(__file__).resolve()
    peaks = {d: matmul_peak_flops(d) for d in ("fp32", "bf16")}
    print(f"measured peak matmul rate: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "small-svd"
        build_small_svd(args.frames).save_pretrained(folder)
        print(f"\nspeed: {args.frames} frames, {args.steps} steps, warm ({folder.name}, seed {SEED})")
        print(f"{'size':>5} {'stock s':>8} {'i2v s':>7} {'speed-up':>9} {'PSNR dB':>8} {'MFU stock':>10} {'MFU i2v':>8}  i2v dtype")
        for size in args.sizes:
            r = {}
            for side in ("stock", "i2v"):
                out = str(Path(tmp) / f"{side}-{size}.npy")
                r[side] = run_child(script, [side, "speed", str(folder), str(size), str(args.frames), str(args.steps), out])
                r[side]["frames"] = np.load(out)
            mfu = {s: r[s]["flops"] / r[s]["seconds"] / peaks[r[s]["dtype"]] for s in r}
            print(f"{size:>5} {r['stock']['seconds']:>8.2f} {r['i2v']['seconds']:>7.2f} "
                  f"{r['stock']['seconds'] / r['i2v']['seconds']:>8.2f}x {psnr(r['i2v']['frames'], r['stock']['frames']):>8.1f} "
                  f"{mfu['stock']:>10.1%} {mfu['i2v']:>8.1%}  {r['i2v']['dtype']}")
        size, frames = args.memory_size, args.memory_frames
        print(f"\nmemory: {frames} frames at {size}x{size}, {args.steps} steps (peak RSS above the pre-load process)")
        m = {}
        for side, mode in (("stock", "memory"), ("i2v", "memory"), ("i2v", "memory+full")):
            out = str(Path(tmp) / f"{side}-{mode}.npy")
            m[mode if side == "i2v" else side] = r = run_child(
                script, [side, mode, str(folder), str(size), str(frames), str(args.steps), out])
            r["frames"] = np.load(out)
        stock = m["stock"]
        print(f"  stock diffusers                       {mib(stock['peak_bytes']):>9}")
        for mode, label in (("memory", "i2v --memory (2-frame decode chunks)"),
                            ("memory+full", f"i2v --memory --decode-chunk-size {frames}")):
            print(f"  {label:<37} {mib(m[mode]['peak_bytes']):>9}  ratio {m[mode]['peak_bytes'] / stock['peak_bytes']:.2f}x "
                  f"(target <= 0.6x), PSNR vs stock {psnr(m[mode]['frames'], stock['frames']):.1f} dB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        side, mode, folder, size, frames, steps, out = sys.argv[2:9]
        print(json.dumps(child(side, mode, folder, int(size), int(frames), int(steps), out)))
    else:
        main()
