"""SANA-Video image-to-video (``SanaImageToVideoPipeline``).

The released checkpoint is ``Efficient-Large-Model/SANA-Video_2B_480p_diffusers`` (diffusers' SANA-Video
docs, "Available models", and both pipelines' example docstrings). Its folder is saved as a
``SanaVideoPipeline`` (text-to-video; its model_index.json) with a flow DPM-Solver scheduler, and
diffusers' docs load the same folder with ``SanaImageToVideoPipeline`` (one backbone for text-,
image- and text+image-to-video), so i2v accepts a ``SanaVideoPipeline`` folder too and runs it with
the I2V pipeline. Where each default comes from:

- 81 frames (``4n + 1``: the Wan 2.1 VAE compresses time 4x; an LTX-2 VAE folder 8x) at 16 fps:
  the ``__call__`` default ``frames=81``, the docs' and the example's ``export_to_video(..., fps=16)``,
  and NVIDIA's training config (configs/sana_video_config/Sana_2000M_480px_AdamW_fsdp.yaml:
  ``num_frames: 81``).
- size 480x832, sides a multiple of 32: the ``__call__`` default and the docs' example; the pipeline
  checks ``height % 32`` and ``width % 32``. An unset size keeps 480x832's pixel area at the image's
  aspect ratio (NVIDIA trains multi-aspect, ``aspect_ratio_type: ASPECT_RATIO_VIDEO_480_MS``). i2v
  passes ``use_resolution_binning=False``: the size is decided (and the image fitted to it) before
  the pipeline runs. The pipeline's own binning maps a request to ``ASPECT_RATIO_480_BIN`` sizes and
  resizes the video back; half of those bins (624x624, 528x768, ...) fail its own ``% 32`` check,
  and it refuses any transformer whose ``sample_size`` is not 30 or 22.
- steps 50, guidance 6: the ``__call__`` defaults and the docs' examples.
- negative prompt: the docs' examples' ("A chaotic sequence with misshapen, deformed limbs ..."),
  used while guidance > 1 (the pipeline's ``guidance_scale > 1.0``).
- motion score 30: the docs append ``" motion score: 30."`` to every prompt (SANA-Video is trained
  with the motion score in its captions); i2v appends it unless the prompt already says
  ``motion score:``, and records both prompts.
- scheduler: ``FlowMatchEulerDiscreteScheduler`` at shift 8.0. diffusers' conversion script
  (scripts/convert_sana_video_to_diffusers.py) requires flow-Euler for I2V ("Scheduler type must be
  flow-euler for i2v task") with ``flow_shift = 8.0``, and the docs' I2V example swaps the folder's
  DPM-Solver for it. (The docs write ``from_config(config, flow_shift=8.0)``, an argument
  ``FlowMatchEulerDiscreteScheduler`` ignores, which leaves shift 1.0; i2v passes ``shift``.) A folder
  that already holds a flow-Euler scheduler keeps its own shift; ``--scheduler`` replaces it.
- ``max_sequence_length`` 300: the ``__call__`` default and NVIDIA's ``model_max_length: 300``; the
  pipeline's default complex-human-instruction prefix is left as it is.
- dtype: transformer and text encoder bf16, VAE fp32 (the docs: "The text encoder and VAE weights must
  stay in torch.bfloat16 or torch.float32"; the example moves the VAE to fp32); fp16 is refused.

Guidance is batched ([negative, positive] in one transformer call). Caches: none
(``SanaVideoTransformer3DModel`` has no ``enable_cache``, diffusers' caching hooks; checked on the
tiny seeded pipeline, tests/backends/diffusers/test_sana_video.py). LoRA: ``SanaLoraLoaderMixin``.
No last image: the pipeline conditions on the first frame only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, native_size, read_config, read_model_index

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

PIPELINE = "SanaImageToVideoPipeline"
T2V_FOLDER = "SanaVideoPipeline"  # the released folder's class, loaded with the I2V pipeline (diffusers' docs)
FLOW_EULER = "FlowMatchEulerDiscreteScheduler"
SHIFT = 8.0  # diffusers' conversion script: flow_shift = 8.0, flow-Euler for I2V
MOTION_SCORE = 30  # the docs' examples: prompt + " motion score: 30."
MULTIPLE = 32  # the pipeline checks height and width % 32
# the docs' examples' negative prompt
NEGATIVE = ("A chaotic sequence with misshapen, deformed limbs in heavy motion blur, sudden disappearance, jump "
            "cuts, jerky movements, rapid shot changes, frames out of sync, inconsistent character shapes, temporal "
            "artifacts, jitter, and ghosting effects, creating a disorienting visual experience.")
# transformer sample_size -> the pipeline's (and NVIDIA's) default size, the 9:16-ish bin "0.57" of
# ASPECT_RATIO_480_BIN / ASPECT_RATIO_720_BIN (diffusers' pipeline_sana_video.py)
SIZES = {30: (480, 832), 22: (704, 1280)}
NO_CACHE = ("SanaVideoTransformer3DModel has no enable_cache (diffusers' caching hooks: PAB, First Block Cache, "
            "TaylorSeer, MagCache, FasterCache)")


def motion_prompt(prompt: str, score: int | None) -> str:
    """The prompt as the docs write it: `` motion score: N.`` appended (unless it already has one)."""
    if score is None or "motion score:" in prompt.lower():
        return prompt
    return f"{prompt} motion score: {score}."


def vae_factors(vae_class: str, vae: dict) -> tuple[int, int]:
    """(temporal, spatial) compression of the folder's VAE, as the pipeline reads them."""
    if vae_class == "AutoencoderKLLTX2Video":
        return int(vae.get("temporal_compression_ratio", 8)), int(vae.get("spatial_compression_ratio", 32))
    if vae_class in ("AutoencoderKLWan", "AutoencoderDC"):
        down = vae.get("temperal_downsample", [False, True, True])
        temporal = vae.get("scale_factor_temporal") or 2 ** sum(bool(d) for d in down)
        spatial = vae.get("scale_factor_spatial") or 2 ** len(down)
        return int(temporal), int(spatial)
    return 4, 8  # the pipeline's fallback


class SanaVideoBackend(DiffusersBackend):
    family = Family(
        name="sana_video",
        models=(
            ModelSpec(
                name="sana-video-2b-480p", family="sana_video",
                source="Efficient-Large-Model/SANA-Video_2B_480p_diffusers",
                description="SANA-Video 2B (linear DiT), 480p: 81 frames at 16 fps, 480x832 area at the image's aspect",
                defaults=ModelDefaults(num_frames=81, height=480, width=832, fps=16.0, num_inference_steps=50,
                                       guidance_scale=6.0, size_multiple=MULTIPLE, frame_rule="4n+1", frame_step=4,
                                       frame_offset=1, min_frames=5, size_policy="aspect"),
                extras={"negative_prompt": NEGATIVE, "motion_score": MOTION_SCORE, "shift": SHIFT,
                        "max_sequence_length": 300, "dtype": "bf16", "fp32_components": ["vae"]},
            ),
        ),
        pipeline_classes=(PIPELINE, T2V_FOLDER),
        caches=(), speed_cache=None,  # NO_CACHE (checked on the tiny model in test_sana_video.py)
        batched_guidance=True,  # torch.cat([latents] * 2): [negative, positive] in one transformer call
        # the Wan 2.1 causal VAE decodes one latent frame (``temporal`` frames) at a time; 256x256 tiles
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        last_image_help="SANA-Video conditions on the first frame only",
        order=78,
    )
    pipeline_class = PIPELINE

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local SANA-Video folder (I2V, or the released T2V layout), from its configs."""
        index = check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae, scheduler = (read_config(path, c) for c in ("transformer", "vae", "scheduler"))
        vae_class = (index.get("vae") or [None, None])[1]
        temporal, spatial = vae_factors(vae_class, vae)
        patch = transformer.get("patch_size") or [1, 2, 2]
        patch = int(patch[1] if isinstance(patch, (list, tuple)) else patch)
        multiple = max(MULTIPLE, spatial * patch)
        sample = int(transformer.get("sample_size") or 30)
        if sample in SIZES:
            height, width = SIZES[sample]
        else:  # another (a tiny) model: its own trained size, at 480x832's aspect ratio
            side = sample * spatial * patch
            height, width = native_size(SIZES[30], (max(multiple, round(side / multiple) * multiple),
                                                    max(multiple, round(side * 832 / 480 / multiple) * multiple)))
        scheduler_class = (index.get("scheduler") or [None, None])[1] or scheduler.get("_class_name")
        if scheduler_class == FLOW_EULER:
            shift = float(scheduler.get("shift", 1.0))
        else:  # the T2V export's DPM-Solver / UniPC: flow-Euler at their flow shift (the conversion script's)
            shift = float(scheduler.get("flow_shift") or SHIFT)
        frames = 1 + (81 - 1) // temporal * temporal
        return folder_model_spec(path, class_name, cls.family.models[0], drop_extras=cls.family.registry_only_extras,
                                 extras={"shift": shift, "vae": vae_class}, num_frames=frames, height=height,
                                 width=width, size_multiple=multiple, frame_rule=f"{temporal}n+1",
                                 frame_step=temporal, frame_offset=1, min_frames=temporal + 1)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        o = options or LoadOptions()
        if o.cache is not None:  # said here: the family's generic refusal would list no cache to use instead
            raise InvalidRequestError(f"cache {o.cache!r} does not run on {spec.name}: {NO_CACHE}; run it without "
                                      "--cache")
        if o.dtype == "fp16":
            raise InvalidRequestError(f"{spec.name}: dtype fp16 is not supported (diffusers' SANA-Video docs: the text "
                                      "encoder and VAE must stay bf16 or fp32); use --dtype bf16 or fp32")
        super().__init__(spec, device, options)

    def accepted_classes(self) -> tuple[str, ...]:
        return self.family.pipeline_classes  # the released T2V folder runs with the I2V pipeline

    def load_pipeline(self, folder: Path):
        import diffusers

        index = read_model_index(folder)
        if index.get("_class_name") == T2V_FOLDER:  # diffusers' docs: the I2V pipeline from the T2V folder
            from diffusers.utils import logging

            level = logging.get_verbosity()
            logging.set_verbosity_error()  # its "expected SanaImageToVideoPipeline" warning says just that
            try:
                return getattr(diffusers, PIPELINE).from_pretrained(str(folder), **self.load_kwargs())
            finally:
                logging.set_verbosity(level)
        return super().load_pipeline(folder)

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        cfg = settings.guidance_scale > 1.0  # the pipeline's do_classifier_free_guidance
        if settings.negative_prompt and not cfg:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale "
                           f"{settings.guidance_scale:g} (classifier-free guidance needs more than 1)")
        score = e.get("motion_score")
        prompt = motion_prompt(settings.prompt, score)
        if prompt != settings.prompt:
            notices.append(f"' motion score: {score}.' appended to the prompt (SANA-Video's captions carry a motion "
                           "score; write 'motion score: N.' in the prompt to choose another)")
        settings.extras.update(pipeline_prompt=prompt, motion_score=score if prompt != settings.prompt else None,
                               negative_prompt_used=cfg, max_sequence_length=int(e.get("max_sequence_length", 300)),
                               use_resolution_binning=False,
                               shift=float(e.get("shift", SHIFT)) if self.scheduler is None else None)

    def set_scheduler(self, pipe, shift: float) -> None:
        """Flow-Euler at the model's shift (the conversion script's I2V scheduler), unless --scheduler chose one."""
        import diffusers

        current = pipe.scheduler
        if type(current).__name__ != FLOW_EULER or current.config.get("shift") != shift:
            pipe.scheduler = getattr(diffusers, FLOW_EULER).from_config(current.config, shift=shift)

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        if self.scheduler is None:
            self.set_scheduler(self._pipe, e["shift"])
        return dict(image=image, prompt=e["pipeline_prompt"],
                    negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else "",
                    height=settings.height, width=settings.width, frames=settings.num_frames,
                    guidance_scale=settings.guidance_scale, max_sequence_length=e["max_sequence_length"],
                    use_resolution_binning=e["use_resolution_binning"])
