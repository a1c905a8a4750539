"""A fake Debian wallpaper package and a fake library folder built in tmp_path (no real packages needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2v.world.photos.library_images import LibraryImage, SkippedImage
from i2v.world.photos.procedural import fractal_noise
from i2v.world.photos.sources import DebianPackage, LibraryImages, PackageInfo

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake-wallpapers

Files: *
Copyright: 2020 Fake Artists
License: GPL-2+

Files: special.jpg
Copyright: 2021 Jane Doe
License: CC-BY-SA-4.0

Files: debian/*
Copyright: 2020 Packager
License: GPL-2+
"""


def photo(seed: int, height: int = 256, width: int = 320) -> np.ndarray:
    """(H, W, 3) uint8 with photo-like statistics."""
    return fractal_noise(seed, height, width)


def flat_graphic(height: int = 256, width: int = 320) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = (30, 90, 160)
    img[height // 3:, : width // 2] = (240, 200, 40)
    return img


def save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(image).save(path)
    return path


@pytest.fixture
def fake_package(tmp_path):
    """A wallpaper package laid out like the real ones: KDE folders, GNOME -d/-l pairs, loose files."""
    root = tmp_path / "pkg"
    files = [
        # KDE layout: one picture in two sizes plus a dark variant and a preview thumbnail
        save(root / "wallpapers/Lake/contents/images/320x256.png", photo(1)),
        save(root / "wallpapers/Lake/contents/images/640x512.png", photo(1, 512, 640)),
        save(root / "wallpapers/Lake/contents/images_dark/320x256.png", photo(2)),
        save(root / "wallpapers/Lake/contents/screenshot.png", photo(1, 64, 80)),
        # GNOME layout: dark and light renderings of one picture
        save(root / "backgrounds/hills-d.png", photo(3)),
        save(root / "backgrounds/hills-l.png", photo(4)),
        save(root / "backgrounds/special.jpg", photo(5)),
        save(root / "backgrounds/flat.png", flat_graphic()),
        save(root / "backgrounds/tiny.png", photo(6, 64, 80)),
    ]
    for k in range(7, 15):  # more pictures so that the source has a held-out part
        files.append(save(root / f"backgrounds/scene{k}.jpg", photo(k)))
    svg = root / "backgrounds/vector.svg"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    link = root / "wallpapers/Lake/contents/images/160x128.png"
    os.symlink("640x512.png", link)
    dup = root / "backgrounds/zz-copy.jpg"  # identical bytes, listed after the original
    dup.write_bytes((root / "backgrounds/special.jpg").read_bytes())
    files += [svg, link, dup, root / "backgrounds/README"]
    (root / "backgrounds/README").write_text("not an image")
    doc = tmp_path / "doc"
    (doc / "fake-wallpapers").mkdir(parents=True)
    (doc / "fake-wallpapers/copyright").write_text(COPYRIGHT)
    info = PackageInfo("1.0-1", tuple(sorted(files)))
    return DebianPackage("fake-wallpapers", doc_root=doc,
                         query=lambda name: info if name == "fake-wallpapers" else None)


@pytest.fixture
def fake_library(tmp_path):
    folder = tmp_path / "lib/data"
    save(folder / "cat.png", photo(20))
    save(folder / "dog.jpg", photo(21))
    save(folder / "chart.png", flat_graphic())
    save(folder / "unknown.png", photo(22))
    photos = (LibraryImage("cat", "cat.png", "CC0-1.0", "A. Photographer"),
              LibraryImage("dog", "dog.jpg", "public-domain", "B. Photographer"),
              LibraryImage("gone", "gone.png", "CC0-1.0", "nobody"))
    skipped = (SkippedImage("chart.png", "synthetic"),)
    return LibraryImages("fake-lib", "fakelib", "data", photos, skipped, data_dir=folder)


@pytest.fixture
def missing_package():
    return DebianPackage("not-installed-wallpapers", query=lambda name: None)
