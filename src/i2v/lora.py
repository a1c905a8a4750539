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
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from .errors import LoraFileError

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
