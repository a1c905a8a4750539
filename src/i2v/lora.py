"""LoRA adapters for the denoisers (peft), in diffusers' pipeline LoRA file format.

The file is ``pytorch_lora_weights.safetensors`` with peft keys under the ``unet.`` prefix
(``unet.<module>.lora_A.weight`` / ``lora_B.weight``) and the adapter's ``LoraConfig`` (rank,
alpha, targets) in the safetensors header under ``lora_adapter_metadata`` (keys ``unet.r``,
``unet.lora_alpha``, ...), as diffusers' ``save_lora_weights`` writes it. Written by
``i2v train --lora-rank``; read by ``i2v generate --lora`` (and by diffusers'
``load_lora_adapter(..., prefix="unet")``).

peft is used directly (``inject_adapter_in_model``) rather than through diffusers'
``PeftAdapterMixin``, so the same code serves models without that mixin (SVD's U-Net,
``SpaceTimeUNet``).

Which LoRAs a user asked for (``PATH[:SCALE]``, checked before any weights load) and loading them
onto a pipeline (``load_loras``) live here too, shared by the embedded and the diffusers backends.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidRequestError, LoraFileError

if TYPE_CHECKING:
    import torch

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
LORA_PREFIX = "unet"
METADATA_KEY = "lora_adapter_metadata"
# the attention projections of diffusers' Attention blocks (both denoisers use them)
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(model: torch.nn.Module, rank: int, alpha: float | None = None,
             targets: tuple[str, ...] = DEFAULT_TARGETS, adapter_name: str = "default"):
    """Freeze ``model`` and inject a trainable LoRA of ``rank`` into its attention projections.

    Returns the ``LoraConfig``. The B matrices start at zero: the adapted model starts exactly
    where the base model is."""
    from peft import LoraConfig, inject_adapter_in_model

    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}")
    model.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian", target_modules=list(targets))
    inject_adapter_in_model(config, model, adapter_name=adapter_name)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"no LoRA target ({', '.join(targets)}) found in {type(model).__name__}")
    model._i2v_lora_configs = {**getattr(model, "_i2v_lora_configs", {}), adapter_name: config}
    return config


def save_lora(model: torch.nn.Module, folder: str | Path, adapter_name: str = "default") -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` atomically (temp file + rename)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model._i2v_lora_configs[adapter_name].to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    metadata = {"format": "pt",
                METADATA_KEY: json.dumps({f"{LORA_PREFIX}.{k}": v for k, v in config.items()}, sort_keys=True,
                                         default=str)}
    state = get_peft_model_state_dict(model, adapter_name=adapter_name)
    state = {f"{LORA_PREFIX}.{k}": v.detach().float().contiguous().cpu() for k, v in state.items()}
    path = folder / LORA_WEIGHT_NAME
    tmp = folder / f".{LORA_WEIGHT_NAME}.tmp"
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_lora(model: torch.nn.Module, file: str | Path, adapter_name: str) -> None:
    """Inject the adapter stored in ``file`` into ``model`` (rank and alpha from its metadata)."""
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors import safe_open

    with safe_open(str(file), "pt") as f:
        header = f.metadata() or {}
        state = {k[len(LORA_PREFIX) + 1:]: f.get_tensor(k) for k in f.keys() if k.startswith(LORA_PREFIX + ".")}
    if not state:
        raise LoraFileError(f"{file}: no '{LORA_PREFIX}.' LoRA weights in this file")
    if METADATA_KEY in header:
        meta = json.loads(header[METADATA_KEY])
        meta = {k[len(LORA_PREFIX) + 1:]: v for k, v in meta.items() if k.startswith(LORA_PREFIX + ".")}
        fields = set(LoraConfig.__dataclass_fields__)
        config = LoraConfig(**{k: v for k, v in meta.items() if k in fields and k not in ("peft_type", "task_type")})
    else:  # no metadata: rank from the weights, alpha = rank (diffusers does the same)
        ranks = {v.shape[0] for k, v in state.items() if ".lora_A." in k}
        targets = sorted({k.split(".lora_A.")[0] for k in state if ".lora_A." in k})
        config = LoraConfig(r=max(ranks), lora_alpha=max(ranks), target_modules=targets)
    inject_adapter_in_model(config, model, adapter_name=adapter_name)
    result = set_peft_model_state_dict(model, state, adapter_name=adapter_name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if unexpected:
        raise LoraFileError(f"{file}: weights for modules this model lacks, e.g. {unexpected[:3]}")


def set_lora_scales(model: torch.nn.Module, scales: dict[str, float]) -> None:
    """Activate the named adapters together, each at its scale (1.0 = as trained)."""
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            module.set_adapter(list(scales))
            for name, scale in scales.items():
                if name in module.scaling:
                    module.set_scale(name, scale)


# ---------------------------------------------------------------------------------------------
# The LoRAs a user asks for: PATH[:SCALE] entries, checked before loading, loaded onto a pipeline
# ---------------------------------------------------------------------------------------------

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


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


HUB_PREFIX = "hf:"  # going online is explicit: a hub LoRA is named "hf:org/name" (or by a family's alias)
# "transformer_2:PATH": into a two-expert model's second (low-noise) transformer (Wan 2.2 A14B)
SECOND_EXPERT = "transformer_2:"


def split_target(source: str) -> tuple[str, str | None]:
    """``"transformer_2:x.safetensors"`` -> ("x.safetensors", "transformer_2"); others -> (source, None)."""
    if source.startswith(SECOND_EXPERT):
        return source[len(SECOND_EXPERT):], "transformer_2"
    return source, None


def check_lora_source(source: str, aliases: dict[str, str | tuple[str, ...]]) -> str | tuple[str, ...]:
    """Validate a LoRA source without loading it: a local ``.safetensors`` file, a folder with exactly
    one, a named alias (one source, or a two-expert model's pair), ``hf:org/name`` (a hub repo,
    downloaded as safetensors at load time) or ``hf:org/name/path/file.safetensors`` (one file of it);
    ``transformer_2:`` before any of these loads it into a second expert. A missing local path is an
    error, never a hub id: a typo must not download someone's repo."""
    if source in aliases:
        return aliases[source]
    path_part, target = split_target(source)
    if target is not None:
        checked = check_lora_source(path_part, {})
        return SECOND_EXPERT + checked
    if source.startswith(HUB_PREFIX):
        repo = source[len(HUB_PREFIX):]
        parts = repo.split("/")
        single_file = len(parts) > 2 and repo.endswith(".safetensors")
        if (len(parts) != 2 and not single_file) or repo.startswith(("/", ".", "~")) or repo.endswith("/") \
                or ".." in parts:
            raise InvalidRequestError(f"LoRA {source}: a hub LoRA is hf:ORG/NAME or hf:ORG/NAME/PATH.safetensors")
        return repo
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
    hint = f"; to download the hub repo {source}, write {HUB_PREFIX}{source}" if source.count("/") == 1 else ""
    raise InvalidRequestError(f"LoRA {source}: no such file or folder (expected PATH.safetensors[:SCALE], a folder, "
                              f"{HUB_PREFIX}ORG/NAME{', or one of ' + ', '.join(sorted(aliases)) if aliases else ''})"
                              f"{hint}")


def check_loras(loras, aliases: dict[str, str | tuple[str, ...]]) -> list[tuple[str, float]]:
    """``PATH[:SCALE]`` entries -> validated (source, scale) pairs, before any weights load (an alias
    of a two-expert pair gives two)."""
    checked = []
    for src, scale in (parse_lora(x) for x in (loras or ())):
        found = check_lora_source(src, aliases)
        checked += [(one, scale) for one in ((found,) if isinstance(found, str) else found)]
    return checked


def _lora_file(source: str) -> str:
    if Path(source).is_file():
        return source
    from huggingface_hub import HfApi, hf_hub_download

    parts = source.split("/")
    try:
        if len(parts) > 2:  # org/name/path/in/repo.safetensors: that one file
            return hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]))
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
        path_part, target = split_target(source)
        if target is not None and getattr(pipe, target, None) is None:
            raise InvalidRequestError(f"LoRA {source}: {type(pipe).__name__} has no {target} (only two-expert "
                                      "models such as Wan 2.2 A14B have one)")
        file = Path(_lora_file(path_part))
        if file.suffix.lower() != ".safetensors":
            raise InvalidRequestError(f"LoRA {source}: expected a .safetensors file, got {file.name}")
        name = f"lora{i}"
        try:
            if denoiser is not None:  # keys under "unet.", as diffusers' pipeline LoRA files have them
                load_lora(denoiser, file, adapter_name=name)
            else:  # diffusers remaps other layouts (Kohya, lightx2v/Lightning "diffusion_model." keys) itself
                extra = {"load_into_transformer_2": True} if target == "transformer_2" else {}
                pipe.load_lora_weights(str(file.parent), weight_name=file.name, use_safetensors=True,
                                       adapter_name=name, **extra)
        except (ValueError, KeyError, RuntimeError, SafetensorError) as exc:  # LoraFileError is a ValueError
            raise InvalidRequestError(f"LoRA {source}: does not fit {type(pipe).__name__} ({exc})") from exc
        names.append(name)
        scales.append(scale)
        records.append({"source": source, "scale": scale})
    if denoiser is not None:
        set_lora_scales(denoiser, dict(zip(names, scales)))
    else:
        pipe.set_adapters(names, adapter_weights=scales)
    return records
