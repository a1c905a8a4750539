"""Safe loading of diffusers model folders, before and without loading any weights.

``check_model_folder`` refuses custom code (``pipeline.py``, components from other libraries) and
pickle-only weights *before* anything is loaded; loading itself always passes
``use_safetensors=True``, never ``trust_remote_code`` nor ``custom_pipeline``. The weight sizes
come from safetensors headers, never from the tensors.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from pathlib import Path

from ...errors import UnknownModelError, UnsafeModelError
from ...lora import PICKLE_SUFFIXES
from ...types import ModelDefaults, ModelSpec

SAFE_LIBRARIES = ("diffusers", "transformers")


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
    """True for the libraries a model_index.json may name: diffusers, transformers, i2v's own modules, or
    one of diffusers' own pipeline modules (``"stable_diffusion"`` for SD 1.5's ``StableDiffusionSafetyChecker``), which
    diffusers resolves as ``getattr(diffusers.pipelines, library)`` (``hasattr(pipelines, name)`` in its
    loader). Anything else would be imported as a top-level module: refused."""
    if library in SAFE_LIBRARIES:
        return True
    if isinstance(library, str) and library.startswith("i2v.") and all(p.isidentifier() for p in library.split(".")):
        return True  # i2v's own installed modules (the embedded model's format); nothing from the folder
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
    check_model_index(index, str(path), expected_classes)
    check_file_listing([str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()], index, str(path))
    return index


def check_model_index(index: dict, where: str, expected_classes: tuple[str, ...] | None = None) -> None:
    """Refuse a model_index.json that names a custom pipeline, a class outside ``expected_classes``, or
    a component from a library i2v does not load (``where`` names the folder or repository)."""
    class_name = index.get("_class_name")
    if not isinstance(class_name, str):
        raise UnsafeModelError(f"{where}: model_index.json names a custom pipeline ({class_name!r}); i2v only "
                               "loads diffusers' own pipeline classes")
    if expected_classes is not None and class_name not in expected_classes:
        raise UnknownModelError(f"{where}: pipeline class {class_name!r} is not one of {sorted(expected_classes)}")
    for name in component_names(index):
        library, cls = index[name]
        if library is not None and not is_safe_library(library):
            raise UnsafeModelError(f"{where}: component {name!r} comes from {library!r} ({cls}); i2v only loads "
                                   f"components from {' and '.join(SAFE_LIBRARIES)} or diffusers' own pipeline "
                                   "modules (no custom code)")


def check_file_listing(files: list[str], index: dict, where: str) -> None:
    """Refuse a folder or repository whose files (paths relative to its root, ``/``-separated) hold
    Python code, or a component whose only weights are pickles."""
    files = [f.replace("\\", "/") for f in files]
    code = sorted(f for f in files if f.endswith(".py"))
    if code:
        raise UnsafeModelError(
            f"{where}: the model contains Python code ({', '.join(code[:5])}); i2v never runs code shipped "
            "inside a model (no custom pipelines, no trust_remote_code). Use a stock diffusers model."
        )
    pickles: list[str] = []
    for folder in ["", *component_names(index)]:
        mine = [f for f in files if f.rpartition("/")[0] == folder]
        pickled = [f for f in mine if Path(f).suffix.lower() in PICKLE_SUFFIXES]
        if pickled and not any(f.endswith(".safetensors") for f in mine):
            pickles += pickled
    if pickles:
        raise UnsafeModelError(
            f"{where}: weights are only in pickle format ({', '.join(sorted(pickles)[:5])}); i2v loads safetensors "
            "only, because unpickling a file can run arbitrary code. Convert the weights to .safetensors "
            "(e.g. save_pretrained(..., safe_serialization=True) in a trusted environment) and try again."
        )


def local_model_folder(source: str, variant: str | None = None) -> Path:
    """A local folder for ``source``: the folder itself, or the hub snapshot (``org/name[@revision]``:
    configs, tokenizers and the ``variant``'s *.safetensors only, with huggingface_hub's progress bars)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from diffusers import DiffusionPipeline

    from ...hub import hub_errors, parse_hub_id

    repo, revision = parse_hub_id(source) or (source, None)
    with hub_errors(source):  # never custom code: use_safetensors, and no custom_pipeline
        return Path(DiffusionPipeline.download(repo, revision=revision, use_safetensors=True, variant=variant))


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


def component_weight_files(folder: Path, variant: str | None = None) -> list[Path]:
    """The safetensors files diffusers loads from one component folder: the ``variant`` ones where
    the folder has them, else the plain ones."""
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    kinds = {f: (m["variant"] if (m := _WEIGHT_FILE.match(f.name)) else None) for f in files}
    pick = variant if variant is not None and variant in kinds.values() else None
    return [f for f, kind in kinds.items() if kind == pick]


def safetensors_numels(file: Path) -> list[int]:
    """Element counts of every tensor in a safetensors file, from its checked header."""
    from ...io.safetensors_header import read_header

    return [math.prod(v["shape"]) for v in read_header(file).values()]


def folder_model_spec(path: Path, class_name: str, base: ModelSpec, *, extras: dict | None = None,
                      drop_extras: tuple[str, ...] = (), **overrides) -> ModelSpec:
    """A ModelSpec for a local folder: ``base`` (the family's first registered model) overridden by the
    folder's configs; ``drop_extras``: the base's extras the folder does not inherit."""
    defaults = ModelDefaults(**{**asdict(base.defaults), **overrides})
    merged = {k: v for k, v in base.extras.items() if k not in drop_extras}
    merged.update(extras or {})
    return ModelSpec(name=path.name, family=base.family, description=f"local {class_name} folder", source=str(path),
                     defaults=defaults, extras=merged)


def native_size(family: tuple[int, int], config: tuple[int, int]) -> tuple[int, int]:
    """(height, width): the family default, or the folder's own size when its configs describe a much
    smaller model (tiny/test or distilled models), whose default must be its own trained size."""
    if config[0] * config[1] * 4 <= family[0] * family[1]:
        return config
    return family
