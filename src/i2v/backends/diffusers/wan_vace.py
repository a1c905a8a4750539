"""Wan 2.1 VACE (``WanVACEPipeline``): one all-in-one Wan model for image-to-video, first-last-frame
keyframes and reference (subject) to video.

VACE takes no image argument: it takes a conditioning ``video`` and a ``mask`` (black: keep this
pixel of the video, white: generate it) and optional ``reference_images``. i2v builds them from the
image, as the diffusers docs' ``prepare_video_and_mask`` example does (VACE's own "firstframe" /
"firstlastframe" extension, ``FrameRefExpandAnnotator`` in ali-vilab/VACE):

- ``vace_mode = "first_frame"`` (the registered ``wan2.1-vace-*`` names and every local folder):
  the video is the image followed by ``num_frames - 1`` gray frames, the mask black on frame 0 and
  white on the rest, so the model keeps the image as frame 0 and generates the others. With
  ``last_image`` the last frame is the last image with a black mask too (keyframes).
- ``vace_mode = "reference"`` (the ``wan2.1-vace-*-r2v`` names): the image is a reference image
  (subject-to-video); the video is left unset (the pipeline's zeros, all white mask), and the clip is
  generated around the subject rather than starting from the image. A last image is refused there.
- a camera path or trajectories (first-frame mode, ``i2v.motion``): the video is the image moved along
  the path frame by frame, the mask black where that shows the image's own pixels and white on the
  revealed borders and where a moved object was, so VACE inpaints and outpaints around the given
  motion (its "move anything" / "expand anything" uses). Trajectories without a camera path keep the
  rest of the frame still (a locked-off camera). Not with a last image.
  ``GenerationRequest`` has no field for the mode, so it is the model's (an extra; the ``-r2v`` names
  are the same checkpoints with this extra; a local folder gets it through the Python API with
  ``dataclasses.replace(spec, extras={..., "vace_mode": "reference"})``).

The gray is (128, 128, 128), the diffusers example's: VACE's own code fills with 127.5 (0 in
[-1, 1]), which PIL frames cannot hold; the difference is 1/255 on the generated frames' control
stream. The conditioning strength is ``conditioning_scale`` 1.0 (the pipeline's default and VACE's
``context_scale``), recorded in the sidecar.

Where each default comes from:

- models: the diffusers docs' Wan page lists ``Wan-AI/Wan2.1-VACE-1.3B-diffusers`` and
  ``Wan-AI/Wan2.1-VACE-14B-diffusers`` (also the pipeline's docstring: "Available checkpoints");
  their ``model_index.json`` names ``WanVACEPipeline``.
- size: the Wan2.1 README's model table ("VACE-1.3B: Supports 480P", "VACE-14B: Supports both 480P
  and 720P") and its VACE commands (``--task vace-1.3B --size 832*480``, ``--task vace-14B --size
  1280*720``); Wan's ``SUPPORTED_SIZES`` (``vace-1.3B``: 480*832 / 832*480 only). The size keeps the
  image's aspect ratio at the model's pixel area (VACE's video processor resizes its inputs to the
  model's area at their own aspect ratio), sides a multiple of ``vae_scale_factor_spatial *
  patch_size`` (16; the pipeline checks it).
- frames, fps: 81 frames (``num_frames = 4n + 1``, the VAE's 4x time compression) at 16 fps: Wan's
  ``generate.py`` (``frame_num`` 81) and ``shared_config.py`` (``sample_fps = 16``), VACE's
  ``vace_wan_inference.py`` (``frame_num`` 81); the diffusers example exports at ``fps=16``.
- steps 50, guidance 5.0, flow shift 16: Wan's ``generate.py`` (``sample_steps = 50`` for every task
  but i2v; ``sample_guide_scale`` 5.0; ``elif "flf2v" in args.task or "vace" in args.task:
  args.sample_shift = 16``) and VACE's ``vace_wan_inference.py`` (``sample_steps = 50``,
  ``sample_shift = 16``, ``sample_guide_scale`` 5.0). The Wan-AI ``*-diffusers`` repositories ship
  UniPC at ``flow_shift`` 3.0 (the diffusers example's "3.0 for 480P"); the backend sets the model's
  16 on the scheduler, as ``wan.py`` does for FLF2V.
- negative prompt: Wan's (``shared_config.sample_neg_prompt``), in the English of the diffusers
  example; ``max_sequence_length`` 512 (Wan's ``text_len``, the pipeline's default).
- dtypes: bf16 with the VAE in fp32 (the diffusers example loads ``AutoencoderKLWan`` in float32).

Caches (checked on the tiny seeded pipeline, tests/backends/diffusers/test_wan_vace.py): PAB and
TaylorSeer. First Block Cache and MagCache are left out: VACE adds its hints to the hidden states
between the blocks, in the transformer's own forward, so on a cached step the kept residual (which
already holds the last full step's hints) and the fresh hints are both added, counting the
conditioning twice. Guidance runs as two passes of batch 1. LoRA: the pipeline has Wan's loader.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

FIRST_FRAME, REFERENCE = "first_frame", "reference"
MODES = (FIRST_FRAME, REFERENCE)
GRAY = (128, 128, 128)  # the generated frames' fill in the diffusers example (VACE's 127.5 as PIL can hold it)
FLOW_SHIFT = 16.0  # Wan generate.py: "vace" -> sample_shift = 16; VACE vace_wan_inference.py: 16
DIM_14B = 40 * 128  # the 14B transformer's width (num_attention_heads * attention_head_dim); 1.3B: 12 * 128

# Wan's shared_config.sample_neg_prompt, in the English of the diffusers WanVACEPipeline example
_NEGATIVE = ("Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
             "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
             "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
             "fused fingers, still picture, messy background, three legs, many people in the background, "
             "walking backwards")


def _vace(name: str, source: str, height: int, width: int, description: str, mode: str = FIRST_FRAME) -> ModelSpec:
    # Wan generate.py / VACE vace_wan_inference.py: 81 frames (4n+1) at 16 fps, 50 steps, guidance 5,
    # UniPC flow shift 16; 480x832 (1.3B) or 720x1280 (14B) at the image's aspect ratio, sides /16
    return ModelSpec(
        name=name, family="wan_vace", description=description, source=source,
        defaults=ModelDefaults(num_frames=81, height=height, width=width, fps=16.0, num_inference_steps=50,
                               guidance_scale=5.0, size_multiple=16, frame_rule="4n+1", frame_step=4,
                               frame_offset=1, min_frames=5, size_policy="aspect"),
        extras={"vace_mode": mode, "flow_shift": FLOW_SHIFT, "conditioning_scale": 1.0,
                "negative_prompt": _NEGATIVE, "max_sequence_length": 512, "dtype": "bf16",
                "fp32_components": ["vae"]},
    )


def conditioning_video(image: Image.Image, last_image: Image.Image | None, num_frames: int):
    """(video, mask) for VACE's first-frame (and first-last-frame) extension: the image as frame 0 (and
    the last image as the last frame), gray frames between; the mask black (keep) on the given frames,
    white (generate) on the rest. The images are already at the output size."""
    from PIL import Image

    size = image.size
    gray = Image.new("RGB", size, GRAY)
    keep, generate = Image.new("L", size, 0), Image.new("L", size, 255)
    video = [image.convert("RGB")] + [gray] * (num_frames - 1)
    mask = [keep] + [generate] * (num_frames - 1)
    if last_image is not None:
        video[-1], mask[-1] = last_image.convert("RGB"), keep
    return video, mask


def motion_video(image: Image.Image, settings: ResolvedSettings):
    """(video, mask) for a camera path or trajectories (``i2v.motion``), or None without them: the image
    moved along the path in every frame, the mask black (keep) where that shows the image's own pixels
    and white (generate) on revealed borders and where an object left: VACE fills in around the motion
    (its inpainting and outpainting tasks) rather than inventing it."""
    import numpy as np
    from PIL import Image

    from ...motion.motion_field import render_motion, requested_motion

    first = np.asarray(image.convert("RGB"))
    field = requested_motion(settings.extras, first, settings.num_frames, settings.fps)
    if field is None:
        return None
    frames, known = render_motion(first, field)
    video = [Image.fromarray(frame) for frame in frames]
    mask = [Image.fromarray(np.where(k, 0, 255).astype(np.uint8), mode="L") for k in known]
    return video, mask


class WanVACEBackend(DiffusersBackend):
    family = Family(
        name="wan_vace",
        models=(
            _vace("wan2.1-vace-1.3b", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", 480, 832,
                  "Wan 2.1 VACE 1.3B: the image as frame 0 (--last-image: as the last frame too), 480p"),
            _vace("wan2.1-vace-14b", "Wan-AI/Wan2.1-VACE-14B-diffusers", 720, 1280,
                  "Wan 2.1 VACE 14B: the image as frame 0 (--last-image: as the last frame too), 720p; 480p too"),
            _vace("wan2.1-vace-1.3b-r2v", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", 480, 832,
                  "Wan 2.1 VACE 1.3B, reference-to-video: the image is the subject, not a frame", mode=REFERENCE),
            _vace("wan2.1-vace-14b-r2v", "Wan-AI/Wan2.1-VACE-14B-diffusers", 720, 1280,
                  "Wan 2.1 VACE 14B, reference-to-video: the image is the subject, not a frame", mode=REFERENCE),
        ),
        pipeline_classes=("WanVACEPipeline",),
        # checked on the tiny seeded pipeline; fbcache and magcache would count VACE's hints twice (docstring)
        caches=("pab", "taylorseer"), speed_cache="pab",
        batched_guidance=False,  # noise_uncond = current_model(...): a second pass of batch 1
        inputs=frozenset({"last_image", "camera_path", "trajectory"}),
        # Wan's causal VAE decodes one latent frame (``temporal`` frames) at a time
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        last_image_help="the wan2.1-vace-* models take one in first-frame mode (not the -r2v reference mode)",
        order=35,
    )
    pipeline_class = "WanVACEPipeline"

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Wan VACE folder, from its transformer and VAE configs (first-frame mode)."""
        index = check_model_folder(path, cls.family.pipeline_classes)
        transformer = read_config(path, "transformer") or read_config(path, "transformer_2")
        vae = read_config(path, "vae")
        patch = transformer.get("patch_size", [1, 2, 2])
        spatial = 2 ** len(vae.get("temperal_downsample", [False, True, True]))  # the pipeline's own factor
        multiple = spatial * int(patch[1] if isinstance(patch, (list, tuple)) else patch)
        width = int(transformer.get("num_attention_heads", 12)) * int(transformer.get("attention_head_dim", 128))
        big = width >= DIM_14B  # the 14B transformer: 720p like the registered model (it runs 480p too)
        base = cls.family.models[1] if big else cls.family.models[0]
        two_experts = isinstance(index.get("transformer_2"), list) and index["transformer_2"][0] is not None
        extras = {"vace_mode": FIRST_FRAME, "two_experts": two_experts}
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras,
                                 extras=extras, size_multiple=multiple)

    @classmethod
    def takes_motion(cls, spec: ModelSpec, name: str) -> bool:
        """A camera path or trajectories move frame 0: first-frame mode only (a reference is no frame)."""
        return super().takes_motion(spec, name) and spec.extras.get("vace_mode", FIRST_FRAME) != REFERENCE

    @classmethod
    def check_inputs(cls, spec: ModelSpec, request: GenerationRequest) -> None:
        super().check_inputs(spec, request)
        mode = spec.extras.get("vace_mode", FIRST_FRAME)
        if mode not in MODES:
            raise InvalidRequestError(f"{spec.name}: vace_mode must be one of {', '.join(MODES)}, got {mode!r}")
        motion = request.camera_path is not None or request.trajectory is not None
        if motion and request.last_image is not None:
            raise InvalidRequestError(f"{spec.name} takes a last image or a camera path / trajectories, not both: the "
                                      "path decides every frame, the last one too")
        if request.last_image is not None and mode == REFERENCE:
            raise InvalidRequestError(
                f"{spec.name} uses the image as a reference (subject-to-video), not as a frame, so it cannot take a "
                f"last image (last_image); for first-last-frame keyframes use {spec.name.removesuffix('-r2v')}")

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        scale = e.get("conditioning_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
            raise InvalidRequestError(f"{self.spec.name}: conditioning_scale must be a finite number >= 0, "
                                      f"got {scale!r}")
        mode = e.get("vace_mode", FIRST_FRAME)
        kept = [] if mode == REFERENCE else [0] + ([settings.num_frames - 1] if request.last_image is not None else [])
        settings.extras.update(vace_mode=mode, kept_frames=kept, conditioning_scale=float(scale),
                               flow_shift=float(e.get("flow_shift", FLOW_SHIFT)),
                               max_sequence_length=int(e.get("max_sequence_length", 512)),
                               first_last_frame=request.last_image is not None)

    def set_flow_shift(self, pipe, shift: float) -> None:
        config = pipe.scheduler.config
        key = "flow_shift" if "flow_shift" in config else "shift" if "shift" in config else None
        if key is not None and config[key] != shift:
            pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        self.set_flow_shift(self._pipe, e["flow_shift"])
        kwargs = dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      guidance_scale=settings.guidance_scale, conditioning_scale=e["conditioning_scale"],
                      max_sequence_length=e["max_sequence_length"])
        if e["vace_mode"] == REFERENCE:
            return dict(reference_images=[image.convert("RGB")], **kwargs)
        video, mask = motion_video(image, settings) or conditioning_video(image, last_image, settings.num_frames)
        return dict(video=video, mask=mask, **kwargs)
