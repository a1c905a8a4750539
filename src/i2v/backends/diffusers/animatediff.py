"""AnimateDiff conditioned on the input image (``AnimateDiffSparseControlNetPipeline``).

AnimateDiff animates a Stable Diffusion 1.5 model with a motion adapter; the image enters through
SparseCtrl's RGB ControlNet as a condition on frame 0 (``conditioning_frames=[image]``,
``controlnet_frame_indices=[0]``), so the first frame follows the image and the prompt drives
the rest. The motion modules were trained on 16 frames (positional embeddings up to
``motion_max_seq_length``, 32); sizes are a multiple of 8, 512x512 by default.

Camera moves come from AnimateDiff's motion LoRAs: ``--lora zoom-in`` (or zoom-out, pan-left,
pan-right, tilt-up, tilt-down, rolling-clockwise, rolling-anticlockwise) loads
``guoyww/animatediff-motion-lora-<name>``; any SD 1.5 / motion LoRA in safetensors works too.

The registered ``animatediff-sparsectrl-rgb`` is assembled as in the diffusers example: an SD 1.5
base, the v1.5.3 motion adapter, the SparseCtrl RGB ControlNet, the sd-vae-ft-mse VAE, and
DPM-Solver++ (Karras sigmas, linear betas). A local folder saved from this pipeline loads as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UnknownModelError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, local_model_folder, native_size, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

CAMERA_MOVES = ("zoom-in", "zoom-out", "pan-left", "pan-right", "tilt-up", "tilt-down", "rolling-clockwise",
                "rolling-anticlockwise")
MOTION_LORAS = {name: f"guoyww/animatediff-motion-lora-{name}" for name in CAMERA_MOVES}


class AnimateDiffBackend(DiffusersBackend):
    family = Family(
        name="animatediff",
        models=(
            ModelSpec(
                name="animatediff-sparsectrl-rgb", family="animatediff", source="SG161222/Realistic_Vision_V5.1_noVAE",
                description="AnimateDiff v1.5.3 + SparseCtrl RGB on frame 0 over an SD 1.5 base; motion LoRAs for "
                            "camera moves",
                defaults=ModelDefaults(num_frames=16, height=512, width=512, fps=8.0, num_inference_steps=25,
                                       guidance_scale=7.5, size_multiple=8, frame_rule="any 2..32 (trained on 16)",
                                       max_frames=32, size_policy="aspect"),
                extras={"motion_adapter": "guoyww/animatediff-motion-adapter-v1-5-3",
                        "controlnet": "guoyww/animatediff-sparsectrl-rgb", "vae": "stabilityai/sd-vae-ft-mse",
                        "scheduler_overrides": {"beta_schedule": "linear", "algorithm_type": "dpmsolver++",
                                                "use_karras_sigmas": True},
                        "scheduler_class": "DPMSolverMultistepScheduler", "controlnet_conditioning_scale": 1.0,
                        "negative_prompt": "low quality, worst quality, letterboxed", "dtype": "fp16"},
            ),
        ),
        pipeline_classes=("AnimateDiffSparseControlNetPipeline",),
        inputs=frozenset({"init_video"}),
        denoiser="unet", caches=("deepcache", "pab"), speed_cache="deepcache",
        # every frame goes through the image VAE in one batch, or one by one with VAE slicing
        decode_frames=lambda frames, temporal, slicing, chunk: 1 if slicing else frames,
        order=20,
        # the registered model assembles these from other hub repos; a saved folder has them inside
        registry_only_extras=("motion_adapter", "controlnet", "vae"),
    )
    pipeline_class = "AnimateDiffSparseControlNetPipeline"
    lora_aliases = MOTION_LORAS

    @staticmethod
    def encode_init_video(pipe, frames):
        """Video-to-video: each frame through the image VAE (its latent mean, in fp32 where the VAE asks to be
        upcast, as ``AnimateDiffVideoToVideoPipeline`` encodes; it samples, the mean keeps a seed's run the
        same), scaled, as (1, C, T, h, w)."""
        import torch

        from .video_to_video import frames_to_tensor

        vae = pipe.vae
        dtype = torch.float32 if vae.config.get("force_upcast", False) else vae.dtype
        video = frames_to_tensor(frames)[0].transpose(0, 1)  # (T, 3, H, W)
        original = vae.dtype
        vae.to(dtype)
        try:
            with torch.inference_mode():
                z = torch.cat([vae.encode(part.to(pipe._execution_device, dtype)).latent_dist.mean
                               for part in video.split(16)]).float()
        finally:
            vae.to(original)
        return (z * vae.config.scaling_factor).transpose(0, 1)[None]

    def pipeline_latents(self, pipe, latents, settings: ResolvedSettings):
        """The SparseCtrl pipeline multiplies given latents by the scheduler's ``init_noise_sigma`` (of the
        schedule it runs, the truncated one) and does not cast them: both are done for it here."""
        from .video_to_video import kept_schedule

        probe = kept_schedule(pipe.scheduler, settings.num_inference_steps, settings.strength, latents.device)
        return (latents / probe.init_noise_sigma).to(pipe.unet.dtype)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local AnimateDiff SparseCtrl folder, from its UNet, VAE and motion configs."""
        check_model_folder(path, cls.family.pipeline_classes)
        unet, vae = read_config(path, "unet"), read_config(path, "vae")
        scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
        side = int(unet.get("sample_size", 64)) * scale
        height, width = native_size((512, 512), (side, side))
        max_frames = int(unet.get("motion_max_seq_length", 32))
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 height=height, width=width,
                                 num_frames=min(16, max_frames), max_frames=max_frames,
                                 frame_rule=f"any 2..{max_frames} (trained on 16)")

    @classmethod
    def outside_components(cls, spec: ModelSpec, device: str) -> tuple[list[tuple], tuple[str, ...], list[str]]:
        notes = [f"the {key} ({spec.extras[key]}) is loaded separately: its weights are not counted"
                 for key in ("motion_adapter", "controlnet") if isinstance(spec.extras.get(key), str)]
        return [], (), notes

    def is_assembled(self) -> bool:
        """True for the registered model: an SD 1.5 base plus adapter/ControlNet ids from the registry."""
        return "motion_adapter" in self.spec.extras and "controlnet" in self.spec.extras

    def fetch(self) -> Path:
        if self.is_assembled() and self.folder is None:  # the base is a StableDiffusionPipeline folder
            self.folder = local_model_folder(self.spec.source)
            self.index = check_model_folder(self.folder)
        return super().fetch()

    def load_pipeline(self, folder: Path):
        import diffusers

        kwargs = self.load_kwargs()
        parts = {}
        if self.is_assembled():
            e = self.spec.extras
            try:
                parts["motion_adapter"] = diffusers.MotionAdapter.from_pretrained(e["motion_adapter"], **kwargs)
                parts["controlnet"] = diffusers.SparseControlNetModel.from_pretrained(e["controlnet"], **kwargs)
                if e.get("vae"):
                    parts["vae"] = diffusers.AutoencoderKL.from_pretrained(e["vae"], **kwargs)
            except OSError as exc:
                raise UnknownModelError(f"{self.spec.name}: cannot load a component ({exc})") from exc
            scheduler_cls = getattr(diffusers, e.get("scheduler_class", "DPMSolverMultistepScheduler"))
            parts["scheduler"] = scheduler_cls.from_pretrained(str(folder), subfolder="scheduler",
                                                               **e.get("scheduler_overrides", {}))
        return diffusers.AnimateDiffSparseControlNetPipeline.from_pretrained(str(folder), **parts, **kwargs)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        settings.extras.update(
            controlnet_frame_indices=[0],
            controlnet_conditioning_scale=float(self.spec.extras.get("controlnet_conditioning_scale", 1.0)),
        )

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        return dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                    height=settings.height, width=settings.width, num_frames=settings.num_frames,
                    guidance_scale=settings.guidance_scale, conditioning_frames=[image],
                    controlnet_frame_indices=e["controlnet_frame_indices"],
                    controlnet_conditioning_scale=e["controlnet_conditioning_scale"])
