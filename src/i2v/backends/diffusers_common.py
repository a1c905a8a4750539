"""Shared plumbing of the diffusers-pipeline backends (svd, animatediff, wan, cogvideox, ltx, hunyuan).

One ``DiffusersBackend`` base class maps a ``GenerationRequest`` onto a diffusers pipeline; each
family module fills in what differs (which pipeline class, how defaults come from a folder's
configs, which ``__call__`` arguments). Around it live small helpers, each with one job:

- **safe loading**: ``check_model_folder`` refuses custom code (``pipeline.py``, components from
  other libraries) and pickle-only weights *before* anything is loaded; loading itself always
  passes ``use_safetensors=True``, never ``trust_remote_code`` nor ``custom_pipeline``.
- **dtype / offload / VAE**: ``pick_dtype``, ``check_offload``/``auto_offload``/``apply_offload``,
  ``apply_vae_options``.
- **LoRA / scheduler**: ``parse_lora``/``load_loras`` (safetensors files only, loaded by path so that
  their adapter metadata counts),
  ``scheduler_names``/``swap_scheduler`` (the scheduler's ``compatibles`` that can run the model's
  schedule: flow matching, continuous EDM timesteps, or discrete).
- **progress / output**: ``StepReporter`` (diffusers ``callback_on_step_end`` -> ``(step, total)`` and
  approximate encode/denoise/decode timings), ``to_uint8_frames``.

Nothing here loads weights at import; the pipeline is loaded lazily on the first ``generate`` so
that ``resolve`` (validation, snapping, defaults) runs before any weights are read.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..registry import ModelDefaults, ModelSpec, UnknownModelError
from .base import Backend, InvalidRequestError, ProgressCallback, ResolvedSettings
from ..devices import DTYPE_NAMES, torch_dtype
from ..errors import UnsafeModelError

OFFLOAD_MODES = ("none", "model", "sequential", "group")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_LIBRARIES = ("diffusers", "transformers")


# ---------------------------------------------------------------------------------------------
# Safe loading
# ---------------------------------------------------------------------------------------------


def read_model_index(path: Path) -> dict:
    index = path / "model_index.json"
    if not index.is_file():
        raise UnknownModelError(f"{path} has no model_index.json; expected a diffusers pipeline folder")
    try:
        return json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownModelError(f"{index} is not valid JSON: {exc}") from exc


def component_names(index: dict) -> list[str]:
    """Names of the components a model_index.json lists (``"vae": ["diffusers", "AutoencoderKL"]``)."""
    return [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and len(v) == 2]


def is_safe_library(library: str) -> bool:
    """True for the libraries a model_index.json may name: diffusers, transformers, or one of diffusers'
    own pipeline modules (``"stable_diffusion"`` for SD 1.5's ``StableDiffusionSafetyChecker``), which
    diffusers resolves as ``getattr(diffusers.pipelines, library)`` (``hasattr(pipelines, name)`` in its
    loader). Anything else would be imported as a top-level module: refused."""
    if library in SAFE_LIBRARIES:
        return True
    if not isinstance(library, str) or not library.isidentifier():
        return False
    import inspect

    import diffusers.pipelines

    module = getattr(diffusers.pipelines, library, None)
    return inspect.ismodule(module) and module.__name__ == f"diffusers.pipelines.{library}"


def check_model_folder(path: str | Path, expected_classes: tuple[str, ...] | None = None) -> dict:
    """Refuse a pipeline folder i2v must not load; return its model_index.json otherwise.

    Refused: any ``*.py`` file (a custom ``pipeline.py`` or component code), a ``_class_name`` that is
    not a plain diffusers class, a component from a library other than diffusers/transformers (or a
    diffusers pipeline module, ``is_safe_library``), and a component whose only weights are pickles
    (``*.bin``, ``*.pt``, ``*.ckpt``, ...). Nothing is unpickled, and no code from the folder or
    from a library it names is imported, to decide this.
    """
    path = Path(path)
    index = read_model_index(path)
    code = sorted(str(p.relative_to(path)) for p in path.rglob("*.py"))
    if code:
        raise UnsafeModelError(
            f"{path}: the folder contains Python code ({', '.join(code[:5])}); i2v never runs code shipped "
            "inside a model folder (no custom pipelines, no trust_remote_code). Use the stock diffusers folder."
        )
    class_name = index.get("_class_name")
    if not isinstance(class_name, str):
        raise UnsafeModelError(f"{path}: model_index.json names a custom pipeline ({class_name!r}); i2v only "
                               "loads diffusers' own pipeline classes")
    if expected_classes is not None and class_name not in expected_classes:
        raise UnknownModelError(f"{path}: pipeline class {class_name!r} is not one of {sorted(expected_classes)}")
    for name in component_names(index):
        library, cls = index[name]
        if library is not None and not is_safe_library(library):
            raise UnsafeModelError(f"{path}: component {name!r} comes from {library!r} ({cls}); i2v only loads "
                                   f"components from {' and '.join(SAFE_LIBRARIES)} or diffusers' own pipeline "
                                   "modules (no custom code)")
    pickles: list[str] = []
    for folder in [path] + [path / n for n in component_names(index)]:
        if not folder.is_dir():
            continue
        files = [f for f in folder.iterdir() if f.is_file()]
        pickled = [f for f in files if f.suffix.lower() in PICKLE_SUFFIXES]
        if pickled and not any(f.name.endswith(".safetensors") for f in files):
            pickles += [str(f.relative_to(path)) for f in pickled]
    if pickles:
        raise UnsafeModelError(
            f"{path}: weights are only in pickle format ({', '.join(sorted(pickles)[:5])}); i2v loads safetensors "
            "only, because unpickling a file can run arbitrary code. Convert the weights to .safetensors "
            "(e.g. save_pretrained(..., safe_serialization=True) in a trusted environment) and try again."
        )
    return index


def local_model_folder(source: str, variant: str | None = None) -> Path:
    """A local folder for ``source``: the folder itself, or the hub snapshot (safetensors only)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from diffusers import DiffusionPipeline

    try:  # downloads model_index.json, configs and *.safetensors only; never custom code
        return Path(DiffusionPipeline.download(source, use_safetensors=True, variant=variant))
    except Exception as exc:  # offline, gated, missing: all mean "cannot get this model here"
        raise UnknownModelError(f"{source}: cannot download the model ({type(exc).__name__}: {exc}); pass a local "
                                "diffusers folder with --model, or check network access / hub login") from exc


# diffusers/transformers weight file names: "diffusion_pytorch_model.safetensors", "model.fp16.safetensors",
# shards "model-00001-of-00002.safetensors" / "diffusion_pytorch_model.fp16-00001-of-00002.safetensors"
_WEIGHT_FILE = re.compile(r"^(?P<stem>[^.]+)(?:\.(?P<variant>[^.-]+))?(?:-\d+-of-\d+)?\.safetensors$")


def folder_variant(path: Path, index: dict, requested: str | None = None) -> str | None:
    """The ``variant`` to load a folder's weights with, from its file names.

    ``requested`` (e.g. ``"fp16"``) when some component has files of that variant (diffusers falls
    back to the plain files of the others); else the variant that the components without plain
    weights all have (a folder saved with ``save_pretrained(..., variant="fp16")`` has only
    ``*.fp16.safetensors``, which diffusers does not find without ``variant="fp16"``); else None.
    """
    variant_only: list[set[str]] = []
    seen: set[str] = set()
    for name in component_names(index):
        folder = path / name
        if not folder.is_dir():
            continue
        plain, variants = False, set()
        for file in folder.glob("*.safetensors"):
            match = _WEIGHT_FILE.match(file.name)
            if match is None:
                continue
            if match["variant"]:
                variants.add(match["variant"])
            else:
                plain = True
        seen |= variants
        if variants and not plain:
            variant_only.append(variants)
    if requested is not None and requested in seen:
        return requested
    if not variant_only:
        return None
    common = set.intersection(*variant_only)
    if not common:
        raise UnknownModelError(f"{path}: components have weights only in different variants "
                                f"({', '.join(sorted(set.union(*variant_only)))}); re-save the folder with one")
    return requested if requested in common else min(common)


def read_config(path: Path, component: str) -> dict:
    """A component's config.json (or scheduler_config.json) as a dict; {} when absent."""
    for name in ("config.json", "scheduler_config.json", "preprocessor_config.json"):
        file = path / component / name
        if file.is_file():
            try:
                return json.loads(file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UnknownModelError(f"{file} is not valid JSON: {exc}") from exc
    return {}


# ---------------------------------------------------------------------------------------------
# Folder -> ModelSpec
# ---------------------------------------------------------------------------------------------


def family_base(family: str) -> ModelSpec:
    """The first registered model of a family: the base a local folder's defaults start from."""
    from ..registry import MODELS

    return next(spec for spec in MODELS.values() if spec.family == family)


def folder_model_spec(path: Path, class_name: str, family: str, *, extras: dict | None = None,
                      **overrides) -> ModelSpec:
    """A ModelSpec for a local folder: the family's registered defaults, overridden by the folder's configs."""
    base = family_base(family)
    defaults = ModelDefaults(**{**asdict(base.defaults), **overrides})
    merged = {k: v for k, v in base.extras.items() if k not in ("motion_adapter", "controlnet", "vae", "variant")}
    merged.update(extras or {})
    return ModelSpec(name=path.name, family=family, description=f"local {class_name} folder", source=str(path),
                     defaults=defaults, extras=merged)


def native_size(family: tuple[int, int], config: tuple[int, int]) -> tuple[int, int]:
    """(height, width): the family default, or the folder's own size when its configs describe a much
    smaller model (tiny/test or distilled models), whose default must be its own trained size."""
    if config[0] * config[1] * 4 <= family[0] * family[1]:
        return config
    return family


# ---------------------------------------------------------------------------------------------
# dtype, offload, VAE
# ---------------------------------------------------------------------------------------------


def pick_dtype(requested: str | None, device: str, extras: dict) -> tuple[str, Any]:
    """(dtype name, diffusers ``torch_dtype``): fp32 on CPU; the model's own (bf16/fp16) on a GPU.

    Components listed in ``extras["fp32_components"]`` stay fp32 (Wan's VAE and image encoder, as
    the Wan docs recommend); ``extras["transformer_dtype"]`` overrides the transformer's dtype when
    no dtype was asked for (HunyuanVideo: transformer bf16, the rest fp16).
    """
    if requested is not None and requested not in DTYPE_NAMES:
        raise InvalidRequestError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {requested!r}")
    name = requested or ("fp32" if device == "cpu" else extras.get("dtype", "bf16"))
    if name == "fp32":
        return name, torch_dtype(name)
    per_component = {"default": torch_dtype(name)}
    for component in extras.get("fp32_components", ()):
        per_component[component] = torch_dtype("fp32")
    if requested is None and extras.get("transformer_dtype"):
        per_component["transformer"] = torch_dtype(extras["transformer_dtype"])
    return name, per_component if len(per_component) > 1 else per_component["default"]


def check_offload(mode: str | None, device: str) -> str:
    """Validate ``--offload``; ``None``/``"auto"`` -> ``"none"`` on CPU, else ``"auto"`` (decided at
    load time from the model's size and the GPU's memory)."""
    if mode in (None, "auto"):
        return "none" if device == "cpu" else "auto"
    if mode not in OFFLOAD_MODES:
        raise InvalidRequestError(f"offload must be one of auto, {', '.join(OFFLOAD_MODES)}; got {mode!r}")
    if device == "cpu" and mode in ("model", "sequential"):
        raise InvalidRequestError(
            f"offload {mode!r} moves weights between the CPU and an accelerator, but the device is cpu (all "
            "weights already live in RAM); use --offload none, or run on a GPU"
        )
    return mode


def weights_bytes(folder: Path, index: dict, itemsize: int, variant: str | None = None) -> tuple[int, int]:
    """(all components, largest component) weight bytes once loaded at ``itemsize`` bytes per value.

    Counts the files diffusers will load (``variant`` ones where a component has them, else the
    plain ones). Reads only the safetensors headers (dtype and shape of every tensor), never the tensors.
    """
    sizes = {name: sum(sum(safetensors_numels(f)) * itemsize for f in component_weight_files(folder / name, variant))
             for name in component_names(index)}
    return sum(sizes.values()), max(sizes.values(), default=0)


def component_weight_files(folder: Path, variant: str | None = None) -> list[Path]:
    """The safetensors files diffusers loads from one component folder: the ``variant`` ones where
    the folder has them, else the plain ones."""
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    kinds = {f: (m["variant"] if (m := _WEIGHT_FILE.match(f.name)) else None) for f in files}
    pick = variant if variant is not None and variant in kinds.values() else None
    return [f for f, kind in kinds.items() if kind == pick]


def safetensors_numels(file: Path) -> list[int]:
    """Element counts of every tensor in a safetensors file, from its header (8-byte length, then JSON)."""
    with open(file, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    return [math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__"]


def auto_offload(device: str, total_bytes: int, largest_bytes: int) -> str:
    """Pick an offload mode for the device: none when the weights fit in 75% of the GPU's memory,
    model offload when the largest component does, group (leaf-level, streamed) offload otherwise."""
    if not device.startswith("cuda"):
        return "none"
    import torch

    index = torch.device(device).index or 0
    budget = 0.75 * torch.cuda.get_device_properties(index).total_memory
    if total_bytes <= budget:
        return "none"
    return "model" if largest_bytes <= budget else "group"


def apply_offload(pipe, mode: str, device: str) -> None:
    """Place the pipeline: ``to(device)``, or one of diffusers' three offload strategies."""
    import torch

    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif mode == "group":
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=device.startswith("cuda"))
    else:
        pipe.to(device)


def apply_vae_options(pipe, tiling: bool, slicing: bool) -> None:
    vae = pipe.vae
    if tiling:
        if not hasattr(vae, "use_tiling"):
            raise InvalidRequestError(f"{type(vae).__name__} has no tiled decoding (--vae-tiling)")
        vae.enable_tiling()
    if slicing:
        if not hasattr(vae, "use_slicing"):
            raise InvalidRequestError(f"{type(vae).__name__} has no sliced decoding (--vae-slicing)")
        vae.enable_slicing()


# ---------------------------------------------------------------------------------------------
# LoRA and scheduler
# ---------------------------------------------------------------------------------------------


def parse_lora(text: str | tuple) -> tuple[str, float]:
    """``PATH[:SCALE]`` (or a ``(path, scale)`` pair) -> (path, scale); scale defaults to 1.0."""
    if isinstance(text, (tuple, list)):
        source, scale = text
        return str(source), float(scale)
    source, scale = str(text), 1.0
    head, sep, tail = source.rpartition(":")
    if sep and head:
        try:
            scale = float(tail)
            source = head
        except ValueError:
            pass
    if not math.isfinite(scale):
        raise InvalidRequestError(f"LoRA scale must be a finite number, got {tail!r} in {text!r}")
    return source, scale


def check_lora_source(source: str, aliases: dict[str, str]) -> str:
    """Validate a LoRA source without loading it: a local ``.safetensors`` file, a folder with exactly
    one, a named alias, or a hub repo id (downloaded as safetensors at load time)."""
    source = aliases.get(source, source)
    path = Path(source).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidRequestError(f"LoRA {source}: pickle weights are refused; i2v loads .safetensors LoRAs only")
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise InvalidRequestError(f"LoRA {source}: expected a .safetensors file")
        return str(path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise InvalidRequestError(f"LoRA folder {source}: expected exactly one .safetensors file, found "
                                      f"{[f.name for f in files] or 'none'}")
        return str(files[0])
    if path.suffix.lower() == ".safetensors":  # a file name, never a hub id: refuse now, not after loading
        raise InvalidRequestError(f"LoRA {source}: no such file ({path.resolve()} does not exist)")
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        return source  # a hub repo id
    raise InvalidRequestError(f"LoRA {source}: no such file (expected PATH.safetensors[:SCALE], a folder, "
                              f"a hub repo id{', or one of ' + ', '.join(sorted(aliases)) if aliases else ''})")


def check_loras(loras, aliases: dict[str, str]) -> list[tuple[str, float]]:
    """``PATH[:SCALE]`` entries -> validated (source, scale) pairs, before any weights load."""
    return [(check_lora_source(src, aliases), scale) for src, scale in (parse_lora(x) for x in (loras or ()))]


def _lora_file(source: str) -> str:
    if Path(source).is_file():
        return source
    from huggingface_hub import HfApi, hf_hub_download

    try:
        names = [f for f in HfApi().list_repo_files(source) if f.endswith(".safetensors")]
        if not names:
            raise InvalidRequestError(f"LoRA {source}: the repo has no .safetensors file (pickles are refused)")
        preferred = [n for n in names if "lora" in n.lower() or n.startswith("diffusion_pytorch_model")]
        return hf_hub_download(source, (preferred or names)[0])
    except InvalidRequestError:
        raise
    except Exception as exc:
        raise InvalidRequestError(f"LoRA {source}: cannot download ({type(exc).__name__}: {exc})") from exc


def load_loras(pipe, loras: list[tuple[str, float]]) -> list[dict]:
    """Load each LoRA's safetensors file (never a pickle) into the pipeline as a named adapter, then
    activate all of them with their scales. Returns the metadata records.

    The file is passed by path (folder + ``weight_name``, ``use_safetensors=True``: diffusers then
    never falls back to a pickle), not as an in-memory state dict, so that diffusers reads the
    adapter metadata in the safetensors header (``lora_alpha``, ``r``): without it every adapter
    would get ``alpha = r`` and a LoRA saved with another alpha would run at the wrong strength.
    """
    if not loras:
        return []
    # pipelines without a LoRA loader (SVD): load straight onto the denoiser, same file format
    denoiser = None if hasattr(pipe, "load_lora_weights") else getattr(pipe, "unet", None)
    if denoiser is None and not hasattr(pipe, "load_lora_weights"):
        raise InvalidRequestError(f"{type(pipe).__name__} does not support LoRA adapters")
    from safetensors import SafetensorError

    names, scales, records = [], [], []
    for i, (source, scale) in enumerate(loras):
        file = Path(_lora_file(source))
        if file.suffix.lower() != ".safetensors":
            raise InvalidRequestError(f"LoRA {source}: expected a .safetensors file, got {file.name}")
        name = f"lora{i}"
        try:
            if denoiser is not None:  # keys under "unet.", as diffusers' pipeline LoRA files have them
                from ..lora import load_lora

                load_lora(denoiser, file, adapter_name=name)
            else:
                pipe.load_lora_weights(str(file.parent), weight_name=file.name, use_safetensors=True,
                                       adapter_name=name)
        except (ValueError, KeyError, RuntimeError, SafetensorError) as exc:  # LoraFileError is a ValueError
            raise InvalidRequestError(f"LoRA {source}: does not fit {type(pipe).__name__} ({exc})") from exc
        names.append(name)
        scales.append(scale)
        records.append({"source": source, "scale": scale})
    if denoiser is not None:
        from ..lora import set_lora_scales

        set_lora_scales(denoiser, dict(zip(names, scales)))
    else:
        pipe.set_adapters(names, adapter_weights=scales)
    return records


def _init_params(cls) -> set[str] | None:
    """The ``__init__`` parameter names of a scheduler class; None when it cannot be used here (a
    diffusers placeholder whose optional dependency, e.g. torchsde, is not installed)."""
    import inspect

    from diffusers.utils import DummyObject

    if isinstance(cls, DummyObject):  # diffusers' stand-in that raises ImportError when used
        return None
    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (ImportError, TypeError, ValueError):
        return None


def scheduler_names(class_name: str, config: dict | None = None) -> list[str]:
    """The scheduler classes that can replace ``class_name`` (configured by ``config``, its
    ``scheduler_config.json``): its diffusers ``compatibles``, narrowed to those that can honour
    what the model was trained with. diffusers' ``compatibles`` only means "can read the config";
    many of them would silently run a different schedule:

    - flow matching (Wan's UniPC with ``prediction_type="flow_prediction"`` / ``use_flow_sigmas``):
      only schedulers that take both (UniPC, DPM-Solver multistep/singlestep, DEIS); a
      ``FlowMatch*`` scheduler (LTX, HunyuanVideo): only ``FlowMatch*`` ones;
    - continuous (EDM / Karras) timesteps (SVD's ``EulerDiscreteScheduler`` with
      ``timestep_type="continuous"``): only schedulers that take ``timestep_type`` (Euler discrete);
    - everything else (discrete epsilon / v-prediction: AnimateDiff, CogVideoX): the compatibles
      but the ``EDM*`` ones (they feed the model continuous noise levels, not its discrete timesteps).

    Compatibles that cannot be imported here (missing optional dependency) are left out.
    """
    import diffusers

    config = dict(config or {})
    cls = getattr(diffusers, class_name, None)
    if cls is None or not hasattr(cls, "_get_compatibles"):
        return [class_name]
    candidates = {c.__name__: _init_params(c) for c in cls._get_compatibles()}
    candidates.setdefault(class_name, _init_params(cls))
    candidates = {name: params for name, params in candidates.items() if params is not None}
    if class_name.startswith("FlowMatch"):
        valid = [n for n in candidates if n.startswith("FlowMatch")]
    elif config.get("prediction_type") == "flow_prediction" or config.get("use_flow_sigmas"):
        valid = [n for n, p in candidates.items() if {"prediction_type", "use_flow_sigmas"} <= p]
    elif config.get("timestep_type") == "continuous":
        valid = [n for n, p in candidates.items() if {"timestep_type", "use_karras_sigmas"} <= p]
    else:  # discrete timesteps: EDM schedulers feed continuous noise levels instead, which such models never saw
        valid = [n for n in candidates if not n.startswith("EDM")]
    return sorted(set(valid) | {class_name})


def scheduler_kind(class_name: str, config: dict | None = None) -> str | None:
    """A few words naming the schedule that restricts the choice (for error messages)."""
    config = dict(config or {})
    if class_name.startswith("FlowMatch"):
        return "a flow-matching schedule"
    if config.get("prediction_type") == "flow_prediction" or config.get("use_flow_sigmas"):
        return "a flow-matching schedule (prediction_type='flow_prediction', flow sigmas)"
    if config.get("timestep_type") == "continuous":
        return "continuous EDM/Karras timesteps (timestep_type='continuous')"
    return None


def check_scheduler(name: str, current: str, config: dict | None = None) -> None:
    valid = scheduler_names(current, config)
    if name not in valid:
        kind = scheduler_kind(current, config)
        why = f", which runs {kind}" if kind else ""
        raise InvalidRequestError(f"scheduler {name!r} cannot replace this model's {current}{why}; "
                                  f"valid names: {', '.join(valid)}")


def check_scheduler_name(name: str) -> None:
    """Before the model's scheduler is known: ``name`` must at least be a diffusers scheduler class."""
    import diffusers

    cls = getattr(diffusers, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise InvalidRequestError(f"scheduler {name!r} is not a diffusers scheduler class (e.g. "
                                  "UniPCMultistepScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler)")


def swap_scheduler(pipe, name: str, **overrides) -> None:
    import diffusers

    check_scheduler(name, type(pipe.scheduler).__name__, pipe.scheduler.config)
    pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config, **overrides)


# ---------------------------------------------------------------------------------------------
# Progress and output
# ---------------------------------------------------------------------------------------------


class StepReporter:
    """A diffusers ``callback_on_step_end`` that reports ``(step, total)`` and times the steps.

    Diffusers gives no hook between encoding, denoising and decoding, so ``timings`` gets an
    estimate: encode = time before the first step ends less one average step; decode = time after
    the last step; denoise = the rest.
    """

    def __init__(self, callback: ProgressCallback | None, total: int):
        self.callback = callback
        self.total = total
        self.start = time.perf_counter()
        self.step_ends: list[float] = []

    def __call__(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        self.step_ends.append(time.perf_counter())
        if self.callback is not None:
            self.callback(step + 1, self.total)
        return callback_kwargs

    def fill(self, timings: dict) -> None:
        end = time.perf_counter()
        if not self.step_ends:
            timings["pipeline"] = end - self.start
            return
        first, last, n = self.step_ends[0], self.step_ends[-1], len(self.step_ends)
        step = (last - first) / (n - 1) if n > 1 else (first - self.start) / 2
        timings["encode"] = max(0.0, first - self.start - step)
        timings["denoise"] = last - (self.start + timings["encode"])
        timings["decode"] = end - last


def to_uint8_frames(frames) -> np.ndarray:
    """One video of a pipeline's ``output_type="np"`` output -> (T, H, W, 3) uint8."""
    video = np.asarray(frames[0] if isinstance(frames, (list, tuple)) or np.ndim(frames) == 5 else frames)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise RuntimeError(f"unexpected pipeline output of shape {video.shape}")
    return np.clip(np.round(video.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def image_size(image) -> tuple[int, int]:
    """(width, height) of the request's image, after EXIF orientation (validated like any input)."""
    from ..imaging import load_image

    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return int(image.shape[1]), int(image.shape[0])
    return load_image(image).size


def aspect_size(area: int, aspect: float, multiple: int) -> tuple[int, int]:
    """(height, width) with ``height / width = aspect`` and about ``area`` pixels, rounded down to
    ``multiple`` (the Wan recipe: ``round(sqrt(area * aspect)) // mod * mod``)."""
    height = max(multiple, round(math.sqrt(area * aspect)) // multiple * multiple)
    width = max(multiple, round(math.sqrt(area / aspect)) // multiple * multiple)
    return height, width


# ---------------------------------------------------------------------------------------------
# The base backend
# ---------------------------------------------------------------------------------------------


class DiffusersBackend(Backend):
    """A diffusers image-to-video pipeline behind i2v's request vocabulary.

    Subclasses set the class attributes and override ``family_resolve`` (family-specific checks
    and metadata), ``call_kwargs`` (the pipeline's own argument names), and optionally
    ``load_pipeline`` (how components are assembled) / ``active_pipeline`` (which pipeline runs).
    """

    family = ""
    pipeline_class = ""  # the diffusers class used to load and run
    folder_classes: tuple[str, ...] = ()  # model_index.json classes this backend accepts
    supports_last_image = False
    supports_lora = True
    supports_vae_tiling = True
    supports_vae_slicing = True
    lora_aliases: dict[str, str] = {}
    accepts_options = True  # api.load_backend passes offload/vae/lora/scheduler options

    def __init__(self, spec: ModelSpec, device: str, dtype: str | None = None, *, offload: str | None = None,
                 vae_tiling: bool = False, vae_slicing: bool = False, loras=(), scheduler: str | None = None,
                 profile: str | None = None, cache: str | None = None, compile: bool = False,
                 fp8_storage: bool = False, quantize: str | None = None, forward_chunk: bool = False,
                 cfg_cache: bool | int = False, cache_interval: int | None = None):
        from ..acceleration import Acceleration, check_acceleration, profile_acceleration

        super().__init__(spec, device, dtype)
        # Everything below is validated now, before any weights are read. A profile fills only
        # what the caller left unset.
        acc = Acceleration(cache=cache, cache_interval=cache_interval, cfg_cache=cfg_cache, compile=compile,
                           fp8_storage=fp8_storage, quantize=quantize, forward_chunk=forward_chunk)
        self.acceleration, chosen = profile_acceleration(profile, self.family, device, acc)
        check_acceleration(self.acceleration, self.family)
        self.profile = profile
        dtype = dtype or chosen.get("dtype")
        offload = offload or chosen.get("offload")
        vae_tiling = vae_tiling or (chosen.get("vae_tiling", False) and self.supports_vae_tiling)
        vae_slicing = vae_slicing or (chosen.get("vae_slicing", False) and self.supports_vae_slicing)
        self.dtype_name, self.torch_dtype = pick_dtype(dtype, device, spec.extras)
        self.offload = check_offload(offload, device)
        if vae_tiling and not self.supports_vae_tiling:
            raise InvalidRequestError(f"{spec.name}: {self.vae_help('tiling')}")
        if vae_slicing and not self.supports_vae_slicing:
            raise InvalidRequestError(f"{spec.name}: {self.vae_help('slicing')}")
        self.vae_tiling, self.vae_slicing = bool(vae_tiling), bool(vae_slicing)
        if loras and not self.supports_lora:
            raise InvalidRequestError(f"{spec.name} ({self.family}) does not support LoRA adapters")
        self.loras = check_loras(loras, self.lora_aliases)
        self.lora_records: list[dict] = []
        self.folder: Path | None = None
        self.index: dict | None = None
        self.variant: str | None = None  # weights variant ("fp16"), from the folder's file names
        local = Path(spec.source).expanduser()
        if local.is_dir():
            self.folder, self.index = local, check_model_folder(local, self.folder_classes or None)
            self.variant = folder_variant(local, self.index, self.wanted_variant())
        self.scheduler = scheduler
        if scheduler is not None:
            if not isinstance(scheduler, str):
                raise InvalidRequestError(f"scheduler must be a class name, got {scheduler!r}")
            if self.folder is not None:  # a local folder: check against its scheduler before any weights
                self.check_folder_scheduler(self.folder)
            else:  # a hub model: the name now, the model's own scheduler once its configs are here (load)
                check_scheduler_name(scheduler)
        self.active = None
        self.acceleration_notes: list[str] = []
        self._pipe = None
        self.load_seconds = 0.0

    def wanted_variant(self) -> str | None:
        """The registry's weights variant (``"fp16"`` for SVD) when running in the model's own dtype."""
        extras = self.spec.extras
        return extras.get("variant") if self.dtype_name == extras.get("dtype") else None

    def check_folder_scheduler(self, folder: Path) -> None:
        """Refuse ``--scheduler`` when the folder's own scheduler cannot be replaced by it."""
        config = read_config(folder, "scheduler")
        if config.get("_class_name"):
            check_scheduler(self.scheduler, config["_class_name"], config)
        else:
            check_scheduler_name(self.scheduler)

    @classmethod
    def vae_help(cls, what: str) -> str:
        return f"this model's VAE has no {what}"

    # -- loading ----------------------------------------------------------------------------

    @property
    def pipeline(self):
        if self._pipe is None:
            self.load()
        return self._pipe

    def load(self):
        """Read the weights (safetensors only), then apply scheduler, LoRA, VAE, acceleration and offload."""
        from ..acceleration import apply_acceleration

        t0 = time.perf_counter()
        if self.folder is None:
            variant = self.wanted_variant()
            self.folder = local_model_folder(self.spec.source, variant=variant)
            self.index = check_model_folder(self.folder, self.folder_classes or None)
            self.variant = folder_variant(self.folder, self.index, variant)
            if self.scheduler is not None:
                self.check_folder_scheduler(self.folder)
        pipe = self.load_pipeline(self.folder)
        if self.scheduler is not None:
            swap_scheduler(pipe, self.scheduler)
        self.lora_records = load_loras(pipe, self.loras)
        apply_vae_options(pipe, self.vae_tiling, self.vae_slicing)
        self.acceleration_notes = apply_acceleration(pipe, self.acceleration, self.device)
        if self.offload == "auto":
            itemsize = 4 if self.dtype_name == "fp32" else 2
            self.offload = auto_offload(self.device, *weights_bytes(self.folder, self.index or {}, itemsize,
                                                                    self.variant))
        apply_offload(pipe, self.offload, self.device)
        self._pipe = pipe
        self.load_seconds = time.perf_counter() - t0
        return pipe

    def load_pipeline(self, folder: Path):
        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        return cls.from_pretrained(str(folder), **self.load_kwargs())

    def load_kwargs(self) -> dict:
        """``from_pretrained`` keyword arguments: dtype, safetensors only, the variant if any."""
        import diffusers.utils

        # diffusers renamed torch_dtype -> dtype (the old name warns); use whichever this version has
        key = "dtype" if hasattr(diffusers.utils, "_resolve_dtype") else "torch_dtype"
        kwargs = {key: self.torch_dtype, "use_safetensors": True}
        if self.variant:
            kwargs["variant"] = self.variant
        if self.acceleration.quantize:
            from ..acceleration import quantization_config

            kwargs["quantization_config"] = quantization_config(self.acceleration, self.denoiser_name)
        return kwargs

    @property
    def denoiser_name(self) -> str:
        """The pipeline's denoiser component, from model_index.json (read before any weights load)."""
        return "unet" if "unet" in self.index else "transformer"

    # -- resolving --------------------------------------------------------------------------

    def resolve(self, request, notices: list[str]) -> ResolvedSettings:
        from .resolve import resolve_common

        d = self.spec.defaults
        request = self.fill_size(request, notices)
        settings = resolve_common(d, request, notices)
        if d.size_policy == "fixed" and (settings.height, settings.width) != (d.height, d.width):
            raise InvalidRequestError(
                f"{self.spec.name} only generates {d.width}x{d.height} (its positional embeddings are learned for "
                f"that size); got {settings.width}x{settings.height}"
            )
        if getattr(request, "decode_chunk_size", None) is not None and self.family != "svd":
            notices.append("decode_chunk_size is only used by Stable Video Diffusion; ignored")
        extras = settings.extras
        if d.uses_prompt:
            default_negative = self.spec.extras.get("negative_prompt")
            if not settings.negative_prompt and default_negative:
                settings.negative_prompt = default_negative
                notices.append("no negative prompt given; using the model card's default negative prompt")
            extras["prompt_used"] = True
        extras.update(dtype=self.dtype_name, offload=self.offload, vae_tiling=self.vae_tiling,
                      vae_slicing=self.vae_slicing,
                      loras=[{"source": s, "scale": k} for s, k in self.loras],
                      scheduler=self.scheduler, profile=self.profile,
                      acceleration={k: v for k, v in self.acceleration.as_dict().items() if v})
        self.family_resolve(request, settings, notices)
        return settings

    def fill_size(self, request, notices: list[str]):
        """Choose an unset height/width from the model's size policy and the input image."""
        d = self.spec.defaults
        if d.size_policy in ("default", "fixed"):
            return request
        if request.height is not None and request.width is not None:
            return request
        width, height = image_size(request.image)
        aspect = height / width
        if request.height is not None:  # one side given: the other follows the image's aspect ratio
            return replace(request, width=max(1, round(request.height / aspect)))
        if request.width is not None:
            return replace(request, height=max(1, round(request.width * aspect)))
        if d.size_policy == "orient":
            long, short = max(d.height, d.width), min(d.height, d.width)
            h, w = (long, short) if height > width else (short, long) if width > height else (d.height, d.width)
        else:  # "aspect": the default's pixel area at the image's aspect ratio
            h, w = aspect_size(d.height * d.width, aspect, d.size_multiple)
        if (h, w) != (d.height, d.width):
            notices.append(f"size {w}x{h} chosen for the {width}x{height} input (model default {d.width}x{d.height}, "
                           f"{'same orientation' if d.size_policy == 'orient' else 'same pixel area'})")
        return replace(request, height=h, width=w)

    def family_resolve(self, request, settings: ResolvedSettings, notices: list[str]) -> None:
        """Family hook: check family-only values, add family defaults to ``settings.extras``."""
        if settings.motion_strength is not None:
            notices.append(f"motion_strength is not used by {self.spec.name}; describe the motion in the prompt")

    # -- generating -------------------------------------------------------------------------

    def active_pipeline(self, last_image: Image.Image | None):
        """Family hook: the pipeline this request runs on (the loaded one, or one sharing its weights)."""
        return self._pipe

    def call_kwargs(self, settings: ResolvedSettings, image: Image.Image, last_image: Image.Image | None) -> dict:
        """Family hook: the pipeline's ``__call__`` arguments (``self.active`` is the pipeline)."""
        raise NotImplementedError

    def generate(self, settings: ResolvedSettings, image: Image.Image, callback: ProgressCallback | None,
                 timings: dict, show_progress: bool, last_image: Image.Image | None = None) -> np.ndarray:
        import torch

        if self._pipe is None:
            self.load()
            timings["load"] = self.load_seconds
        pipe = self.active = self.active_pipeline(last_image)
        pipe.set_progress_bar_config(disable=not show_progress, leave=False, desc="denoising")
        reporter = StepReporter(callback, settings.num_inference_steps)
        kwargs = self.call_kwargs(settings, image, last_image)
        kwargs.update(num_inference_steps=settings.num_inference_steps, output_type="np",
                      generator=torch.Generator("cpu").manual_seed(settings.seed),
                      callback_on_step_end=reporter)
        if self.acceleration_notes:
            settings.extras["acceleration_notes"] = self.acceleration_notes
        settings.extras.update(offload=self.offload, scheduler=type(pipe.scheduler).__name__,
                               loras=self.lora_records or settings.extras.get("loras", []))
        if self.acceleration.cache or self.acceleration.cfg_cache:
            from ..acceleration import reset_caches

            reset_caches(pipe)
        with torch.inference_mode():
            out = pipe(**kwargs)
        reporter.fill(timings)
        frames = to_uint8_frames(out.frames)
        if len(frames) != settings.num_frames:
            raise RuntimeError(f"{self.pipeline_class} returned {len(frames)} frames for num_frames "
                               f"{settings.num_frames}; please report this")
        return frames
