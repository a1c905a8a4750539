"""``--model org/name[@revision]``: any diffusers image-to-video repository, vetted before its weights
download, run offline from a hub cache the tests lay out themselves (``HF_HOME``, ``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i2v.errors import UnknownModelError, UnsafeModelError
from i2v.hub import parse_hub_id

from .backends.conftest import square_image, tiny_folder  # noqa: F401 (fixtures)
from .backends.diffusers.test_parity import CASES as PARITY_CASES  # every family's tiny folder and a size it runs


def lay_out_hub_cache(hf_home: Path, repo: str, folder: Path, revision: str = "main") -> str:
    """Copy ``folder`` into ``hf_home``'s hub cache as ``repo`` at ``revision``, as huggingface_hub
    keeps downloads (``hub/models--org--name/snapshots/<commit>/`` and ``refs/<revision>``)."""
    commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    return commit


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """This process's huggingface_hub reads the cache under ``tmp_path/hf`` and never goes online."""
    from huggingface_hub import constants

    hf_home = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_home


def test_hub_ids_are_parsed_and_paths_are_not():
    assert parse_hub_id("org/name") == ("org/name", None)
    assert parse_hub_id("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers@main") == ("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "main")
    assert parse_hub_id("org/name@0123abcd") == ("org/name", "0123abcd")
    for text in ("name", "./org/name", "/abs/path", "a/b/c", "org/../x", "org/name@", "~/x", "org/name@a b"):
        assert parse_hub_id(text) is None, text


def test_a_diffusers_family_runs_from_the_hub_cache_as_from_its_folder(offline_hub, tiny_folder, square_image):
    """A tiny SVD repository at a revision: the same defaults and the same frames as its local folder."""
    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.registry import resolve_model

    lay_out_hub_cache(offline_hub, "tiny-org/svd", Path(tiny_folder("svd")), revision="v1")
    spec = resolve_model("tiny-org/svd@v1")
    local = resolve_model(tiny_folder("svd"))
    assert (spec.family, spec.name, spec.source) == ("svd", "tiny-org/svd@v1", "tiny-org/svd@v1")
    assert spec.defaults == local.defaults
    request = dict(image=square_image, num_inference_steps=2, seed=0, height=16, width=16, num_frames=3)
    from_hub = ImageToVideoGenerator("tiny-org/svd@v1", device="cpu").run(GenerationRequest(**request))
    from_folder = ImageToVideoGenerator(tiny_folder("svd"), device="cpu").run(GenerationRequest(**request))
    assert np.array_equal(from_hub.frames, from_folder.frames)
    with pytest.raises(UnknownModelError, match="HF_HUB_OFFLINE"):  # another revision is not cached
        resolve_model("tiny-org/svd@v2")


@pytest.mark.parametrize("name", sorted(PARITY_CASES))
def test_every_family_runs_from_a_hub_id_as_from_its_folder(name, offline_hub, tiny_folder, square_image,
                                                           monkeypatch):
    """Each family's tiny repository, laid out in the hub cache: the same model defaults and the same
    frames through the API as its local folder (offline)."""
    from PIL import Image

    from i2v import GenerationRequest, ImageToVideoGenerator
    from i2v.registry import resolve_model
    monkeypatch.setenv("I2V_COSMOS_NO_GUARDRAIL", "1")  # as the parity test: no cosmos_guardrail here
    repo = f"tiny-org/{name.replace('_', '-')}"
    lay_out_hub_cache(offline_hub, repo, Path(tiny_folder(name)))
    assert resolve_model(repo).defaults == resolve_model(tiny_folder(name)).defaults
    frames, height, width = PARITY_CASES[name]
    image = Image.open(square_image).convert("RGB").resize((width, height))
    request = dict(image=image, prompt="a red ball", num_inference_steps=2, seed=1, num_frames=frames, height=height,
                   width=width, last_image=image if name == "wan-flf" else None)
    from_hub = ImageToVideoGenerator(repo, device="cpu").run(GenerationRequest(**request))
    from_folder = ImageToVideoGenerator(tiny_folder(name), device="cpu").run(GenerationRequest(**request))
    assert from_hub.settings["model_source"] == repo
    assert from_hub.frames.shape[0] == frames and np.array_equal(from_hub.frames, from_folder.frames)


def test_cli_generates_from_a_hub_id_offline(tmp_path, tiny_model_dir, sample_image_path):
    """The embedded model's format from a hub cache, through the CLI in a fresh process (HF_HOME and
    HF_HUB_OFFLINE as a user sets them)."""
    hf_home = tmp_path / "hf"
    lay_out_hub_cache(hf_home, "someone/i2v-tiny-copy", tiny_model_dir)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    run = subprocess.run([sys.executable, "-m", "i2v", "generate", str(sample_image_path), "--model",
                          "someone/i2v-tiny-copy", "--prompt", "the red square moves right", "--num-inference-steps",
                          "2", "--seed", "0", "-o", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["model"] == "someone/i2v-tiny-copy"
    missing = subprocess.run([sys.executable, "-m", "i2v", "generate", str(sample_image_path), "--model",
                              "someone/not-cached", "-o", str(tmp_path / "x.mp4")], env=env, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "not in the local cache" in missing.stderr and not (tmp_path / "x.mp4").exists()


class FakeHub:
    """An online Hub in this process: repositories as folders; it records every file requested."""

    def __init__(self, monkeypatch, tmp_path):
        import huggingface_hub

        self.repos: dict[str, Path] = {}
        self.requested: list[str] = []
        self.snapshots: list[tuple] = []
        hub = self

        def hf_hub_download(repo_id, filename, revision=None, **kwargs):
            hub.requested.append(filename)
            path = hub.repos[repo_id] / filename
            if not path.is_file():
                from huggingface_hub.errors import EntryNotFoundError

                raise EntryNotFoundError(f"{filename} not in {repo_id}")
            return str(path)

        def list_repo_files(self_api, repo_id, revision=None, **kwargs):
            root = hub.repos[repo_id]
            return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]

        def snapshot_download(repo_id, revision=None, allow_patterns=None, ignore_patterns=None, **kwargs):
            hub.snapshots.append((repo_id, allow_patterns))
            return str(hub.repos[repo_id])

        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
        self.tmp = tmp_path

    def add(self, repo: str, source: Path, edit=None) -> None:
        folder = self.tmp / "hub-repos" / repo.replace("/", "--")
        shutil.copytree(source, folder)
        if edit:
            edit(folder)
        self.repos[repo] = folder


def _index_edit(**changes):
    def edit(folder: Path):
        index = json.loads((folder / "model_index.json").read_text())
        index.update(changes)
        (folder / "model_index.json").write_text(json.dumps(index))
    return edit


def _pickle_only_vae(folder: Path):
    for f in (folder / "vae").glob("*.safetensors"):
        f.rename(f.with_name("diffusion_pytorch_model.bin"))


@pytest.mark.parametrize("case,edit,error,match", [
    ("custom-pipeline", _index_edit(_class_name=["my_pipeline", "MyPipeline"]), UnsafeModelError, "custom pipeline"),
    ("foreign-library", _index_edit(vae=["my_lib", "MyVAE"]), UnsafeModelError, "my_lib"),
    ("unknown-class", _index_edit(_class_name="StableDiffusionPipeline"), UnknownModelError, "not supported"),
    ("code-in-repo", lambda f: (f / "pipeline.py").write_text("print('hi')"), UnsafeModelError, "Python code"),
    ("pickle-only", _pickle_only_vae, UnsafeModelError, "pickle"),
])
def test_refusals_come_before_any_weights_download(monkeypatch, tmp_path, tiny_folder, case, edit, error, match):
    from i2v.registry import resolve_model

    hub = FakeHub(monkeypatch, tmp_path)
    hub.add(f"bad/{case}", Path(tiny_folder("svd")), edit)
    with pytest.raises(error, match=match):
        resolve_model(f"bad/{case}")
    assert hub.requested == ["model_index.json"] and hub.snapshots == []  # nothing else was fetched


def test_a_good_repository_fetches_its_configs_first_and_weights_only_at_load(monkeypatch, tmp_path, tiny_folder):
    from i2v.hub import CONFIG_PATTERNS
    from i2v.registry import resolve_model

    hub = FakeHub(monkeypatch, tmp_path)
    hub.add("good/svd", Path(tiny_folder("svd")))
    spec = resolve_model("good/svd")
    assert spec.family == "svd" and hub.snapshots == [("good/svd", CONFIG_PATTERNS)]
    assert not any(p.endswith((".safetensors", ".bin")) for p in CONFIG_PATTERNS)
