"""NVIDIA Cosmos Predict video-to-world: Cosmos-Predict2 (``Cosmos2VideoToWorldPipeline``) and
Cosmos-Predict2.5 (``Cosmos2_5_PredictBasePipeline``), conditioned on the input image as the first frame.

Where each default comes from:

- frames, size, fps: 93 frames (4n+1; the Wan 2.1 VAE compresses 4x in time) at 704x1280, 16 fps.
  Both pipelines' ``__call__`` defaults (``num_frames=93``, ``height=704``, ``width=1280``), diffusers'
  examples (``export_to_video(video, ..., fps=16)``), and NVIDIA's cosmos-predict2
  ``examples/video2world.py`` (``--resolution 720`` and ``--fps 16`` by default: the released diffusers
  folders hold the 720p / 16 fps checkpoints, ``state_t`` 24 latent frames = 93 frames). For
  Predict2.5, diffusers' Image2World example also generates 93 frames; NVIDIA's cosmos-predict2.5
  CLI (base ``InferenceArguments``) defaults to ``num_output_frames`` 77 in some versions: i2v keeps
  diffusers' 93.
- steps and guidance: Predict2 35 steps, guidance 7 (``__call__`` defaults; NVIDIA's ``--guidance 7``).
  Predict2.5 35 steps, guidance 7: NVIDIA's cosmos-predict2.5 base ``InferenceArguments``
  (``num_steps`` 35, ``guidance`` 7) and the pipeline's docstring (35); its signature says 36.
- negative prompt: NVIDIA's default (``_DEFAULT_NEGATIVE_PROMPT`` of video2world.py, the pipelines'
  ``DEFAULT_NEGATIVE_PROMPT``), used while guidance > 1 (the pipelines' classifier-free guidance test).
- size: sides a multiple of 16 (the pipelines check ``% 16``). With no size asked, i2v picks the one of
  NVIDIA's 720p sizes nearest the image's aspect ratio (cosmos-predict2 ``VIDEO_RES_SIZE_INFO["720"]``,
  the ``--aspect_ratio`` choices 1:1 960x960, 4:3 960x704, 3:4 704x960, 16:9 1280x704, 9:16 704x1280;
  NVIDIA's default is 16:9); i2v fits (centre-crops) the image to it.
- limits from the transformer's positional tables (``max_size`` / ``patch_size``; the released
  ``(128, 240, 240)`` / ``(1, 2, 2)``): at most 128 latent frames (509 frames) and 128 patches a side
  (2048 pixels); beyond them the pipeline fails, so i2v refuses such requests before loading.
- fps: Predict2 passes the frame rate to its transformer (``fps``, scaling its temporal RoPE), a whole
  number as the signature types it; Predict2.5 takes none (its output's fps is playback only).
- dtype bf16: diffusers' examples load both pipelines with ``torch_dtype=torch.bfloat16``.
- sources: ``nvidia/Cosmos-Predict2-2B-Video2World`` and ``nvidia/Cosmos-Predict2-14B-Video2World``
  (diffusers' example docstring: "Available checkpoints"), ``nvidia/Cosmos-Predict2.5-2B`` at the
  revision ``diffusers/base/post-trained`` (diffusers' Cosmos docs and example).

How the image reaches the pipeline. Predict2: ``image=`` (one conditioning frame, the rest padded
with it). Predict2.5: ``video=[image]`` with ``num_latent_conditional_frames=1``. Its ``image=`` path
converts the image with ``torchvision.transforms.functional.to_tensor`` (diffusers imports torchvision
only when installed) and pads the clip with black frames, the ``video=`` path with the image; the
conditioning is the first latent frame alone, which the causal Wan VAE encodes from the first frame
alone, and the other frames' encodings are masked out, so both paths give the same frames
(test_cosmos.py checks it against the ``image=`` path) without needing torchvision.

torchvision: the released transformers concatenate a padding mask (``concat_padding_mask``) that
diffusers resizes with torchvision; a model whose transformer does is refused, before loading, when
torchvision is not installed (``needs_torchvision``).

Guardrail. The Cosmos pipelines run NVIDIA's Cosmos Guardrail as their ``safety_checker`` (prompt
check before, video check and face blur after), from the ``cosmos_guardrail`` package. NVIDIA's
diffusers folders are saved without one (diffusers' convert_cosmos_to_diffusers.py: ``[null, null]``
in model_index.json), so diffusers builds it at load, and fails when the package is missing; a
``safety_checker=None`` pipeline refuses to run, pointing to the NVIDIA Open Model License (NVIDIA's own
cosmos-predict2 script has a ``--disable_guardrail`` switch; diffusers' fast tests pass a stand-in). When
``cosmos_guardrail`` is installed, i2v leaves that to diffusers (the guardrail runs). When it is not,
a Cosmos model is refused before loading, naming the package: the NVIDIA Open Model License ties the
user's rights to not bypassing the models' guardrails, so running without one is the user's explicit
choice (``I2V_COSMOS_NO_GUARDRAIL=1``, like NVIDIA's ``--disable_guardrail``). Then i2v passes a
stand-in (``NoGuardrail``: every prompt passes, every video is unchanged), says so in a notice on
every run, and records ``guardrail: null`` in the sidecar. Nothing from the model folder or the hub
is imported either way.

Hub folders: NVIDIA's Predict2 repositories also hold their native checkpoints, which NVIDIA's
cosmos-predict2 code loads from them (``model-720p-16fps.pt`` at the root, ``tokenizer/tokenizer.pth``,
in the folder of the diffusers T5 tokenizer); diffusers' download would fetch the ``.pth`` with the
tokenizer and i2v's folder check would then refuse it as a pickle. A registered model is downloaded
without them (``hub_folder``: the model_index's components, no pickles, no code).

Caches: none run (checked on the tiny seeded pipelines, tests/backends/diffusers/test_cosmos.py).
``CosmosTransformer3DModel`` has no ``CacheMixin`` (no ``enable_cache``), through which PAB, First
Block Cache, TaylorSeer and MagCache are applied to a transformer; FasterCache needs batched guidance.

LoRA: Predict2.5 only (``CosmosLoraLoaderMixin``); ``Cosmos2VideoToWorldPipeline`` has no loader.
No last image: both pipelines condition on leading frames only.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError, UnknownModelError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import (check_model_folder, check_model_index, component_names, folder_model_spec, folder_variant,
                      read_config)

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    from PIL import Image

PREDICT2 = "Cosmos2VideoToWorldPipeline"
PREDICT25 = "Cosmos2_5_PredictBasePipeline"
TEMPORAL, SPATIAL = 4, 8  # AutoencoderKLWan (Wan 2.1): 4x in time, 8x in space

# NVIDIA's default negative prompt (cosmos-predict2 examples/video2world.py; diffusers' DEFAULT_NEGATIVE_PROMPT)
_NEGATIVE = ("The video captures a series of frames showing ugly scenes, static with no motion, motion blur, "
             "over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, "
             "underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, "
             "jerky movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special "
             "effects, fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and "
             "flickering. Overall, the video is of poor quality.")

# NVIDIA's 720p sizes per aspect ratio as (height, width), 16:9 (the default) first
# (cosmos-predict2 VIDEO_RES_SIZE_INFO["720"], which lists them as (width, height))
SIZES_720 = ((704, 1280), (704, 960), (960, 960), (960, 704), (1280, 704))
# their aspect ratios as height:width (NVIDIA names them width:height: 16:9, 4:3, 1:1, 3:4, 9:16)
ASPECTS = ((9, 16), (3, 4), (1, 1), (4, 3), (16, 9))
# the released transformers' positional tables (diffusers' convert_cosmos_to_diffusers.py TRANSFORMER_CONFIGS)
RELEASED_TRANSFORMER = {"max_size": [128, 240, 240], "patch_size": [1, 2, 2], "extra_pos_embed_type": None,
                        "concat_padding_mask": True}
# what a hub download of a registered model leaves out: code, and every pickle (NVIDIA's native checkpoints)
NOT_DOWNLOADED = ["*.py", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.pkl", "*.pickle", "*.msgpack", "*.onnx"]
NO_GUARDRAIL_ENV = "I2V_COSMOS_NO_GUARDRAIL"  # "1": the user chose to run without NVIDIA's guardrail
GUARDRAIL_REQUIRED = (
    "{name} runs NVIDIA's Cosmos Guardrail (prompt check, video check, face blur), and cosmos_guardrail is not "
    "installed: `pip install cosmos_guardrail`. To run without it (NVIDIA's --disable_guardrail; the NVIDIA Open "
    "Model License ties your rights to these models to not bypassing their guardrails) set "
    f"{NO_GUARDRAIL_ENV}=1")
GUARDRAIL_MISSING = (
    "cosmos_guardrail is not installed: NVIDIA's Cosmos Guardrail (the prompt check, the video check and "
    "face blur its Cosmos pipelines run) will not run on this video. The NVIDIA Open Model License ties your "
    "rights to these models to not bypassing their guardrails; `pip install cosmos_guardrail` to run it "
    "(i2v then uses it)")


def position_limits(transformer: dict, temporal: int = TEMPORAL, spatial: int = SPATIAL) -> tuple[int, int]:
    """(most frames, longest side in pixels) the transformer's positional tables cover.

    ``CosmosRotaryPosEmbed`` has ``max(max_size // patch_size)`` positions per axis; a learnable
    embedding (``extra_pos_embed_type="learnable"``) has ``max_size // patch_size`` on each axis.
    """
    size = list(transformer.get("max_size") or RELEASED_TRANSFORMER["max_size"])
    patch = list(transformer.get("patch_size") or RELEASED_TRANSFORMER["patch_size"])
    per_axis = [int(s) // int(p) for s, p in zip(size, patch)]
    rope = max(per_axis)
    if transformer.get("extra_pos_embed_type") == "learnable":
        per_axis = [min(rope, n) for n in per_axis]
    else:
        per_axis = [rope] * 3
    latent_frames = per_axis[0] * int(patch[0])
    side = min(per_axis[1] * int(patch[1]), per_axis[2] * int(patch[2])) * spatial
    return temporal * (latent_frames - 1) + 1, side


def fitted_sizes(max_side: int, multiple: int = 16) -> tuple[tuple[int, int], ...]:
    """NVIDIA's 720p sizes, scaled down (sides a multiple of ``multiple``) where they exceed ``max_side``."""
    scale = min(1.0, max_side / max(max(s) for s in SIZES_720))
    return tuple(tuple(max(multiple, int(side * scale) // multiple * multiple) for side in s) for s in SIZES_720)


def nearest_size(height: int, width: int, sizes) -> tuple[int, int]:
    """Of NVIDIA's sizes (``sizes``: in ``SIZES_720``'s order, maybe scaled), the one whose aspect ratio
    (NVIDIA's 16:9, 4:3, 1:1, 3:4, 9:16) is nearest the image's, in log ratio; ties: the first (16:9)."""
    aspect = math.log(height / width)
    index = min(range(len(ASPECTS)), key=lambda i: abs(math.log(ASPECTS[i][0] / ASPECTS[i][1]) - aspect))
    return tuple(sizes[index])


def guardrail_installed() -> bool:
    """Whether NVIDIA's ``cosmos_guardrail`` package is installed (found, not imported)."""
    return importlib.util.find_spec("cosmos_guardrail") is not None


def torchvision_installed() -> bool:
    return importlib.util.find_spec("torchvision") is not None


class NoGuardrail:
    """Stands in for diffusers' ``CosmosSafetyChecker`` when ``cosmos_guardrail`` is not installed (diffusers
    builds one, or refuses ``None``): every prompt passes and every video is returned unchanged. Used only
    then, with a notice on every run; not a torch module, so it holds no weights and is never offloaded."""

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames

    def to(self, *args, **kwargs):
        return self


def hub_folder(source: str) -> Path:
    """A registered model's hub snapshot: ``model_index.json`` and its components' files, without code or
    pickles (NVIDIA's repositories also hold their native ``.pt`` / ``.pth`` checkpoints)."""
    from huggingface_hub import hf_hub_download, snapshot_download

    from ...hub import hub_errors, parse_hub_id

    parsed = parse_hub_id(source)
    if parsed is None:
        raise UnknownModelError(f"{source!r} is neither a local folder nor a hub id (org/name[@revision])")
    repo, revision = parsed
    with hub_errors(source):
        index_file = Path(hf_hub_download(repo, "model_index.json", revision=revision))
        try:
            index = json.loads(index_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnknownModelError(f"{source}: model_index.json is not valid JSON: {exc}") from exc
        check_model_index(index, source)
        patterns = ["model_index.json", *(f"{name}/*" for name in component_names(index) if index[name][0])]
        return Path(snapshot_download(repo, revision=revision, allow_patterns=patterns,
                                      ignore_patterns=NOT_DOWNLOADED))


def _cosmos(name: str, source: str, description: str, *, pipeline: str, steps: int = 35) -> ModelSpec:
    # 93 frames (4n+1) at 704x1280 and 16 fps, guidance 7 (module docstring); limits of the released
    # transformers' positional tables: 509 frames, 2048 pixels a side
    max_frames, max_side = position_limits(RELEASED_TRANSFORMER)
    return ModelSpec(
        name=name, family="cosmos", description=description, source=source,
        defaults=ModelDefaults(num_frames=93, height=704, width=1280, fps=16.0, num_inference_steps=steps,
                               guidance_scale=7.0, size_multiple=16, frame_rule=f"4n+1, at most {max_frames}",
                               frame_step=4, frame_offset=1, min_frames=5, max_frames=max_frames,
                               size_policy="aspect"),
        extras={"pipeline": pipeline, "negative_prompt": _NEGATIVE, "max_sequence_length": 512, "dtype": "bf16",
                "max_side": max_side, "sizes": [list(s) for s in SIZES_720], "needs_torchvision": True},
    )


class CosmosBackend(DiffusersBackend):
    family = Family(
        name="cosmos",
        models=(
            _cosmos("cosmos-predict2-2b-video2world", "nvidia/Cosmos-Predict2-2B-Video2World",
                    "Cosmos-Predict2 2B Video2World: 93 frames at 16 fps, 704x1280 (NVIDIA's 720p sizes)",
                    pipeline=PREDICT2),
            _cosmos("cosmos-predict2-14b-video2world", "nvidia/Cosmos-Predict2-14B-Video2World",
                    "Cosmos-Predict2 14B Video2World: 93 frames at 16 fps, 704x1280 (NVIDIA's 720p sizes)",
                    pipeline=PREDICT2),
            _cosmos("cosmos-predict2.5-2b", "nvidia/Cosmos-Predict2.5-2B@diffusers/base/post-trained",
                    "Cosmos-Predict2.5 2B (post-trained) Image2World: 93 frames at 16 fps, 704x1280 (LoRA)",
                    pipeline=PREDICT25),
        ),
        pipeline_classes=(PREDICT2, PREDICT25),
        # none run: CosmosTransformer3DModel has no enable_cache (checked on the tiny models in test_cosmos.py)
        caches=(), speed_cache=None,
        batched_guidance=False,  # the unconditional pass is a second transformer call of batch 1
        # the Wan 2.1 causal VAE decodes one latent frame (``temporal`` frames) at a time; 256x256 tiles
        decode_frames=lambda frames, temporal, slicing, chunk: min(frames, temporal),
        tile_pixels=lambda vae: 256 * 256,
        last_image_help="Cosmos Predict conditions on the first frame only",
        order=75,
    )
    pipeline_class = PREDICT2

    @classmethod
    def registered(cls, pipeline: str) -> ModelSpec:
        return next(spec for spec in cls.family.models if spec.extras["pipeline"] == pipeline)

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local Cosmos Predict folder, from its class and its transformer and VAE configs."""
        check_model_folder(path, cls.family.pipeline_classes)
        transformer, vae = read_config(path, "transformer"), read_config(path, "vae")
        downsample = vae.get("temperal_downsample", [False, True, True])  # the pipelines' own factors
        temporal, spatial = 2 ** sum(bool(d) for d in downsample), 2 ** len(downsample)
        patch = transformer.get("patch_size") or RELEASED_TRANSFORMER["patch_size"]
        multiple = max(16, spatial * int(patch[1]))  # the pipelines check height and width % 16
        max_frames, max_side = position_limits(transformer, temporal, spatial)
        base = cls.registered(PREDICT25 if class_name == PREDICT25 else PREDICT2)
        d = base.defaults
        frames = min(d.num_frames, max_frames)  # defaults the checkpoint's positional tables can hold
        sizes = fitted_sizes(max_side, multiple)
        extras = {"pipeline": class_name, "max_side": max_side, "sizes": [list(s) for s in sizes],
                  "needs_torchvision": bool(transformer.get("concat_padding_mask", True))}
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras,
                                 num_frames=1 + (frames - 1) // temporal * temporal, height=sizes[0][0],
                                 width=sizes[0][1], size_multiple=multiple, frame_rule=f"{temporal}n+1, at most "
                                 f"{max_frames}", frame_step=temporal, frame_offset=1, min_frames=temporal + 1,
                                 max_frames=max_frames)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        o = options or LoadOptions()
        if o.cache is not None:  # said here: the family's generic refusal would list no cache to use instead
            raise InvalidRequestError(f"cache {o.cache!r} does not run on {spec.name}: CosmosTransformer3DModel has no "
                                      "enable_cache (diffusers' caching hooks), and its guidance passes run "
                                      "separately; run it without --cache")
        if o.loras and spec.extras.get("pipeline") != PREDICT25:
            raise InvalidRequestError(f"{spec.name}: {PREDICT2} has no LoRA loader; LoRA adapters run on "
                                      "Cosmos-Predict2.5 (cosmos-predict2.5-2b)")
        if not guardrail_installed() and os.environ.get(NO_GUARDRAIL_ENV) != "1":
            raise InvalidRequestError(GUARDRAIL_REQUIRED.format(name=spec.name))
        self.pipeline_class = spec.extras.get("pipeline", PREDICT2)  # before the folder is checked against it
        super().__init__(spec, device, options)

    def accepted_classes(self) -> tuple[str, ...]:
        return (self.pipeline_class,)

    def fetch(self) -> Path:
        if self.folder is None and not Path(self.spec.source).expanduser().is_dir():
            folder = hub_folder(self.spec.source)
            self.index = check_model_folder(folder, self.accepted_classes())
            self.variant = folder_variant(folder, self.index, self.wanted_variant())
            self.folder = folder
            if self.scheduler is not None:
                self.check_folder_scheduler(folder)
        return super().fetch()

    def load_pipeline(self, folder: Path):
        import diffusers

        kwargs = self.load_kwargs()
        if not guardrail_installed():  # diffusers would fail building CosmosSafetyChecker (module docstring)
            kwargs["safety_checker"] = NoGuardrail()
        return getattr(diffusers, self.pipeline_class).from_pretrained(str(folder), **kwargs)

    # -- resolving ----------------------------------------------------------------------------

    @classmethod
    def resolve_for(cls, spec: ModelSpec, request: GenerationRequest, notices: list[str]) -> ResolvedSettings:
        """The common resolution, with an unset size taken from NVIDIA's sizes (the image's aspect ratio)
        and the model's positional range and dependencies checked."""
        e = spec.extras
        if e.get("needs_torchvision") and not torchvision_installed():
            raise InvalidRequestError(f"{spec.name} needs torchvision: its transformer resizes a padding mask with "
                                      "it (concat_padding_mask), and diffusers imports it only when installed; "
                                      "`pip install torchvision`")
        if request.height is None and request.width is None and e.get("sizes"):
            from ..resolve import image_size

            image_w, image_h = image_size(request.image)
            height, width = nearest_size(image_h, image_w, [tuple(s) for s in e["sizes"]])
            if (height, width) != (spec.defaults.height, spec.defaults.width):
                notices.append(f"size {width}x{height} chosen for the {image_w}x{image_h} input (NVIDIA's size "
                               "nearest its aspect ratio)")
            request = replace(request, height=height, width=width)
        settings = super().resolve_for(spec, request, notices)
        max_side = e.get("max_side")
        if max_side and max(settings.height, settings.width) > max_side:
            raise InvalidRequestError(f"{settings.width}x{settings.height} is larger than {spec.name} can generate "
                                      f"(its positional tables cover {max_side} pixels a side)")
        return settings

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e, extras = self.spec.extras, settings.extras
        cfg = settings.guidance_scale > 1.0  # the pipelines' do_classifier_free_guidance
        if settings.negative_prompt and not cfg:
            notices.append(f"{self.spec.name} does not use a negative prompt at guidance_scale "
                           f"{settings.guidance_scale:g} (classifier-free guidance needs more than 1)")
        guardrail = "cosmos_guardrail" if guardrail_installed() else None
        if guardrail is None:
            notices.append(GUARDRAIL_MISSING)
        extras.update(pipeline=self.pipeline_class, guardrail=guardrail, negative_prompt_used=cfg,
                      max_sequence_length=int(e.get("max_sequence_length", 512)))
        if self.pipeline_class == PREDICT2:
            if settings.fps != round(settings.fps):
                notices.append(f"Cosmos-Predict2's fps conditioning is a whole number; using {round(settings.fps)}")
            extras["fps_conditioning"] = max(1, round(settings.fps))
        else:
            if settings.fps != self.spec.defaults.fps:
                notices.append(f"{self.spec.name} takes no frame rate: fps {settings.fps:g} only sets the video's "
                               f"playback rate (it was trained at {self.spec.defaults.fps:g})")
            extras["num_latent_conditional_frames"] = 1  # the image as the first frame (module docstring)

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        kwargs = dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      guidance_scale=settings.guidance_scale, max_sequence_length=e["max_sequence_length"])
        if self.pipeline_class == PREDICT2:
            return dict(image=image, fps=e["fps_conditioning"], **kwargs)
        return dict(video=[image], num_latent_conditional_frames=e["num_latent_conditional_frames"], **kwargs)
