"""Model names -> backend families, derived from the backends' ``Family`` descriptors.

Every backend module (``i2v.backends.tiny`` and each module of ``i2v.backends.diffusers``) declares
its family once; this module only collects them. ``resolve_model`` accepts a registered name, the
hub id a registered model is downloaded from, or a local model folder; folders are recognised by
the ``_class_name`` in their ``model_index.json`` (diffusers' own convention).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import cache
from pathlib import Path

from .errors import UnknownModelError
from .types import ModelSpec

DEFAULT_MODEL = "i2v-photo"
# The packages whose modules declare backend families (one family per module).
BACKEND_PACKAGES = ("i2v.backends", "i2v.backends.diffusers")


@cache
def families() -> dict[str, type]:
    """Family name -> backend class, for every backend module, in their ``Family.order`` (the order
    ``i2v models`` lists them). Importing them loads no weights and no torch."""
    from .backends.base import Backend

    found: dict[str, type] = {}
    for package_name in BACKEND_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.ispkg:
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Backend) and obj.__module__ == module.__name__
                        and "family" in vars(obj)):
                    if obj.family.name in found:
                        raise RuntimeError(f"family {obj.family.name!r} is declared twice")
                    found[obj.family.name] = obj
    return dict(sorted(found.items(), key=lambda item: (item[1].family.order, item[0])))


def backend_class(family: str) -> type:
    return families()[family]


@cache
def _models() -> dict[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for cls in families().values():
        for spec in cls.family.models:
            if spec.name in models:
                raise RuntimeError(f"model name {spec.name!r} is registered twice")
            models[spec.name] = spec
    return models


@cache
def _folder_classes() -> dict[str, str]:
    """model_index.json ``_class_name`` -> family."""
    return {name: cls.family.name for cls in families().values() for name in cls.family.pipeline_classes}


def __getattr__(name: str):  # MODELS and FOLDER_CLASSES are derived on first use, not at import
    if name == "MODELS":
        return _models()
    if name == "FOLDER_CLASSES":
        return _folder_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_models() -> list[ModelSpec]:
    return list(_models().values())


def resolve_model(name_or_path: str | Path | None) -> ModelSpec:
    """A registered name, a local folder holding a model_index.json i2v knows, or a hub id
    (``org/name[@revision]``: a registered model's, or any repository of a pipeline class i2v runs)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    key = str(name_or_path)
    models = _models()
    if key in models:
        return models[key]
    path = Path(key).expanduser()
    if path.is_dir():
        return folder_model(path)
    by_source = [spec for spec in models.values() if spec.source == key]
    if by_source:  # "stabilityai/stable-video-diffusion-img2vid" is the registered "svd"
        return by_source[0]
    from .hub import is_hub_id

    if is_hub_id(key):  # any diffusers image-to-video repository: vetted before its weights download
        return hub_model(key)
    raise UnknownModelError(
        f"unknown model {key!r}: not a registered name ({', '.join(sorted(models))}), a hub id (org/name[@revision]), "
        "nor a local model folder"
    )


def folder_model(path: Path) -> ModelSpec:
    """The ModelSpec of a local folder, by its pipeline class; its family's backend reads its configs."""
    index = path / "model_index.json"
    if not index.is_file():
        raise UnknownModelError(f"{path} has no model_index.json; expected a diffusers-style model folder")
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnknownModelError(f"{index} is not valid JSON: {exc}") from exc
    classes = _folder_classes()
    family = classes.get(class_name) if isinstance(class_name, str) else None  # a list: custom code
    if family is None:
        raise UnknownModelError(f"{path}: pipeline class {class_name!r} is not supported; supported: {sorted(classes)}")
    return backend_class(family).folder_spec(path, class_name)


def hub_model(text: str) -> ModelSpec:
    """The ModelSpec of a hub repository, vetted and with its configs fetched; weights come at load."""
    import json
    from dataclasses import replace

    from huggingface_hub import hf_hub_download, snapshot_download

    from .backends.diffusers.loading import check_file_listing, check_model_index
    from .hub import CONFIG_PATTERNS, hub_errors, parse_hub_id, repo_files

    parsed = parse_hub_id(text)
    if parsed is None:
        raise UnknownModelError(f"{text!r} is not a hub id (org/name or org/name@revision)")
    repo, revision = parsed
    with hub_errors(text):
        index_file = hf_hub_download(repo, "model_index.json", revision=revision)
        try:
            index = json.loads(Path(index_file).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnknownModelError(f"{text}: model_index.json is not valid JSON: {exc}") from exc
        check_model_index(index, text)  # custom pipelines and foreign libraries, before anything else
        class_name = index["_class_name"]
        family = _folder_classes().get(class_name)
        if family is None:
            raise UnknownModelError(f"{text}: pipeline class {class_name!r} is not supported; supported: "
                                    f"{sorted(_folder_classes())}")
        files = repo_files(repo, revision)
        if files is not None:
            check_file_listing(files, index, text)
        small = backend_class(family).family.hub_downloads_everything  # the embedded family: a few MB
        folder = Path(snapshot_download(repo, revision=revision,
                                        allow_patterns=None if small else CONFIG_PATTERNS,
                                        ignore_patterns=["*.py", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl"]))
    spec = backend_class(family).folder_spec(folder, class_name)
    source = str(folder) if small else text
    return replace(spec, name=text, source=source, description=f"{class_name} from the Hub ({repo})")
