import json
import os

import pytest

from i2v.world.photos import sources as sources_module
from i2v.world.photos import store
from i2v.world.photos.sources import DEBIAN_PACKAGES, default_sources, dpkg_query, gather_photos, main


def _by_path(manifest, key="images"):
    return {r["original_path"]: r for r in manifest[key]}


def _package_root(package) -> str:
    return str(package.query(package.name).files[0]).split("/backgrounds/")[0]


def test_manifest_lists_every_kept_file_with_its_facts(tmp_path, fake_package, fake_library):
    out = tmp_path / "out"
    manifest = gather_photos(out, [fake_package, fake_library])
    assert json.loads((out / "manifest.json").read_text()) == manifest
    images = manifest["images"]
    for r in images:
        assert (out / r["file"]).is_file() and r["file"].startswith(r["split"] + "/")
        assert store.sha256_file(out / r["file"]) == r["sha256"]
        assert r["split"] in ("train", "heldout")
        for key in ("source", "original_path", "licence", "licence_origin", "width", "height", "source_sha256"):
            assert r[key] not in (None, "")
        with store.Image.open(out / r["file"]) as im:
            assert im.size == (r["width"], r["height"]) and im.mode == "RGB"
    kept = _by_path(manifest)
    root = _package_root(fake_package)
    # the largest size of the KDE picture, and its dark variant; both GNOME renderings
    assert f"{root}/wallpapers/Lake/contents/images/640x512.png" in kept
    assert f"{root}/wallpapers/Lake/contents/images_dark/320x256.png" in kept
    assert {kept[f"{root}/backgrounds/hills-{v}.png"]["variant"] for v in "dl"} == {"dark", "light"}
    # per-file licence where the copyright file gives one, else the package licence
    special = kept[f"{root}/backgrounds/special.jpg"]
    assert special["licence"] == "CC-BY-SA-4.0" and "Jane Doe" in special["copyright"]
    assert kept[f"{root}/backgrounds/scene7.jpg"]["licence"] == "GPL-2+"
    assert "Files: *" in kept[f"{root}/backgrounds/scene7.jpg"]["licence_origin"]
    assert kept["fakelib/data/cat.png"]["licence"] == "CC0-1.0"
    assert kept["fakelib/data/cat.png"]["copyright"] == "A. Photographer"
    # counts agree with the records
    assert manifest["counts"]["train"] + manifest["counts"]["heldout"] == len(images)
    summary = {s["name"]: s for s in manifest["sources"]}
    assert summary["fake-wallpapers"]["version"] == "1.0-1"
    assert summary["fake-wallpapers"]["counts"]["heldout"] >= 2  # 11 pictures: about 12.5%, at least two


def test_images_are_downscaled_to_max_side(tmp_path, fake_package):
    manifest = gather_photos(tmp_path / "out", [fake_package], max_side=400)
    lake = next(r for r in manifest["images"] if r["original_path"].endswith("images/640x512.png"))
    assert (lake["original_width"], lake["original_height"]) == (640, 512)
    assert (lake["width"], lake["height"]) == (400, 320)
    assert all(max(r["width"], r["height"]) <= 400 for r in manifest["images"])


def test_files_left_out_are_listed_with_the_reason(tmp_path, fake_package, fake_library):
    manifest = gather_photos(tmp_path / "out", [fake_package, fake_library])
    reasons = {os.path.basename(e["original_path"]): e["reason"] for e in manifest["excluded"]}
    assert reasons["vector.svg"] == "vector art (SVG)"
    assert reasons["160x128.png"].startswith("symlink to")
    assert reasons["screenshot.png"] == "preview thumbnail"
    assert reasons["320x256.png"].startswith("another size or crop of")  # the smaller Lake image
    assert reasons["zz-copy.jpg"].startswith("identical to") and reasons["zz-copy.jpg"].endswith("special.jpg")
    assert reasons["flat.png"].startswith("flat graphic: gradient entropy")
    assert reasons["tiny.png"].startswith("too small")
    assert reasons["chart.png"] == "synthetic"
    assert reasons["gone.png"] == "not in this version"
    assert reasons["unknown.png"].startswith("not among the reviewed")
    assert "README" not in reasons  # not an image: not a candidate at all


def test_split_is_by_picture_and_no_image_is_in_both(tmp_path, fake_package, fake_library):
    manifest = gather_photos(tmp_path / "out", [fake_package, fake_library])
    split_of_group = {}
    for r in manifest["images"]:
        assert split_of_group.setdefault((r["source"], r["group"]), r["split"]) == r["split"]
    in_split = {s: [r for r in manifest["images"] if r["split"] == s] for s in ("train", "heldout")}
    assert in_split["heldout"] and in_split["train"]
    for key in ("sha256", "source_sha256"):
        assert not {r[key] for r in in_split["train"]} & {r[key] for r in in_split["heldout"]}


def test_split_is_the_same_in_another_folder_and_order(tmp_path, fake_package, fake_library):
    a = gather_photos(tmp_path / "a", [fake_package, fake_library])
    b = gather_photos(tmp_path / "b", [fake_library, fake_package])
    assert {r["file"]: r["split"] for r in a["images"]} == {r["file"]: r["split"] for r in b["images"]}
    assert {r["file"]: r["sha256"] for r in a["images"]} == {r["file"]: r["sha256"] for r in b["images"]}


def test_rerun_rewrites_nothing(tmp_path, fake_package, fake_library, monkeypatch):
    out = tmp_path / "out"
    first = gather_photos(out, [fake_package, fake_library])
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    def forbidden(*args, **kwargs):
        raise AssertionError("an up-to-date file was decoded or written again")

    monkeypatch.setattr(sources_module, "load_rgb", forbidden)
    monkeypatch.setattr(sources_module, "write_atomic", forbidden)
    monkeypatch.setattr(sources_module, "write_manifest", forbidden)
    second = gather_photos(out, [fake_package, fake_library])
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_rerun_repairs_a_damaged_file_and_removes_stale_ones(tmp_path, fake_package, fake_library):
    out = tmp_path / "out"
    first = gather_photos(out, [fake_package, fake_library])
    victim = out / first["images"][0]["file"]
    victim.write_bytes(b"truncated")
    stale = out / "heldout" / "old-source--gone.jpg"
    stale.write_bytes(b"from an earlier run")
    leftover = out / "train" / ".x.jpg.abc.tmp"
    leftover.write_bytes(b"crashed write")
    (out / "train" / "notes.txt").write_text("not ours")
    second = gather_photos(out, [fake_package, fake_library])
    assert second == first
    assert store.sha256_file(victim) == first["images"][0]["sha256"]
    assert not stale.exists() and not leftover.exists()
    assert (out / "train" / "notes.txt").exists()  # only files the gatherer could have written are removed


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "file.bin"
    store.write_atomic(target, b"old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(OSError):
        store.write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left behind


def test_an_interrupted_gathering_leaves_no_partial_image(tmp_path, fake_package, monkeypatch):
    real_replace = os.replace
    calls = []

    def crash_on_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        gather_photos(tmp_path / "out", [fake_package])
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(written) == 2 and not any(p.name.endswith(".tmp") for p in written)
    assert not (tmp_path / "out" / "manifest.json").exists()
    monkeypatch.setattr(store.os, "replace", real_replace)
    manifest = gather_photos(tmp_path / "out", [fake_package])  # the next run completes the set
    assert all((tmp_path / "out" / r["file"]).is_file() for r in manifest["images"])


def test_a_missing_package_is_reported_and_skipped(tmp_path, fake_library, missing_package):
    messages = []
    manifest = gather_photos(tmp_path / "out", [missing_package, fake_library], progress=messages.append)
    summary = {s["name"]: s for s in manifest["sources"]}["not-installed-wallpapers"]
    assert summary["status"] == "missing" and "not installed" in summary["note"]
    assert summary["counts"] == {"train": 0, "heldout": 0, "excluded": 0}
    assert any("not-installed-wallpapers is not installed" in m for m in messages)
    assert {r["source"] for r in manifest["images"]} == {"fake-lib"}


def test_command_line_prints_counts(tmp_path, fake_package, fake_library, monkeypatch, capsys):
    monkeypatch.setattr(sources_module, "default_sources", lambda: [fake_package, fake_library])
    assert main(["--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "fake-wallpapers" in printed and "MiB on disk" in printed
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_the_default_sources_are_exactly_the_allowed_ones():
    names = [s.name for s in default_sources()]
    assert names == [*DEBIAN_PACKAGES, "scikit-image", "scikit-learn"]


def test_real_packages_list_with_licences():
    """The installed wallpaper packages (skipped where none is): listing and licences, no decoding."""
    installed = [p for p in DEBIAN_PACKAGES if dpkg_query(p) is not None]
    if not installed:
        pytest.skip("none of the wallpaper packages is installed")
    for source in default_sources():
        if source.name not in installed:
            continue
        listing = source.list()
        assert listing.missing is None and listing.version
        for c in listing.candidates:
            assert c.licence != "unknown", c.original_path
            assert c.path.is_file() and not c.path.is_symlink()
        assert all(e["reason"] for e in listing.excluded)
