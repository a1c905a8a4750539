"""Gather the photographs the embedded model may train on, with licences, a split and a manifest.

The allowed sources, and no others (other photographs are kept for judging the model):

- the Debian packages ``plasma-workspace-wallpapers``, ``ukui-wallpapers``, ``gnome-backgrounds``
  and ``lomiri-wallpapers`` (files listed by ``dpkg -L``; licences from their copyright files);
- the photographs among the sample images bundled in scikit-image and scikit-learn.

Nothing is downloaded. A package that is not installed is reported and skipped (``--install``
installs it with apt-get when run as root). Each kept picture is decoded (EXIF-transposed, RGB),
downscaled to at most 2048 pixels on its long side and written as a high-quality JPEG to
``OUT/train/`` or ``OUT/heldout/``; ``OUT/manifest.json`` lists every kept file (source, original
path, licence, size, sha256, split) and every file left out with the reason. Re-running is
idempotent: unchanged files are neither decoded nor rewritten, and every write is atomic.

    python -m i2v.world.photos.sources --out data/photos     # or: make photos
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .library_images import SKIMAGE_PHOTOS, SKIMAGE_SKIPPED, SKLEARN_PHOTOS, SKLEARN_SKIPPED, LibraryImage, SkippedImage
from .licences import CopyrightFile
from .photo_filter import ANALYSIS_SIDE, MIN_GRADIENT_ENTROPY, MIN_SIDE, exclusion_reason, gradient_entropy
from .splits import HELDOUT_FRACTION, SPLITS, assign_splits
from .store import (
    JPEG_QUALITY,
    MANIFEST_VERSION,
    MAX_SIDE,
    encode_jpeg,
    image_size,
    load_rgb,
    read_manifest,
    sha256_bytes,
    sha256_file,
    write_atomic,
    write_manifest,
)

DEBIAN_PACKAGES = ("plasma-workspace-wallpapers", "ukui-wallpapers", "gnome-backgrounds", "lomiri-wallpapers")
DEFAULT_OUT = Path("data/photos")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
VECTOR_SUFFIXES = {".svg", ".svgz"}

Progress = Callable[[str], None]


# ---- what a source lists -----------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One image file a source offers."""

    source: str
    group: str  # the picture: variants and sizes of one picture share a group (and so a split)
    variant: str  # "" or "dark" / "light"
    path: Path  # where to read it
    original_path: str  # as recorded: absolute for packages, inside the library for libraries
    licence: str
    copyright: str  # copyright holders or credit
    licence_origin: str  # where the licence was read


@dataclass
class Listing:
    source: str
    kind: str  # "debian-package" | "python-library"
    version: str | None
    candidates: list[Candidate] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)  # {original_path, reason}
    missing: str | None = None  # why the source offered nothing


class PhotoSource(Protocol):
    name: str

    def list(self) -> Listing: ...


# ---- Debian packages ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PackageInfo:
    version: str
    files: tuple[Path, ...]


def dpkg_query(package: str) -> PackageInfo | None:
    """The installed version and file list of a Debian package; None when it is not installed."""
    try:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                                capture_output=True, text=True, check=False)
    except FileNotFoundError:  # not a Debian system
        return None
    state, _, version = status.stdout.partition("\t")
    if status.returncode != 0 or not state.endswith("install ok installed"):
        return None
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False).stdout
    return PackageInfo(version.strip(), tuple(Path(line) for line in listed.splitlines() if line.strip()))


_VARIANT_SUFFIX = re.compile(r"(.+?)[-_](d|l|dark|light)")
_VARIANTS = {"d": "dark", "l": "light", "dark": "dark", "light": "light"}


def wallpaper_group(path: Path) -> tuple[str, str]:
    """(picture, variant) of a wallpaper file, following each desktop's layout.

    KDE: ``<Name>/contents/images[_dark]/<W>x<H>.<ext>`` (one picture in several sizes and a dark
    variant). GNOME: ``<name>-d.webp`` / ``<name>-l.webp`` (dark and light renderings). Otherwise
    the file is its own picture.
    """
    parts = path.parts
    if "contents" in parts[:-1]:
        i = parts.index("contents")
        variant = "dark" if parts[i + 1] == "images_dark" else ""
        return parts[i - 1], variant
    m = _VARIANT_SUFFIX.fullmatch(path.stem)
    if m:
        return m.group(1), _VARIANTS[m.group(2)]
    return path.stem, ""


def _is_preview(path: Path) -> bool:
    return "contents" in path.parts and path.stem == "screenshot"  # KDE's thumbnail of the wallpaper


@dataclass(frozen=True)
class DebianPackage:
    """Image files of one installed Debian package; licences from /usr/share/doc/<name>/copyright."""

    name: str
    doc_root: Path = Path("/usr/share/doc")
    query: Callable[[str], PackageInfo | None] = dpkg_query
    kind: str = "debian-package"

    def list(self) -> Listing:
        info = self.query(self.name)
        if info is None:
            return Listing(self.name, self.kind, None, missing=(
                f"Debian package {self.name} is not installed: skipped "
                f"(apt-get install -y --no-install-recommends {self.name}, or run with --install as root)"))
        out = Listing(self.name, self.kind, info.version)
        licences = CopyrightFile(self.doc_root / self.name)
        for path in sorted(info.files):
            suffix = path.suffix.lower()
            reason = None
            if suffix in VECTOR_SUFFIXES:
                reason = "vector art (SVG)"
            elif suffix not in IMAGE_SUFFIXES:
                continue
            elif path.is_symlink():
                reason = f"symlink to {os.path.realpath(path)}"
            elif not path.is_file():
                reason = "listed by dpkg but not on disk"
            elif _is_preview(path):
                reason = "preview thumbnail"
            if reason:
                out.excluded.append({"original_path": str(path), "reason": reason})
                continue
            group, variant = wallpaper_group(path)
            lic = licences.licence_for(path)
            out.candidates.append(Candidate(self.name, group, variant, path, str(path),
                                            lic.licence, lic.copyright, lic.origin))
        return out


# ---- Python libraries' sample images -----------------------------------------------------------
@dataclass(frozen=True)
class LibraryImages:
    """The reviewed photographs bundled in a Python library's wheel (read from disk, never fetched)."""

    name: str  # distribution name, e.g. "scikit-image"
    module: str  # import name, e.g. "skimage"
    data_subdir: str  # folder of the images inside the module
    photos: tuple[LibraryImage, ...]
    skipped: tuple[SkippedImage, ...]
    data_dir: Path | None = None  # where the files are; None: the installed library's folder
    kind: str = "python-library"

    def _locate(self) -> tuple[Path, str | None] | None:
        if self.data_dir is not None:
            return Path(self.data_dir), None
        spec = importlib.util.find_spec(self.module)  # finds the package without importing it
        if spec is None or spec.origin is None:
            return None
        return Path(spec.origin).parent / self.data_subdir, importlib.metadata.version(self.name)

    def list(self) -> Listing:
        found = self._locate()
        if found is None:
            return Listing(self.name, self.kind, None, missing=(
                f"Python library {self.name} is not installed: skipped (pip install -e '.[train]')"))
        folder, version = found
        out = Listing(self.name, self.kind, version)
        prefix = f"{self.module}/{self.data_subdir}"
        skipped = {s.file: s.reason for s in self.skipped}
        reviewed = {p.file for p in self.photos}
        for photo in self.photos:
            path = folder / photo.file
            if not path.is_file():
                out.excluded.append({"original_path": f"{prefix}/{photo.file}", "reason": "not in this version"})
                continue
            out.candidates.append(Candidate(self.name, photo.name, "", path, f"{prefix}/{photo.file}",
                                            photo.licence, photo.credit, f"{self.name} documentation"))
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.name in skipped:
                reason = skipped[path.name]
            elif path.name not in reviewed and path.suffix.lower() in IMAGE_SUFFIXES | {".gif"}:
                reason = "not among the reviewed photographs (library_images.py)"
            else:  # a reviewed photograph, or not an image (code, cascades, arrays)
                continue
            out.excluded.append({"original_path": f"{prefix}/{path.name}", "reason": reason})
        return out


def default_sources() -> list[PhotoSource]:
    """The allowed sources, in the order their files are considered."""
    return [
        *(DebianPackage(name) for name in DEBIAN_PACKAGES),
        LibraryImages("scikit-image", "skimage", "data", SKIMAGE_PHOTOS, SKIMAGE_SKIPPED),
        LibraryImages("scikit-learn", "sklearn", "datasets/images", SKLEARN_PHOTOS, SKLEARN_SKIPPED),
    ]


# ---- gathering ---------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def output_name(candidate: Candidate) -> str:
    variant = f"-{candidate.variant}" if candidate.variant else ""
    return f"{_slug(candidate.source)}--{_slug(candidate.group)}{variant}.jpg"


def _measured_before(previous: dict | None, settings: dict) -> dict[str, dict]:
    """An earlier run's measurements by source sha256, if it used the same size and statistic."""
    if previous is None:
        return {}
    old = previous.get("settings", {})
    if any(old.get(k) != settings[k] for k in ("max_side", "jpeg_quality", "analysis_side")):
        return {}
    return {r["source_sha256"]: r for r in previous.get("images", []) + previous.get("excluded", [])
            if "source_sha256" in r and "gradient_entropy" in r}


_MEASURES = ("width", "height", "original_width", "original_height", "gradient_entropy", "grayscale")


def _reuse(record: dict | None) -> dict | None:
    """The measurements of an earlier run's record, or None when it lacks any."""
    if record is None or not all(k in record for k in _MEASURES):
        return None
    return {k: record[k] for k in (*_MEASURES, "sha256") if k in record}


def _measure(path: Path, max_side: int) -> tuple[dict, bytes]:
    """Decode one file: its measurements and its JPEG encoding."""
    image, (ow, oh) = load_rgb(path, max_side)  # (H, W, 3) uint8
    data = encode_jpeg(image)
    grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())
    return {"width": image.shape[1], "height": image.shape[0], "original_width": ow, "original_height": oh,
            "gradient_entropy": round(gradient_entropy(image), 4), "grayscale": grey,
            "sha256": sha256_bytes(data)}, data


def _one_file_per_picture(candidates: list[Candidate], digests: dict[Path, str]) -> tuple[list[Candidate], list[dict]]:
    """(the largest file of each picture and variant, the others with the reason they are left out)."""
    excluded: list[dict] = []
    first_seen: dict[str, Candidate] = {}
    unique: list[Candidate] = []
    for c in candidates:
        earlier = first_seen.setdefault(digests[c.path], c)
        if earlier is c:
            unique.append(c)
        else:
            excluded.append({"source": c.source, "original_path": c.original_path, "source_sha256": digests[c.path],
                             "reason": f"identical to {earlier.original_path}"})
    sizes = {c.path: image_size(c.path) for c in unique}
    largest: dict[tuple[str, str, str], Candidate] = {}
    for c in unique:
        if sizes[c.path] is None:
            excluded.append({"source": c.source, "original_path": c.original_path, "reason": "unreadable image"})
            continue
        best = largest.setdefault((c.source, c.group, c.variant), c)
        (w, h), (bw, bh) = sizes[c.path], sizes[best.path]
        if w * h > bw * bh:
            largest[(c.source, c.group, c.variant)] = c
    for c in unique:
        best = largest.get((c.source, c.group, c.variant))
        if sizes[c.path] is not None and best is not c:
            excluded.append({"source": c.source, "original_path": c.original_path, "source_sha256": digests[c.path],
                             "reason": f"another size or crop of {best.original_path}"})
    return list(largest.values()), excluded


def _remove_stale(out_dir: Path, wanted: set[Path], say: Progress) -> None:
    """Delete images (and temporaries of an interrupted write) an earlier run left that are not wanted now."""
    for split in SPLITS:
        folder = out_dir / split
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            ours = path.suffix == ".jpg" or (path.name.startswith(".") and path.name.endswith(".tmp"))
            if ours and path not in wanted:
                path.unlink()
                say(f"removed stale {path}")


def gather_photos(out_dir: str | Path, sources: Sequence[PhotoSource] | None = None, *,
                  max_side: int = MAX_SIDE, min_entropy: float = MIN_GRADIENT_ENTROPY, min_side: int = MIN_SIDE,
                  heldout_fraction: float = HELDOUT_FRACTION, progress: Progress | None = None) -> dict:
    """Gather the photographs of ``sources`` into ``out_dir``; returns the manifest it wrote."""
    out_dir = Path(out_dir)
    say = progress or (lambda _msg: None)
    sources = default_sources() if sources is None else list(sources)
    settings = {"max_side": max_side, "jpeg_quality": JPEG_QUALITY, "analysis_side": ANALYSIS_SIDE,
                "min_gradient_entropy": min_entropy, "min_side": min_side, "heldout_fraction": heldout_fraction}
    measured = _measured_before(read_manifest(out_dir), settings)

    # 1. List the sources
    listings = [src.list() for src in sources]
    excluded: list[dict] = []
    for listing in listings:
        if listing.missing:
            say(listing.missing)
        excluded += [{"source": listing.source, **e} for e in listing.excluded]
    candidates = [c for listing in listings for c in listing.candidates]

    # 2. Drop byte-identical files, then every copy of a picture but its largest
    digests = {c.path: sha256_file(c.path) for c in candidates}
    chosen, dropped = _one_file_per_picture(candidates, digests)
    excluded += dropped

    # 3. Decode, measure and keep the photographs (an earlier run's measurements are reused)
    kept: list[tuple[Candidate, dict, bytes | None]] = []
    for c in chosen:
        digest = digests[c.path]
        m, data = _reuse(measured.get(digest)), None
        if m is None or ("sha256" not in m and not exclusion_reason(
                m["gradient_entropy"], m["width"], m["height"], min_entropy, min_side)):
            try:
                m, data = _measure(c.path, max_side)
            except Exception as err:  # noqa: BLE001 - a broken file is reported, not fatal
                excluded.append({"source": c.source, "original_path": c.original_path, "reason": f"undecodable: {err}"})
                continue
            say(f"measured {c.original_path}: gradient entropy {m['gradient_entropy']:.2f} bits")
        reason = exclusion_reason(m["gradient_entropy"], m["width"], m["height"], min_entropy, min_side)
        if reason:
            excluded.append({"source": c.source, "original_path": c.original_path, "source_sha256": digest,
                             "reason": reason, **{k: v for k, v in m.items() if k != "sha256"}})
        else:
            kept.append((c, {**m, "source_sha256": digest}, data))

    # 4. The same pixels from two files are one image; then split by picture
    by_pixels: dict[str, Candidate] = {}
    distinct = []
    for c, m, data in kept:
        if m["sha256"] in by_pixels:
            excluded.append({"source": c.source, "original_path": c.original_path, "source_sha256": m["source_sha256"],
                             "reason": f"same pixels as {by_pixels[m['sha256']].original_path}"})
            continue
        by_pixels[m["sha256"]] = c
        distinct.append((c, m, data))
    split_of = assign_splits(((c.source, c.group) for c, _, _ in distinct), heldout_fraction)

    # 5. Write what is new or changed; remove what an earlier run left that is no longer wanted
    records, wanted = [], set()
    for c, m, data in distinct:
        split = split_of[(c.source, c.group)]
        target = out_dir / split / output_name(c)
        wanted.add(target)
        if not (target.is_file() and sha256_file(target) == m["sha256"]):
            if data is None:  # measured before but the file is gone or changed: encode again
                data = encode_jpeg(load_rgb(c.path, max_side)[0])
                m["sha256"] = sha256_bytes(data)
            write_atomic(target, data)
            say(f"wrote {target}")
        records.append({
            "file": f"{split}/{target.name}", "split": split, "source": c.source, "group": c.group,
            "variant": c.variant, "original_path": c.original_path, "licence": c.licence,
            "copyright": c.copyright, "licence_origin": c.licence_origin, **m,
        })
    _remove_stale(out_dir, wanted, say)

    # 6. The manifest (no timestamps, so an unchanged gathering rewrites nothing)
    records.sort(key=lambda r: r["file"])
    in_split = {s: {r["sha256"] for r in records if r["split"] == s} for s in SPLITS}
    in_both = in_split["train"] & in_split["heldout"]
    if in_both:  # cannot happen after step 4; checked because a leak would silently flatter the model
        raise RuntimeError(f"the same image is in both splits: {sorted(in_both)}")
    manifest = {
        "version": MANIFEST_VERSION,
        "generated_by": "i2v.world.photos.sources",
        "settings": settings,
        "sources": [_source_summary(listing, records, excluded) for listing in listings],
        "counts": {s: sum(r["split"] == s for r in records) for s in SPLITS},
        "images": records,
        "excluded": sorted(excluded, key=lambda e: (e["source"], e["original_path"])),
    }
    if read_manifest(out_dir) != manifest:
        write_manifest(out_dir, manifest)
    return manifest


def _source_summary(listing: Listing, records: list[dict], excluded: list[dict]) -> dict:
    mine = [r for r in records if r["source"] == listing.source]
    return {
        "name": listing.source, "kind": listing.kind, "version": listing.version,
        "status": "missing" if listing.missing else "ok", "note": listing.missing,
        "counts": {**{s: sum(r["split"] == s for r in mine) for s in SPLITS},
                   "excluded": sum(e["source"] == listing.source for e in excluded)},
        "licences": sorted({r["licence"] for r in mine}),
    }


# ---- command line ------------------------------------------------------------------------------
def install_missing_packages(packages: Sequence[str] = DEBIAN_PACKAGES, say: Progress = print) -> None:
    """apt-get install the allowed packages that are missing (root only; Debian's registry only)."""
    missing = [p for p in packages if dpkg_query(p) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        say(f"--install needs root; not installing {' '.join(missing)}")
        return
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(cmd, check=False).returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, check=False)


def _disk_usage(out_dir: Path) -> int:
    return sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i2v.world.photos.sources", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--install", action="store_true", help="apt-get install missing packages (as root)")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="longest side of a written image")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.install:
        install_missing_packages(say=say)
    manifest = gather_photos(args.out, max_side=args.max_side, progress=None if args.quiet else say)
    print(f"{'source':32s} {'train':>6s} {'heldout':>8s} {'excluded':>9s}  licences")
    for s in manifest["sources"]:
        c = s["counts"]
        note = "  (not installed: skipped)" if s["status"] == "missing" else ""
        print(f"{s['name']:32s} {c['train']:6d} {c['heldout']:8d} {c['excluded']:9d}  {', '.join(s['licences'])}{note}")
    counts = manifest["counts"]
    print(f"{'total':32s} {counts['train']:6d} {counts['heldout']:8d} {len(manifest['excluded']):9d}")
    print(f"wrote {args.out}/manifest.json; {_disk_usage(args.out) / 2**20:.1f} MiB on disk")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
