"""Per-file licences from a Debian package's copyright file (and its AUTHORS, where it has one).

Two formats occur among the allowed packages:

- machine-readable (DEP-5, first line ``Format: ...``): stanzas of ``Files:`` patterns with
  ``Copyright:`` and ``License:``; the last stanza whose pattern matches a file wins.
- free-form (gnome-backgrounds): lists of ``- name*:`` lines followed by a ``Copyright ©`` line and
  a ``Licensed under ... License.`` line; the package licence is the GPL paragraph.

A file's licence is the per-file one where the copyright file gives one, else a per-file one from
the package's ``AUTHORS`` (same list format), else the package licence.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

UNKNOWN = "unknown"


@dataclass(frozen=True)
class FileLicence:
    licence: str  # short name, SPDX-like ("CC-BY-SA-3.0", "GPL-2+")
    copyright: str
    origin: str  # where it was read, e.g. "/usr/share/doc/pkg/copyright (Files: *)"


@dataclass(frozen=True)
class _Rule:
    patterns: tuple[str, ...]
    licence: str
    copyright: str
    label: str  # the patterns as written, for ``origin``


# ---- licence names -----------------------------------------------------------------------------
# Free-form texts name licences in words; these map the phrasings found to short names.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"attribution[- ]share ?alike (\d\.\d)", "CC-BY-SA-{0}"),
    (r"cc by-sa (\d\.\d)", "CC-BY-SA-{0}"),
    (r"attribution (\d\.\d)", "CC-BY-{0}"),
    (r"cc by (\d\.\d)", "CC-BY-{0}"),
    (r"cc0", "CC0-1.0"),
    (r"gnu general public license.*version 2.*any later version", "GPL-2+"),
)


def licence_name(text: str) -> str | None:
    """A short licence name for a licence phrase ("Creative Commons Attribution 2.0 License")."""
    flat = " ".join(text.lower().split())
    for pattern, name in _PHRASES:
        m = re.search(pattern, flat)
        if m:
            return name.format(*m.groups())
    return None


# ---- parsing -----------------------------------------------------------------------------------
def _dep5_rules(text: str, origin: str) -> tuple[list[_Rule], FileLicence | None]:
    rules: list[_Rule] = []
    package: FileLicence | None = None
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" not in fields or "license" not in fields:
            continue
        patterns = tuple(p for p in fields["files"].split() if not p.startswith("debian/"))
        if not patterns:
            continue
        licence = fields["license"].splitlines()[0].strip() or UNKNOWN
        copyright_ = " ".join(fields.get("copyright", "").split())
        rule = _Rule(patterns, licence, copyright_, f"Files: {' '.join(patterns)}")
        rules.append(rule)
        if "*" in patterns:
            package = FileLicence(licence, copyright_, f"{origin} (Files: *)")
    return rules, package


_ITEM = re.compile(r"^\s*-\s+(\S+?):?\s*$")  # " - Bokeh_Tails.jpg:" / " - adwaita*"
_BARE_ITEM = re.compile(r"^(\S+\.(?:jpe?g|png|svg|webp))\s*:?\s*$", re.IGNORECASE)  # " Icescape.jpg" in a list


def _free_form_rules(text: str) -> list[_Rule]:
    """Rules from ``- pattern:`` lists each followed by its copyright and licence lines."""
    rules: list[_Rule] = []
    patterns: list[str] = []
    copyrights: list[str] = []
    for line in text.splitlines():
        item = _ITEM.match(line) or (_BARE_ITEM.match(line.strip()) if patterns else None)
        if item:
            if copyrights:  # a new list after a finished block
                patterns, copyrights = [], []
            patterns.append(item.group(1))
        elif patterns and "copyright" in line.lower():
            copyrights.append(" ".join(line.replace("Copyright", "").replace("©", "").split()))
        elif patterns and re.search(r"licen[sc]ed under", line, re.IGNORECASE):
            name = licence_name(line) or " ".join(line.split())
            rules.append(_Rule(tuple(patterns), name, "; ".join(copyrights), f"- {' '.join(patterns)}"))
            patterns, copyrights = [], []
    return rules


def _free_form_package(text: str, origin: str) -> FileLicence | None:
    """The package licence of a free-form file: the licence of its "This package is ..." paragraph.

    Per-image "Licensed under" lines are not the package licence, so the paragraph that speaks of
    the package comes first; failing that, the first paragraph that names a licence.
    """
    paras = re.split(r"\n\s*\n", text)
    about_package = [p for p in paras if "this package" in p.lower()]
    for para in about_package + paras:
        name = licence_name(para)
        if name:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip().lower().startswith("copyright ©")]
            holders = dict.fromkeys(" ".join(ln.replace("Copyright", "").replace("©", "").split()) for ln in lines)
            copyright_ = "; ".join(holders)
            return FileLicence(name, copyright_, f"{origin} (package licence)")
    return None


def _matches(pattern: str, path: PurePosixPath) -> bool:
    """Whether a copyright pattern (relative to the source tree) names an installed file.

    Installed paths differ from source paths, so a pattern matches any tail of the path
    ("warty-final-ubuntu.png" names /usr/share/backgrounds/warty-final-ubuntu.png).
    Case-insensitive: gnome's list says "Wood*" for wood-d.webp.
    """
    parts = path.parts
    tails = ["/".join(parts[i:]) for i in range(1, len(parts))]
    return any(fnmatch.fnmatch(t.lower(), pattern.lower()) for t in tails)


class CopyrightFile:
    """The licences a Debian package's doc folder states for its files."""

    def __init__(self, doc_dir: Path):
        self.doc_dir = Path(doc_dir)
        self.path = self.doc_dir / "copyright"
        self.rules: list[_Rule] = []  # per-file rules of the copyright file
        self.authors_rules: list[_Rule] = []  # per-file rules of AUTHORS
        self.package: FileLicence | None = None
        self.dep5 = False
        if self.path.is_file():
            text = self.path.read_text(errors="replace")
            self.dep5 = text.lstrip().lower().startswith("format:")
            if self.dep5:
                self.rules, self.package = _dep5_rules(text, str(self.path))
            else:
                self.rules = _free_form_rules(text)
                self.package = _free_form_package(text, str(self.path))
        authors = self.doc_dir / "AUTHORS"
        if authors.is_file():
            self.authors_rules = _free_form_rules(authors.read_text(errors="replace"))

    def licence_for(self, installed_path: str | Path) -> FileLicence:
        path = PurePosixPath(str(installed_path))
        # DEP-5: the last matching stanza wins; "Files: *" is the package licence
        for rule in reversed(self.rules):
            if "*" not in rule.patterns and any(_matches(p, path) for p in rule.patterns):
                return FileLicence(rule.licence, rule.copyright, f"{self.path} ({rule.label})")
        for rule in self.authors_rules:
            if any(_matches(p, path) for p in rule.patterns):
                return FileLicence(rule.licence, rule.copyright, f"{self.doc_dir / 'AUTHORS'} ({rule.label})")
        if self.package is not None:
            return self.package
        return FileLicence(UNKNOWN, "", f"{self.path} (no licence found)")
