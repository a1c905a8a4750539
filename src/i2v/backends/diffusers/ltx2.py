"""LTX-2 (``LTX2ImageToVideoPipeline``, or ``LTX2ConditionPipeline`` for a last image): video WITH SOUND.

LTX-2 is one DiT that denoises a video latent and an audio latent together; the pipeline decodes the
video with its VAE and the audio with its audio VAE and vocoder, and returns both
(``LTX2PipelineOutput(frames, audio)``, the audio a ``(batch, channels, samples)`` waveform at the
vocoder's ``config.output_sampling_rate``). The backend hands the frames over like every backend and
the sound through ``take_audio()``; the API puts it in ``GenerationResult.audio`` and the writer muxes
it into mp4 (AAC) / webm (Opus), or writes it beside a GIF / WebP / PNG folder as a WAV (with a notice).
The sample rate is read from the loaded vocoder and recorded in the sidecar (``audio_sample_rate``).

Where each default comes from:

- ``ltx-2`` (``Lightricks/LTX-2``, the 19B dev model; its repository is a diffusers folder saved as
  ``LTX2Pipeline``, which loads into the image-to-video class with the same components): the LTX-2
  reference code's defaults (``ltx_pipelines/utils/constants.py`` of github.com/Lightricks/LTX-2):
  ``DEFAULT_1_STAGE_HEIGHT/WIDTH`` 512x768, ``DEFAULT_NUM_FRAMES`` 121, ``DEFAULT_FRAME_RATE`` 24,
  ``DEFAULT_NUM_INFERENCE_STEPS`` 40, the video guider (cfg 3.0, stg 1.0 at block 29, rescale 0.7,
  modality 3.0), the audio guider (cfg 7.0, stg 1.0, rescale 0.7, modality 3.0),
  ``AUDIO_SAMPLE_RATE`` 24000 (also the repository's ``vocoder/config.json``: ``output_sampling_rate``
  24000), ``DEFAULT_IMAGE_CRF`` 33 and ``DEFAULT_NEGATIVE_PROMPT`` (diffusers' ``ltx2.utils`` has the
  same prompt, CRF and 8 distilled sigmas). diffusers' docs: "A value of ``[29]`` is recommended for
  LTX-2.0" (STG blocks) and ``use_cross_timestep=False`` is "the legacy LTX-2.0 behavior".
- ``ltx-2-distilled`` (``rootonchair/LTX-2-19b-distilled``, the checkpoint diffusers' LTX-2 docs run in
  "Distilled checkpoint generation"): 8 steps on ``DISTILLED_SIGMA_VALUES`` with guidance 1.0 (no
  CFG, no STG, no modality guidance: the reference ``ltx_pipelines.distilled`` runs the model unguided).
- ``ltx-2.3`` (``diffusers/LTX-2.3-Diffusers``): diffusers' docs' "Recommended LTX-2.3 guidance
  parameters" (30 steps, guidance 3.0, stg 1.0 at block 28, modality 3.0, rescale 0.7; audio 7.0 /
  1.0 / 3.0 / 0.7; ``use_cross_timestep=True``), 768x512, 121 frames at 24 fps; the LTX-2.3 vocoder
  (``LTX2VocoderWithBWE``) outputs 48 kHz.
- ``ltx-2.3-distilled`` (``diffusers/LTX-2.3-Distilled-Diffusers``): its model card, "8 steps, CFG=1",
  on the distilled sigmas, unguided.
- rules: ``num_frames = 8n + 1`` and sides a multiple of 32 (the VAE compresses 8x in time and 32x in
  space; the pipeline checks ``% 32``); the size keeps the image's aspect ratio at the default's area.

What i2v runs is the single-stage generation at the requested size (diffusers' "Stage 1"); the
two-stage recipe (2x latent upsampler + distilled-LoRA refinement) is not run. Distilled models take
their 8 sigmas; another step count runs the pipeline's linear schedule (a notice says so).

``last_image``: ``LTX2ConditionPipeline`` with the image at latent index 0 and the last image at latent
index -1 (both strength 1.0), as diffusers' FLF2V example does; conditions are latent frames, so the last
image lands on the first pixel frame of the last latent frame (``num_frames - 8``), and "the 8 data space
frames corresponding to the specified latent frame [...] will tend to be static" (diffusers' docs). An
``LTX2ImageToVideoPipeline`` folder gets a condition pipeline built from its components (same weights,
no reload, dtypes untouched), as the LTX-Video backend does.

STG perturbs the registered block (29 / 28); a local folder whose transformer has fewer blocks (tiny or
test models) perturbs its last block (recorded as ``stg_blocks``).

Caches (checked on the tiny seeded pipeline, tests/backends/diffusers/test_ltx2.py): TaylorSeer runs
(on the video attention layers ``attn1`` / ``attn2`` of every block, in each of the pipeline's cache
contexts: the CFG batch, the STG pass, the modality pass). Left out: PAB never skips anything here: its
step clock reads the first token's timestep, and LTX-2 gives every token its own (``t * (1 - mask)``),
the conditioning first frame's being 0, so the clock always reads "last step", outside PAB's range.
First Block Cache and MagCache need the block's output layout in diffusers' ``TransformerBlockRegistry``,
which has no entry for ``LTX2VideoTransformerBlock``, and cannot have a right one: its blocks carry two
streams (video and audio) and those caches know one stream plus the text ``encoder_hidden_states``
(read by that name), so the audio stream would be skipped or paired with the text states.
LoRA: the pipelines have diffusers' ``LTX2LoraLoaderMixin`` (transformer and connectors).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import InvalidRequestError
from ...types import GenerationRequest, LoadOptions, ModelDefaults, ModelSpec, ProgressCallback, ResolvedSettings
from ..base import Family
from .base import DiffusersBackend
from .loading import check_model_folder, folder_model_spec, read_config

if TYPE_CHECKING:  # annotations only: importing a backend module loads neither numpy nor Pillow
    import numpy as np
    from PIL import Image

I2V_PIPELINE = "LTX2ImageToVideoPipeline"
CONDITION_PIPELINE = "LTX2ConditionPipeline"
T2V_FOLDER = "LTX2Pipeline"  # the class the Lightricks / diffusers LTX-2 repositories are saved as

# ltx_pipelines constants.DISTILLED_SIGMA_VALUES without the final 0 (= diffusers' ltx2.utils.DISTILLED_SIGMA_VALUES)
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
# ltx_pipelines constants.DEFAULT_NEGATIVE_PROMPT (= diffusers' ltx2.utils.DEFAULT_NEGATIVE_PROMPT)
NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)
# The multimodal guidance besides the video CFG (``guidance_scale``): the pipeline's own argument names
GUIDANCE = ("stg_scale", "modality_scale", "guidance_rescale", "audio_guidance_scale", "audio_stg_scale",
            "audio_modality_scale", "audio_guidance_rescale")
# ltx_pipelines constants: DEFAULT_VIDEO_GUIDER_PARAMS / DEFAULT_AUDIO_GUIDER_PARAMS (LTX-2.0; diffusers'
# docs give the same numbers for LTX-2.3)
GUIDED = dict(stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7, audio_guidance_scale=7.0, audio_stg_scale=1.0,
              audio_modality_scale=3.0, audio_guidance_rescale=0.7)
# distilled models run unguided (each term at its "off" value: CFG/modality 1, STG/rescale 0)
UNGUIDED = dict(stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_guidance_scale=1.0, audio_stg_scale=0.0,
                audio_modality_scale=1.0, audio_guidance_rescale=0.0)
IMAGE_CRF = 33  # ltx_pipelines DEFAULT_IMAGE_CRF (LTX-2.0 to 2.3; Gemma 3 text encoder)
LTX25_IMAGE_CRF = 18  # diffusers' LTX2_5_IMAGE_CRF (a Gemma 4 text encoder)


def _ltx2(name: str, source: str, description: str, *, version: str, distilled: bool, sample_rate: int) -> ModelSpec:
    steps, guidance = (8, 1.0) if distilled else ((40, 3.0) if version == "2.0" else (30, 3.0))
    extras = {"ltx_version": version, "distilled": distilled, **(UNGUIDED if distilled else GUIDED),
              "stg_blocks": [29] if version == "2.0" else [28], "use_cross_timestep": version != "2.0",
              "image_crf": IMAGE_CRF, "max_sequence_length": 1024, "audio_sample_rate": sample_rate, "dtype": "bf16"}
    if distilled:
        extras["sigmas"] = list(DISTILLED_SIGMAS)
    else:
        extras["negative_prompt"] = NEGATIVE_PROMPT
    return ModelSpec(
        name=name, family="ltx2", source=source, description=description,
        defaults=ModelDefaults(num_frames=121, height=512, width=768, fps=24.0, num_inference_steps=steps,
                               guidance_scale=guidance, size_multiple=32, frame_rule="8n+1", frame_step=8,
                               frame_offset=1, min_frames=9, size_policy="aspect"),
        extras=extras,
    )


def check_guidance(extras: dict, name: str) -> dict:
    """The multimodal guidance of a model's extras, checked (finite numbers, STG blocks as indices)."""
    values = {}
    for key in GUIDANCE:
        value = extras.get(key, GUIDED[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InvalidRequestError(f"{name}: {key} must be a finite number >= 0, got {value!r}")
        values[key] = float(value)
    blocks = extras.get("stg_blocks", [29])
    if not isinstance(blocks, (list, tuple)) or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0
                                                        for b in blocks):
        raise InvalidRequestError(f"{name}: stg_blocks must be a list of transformer block indices, got {blocks!r}")
    if (values["stg_scale"] > 0 or values["audio_stg_scale"] > 0) and not blocks:
        raise InvalidRequestError(f"{name}: STG is on (stg_scale / audio_stg_scale > 0) but stg_blocks is empty")
    return values


class LTX2Backend(DiffusersBackend):
    family = Family(
        name="ltx2",
        models=(
            _ltx2("ltx-2", "Lightricks/LTX-2", "LTX-2 19B: video with synchronized sound (121 frames at 24 fps, "
                  "768x512, 24 kHz audio); --last-image", version="2.0", distilled=False, sample_rate=24000),
            _ltx2("ltx-2-distilled", "rootonchair/LTX-2-19b-distilled", "LTX-2 19B distilled: video with sound in "
                  "8 steps, unguided (24 kHz audio); --last-image", version="2.0", distilled=True, sample_rate=24000),
            _ltx2("ltx-2.3", "diffusers/LTX-2.3-Diffusers", "LTX-2.3 22B: video with synchronized sound (121 frames "
                  "at 24 fps, 768x512, 48 kHz audio); --last-image", version="2.3", distilled=False,
                  sample_rate=48000),
            _ltx2("ltx-2.3-distilled", "diffusers/LTX-2.3-Distilled-Diffusers", "LTX-2.3 22B distilled: video with "
                  "sound in 8 steps, unguided (48 kHz audio); --last-image", version="2.3", distilled=True,
                  sample_rate=48000),
        ),
        pipeline_classes=(I2V_PIPELINE, CONDITION_PIPELINE, T2V_FOLDER),
        # checked on the tiny seeded pipeline; why pab, fbcache and magcache do not run: the module docstring
        caches=("taylorseer",), speed_cache="taylorseer",
        batched_guidance=True,  # CFG runs [uncond, cond] in one forward (STG and modality guidance: more passes)
        inputs=frozenset({"last_image"}),
        tile_pixels=lambda vae: 512 * 512,  # AutoencoderKLLTX2Video's tile_sample_min_height / width
        sound=True,
        order=52,
    )
    pipeline_class = I2V_PIPELINE

    @classmethod
    def folder_spec(cls, path: Path, class_name: str) -> ModelSpec:
        """Defaults of a local LTX-2 folder: LTX-2.3's (guidance, cross timestep) when its vocoder is
        the 2.3 one (``LTX2VocoderWithBWE``), else LTX-2.0's; the sample rate from its vocoder, the STG
        block within its transformer, the image CRF by its text encoder (Gemma 4: LTX-2.5's 18)."""
        index = check_model_folder(path, cls.family.pipeline_classes)
        vocoder, transformer = read_config(path, "vocoder"), read_config(path, "transformer")
        vocoder_class = vocoder.get("_class_name") or (index.get("vocoder") or [None, None])[-1]
        base = cls.registered("ltx-2.3" if vocoder_class == "LTX2VocoderWithBWE" else "ltx-2")
        extras = {"audio_sample_rate": int(vocoder.get("output_sampling_rate") or base.extras["audio_sample_rate"])}
        layers = int(transformer.get("num_layers") or 48)
        blocks = [b for b in base.extras["stg_blocks"] if b < layers]
        extras["stg_blocks"] = blocks or [layers - 1]
        text = read_config(path, "text_encoder")
        if text.get("model_type") in ("gemma4", "gemma4_unified"):
            extras["image_crf"] = LTX25_IMAGE_CRF
        if class_name == CONDITION_PIPELINE:
            extras["pipeline"] = CONDITION_PIPELINE
        return folder_model_spec(path, class_name, base, drop_extras=cls.family.registry_only_extras, extras=extras)

    @classmethod
    def registered(cls, name: str) -> ModelSpec:
        return next(spec for spec in cls.family.models if spec.name == name)

    def __init__(self, spec: ModelSpec, device: str, options: LoadOptions | None = None):
        super().__init__(spec, device, options)
        if spec.extras.get("pipeline") == CONDITION_PIPELINE:
            self.pipeline_class = CONDITION_PIPELINE
        self._condition_pipe = None
        self._audio = None  # the last run's waveform (torch, (batch, channels, samples)), until taken

    def family_resolve(self, request: GenerationRequest, settings: ResolvedSettings, notices: list[str]) -> None:
        super().family_resolve(request, settings, notices)
        e = self.spec.extras
        guidance = check_guidance(e, self.spec.name)
        crf = e.get("image_crf", IMAGE_CRF)
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise InvalidRequestError(f"{self.spec.name}: image_crf must be an H.264 CRF (0 to 51), got {crf!r}")
        sigmas = e.get("sigmas")
        if sigmas and settings.num_inference_steps != len(sigmas):
            notices.append(f"{self.spec.name} is distilled on {len(sigmas)} fixed noise levels; "
                           f"{settings.num_inference_steps} steps run the pipeline's linear schedule instead")
            sigmas = None
        settings.extras.update(
            frame_rate=float(settings.fps), **guidance, stg_blocks=list(e.get("stg_blocks", [29])),
            use_cross_timestep=bool(e.get("use_cross_timestep", False)), image_crf=crf,
            sigmas=list(sigmas) if sigmas else None, max_sequence_length=int(e.get("max_sequence_length", 1024)),
            ltx_version=e.get("ltx_version"), distilled=bool(e.get("distilled", False)),
            first_last_frame=request.last_image is not None,
            audio_sample_rate=int(e.get("audio_sample_rate", 24000)),  # the vocoder's, once loaded (generate)
        )
        if request.last_image is not None:  # latent index -1: the first pixel frame of the last latent frame
            settings.extras["last_image_frame"] = max(0, settings.num_frames - 8)

    # -- loading and running ---------------------------------------------------------------------

    def load_pipeline(self, folder: Path):
        pipe = super().load_pipeline(folder)
        # the vocoder's output is the pipeline's ``audio`` (``audio = self.vocoder(mel)``): kept for take_audio
        pipe.vocoder.register_forward_hook(self._keep_audio)
        return pipe

    def _keep_audio(self, module, args, output) -> None:
        self._audio = output

    def take_audio(self) -> tuple[np.ndarray, int] | None:
        """The last run's sound track, ``((channels, samples) float32, sample rate)``, once (then None)."""
        audio, self._audio = self._audio, None
        if audio is None:
            return None
        samples = audio[0].float().cpu().numpy()
        return samples, int(self._pipe.vocoder.config.output_sampling_rate)

    def condition_pipeline(self):
        """The pipeline for a last image: the loaded one if it is an LTX2ConditionPipeline, else one
        built from the same component objects (no copy, no reload, no dtype cast)."""
        import diffusers

        pipe = self._pipe
        if type(pipe).__name__ == CONDITION_PIPELINE:
            return pipe
        if self._condition_pipe is None:
            cls = getattr(diffusers, CONDITION_PIPELINE)
            expected, optional = cls._get_signature_keys(cls)
            self._condition_pipe = cls(**{k: v for k, v in pipe.components.items() if k in expected or k in optional})
        return self._condition_pipe

    def active_pipeline(self, last_image: Image.Image | None):
        if last_image is not None or self.pipeline_class == CONDITION_PIPELINE:
            return self.condition_pipeline()
        return self._pipe

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None) -> np.ndarray:
        self._audio = None
        frames = super().generate(settings, image, callback, timings, show_progress, last_image)
        settings.extras["audio_sample_rate"] = int(self._pipe.vocoder.config.output_sampling_rate)
        return frames

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        e = settings.extras
        kwargs = dict(prompt=settings.prompt, negative_prompt=settings.negative_prompt or None,
                      height=settings.height, width=settings.width, num_frames=settings.num_frames,
                      frame_rate=e["frame_rate"], guidance_scale=settings.guidance_scale,
                      **{key: e[key] for key in GUIDANCE}, spatio_temporal_guidance_blocks=e["stg_blocks"],
                      use_cross_timestep=e["use_cross_timestep"], max_sequence_length=e["max_sequence_length"])
        if e["sigmas"]:
            kwargs["sigmas"] = e["sigmas"]
        if type(self.active).__name__ != CONDITION_PIPELINE:
            return dict(image=image, image_crf=e["image_crf"], **kwargs)
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        conditions = [LTX2VideoCondition(frames=image, index=0, strength=1.0, crf=e["image_crf"])]
        if last_image is not None:
            conditions.append(LTX2VideoCondition(frames=last_image, index=-1, strength=1.0, crf=e["image_crf"]))
        return dict(conditions=conditions, **kwargs)
