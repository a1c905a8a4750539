"""FramePack image-to-video on HunyuanVideo (``HunyuanVideoFramepackPipeline``): long videos made
section by section, with the memory of one section.

FramePack packs the frames already made into a context of fixed length (1x, 2x and 4x compressed
history latents), so each section of ``latent_window_size`` latent frames costs the same whatever the
video's length. Two checkpoints, one architecture, two ways of sampling:

- ``framepack-i2v`` (``lllyasviel/FramePackI2V_HY``): the original "inverted anti-drifting" sampling;
  the sections are generated from the end of the video back to the image, so ``--last-image`` can
  fix the end (first-last-frame; the pipeline's ``last_image``, FramePack PR #167).
- ``framepack-f1-i2v`` (``lllyasviel/FramePack_F1_I2V_HY_20250503``): FramePack-F1, sampled forward
  (``sampling_type="vanilla"``); no last image (the pipeline refuses one there).

Frames. The pipeline takes ``num_frames`` but generates whole sections: with a window of ``W`` latent
frames and the VAE's 4x time compression it makes ``ceil(num_frames / (4 (W - 1) + 1))`` sections and
returns ``4 W sections + 1`` frames (each section adds ``4 W`` frames, the clip starts with the image;
the same count as FramePack's demos). i2v's frame rule is therefore ``36n + 1`` at ``W = 9`` (37,
73, 109, ... 1009 frames, i2v's limit being 1025), other counts are snapped to it (reported), and the
pipeline is asked for ``sections * (4 (W - 1) + 1)`` frames so that it makes exactly those sections
(recorded as ``pipeline_num_frames`` and ``sections``). Progress counts every step of every section.

Where each default comes from:

- steps 25, distilled guidance 10, real CFG 1 (off), ``latent_window_size`` 9, 30 fps, length:
  lllyasviel/FramePack ``demo_gradio.py`` and ``demo_gradio_f1.py`` (identical defaults: ``steps``
  25 "Changing this value is not recommended", ``gs`` "Distilled CFG Scale" 10.0, ``cfg`` 1.0
  "Should not change", ``rs`` 0.0, ``latent_window_size`` 9 "Should not change", videos saved at
  ``fps=30``, ``total_second_length`` 5 -> ``round(5 * 30 / (9 * 4))`` = 4 sections = 145 frames,
  the default here; the demos' fixed seed 31337 is not: an unset seed is drawn and recorded, as for
  every model). diffusers' examples run 30 steps at guidance 9.0 with ``num_frames=91`` (3
  sections, 109 frames) and export at ``fps=30``; i2v keeps the reference demos' values.
- ``guidance_scale`` is the distilled (embedded) guidance, the pipeline's ``guidance_scale``; real
  classifier-free guidance is ``true_cfg_scale`` (an extra, 1.0 = off, the demos' ``cfg``), so a
  negative prompt has no effect at the defaults and the backend says so (the demos hide it: "Not
  used").
- size: the demos pick the bucket of ``find_nearest_bucket(H, W, resolution=640)``
  (``diffusers_helper/bucket_tools.py``: 14 sizes of about 640x640 pixels, from 416x960 to 960x416)
  for the image's aspect ratio, then ``resize_and_center_crop`` to it. An unset size gets that
  bucket here (a square image: 640x608, the registered default); a given size runs as given, sides
  a multiple of 16 (the pipeline checks ``% 16``).
- ``max_sequence_length`` 256: the demos' ``encode_prompt_conds(max_length=256)`` and the pipeline's
  default; the released Llama text encoder takes diffusers' ``DEFAULT_PROMPT_TEMPLATE`` (``crop_start``
  95), as the demos do; another tokenizer gets the template's token count measured
  (``prompt_template``), recorded as ``prompt_template_crop_start``.
- dtypes: transformer bf16, the rest (text encoders, VAE, SigLIP image encoder) fp16: the demos
  (``transformer.to(dtype=torch.bfloat16)``, ``vae/image_encoder/text_encoder(_2).to(torch.float16)``)
  and diffusers' examples.
- models: the diffusers docs' "Available models" table and the pipeline's examples: the FramePack
  transformer from its own repository, the SigLIP ``image_encoder`` and ``feature_extractor`` from
  ``lllyasviel/flux_redux_bfl``, everything else (text encoders, tokenizers, VAE, scheduler) from
  ``hunyuanvideo-community/HunyuanVideo`` (the registered model's ``source``; its own text-to-video
  transformer is never downloaded: only its config, which the memory planner reads).

Not the reference sampler: FramePack's demos sample with UniPC (``sample_hunyuan(sampler='unipc')``)
on a dynamically shifted flow schedule; diffusers' pipeline steps the base repository's
``FlowMatchEulerDiscreteScheduler`` on the same shift (``calculate_shift``, capped at ``log 7``, as
``calculate_flux_mu(exp_max=7.0)`` in ``diffusers_helper/pipelines/k_diffusion_hunyuan.py``).
i2v runs diffusers' pipeline as it is (frame-for-frame the stock pipeline's, tested). TeaCache, the
demos' speed-up, is not in diffusers; ``--cache pab`` is the speed cache here.

A local folder saved from the pipeline loads as is (every component inside). Its configs do not say
which checkpoint it holds (F1 and the original differ only in weights): a folder (or hub repository)
with "F1" in its name is sampled forward, any other with inverted anti-drifting.

Caches (checked on the tiny seeded pipeline, tests/backends/diffusers/test_framepack.py): PAB and
MagCache. Every section runs the same schedule (the same latent shape, so the same shift), and
MagCache's step count restarts when a schedule ends, so its curve (``i2v calibrate-cache``, measured
on any run) applies to each section. First Block Cache and TaylorSeer are left out: the pipeline
opens no cache context, which they need ("No cache context is set").
Guidance runs as two passes of batch 1 (with ``true_cfg_scale`` > 1). LoRA: the pipeline has
HunyuanVideo's loader. Offload: the SigLIP image encoder cannot be offloaded leaf by leaf (its
attention-pooling head calls ``torch.nn.MultiheadAttention`` with its weights, so the hooks never see
them: diffusers' own tests exclude it); with ``--offload sequential`` / ``group`` it is placed on the
device whole, as the diffusers docs' group-offloading example does.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, ModelDefaults, ModelSpec, ProgressCallback, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .progress import counting_callback
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

PIPELINE = "HunyuanVideoFramepackPipeline"
BASE_PIPELINE = "HunyuanVideoPipeline"  # the class of hunyuanvideo-community/HunyuanVideo, the base repository
BASE = "hunyuanvideo-community/HunyuanVideo"
IMAGE_ENCODER = "lllyasviel/flux_redux_bfl"  # SigLIP: image_encoder/ and feature_extractor/
BASE_WEIGHTS = ("text_encoder", "text_encoder_2", "vae")  # what the base repository lends (not its transformer)
INVERTED, VANILLA = "inverted_anti_drifting", "vanilla"  # diffusers' FramepackSamplingType values
SAMPLING_TYPES = (INVERTED, VANILLA)
LATENT_WINDOW = 9  # demo_gradio(_f1).py: latent_window_size 9 ("Should not change")
TEMPORAL = 4  # AutoencoderKLHunyuanVideo: 4 frames per latent frame after the first
SECTIONS = 4  # demo_gradio(_f1).py: total_second_length 5 -> round(5 * 30 / (9 * 4)) sections
LLAMA3_VOCABULARY = 128000  # the released text encoder's tokenizer has 128256 tokens
# diffusers_helper/bucket_tools.py: bucket_options[640], (height, width)
BUCKETS_640 = ((416, 960), (448, 864), (480, 832), (512, 768), (544, 704), (576, 672), (608, 640),
               (640, 608), (672, 576), (704, 544), (768, 512), (832, 480), (864, 448), (960, 416))


def nearest_bucket(height: int, width: int) -> tuple[int, int]:
    """FramePack's ``find_nearest_bucket(h, w, resolution=640)``: the bucket nearest the aspect ratio
    (``|h * bucket_w - w * bucket_h|``; on a tie the later bucket, as its ``<=`` does)."""
    best, best_metric = BUCKETS_640[0], float("inf")
    for bucket_h, bucket_w in BUCKETS_640:
        metric = abs(height * bucket_w - width * bucket_h)
        if metric <= best_metric:
            best, best_metric = (bucket_h, bucket_w), metric
    return best


def section_frames(window: int, temporal: int) -> int:
    """Frames each section adds to the clip (``latent_window_size`` latent frames)."""
    return window * temporal


def denoise_window(spec: ModelSpec) -> tuple[int, int]:
    """(frames, context latent frames) the transformer denoises at once: one section, beside its
    clean latents (the image and the last frame at 1x, 2 frames at 2x and 16 at 4x compression, about
    3 latent frames of tokens in all)."""
    window = spec.extras.get("latent_window_size", LATENT_WINDOW)
    return pipeline_window(window, spec.extras.get("temporal_compression_ratio", TEMPORAL)), 3


def pipeline_window(window: int, temporal: int) -> int:
    """The pipeline's ``window_num_frames``: ``num_frames`` is counted in these to make sections."""
    return (window - 1) * temporal + 1


def frame_rule(window: int, temporal: int) -> str:
    step = section_frames(window, temporal)
    return f"{step}n+1 (n sections of {window} latent frames, {step} frames each)"


def _framepack(name: str, transformer: str, sampling: str, description: str) -> ModelSpec:
    # demo_gradio(_f1).py: 25 steps, distilled guidance 10, cfg 1, window 9, 30 fps, 5 s = 4 sections;
    # the size is the 640 bucket of the image (a square one: 640x608), sides /16
    step = section_frames(LATENT_WINDOW, TEMPORAL)
    return ModelSpec(
        name=name, family="framepack", source=BASE, description=description,
        defaults=ModelDefaults(num_frames=SECTIONS * step + 1, height=640, width=608, fps=30.0,
                               num_inference_steps=25, guidance_scale=10.0, size_multiple=16,
                               frame_rule=frame_rule(LATENT_WINDOW, TEMPORAL), frame_step=step, frame_offset=1,
                               min_frames=step + 1, size_policy="aspect"),
        extras={"transformer_repo": transformer, "image_encoder_repo": IMAGE_ENCODER, "sampling_type": sampling,
                "latent_window_size": LATENT_WINDOW, "temporal_compression_ratio": TEMPORAL, "true_cfg_scale": 1.0,
                "max_sequence_length": 256, "dtype": "fp16", "transformer_dtype": "bf16"},
    )


def named_f1(path: Path) -> bool:
    """Whether a folder holds FramePack-F1, by its name (a hub snapshot's: its repository's)."""
    name = path.parent.parent.name if path.parent.name == "snapshots" else path.name
    return re.search(r"(?<![a-z0-9])f1(?![0-9])", name, re.IGNORECASE) is not None


def window_of(spec: ModelSpec) -> tuple[int, int]:
    """(latent_window_size, VAE time compression) of a model, checked."""
    window = spec.extras.get("latent_window_size", LATENT_WINDOW)
    temporal = spec.extras.get("temporal_compression_ratio", TEMPORAL)
    for key, value in (("latent_window_size", window), ("temporal_compression_ratio", temporal)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(f"{spec.name}: {key} must be an integer >= 1, got {value!r}")
    return window, temporal


def prompt_template(pipe) -> dict:
    """diffusers' ``DEFAULT_PROMPT_TEMPLATE`` for the released Llama-3 tokenizer (``crop_start`` 95, what
    FramePack's demos use); for another tokenizer, the template's own token count as ``crop_start``."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

    if len(pipe.tokenizer) >= LLAMA3_VOCABULARY:
        return DEFAULT_PROMPT_TEMPLATE
    template = DEFAULT_PROMPT_TEMPLATE["template"]
    return {"template": template, "crop_start": len(pipe.tokenizer(template.split("{}")[0]).input_ids)}


def keep_image_encoder_whole(pipe) -> None:
    """Place the SigLIP image encoder on the device whole under sequential and group offload (its
    ``MultiheadAttention`` pooling head passes its weights to a function, past leaf-level hooks)."""
    pipe._exclude_from_cpu_offload = [*pipe._exclude_from_cpu_offload, "image_encoder"]  # sequential
    original = pipe.enable_group_offload

    def enable_group_offload(*args, exclude_modules=None, **kwargs):
        if isinstance(exclude_modules, str):
            exclude_modules = [exclude_modules]
        return original(*args, exclude_modules=[*(exclude_modules or []), "image_encoder"], **kwargs)

    pipe.enable_group_offload = enable_group_offload


def part_folder(source: str, patterns: list[str]) -> Path:
    """A component repository's local folder: ``source`` itself if it is a folder, else its hub
    snapshot (``org/name[@revision]``), with only the files ``patterns`` name (JSON and safetensors)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    from ...hub import hub_errors, parse_hub_id

    parsed = parse_hub_id(source)
    if parsed is None:
        raise InvalidRequestError(f"{source!r} is neither a folder nor a hub id (org/name[@revision])")
    with hub_errors(source):
        return Path(snapshot_download(parsed[0], revision=parsed[1], allow_patterns=patterns))


def cached_folder(source: str, subfolder: str = "") -> Path | None:
    """A component repository's folder if it is on this machine (never downloads)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from ...hub import parse_hub_id

    parsed = parse_hub_id(source)
    if parsed is None:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(parsed[0], revision=parsed[1], local_files_only=True))
    except (ImportError, OSError, ValueError):
        return None
    return folder if any((folder / subfolder).glob("*.safetensors")) else None


TRANSFORMER_FILES = ["*.json", "*.safetensors"]  # the transformer repository: config.json and the shards
IMAGE_ENCODER_FILES = ["image_encoder/*.json", "image_encoder/*.safetensors", "feature_extractor/*.json"]
PARTS = {"transformer": ("transformer_repo", "", TRANSFORMER_FILES),
         "image_encoder": ("image_encoder_repo", "image_encoder", IMAGE_ENCODER_FILES)}
PART_CLASSES = {"transformer": ["diffusers", "HunyuanVideoFramepackTransformer3DModel"],
                "image_encoder": ["transformers", "SiglipVisionModel"]}


class FramePackBackend(DiffusersBackend):
    family = Family(
        name="framepack",
        models=(
            _framepack("framepack-i2v", "lllyasviel/FramePackI2V_HY", INVERTED,
                       "FramePack (HunyuanVideo 13B): long videos in 1.2 s sections with constant memory, inverted "
                       "anti-drifting (--last-image), 30 fps, 640px buckets"),
            _framepack("framepack-f1-i2v", "lllyasviel/FramePack_F1_I2V_HY_20250503", VANILLA,
                       "FramePack-F1 (HunyuanVideo 13B): long videos in 1.2 s sections with constant memory, sampled "
                       "forward, 30 fps, 640px buckets"),
        ),
        pipeline_classes=(PIPELINE,),
        # checked on the tiny seeded pipeline: the pipeline opens no cache context, which First Block Cache
        # and TaylorSeer need; MagCache's step count restarts with every section's schedule
        caches=("pab", "magcache"), speed_cache="pab",
        batched_guidance=False,  # true CFG: neg_noise_pred = transformer(...), a second pass of batch 1
        inputs=frozenset({"last_image"}),
        # AutoencoderKLHunyuanVideo decodes in 16-frame windows (framewise decoding); with tiling on, 256x256 tiles
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, 16),
        tile_pixels=lambda vae: 256 * 256,
        denoise_window=lambda spec, frames, settings: denoise_window(spec),
        last_image_help="framepack-i2v (inverted anti-drifting sampling) takes one; FramePack-F1 samples forward",
        order=62,
        # the registered models assemble these from other hub repositories; a saved folder has them inside
        registry_only_extras=("transformer_repo", "image_encoder_repo"),
    )
    pipeline_class = PIPELINE
    parts: dict[str, Path] | None = None  # an assembled model's transformer and image-encoder folders (fetch)
    _template: dict | None = None  # the prompt template, once the tokenizer is loaded

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local FramePack folder, from its VAE and transformer configs and its name (F1)."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae = read_config(path, "transformer"), read_config(path, "vae")
        temporal = int(vae.get("temporal_compression_ratio", TEMPORAL))
        spatial = int(vae.get("spatial_compression_ratio", 8))
        patch = int(transformer.get("patch_size", 2))
        f1 = named_f1(path)
        base = cls.family.models[1] if f1 else cls.family.models[0]
        step = section_frames(LATENT_WINDOW, temporal)
        extras = {"sampling_type": VANILLA if f1 else INVERTED, "temporal_compression_ratio": temporal}
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras,
                                 size_multiple=max(16, spatial * patch), frame_step=step, frame_offset=1,
                                 min_frames=step + 1, num_frames=SECTIONS * step + 1,
                                 frame_rule=frame_rule(LATENT_WINDOW, temporal))

    @classmethod
    def outside_components(cls, spec: ModelSpec, device: str) -> tuple[list[tuple], tuple[str, ...], list[str]]:
        """The FramePack transformer and the SigLIP image encoder of a registered model, when on this machine."""
        parts, notes = [], []
        for component, (key, sub, _) in PARTS.items():
            source = spec.extras.get(key)
            if not isinstance(source, str):
                continue
            folder = cached_folder(source, sub)
            if folder is None:
                notes.append(f"the {component} ({source}) is not downloaded yet: its weights are not counted")
            else:
                parts.append((folder, sub, component, PART_CLASSES[component]))
        return parts, (), notes

    def is_assembled(self) -> bool:
        """True for the registered models: the base repository plus the transformer and image encoder repos."""
        return "transformer_repo" in self.spec.extras and "image_encoder_repo" in self.spec.extras

    def accepted_classes(self) -> tuple[str, ...]:
        return (BASE_PIPELINE, PIPELINE) if self.is_assembled() else self.family.pipeline_classes

    # -- before any weights load -------------------------------------------------------------------

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """The common resolution with the model's section rule, and FramePack's size bucket for an unset size."""
        window, temporal = window_of(spec)
        step = section_frames(window, temporal)
        d = spec.defaults
        if (d.frame_step, d.frame_offset, d.min_frames) != (step, 1, step + 1):  # a window set through the API
            spec = replace(spec, defaults=replace(d, frame_step=step, frame_offset=1, min_frames=step + 1,
                                                  frame_rule=frame_rule(window, temporal)))
        if request.height is None and request.width is None:  # the demos' bucket for the image
            from ..resolve import image_size

            cls.check_inputs(spec, request)  # refusals first, before the image is read
            image_w, image_h = image_size(request.image)
            height, width = nearest_bucket(image_h, image_w)
            notices.append(f"size {width}x{height} chosen for the {image_w}x{image_h} input (FramePack's 640 "
                           "bucket nearest its aspect ratio)")
            request = replace(request, height=height, width=width)
        return super().resolve_for(spec, request, notices)

    @classmethod
    def check_inputs(cls, spec: ModelSpec, request: GenerationRequest) -> None:
        super().check_inputs(spec, request)
        sampling = spec.extras.get("sampling_type", INVERTED)
        if sampling not in SAMPLING_TYPES:
            raise InvalidRequestError(f"{spec.name}: sampling_type must be one of {', '.join(SAMPLING_TYPES)}, "
                                      f"got {sampling!r}")
        if request.last_image is not None and sampling == VANILLA:
            raise InvalidRequestError(f"{spec.name} samples forward from the image (FramePack-F1), so it cannot take "
                                      f"a last image (last_image); {cls.family.last_image_help}")

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        window, temporal = window_of(self.spec)
        sections = (settings.num_frames - 1) // section_frames(window, temporal)
        true_cfg = e.get("true_cfg_scale", 1.0)
        if isinstance(true_cfg, bool) or not isinstance(true_cfg, (int, float)) or not 0 <= true_cfg < float("inf"):
            raise InvalidRequestError(f"{self.spec.name}: true_cfg_scale must be a finite number >= 0, "
                                      f"got {true_cfg!r}")
        negative_used = true_cfg > 1.0 and bool(settings.negative_prompt)  # the pipeline's do_true_cfg
        if settings.negative_prompt and not negative_used:
            notices.append(f"{self.spec.name} does not use a negative prompt at true_cfg_scale {true_cfg:g} "
                           "(guidance_scale is its distilled guidance)")
        if negative_used and self.acceleration.cache:
            raise InvalidRequestError(
                f"cache {self.acceleration.cache!r} cannot run with real classifier-free guidance (true_cfg_scale "
                f"{true_cfg:g} with a negative prompt) on {self.spec.name}: the pipeline opens no cache context, so "
                "the conditional and unconditional passes would share the cache's state; run without --cache")
        sampling = e.get("sampling_type", INVERTED)
        if sections > 1:
            order = "forward" if sampling == VANILLA else "from the end back to the image (inverted anti-drifting)"
            notices.append(f"FramePack: {settings.num_frames} frames in {sections} sections of {window} latent frames "
                           f"({section_frames(window, temporal)} frames each), generated {order}; each section "
                           "needs the memory of one")
        settings.extras.update(
            sampling_type=sampling, latent_window_size=window, sections=sections,
            pipeline_num_frames=sections * pipeline_window(window, temporal),
            distilled_guidance_scale=settings.guidance_scale, true_cfg_scale=float(true_cfg),
            negative_prompt_used=negative_used, max_sequence_length=int(e.get("max_sequence_length", 256)),
            first_last_frame=request.last_image is not None,
        )

    # -- loading ------------------------------------------------------------------------------------

    def fetch(self) -> Path:
        """The base folder (configs, tokenizers, text encoders, VAE; not its text-to-video transformer) and
        the FramePack transformer and SigLIP repositories, downloaded if need be; no weights are read."""
        if not self.is_assembled():
            return super().fetch()
        if self.folder is None:
            self.folder = part_folder(self.spec.source, ["model_index.json", "*/*.json", "*/*.txt", "*/*.model",
                                                         *(f"{c}/*.safetensors" for c in BASE_WEIGHTS)])
            self.index = check_model_folder(self.folder, self.accepted_classes())
            if self.scheduler is not None:
                self.check_folder_scheduler(self.folder)
        if self.parts is None:
            self.parts = {name: part_folder(self.spec.extras[key], patterns)
                          for name, (key, _, patterns) in PARTS.items()}
        return self.folder

    def component_dtype(self, name: str):
        dtype = self.torch_dtype
        return dtype.get(name, dtype["default"]) if isinstance(dtype, dict) else dtype

    def load_pipeline(self, folder: Path):
        if not self.is_assembled():
            pipe = super().load_pipeline(folder)
        else:
            pipe = self.assemble(folder)
        keep_image_encoder_whole(pipe)
        return pipe

    def assemble(self, folder: Path):
        """The diffusers docs' recipe: the FramePack transformer and the SigLIP encoder loaded on their own,
        the rest from the base repository."""
        import diffusers
        import transformers

        from ...io.safetensors_header import check_weight_files, weights_errors

        kwargs = self.load_kwargs()
        key = "dtype" if "dtype" in kwargs else "torch_dtype"
        quantization = kwargs.pop("quantization_config", None)
        transformer_kwargs = {key: self.component_dtype("transformer"), "use_safetensors": True}
        if quantization is not None:  # the pipeline-level config's entry for the transformer
            transformer_kwargs["quantization_config"] = quantization.quant_mapping["transformer"]
        tf_folder, enc_folder = self.parts["transformer"], self.parts["image_encoder"]
        check_weight_files(tf_folder, depth=0)
        check_weight_files(enc_folder / "image_encoder", depth=0)
        with weights_errors(tf_folder):
            transformer = diffusers.HunyuanVideoFramepackTransformer3DModel.from_pretrained(str(tf_folder),
                                                                                          **transformer_kwargs)
        with weights_errors(enc_folder):
            image_encoder = transformers.SiglipVisionModel.from_pretrained(
                str(enc_folder), subfolder="image_encoder", dtype=self.component_dtype("image_encoder"),
                use_safetensors=True)
            feature_extractor = transformers.SiglipImageProcessor.from_pretrained(str(enc_folder),
                                                                                 subfolder="feature_extractor")
        return diffusers.HunyuanVideoFramepackPipeline.from_pretrained(
            str(folder), transformer=transformer, image_encoder=image_encoder, feature_extractor=feature_extractor,
            **kwargs)

    # -- generating ---------------------------------------------------------------------------------

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        if self._template is None:
            self._template = prompt_template(self.active)
        e["prompt_template_crop_start"] = self._template["crop_start"]
        kwargs = dict(image=image, prompt=settings.prompt,
                      negative_prompt=settings.negative_prompt if e["negative_prompt_used"] else None,
                      height=settings.height, width=settings.width, num_frames=e["pipeline_num_frames"],
                      latent_window_size=e["latent_window_size"], guidance_scale=e["distilled_guidance_scale"],
                      true_cfg_scale=e["true_cfg_scale"], max_sequence_length=e["max_sequence_length"],
                      sampling_type=e["sampling_type"], prompt_template=self._template)
        if last_image is not None:
            kwargs["last_image"] = last_image
        return kwargs

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None) -> np.ndarray:
        sections = settings.extras["sections"]
        if callback is not None and sections > 1:  # every step of every section
            callback = counting_callback(callback, settings.num_inference_steps * sections)
        return super().generate(settings, image, callback, timings, show_progress, last_image)
