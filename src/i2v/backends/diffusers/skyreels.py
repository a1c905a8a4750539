"""SkyReels-V2 image-to-video (``SkyReelsV2ImageToVideoPipeline``) and its diffusion-forcing models
(``SkyReelsV2DiffusionForcingImageToVideoPipeline``), which generate long videos in overlapping windows.

SkyReels-V2 is a fine-tune of Wan 2.1 (same VAE, same UMT5 text encoder, same transformer layout), so
the rules are Wan's: ``num_frames = 4n + 1``, sides a multiple of ``vae_scale_factor_spatial *
patch_size`` (16; the pipelines check ``% 16``). Where each default comes from:

- frames, size, fps: the SkyReels-V2 README's model table ("544 * 960 * 97f" for the 540P models,
  "720 * 1280 * 121f" for 720P) and its parameter table (``--num_frames`` "97 for 540P models, 121
  for 720P models", ``--fps 24``); the same 544x960 / 97 frames are the ``__call__`` defaults of
  both diffusers pipelines and of SkyReels' own ``Image2VideoPipeline``.
- size policy "orient": SkyReels' ``generate_video.py`` / ``generate_video_df.py`` use 544x960
  (720x1280), swapped to 960x544 for a portrait image, then centre-crop the image to it
  (``resizecrop``), which is what i2v's image fitting does.
- guidance 5.0 and flow shift 5.0 for image-to-video: the README's parameter table ("6.0 for T2V,
  5.0 for I2V" for both ``--guidance_scale`` and ``--shift``), the ``__call__`` defaults of SkyReels'
  ``Image2VideoPipeline`` (``guidance_scale=5.0, shift=5.0``) and diffusers' examples for both
  pipelines (``flow_shift = 5.0  # 8.0 for T2V, 5.0 for I2V``, ``guidance_scale=5.0``). (One README
  note says "--shift 3.0 is recommended for I2V"; the table, the reference pipeline and diffusers say
  5.0.) The Skywork ``*-Diffusers`` repositories ship UniPC with no shift of its own (diffusers'
  ``convert_skyreelsv2_to_diffusers.py``), so the backend sets it on the scheduler, as for Wan.
- steps: 50 for I2V (README parameter table, reference ``Image2VideoPipeline``); 30 for diffusion
  forcing (``generate_video_df.py``'s ``--inference_steps`` default, which the README's DF commands
  run with, and diffusers' DF text-to-video and video-to-video examples).
- negative prompt: I2V, the English one of ``generate_video.py``; DF, the Chinese one of
  ``generate_video_df.py`` (both are Wan's).
- dtypes: bf16 with the VAE in fp32 (diffusers' examples load ``AutoencoderKLWan`` in float32; the
  reference code keeps its VAE in fp32 and the CLIP image encoder in the model's dtype).
- diffusion forcing (README "Diffusion Forcing Additional Parameters" and its DF commands):
  ``base_num_frames`` 97 (540P) / 121 (720P), ``overlap_history`` 17, ``addnoise_condition`` 20,
  ``ar_step`` 0 (synchronous), ``causal_block_size`` 1 (the transformer's ``num_frame_per_block``;
  "not supposed to be set for synchronous generation"). A ``num_frames`` above ``base_num_frames``
  is generated in windows of ``base_num_frames`` that overlap by ``overlap_history`` frames
  ("--num_frames 257 for 10s video, 737 for 30s"). These are recorded in the sidecar.

Diffusion forcing, and two things the backend does around diffusers' DF pipeline:

- ``addnoise_condition`` noises the clean prefix latents with ``torch.randn_like``, i.e. PyTorch's
  global generator, not the ``generator`` argument; the run seeds it with the request's seed (and
  restores it after), so the same seed gives the same frames.
- diffusers builds every window's schedule with the full ``base_num_frames`` window, so a last window
  shorter than that (any long ``num_frames`` other than ``base_num_frames + k * (base_num_frames -
  overlap_history)``, e.g. the README's 377) fails with an IndexError. The backend passes the
  window's own length there, as SkyReels' reference ``DiffusionForcingPipeline`` does
  (``generate_timestep_matrix(base_num_frames_iter, ..., base_num_frames_iter, ...)``); for every
  length diffusers runs, nothing changes.

``last_image``: the DF models take one (the README's start/end frame control; diffusers' FLF2V example
runs it on DF-14B-720P) within one window (diffusers fails with a last image across windows); the
I2V models only when the checkpoint is an FLF2V one (its image embedding has positional embeddings
for two CLIP images, ``pos_embed_seq_len``), like Wan 2.1.

Caches (checked on the tiny seeded pipelines): on the I2V models PAB, First Block Cache, TaylorSeer
and MagCache. First Block Cache and MagCache read a block's output layout from diffusers'
``TransformerBlockRegistry``, which lists ``WanTransformerBlock`` but not ``SkyReelsV2TransformerBlock``
(its copy), so the backend registers it with Wan's entry before loading (``register_block_metadata``).
On the DF models no cache runs (``DF_NO_CACHE``); ``--speed`` leaves it out there.

The Skywork DF repositories are saved as ``SkyReelsV2DiffusionForcingPipeline`` (the text-to-video
class); the DF models do text- and image-to-video with the same weights, so those folders load into
the image-to-video class.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ProgressCallback, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .progress import counting_callback
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

I2V_PIPELINE = "SkyReelsV2ImageToVideoPipeline"
DF_PIPELINE = "SkyReelsV2DiffusionForcingImageToVideoPipeline"
DF_FOLDER = "SkyReelsV2DiffusionForcingPipeline"  # the class the Skywork DF repositories are saved as
TEMPORAL = 4  # AutoencoderKLWan: 4 frames per latent frame after the first

# generate_video.py (I2V)
_NEGATIVE = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
             "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
             "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
             "fused fingers, still picture, messy background, three legs, many people in the background, "
             "walking backwards")
# generate_video_df.py (diffusion forcing)
_DF_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差"
                "质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部"
                "，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人"
                "很多，倒着走")

# The diffusion-forcing settings (README): base window, overlap, noise on the overlap, async step, block
DF_SETTINGS = ("base_num_frames", "overlap_history", "addnoise_condition", "ar_step", "causal_block_size")
# Why no cache runs on diffusion forcing (checked on the tiny seeded DF pipeline): PAB's step clock
# reads the first frame's timestep, which on a DF run is the conditioning frame's (so it never
# caches); First Block Cache fails when the last window is shorter than the others (its kept residual
# has the other windows' length); MagCache's curve is one ratio per step, and a DF run makes its own
# passes per window.
DF_NO_CACHE = ("it runs a schedule per frame in windows of their own length, which i2v's step-based caches "
               "(pab, fbcache, magcache) do not follow")


def _defaults(frames: int, height: int, width: int, steps: int, rule: str) -> ModelDefaults:
    return ModelDefaults(num_frames=frames, height=height, width=width, fps=24.0, num_inference_steps=steps,
                         guidance_scale=5.0, size_multiple=16, frame_rule=rule, frame_step=4, frame_offset=1,
                         min_frames=5, size_policy="orient")


def _i2v(name: str, source: str, height: int, width: int, frames: int, description: str) -> ModelSpec:
    # README: 544x960x97 (540P) / 720x1280x121 (720P) at 24 fps; 50 steps, guidance 5.0, shift 5.0 for I2V
    return ModelSpec(
        name=name, family="skyreels", description=description, source=source,
        defaults=_defaults(frames, height, width, 50, "4n+1"),
        extras={"flow_shift": 5.0, "negative_prompt": _NEGATIVE, "max_sequence_length": 512, "dtype": "bf16",
                "fp32_components": ["vae"], "first_last_frame": False},
    )


def _df(name: str, source: str, height: int, width: int, frames: int, description: str) -> ModelSpec:
    # README DF commands: base_num_frames 97 (540P) / 121 (720P), overlap_history 17, addnoise_condition
    # 20, ar_step 0; generate_video_df.py: 30 steps, causal_block_size 1; guidance and shift 5.0 for I2V
    return ModelSpec(
        name=name, family="skyreels", description=description, source=source,
        defaults=_defaults(frames, height, width, 30, f"4n+1; above {frames}: overlapping windows of {frames}"),
        extras={"flow_shift": 5.0, "negative_prompt": _DF_NEGATIVE, "max_sequence_length": 512, "dtype": "bf16",
                "fp32_components": ["vae"], "diffusion_forcing": True, "first_last_frame": True,
                "base_num_frames": frames, "overlap_history": 17, "addnoise_condition": 20, "ar_step": 0,
                "causal_block_size": 1},
    )


def df_denoise_window(spec: ModelSpec, settings: dict) -> tuple[int, int] | None:
    """A diffusion-forcing model denoises one window of ``base_num_frames`` at a time."""
    if not spec.extras.get("diffusion_forcing"):
        return None
    return int(settings.get("base_num_frames") or spec.extras["base_num_frames"]), 0


def df_windows(num_frames: int, base_num_frames: int, overlap_history: int) -> list[int]:
    """Latent frames of each window the DF pipeline denoises (its own arithmetic): one window up to
    ``base_num_frames``; beyond it, windows of ``base_num_frames`` overlapping by ``overlap_history``,
    the last one what is left plus the overlap."""
    latents = (num_frames - 1) // TEMPORAL + 1
    if num_frames <= base_num_frames:
        return [latents]
    base = (base_num_frames - 1) // TEMPORAL + 1
    overlap = (overlap_history - 1) // TEMPORAL + 1
    count = 1 + (latents - base - 1) // (base - overlap) + 1
    return [base] + [min(latents - (i * (base - overlap) + overlap) + overlap, base) for i in range(1, count)]


def check_df_settings(df: dict, num_frames: int, last_image: bool, name: str) -> list[int]:
    """Refuse diffusion-forcing settings the pipeline cannot run (README's rules), before any weights
    load; returns the windows' latent frame counts."""
    for key in DF_SETTINGS:
        value = df[key]
        low = 1 if key in ("base_num_frames", "overlap_history", "causal_block_size") else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidRequestError(f"{name}: {key} must be an integer >= {low}, got {value!r}")
    base, overlap = df["base_num_frames"], df["overlap_history"]
    if (overlap - 1) // TEMPORAL >= (base - 1) // TEMPORAL:
        raise InvalidRequestError(f"{name}: overlap_history {overlap} must be shorter than base_num_frames {base} "
                                  f"(by at least {TEMPORAL} frames), or no window adds a frame")
    windows = df_windows(num_frames, base, overlap)
    if last_image and len(windows) > 1:
        raise InvalidRequestError(f"{name}: a last image (last_image) works within one diffusion-forcing window: "
                                  f"num_frames {num_frames} is more than base_num_frames {base}")
    block = df["causal_block_size"]
    counts = windows[:-1] + [windows[-1] + (1 if last_image else 0)]  # the last image is one more latent frame
    if block > 1 and any(n % block for n in counts):
        raise InvalidRequestError(
            f"{name}: with causal_block_size {block} every window's latent frame count must be a multiple of it "
            f"(SkyReels-V2 README); num_frames {num_frames} gives windows of {counts} latent frames")
    return windows


def register_block_metadata() -> None:
    """Let diffusers' block caches (First Block Cache, MagCache) run on SkyReels-V2's transformer.

    They read a block's output layout from diffusers' ``TransformerBlockRegistry``, which in diffusers
    0.42 lists ``WanTransformerBlock`` but not ``SkyReelsV2TransformerBlock``, its copy (hidden states
    in, hidden states out; no encoder states returned): it gets Wan's entry. Registering is idempotent.
    """
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
    from diffusers.models.transformers.transformer_skyreels_v2 import SkyReelsV2TransformerBlock

    TransformerBlockRegistry.register(model_class=SkyReelsV2TransformerBlock, metadata=TransformerBlockMetadata(
        return_hidden_states_index=0, return_encoder_hidden_states_index=None))


def full_length_windows(pipe) -> None:
    """Give diffusers' DF pipeline each window's own length as its schedule's window (SkyReels'
    reference does): with the full ``base_num_frames`` a shorter last window fails (IndexError)."""
    original = pipe.generate_timestep_matrix

    def generate_timestep_matrix(num_latent_frames, step_template, base_num_latent_frames, *args, **kwargs):
        return original(num_latent_frames, step_template, min(base_num_latent_frames, num_latent_frames),
                        *args, **kwargs)

    pipe.generate_timestep_matrix = generate_timestep_matrix


def named_720p(path: Path) -> bool:
    """Whether a folder holds a 720P checkpoint, by its name (a hub snapshot's: its repository's)."""
    name = path.parent.parent.name if path.parent.name == "snapshots" else path.name
    return re.search(r"720p", name, re.IGNORECASE) is not None


class SkyReelsBackend(DiffusersBackend):
    family = Family(
        name="skyreels",
        models=(
            _i2v("skyreels-v2-i2v-1.3b-540p", "Skywork/SkyReels-V2-I2V-1.3B-540P-Diffusers", 544, 960, 97,
                 "SkyReels-V2 image-to-video 1.3B, 540P (97 frames, 24 fps)"),
            _i2v("skyreels-v2-i2v-14b-540p", "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers", 544, 960, 97,
                 "SkyReels-V2 image-to-video 14B, 540P (97 frames, 24 fps)"),
            _i2v("skyreels-v2-i2v-14b-720p", "Skywork/SkyReels-V2-I2V-14B-720P-Diffusers", 720, 1280, 121,
                 "SkyReels-V2 image-to-video 14B, 720P (121 frames, 24 fps)"),
            _df("skyreels-v2-df-1.3b-540p", "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", 544, 960, 97,
                "SkyReels-V2 diffusion forcing 1.3B, 540P: long videos in windows of 97 frames (--last-image)"),
            _df("skyreels-v2-df-14b-540p", "Skywork/SkyReels-V2-DF-14B-540P-Diffusers", 544, 960, 97,
                "SkyReels-V2 diffusion forcing 14B, 540P: long videos in windows of 97 frames (--last-image)"),
            _df("skyreels-v2-df-14b-720p", "Skywork/SkyReels-V2-DF-14B-720P-Diffusers", 720, 1280, 121,
                "SkyReels-V2 diffusion forcing 14B, 720P: long videos in windows of 121 frames (--last-image)"),
        ),
        pipeline_classes=(I2V_PIPELINE, DF_PIPELINE, DF_FOLDER),
        # on the I2V models, checked on the tiny seeded pipeline (tests/backends/diffusers/test_skyreels.py);
        # fbcache and magcache through register_block_metadata; none on the DF models (DF_NO_CACHE)
        caches=("pab", "fbcache", "taylorseer", "magcache"), speed_cache="fbcache",
        batched_guidance=False,  # noise_uncond = transformer(...): a second pass of batch 1
        inputs=frozenset({"last_image", "init_video"}),
        # Wan's causal VAE decodes one latent frame (``temporal`` frames) at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        denoise_window=lambda spec, frames, settings: df_denoise_window(spec, settings),
        last_image_help="the SkyReels-V2 DF models (skyreels-v2-df-*) and FLF2V checkpoints take one",
        order=70,
    )
    pipeline_class = I2V_PIPELINE

    @staticmethod
    def encode_init_video(pipe, frames):
        """Video-to-video: the init video's latents through Wan's VAE (SDEdit on the pipeline's latents)."""
        from .video_to_video import wan_video_latents

        return wan_video_latents(pipe, frames)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local SkyReels-V2 folder, from its class, transformer and VAE configs."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae = read_config(path, "transformer"), read_config(path, "vae")
        df = class_name in (DF_PIPELINE, DF_FOLDER)
        patch = transformer.get("patch_size", [1, 2, 2])
        spatial = 2 ** len(vae.get("temperal_downsample", [False, True, True]))  # the pipelines' own factor
        multiple = spatial * int(patch[1] if isinstance(patch, list) else patch)
        overrides: dict = {"size_multiple": max(16, multiple)}  # the pipelines check height and width % 16
        if named_720p(path):  # the 720P checkpoints differ from 540P only in training data
            overrides.update(height=720, width=1280, num_frames=121)
        frames = overrides.get("num_frames", 97)
        if df:
            base = cls.registered("skyreels-v2-df-14b-540p")
            extras = {"base_num_frames": frames, "causal_block_size": int(transformer.get("num_frame_per_block") or 1)}
            overrides["frame_rule"] = f"4n+1; above {frames}: overlapping windows of {frames}"
        else:
            base = cls.registered("skyreels-v2-i2v-14b-540p")
            # a last frame needs the FLF2V image embedding (positional embeddings for two CLIP images)
            extras = {"first_last_frame": transformer.get("pos_embed_seq_len") is not None}
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras,
                                 extras=extras, **overrides)

    @classmethod
    def registered(cls, name: str) -> ModelSpec:
        return next(spec for spec in cls.family.models if spec.name == name)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        self.diffusion_forcing = bool(spec.extras.get("diffusion_forcing"))
        cache = (options or LoadOptions()).cache
        if self.diffusion_forcing and cache is not None:
            raise InvalidRequestError(f"cache {cache!r} does not run on {spec.name} (diffusion forcing: "
                                      f"{DF_NO_CACHE}); run it without --cache")
        super().__init__(spec, device, options)
        if self.diffusion_forcing:
            self.pipeline_class = DF_PIPELINE
            if self.acceleration.cache is not None:  # the --speed profile's cache: left out
                self.acceleration = replace(self.acceleration, cache=None)
                self.acceleration.notes.append(f"speed profile: no cache on {spec.name} (diffusion forcing: "
                                               f"{DF_NO_CACHE})")

    def accepted_classes(self) -> tuple[str, ...]:
        return (DF_PIPELINE, DF_FOLDER) if self.spec.extras.get("diffusion_forcing") else (I2V_PIPELINE,)

    @classmethod
    def check_inputs(cls, spec: ModelSpec, request: GenerationRequest) -> None:
        super().check_inputs(spec, request)
        if request.last_image is not None and not spec.extras.get("first_last_frame"):
            raise InvalidRequestError(f"{spec.name} cannot condition on a last image (last_image); "
                                      f"{cls.family.last_image_help}")
        if request.init_video is not None and spec.extras.get("diffusion_forcing"):
            raise InvalidRequestError(f"{spec.name}: video-to-video (init_video) runs on the SkyReels-V2 image-to-video "
                                      "models (skyreels-v2-i2v-*); diffusion forcing schedules each frame apart")

    def load_pipeline(self, folder: Path):
        register_block_metadata()  # before the caches are applied (and before MagCache calibrates)
        pipe = super().load_pipeline(folder)
        if self.diffusion_forcing:
            full_length_windows(pipe)
        return pipe

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        extras = self.spec.extras
        settings.extras.update(flow_shift=float(extras.get("flow_shift", 5.0)),
                               max_sequence_length=int(extras.get("max_sequence_length", 512)),
                               first_last_frame=request.last_image is not None,
                               diffusion_forcing=self.diffusion_forcing)
        if not self.diffusion_forcing:
            return
        df = {key: extras[key] for key in DF_SETTINGS}
        windows = check_df_settings(df, settings.num_frames, request.last_image is not None, self.spec.name)
        if len(windows) > 1:
            notices.append(f"diffusion forcing: {settings.num_frames} frames in {len(windows)} windows of up to "
                           f"{df['base_num_frames']} frames, each overlapping the last by {df['overlap_history']}")
        if settings.fps != round(settings.fps):
            notices.append(f"the DF pipeline's fps conditioning is a whole number; using {round(settings.fps)}")
        # fps: the DF pipeline's sample-info embedding (16 fps -> 0, anything else -> 1; DF-1.3B uses it)
        settings.extras.update(**df, windows=len(windows), fps_conditioning=max(1, round(settings.fps)))

    def set_flow_shift(self, pipe, shift: float) -> None:
        config = pipe.scheduler.config
        key = "flow_shift" if "flow_shift" in config else "shift" if "shift" in config else None
        if key is not None and config[key] != shift:
            pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        self.set_flow_shift(self._pipe, e["flow_shift"])
        kwargs = dict(image=image, prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      guidance_scale=settings.guidance_scale, max_sequence_length=e["max_sequence_length"])
        if last_image is not None:
            kwargs["last_image"] = last_image
        if self.diffusion_forcing:
            kwargs.update({key: e[key] for key in DF_SETTINGS}, fps=e["fps_conditioning"])
        return kwargs

    def denoising_passes(self, settings: ResolvedSettings, last_image: bool) -> int:
        """Transformer passes of a DF run (each window's schedule, from the pipeline's own function)."""
        import torch

        e = settings.extras
        windows = df_windows(settings.num_frames, e["base_num_frames"], e["overlap_history"])
        block = e["causal_block_size"]
        overlap = (e["overlap_history"] - 1) // TEMPORAL + 1
        template = torch.arange(settings.num_inference_steps, 0, -1)  # any schedule of that many steps
        passes = 0
        for i, frames in enumerate(windows):
            ready = 1 if i == 0 else overlap - overlap % block  # the image latent; the overlap, block-aligned
            extra = 1 if last_image and i == len(windows) - 1 else 0
            matrix = self._pipe.generate_timestep_matrix(frames + extra, template, frames + extra, e["ar_step"],
                                                         ready, block)[0]
            passes += len(matrix)
        return passes

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None,
                 init_video: np.ndarray | None = None) -> np.ndarray:
        if not self.diffusion_forcing:
            return super().generate(settings, image, callback, timings, show_progress, last_image, init_video)
        import torch

        if self._pipe is None:
            self.load()
            timings["load"] = self.load_seconds
        settings.extras["denoising_passes"] = passes = self.denoising_passes(settings, last_image is not None)
        if callback is not None:
            callback = counting_callback(callback, passes)
        # addnoise_condition draws from PyTorch's global generator: seeded with the request's seed, restored after
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(settings.seed)
            settings.extras["torch_manual_seed"] = settings.seed
            return super().generate(settings, image, callback, timings, show_progress, last_image)

