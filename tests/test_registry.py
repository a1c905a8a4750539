"""The registry derives everything from the backends' Family descriptors: adding a family is one module."""

from __future__ import annotations

import sys
import textwrap

import pytest

from i2v import registry
from i2v.acceleration import Acceleration, check_acceleration
from i2v.errors import InvalidRequestError, UnknownModelError
from i2v.memory import memory_options

NEW_FAMILY = '''
from i2v.backends.base import Family
from i2v.backends.diffusers.base import DiffusersBackend
from i2v.types import ModelDefaults, ModelSpec

class NewBackend(DiffusersBackend):
    family = Family(
        name="newfam",
        models=(ModelSpec(name="newfam-1b", family="newfam", description="a new family", source="org/newfam-1b",
                          defaults=ModelDefaults(num_frames=9, height=64, width=64, fps=8.0, num_inference_steps=4,
                                                 guidance_scale=2.0, size_multiple=16, frame_rule="4n+1",
                                                 frame_step=4, frame_offset=1, min_frames=5)),),
        pipeline_classes=("NewImageToVideoPipeline",),
        caches=("pab",), speed_cache="pab", inputs=frozenset({"last_image"}),
        memory_options=frozenset({"offload"}),
    )
    pipeline_class = "NewImageToVideoPipeline"
'''


@pytest.fixture
def new_family(tmp_path, monkeypatch):
    """A package with one new backend module, added to the packages the registry searches."""
    package = tmp_path / "extra_backends"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "newfam.py").write_text(textwrap.dedent(NEW_FAMILY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BACKEND_PACKAGES", registry.BACKEND_PACKAGES + ("extra_backends",))
    for cached in (registry.families, registry._models, registry._folder_classes):
        cached.cache_clear()
    yield
    for cached in (registry.families, registry._models, registry._folder_classes):
        cached.cache_clear()
    for name in [m for m in sys.modules if m.startswith("extra_backends")]:
        del sys.modules[name]


def test_every_model_belongs_to_a_declared_family_once():
    families = registry.families()
    assert list(families)[0] == "tiny"  # the embedded model first
    names = [spec.name for cls in families.values() for spec in cls.family.models]
    assert len(names) == len(set(names)) == len(registry.list_models())
    for name, cls in families.items():
        assert cls.family.name == name and all(spec.family == name for spec in cls.family.models)
        assert all(registry.FOLDER_CLASSES[c] == name for c in cls.family.pipeline_classes)


def test_a_new_family_module_is_all_it_takes(new_family, tmp_path):
    spec = registry.resolve_model("newfam-1b")
    assert spec.family == "newfam" and registry.resolve_model("org/newfam-1b") is spec
    assert registry.FOLDER_CLASSES["NewImageToVideoPipeline"] == "newfam"
    assert memory_options(spec) == {"offload"}
    check_acceleration(Acceleration(cache="pab"), registry.backend_class("newfam").family)
    with pytest.raises(InvalidRequestError, match="does not run on newfam"):
        check_acceleration(Acceleration(cache="fbcache"), registry.backend_class("newfam").family)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "NewImageToVideoPipeline"}')
    with pytest.raises(NotImplementedError):  # found by its class; the family module reads folders
        registry.resolve_model(str(folder))


def test_a_registered_models_hub_id_names_it():
    """``ImageToVideoGenerator(model_name="stabilityai/stable-video-diffusion-img2vid")`` runs ``svd``."""
    assert registry.resolve_model("stabilityai/stable-video-diffusion-img2vid").name == "svd"
    with pytest.raises(UnknownModelError, match="not a registered name"):
        registry.resolve_model("unknown-model")
    with pytest.raises(UnknownModelError, match="not in the local cache"):  # any other hub id: looked up (offline)
        registry.resolve_model("someone/unknown-model")


def test_the_registry_loads_no_torch():
    import subprocess

    code = ("import sys, i2v.registry as r; r.list_models(); "
            "print(*(m in sys.modules for m in ('torch', 'diffusers', 'numpy', 'PIL')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"] * 4
