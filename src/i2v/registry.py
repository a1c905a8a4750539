"""Model names -> backend loader + verified defaults.

``resolve_model`` accepts a registered name or a local model folder; folders are recognised
by the ``_class_name`` in their ``model_index.json`` (diffusers' own convention).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_MODEL = "i2v-tiny"
WEIGHTS_DIR = Path(__file__).parent / "weights"


class UnknownModelError(ValueError):
    """The model name or folder is not one i2v can run."""


@dataclass(frozen=True)
class ModelDefaults:
    """What a request gets for every field it leaves unset, and the model's size rules."""

    num_frames: int
    height: int
    width: int
    fps: float
    num_inference_steps: int
    guidance_scale: float
    size_multiple: int  # height and width are snapped to a multiple of this
    frame_rule: str  # human-readable rule for num_frames ("any >= 2", "4n+1", ...)
    uses_prompt: bool = True


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # backend module under i2v.backends
    description: str
    source: str  # local folder or hub id
    defaults: ModelDefaults
    extras: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        return {"name": self.name, "family": self.family, "source": self.source, **asdict(self.defaults)}


TINY_DEFAULTS = ModelDefaults(
    num_frames=16, height=128, width=128, fps=8.0, num_inference_steps=20, guidance_scale=3.0,
    size_multiple=32, frame_rule="any >= 2 (trained on 16)",
)

MODELS: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        family="tiny",
        description="i2v's embedded latent video diffusion model (procedural shapes world, 128x128, 16 frames, 8 fps)",
        source=str(WEIGHTS_DIR / DEFAULT_MODEL),
        defaults=TINY_DEFAULTS,
    ),
}

# model_index.json _class_name -> backend family
FOLDER_CLASSES: dict[str, str] = {"I2VPipeline": "tiny"}


def resolve_model(name_or_path: str | Path | None) -> ModelSpec:
    """A registered name, or a local folder holding a model_index.json i2v knows."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    key = str(name_or_path)
    if key in MODELS:
        return MODELS[key]
    path = Path(key).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise UnknownModelError(f"{path} has no model_index.json; expected a diffusers-style model folder")
        try:
            class_name = json.loads(index.read_text()).get("_class_name")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnknownModelError(f"{index} is not valid JSON: {exc}") from exc
        family = FOLDER_CLASSES.get(class_name)
        if family is None:
            raise UnknownModelError(
                f"{path}: pipeline class {class_name!r} is not supported; supported: {sorted(FOLDER_CLASSES)}"
            )
        defaults = MODELS[DEFAULT_MODEL].defaults if family == "tiny" else None
        return ModelSpec(name=path.name, family=family, description=f"local {class_name} folder",
                         source=str(path), defaults=_folder_defaults(path, defaults))
    raise UnknownModelError(
        f"unknown model {key!r}: not a registered name ({', '.join(sorted(MODELS))}) nor a local model folder"
    )


def _folder_defaults(path: Path, base: ModelDefaults) -> ModelDefaults:
    """Defaults of an embedded-model folder: frames and size from its own unet/vae configs."""
    try:
        unet = json.loads((path / "unet" / "config.json").read_text())
        vae = json.loads((path / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnknownModelError(f"{path}: unreadable unet/vae config ({exc})") from exc
    scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0])) - 1)
    size = unet.get("sample_size", 32) * scale
    multiple = scale * unet.get("patch_size", 1) * 2 ** (len(unet.get("block_out_channels", [0])) - 1)
    return ModelDefaults(**{**asdict(base), "num_frames": unet.get("num_frames", base.num_frames),
                            "height": size, "width": size, "size_multiple": multiple})


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())
