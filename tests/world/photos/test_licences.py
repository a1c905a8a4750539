from i2v.world.photos.licences import CopyrightFile, licence_name

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: some-wallpapers

Files: warty-final-ubuntu.png
Copyright: 2004, Someone <someone@example.org>
           2006, Someone Else
License: CC-BY-SA-3.0

Files: 16.04/photo_by_A.jpg
Copyright: A, 2018
License: CC0-1.0

Files: debian/*
Copyright: 2018, Packager
License: Expat
"""

FREE_FORM = """This package was debianized by someone.

Copyright:
    Copyright © 2011 Jakub Steiner <jimmac@gmail.com>

Image Authors:

 - adwaita*
 - Chmiri.jpg:
   Copyright © 2011 Jakub Steiner <jimmac@gmail.com>
   Licensed under Creative Commons Attribution-ShareAlike 3.0 License.

 - Stones.jpg:
   Copyright © 2011 Felix Leupold
   Licensed under Creative Commons Attribution 2.0 License.

Licenses:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation; either version 2 of the License, or
   (at your option) any later version.
"""

AUTHORS = """Image Authors:

- grid*:
- Wood*:

  Copyright © 2011-2022 Jakub Steiner <jimmac@gmail.com>
  Licensed under Creative Commons Attribution-ShareAlike 3.0 License.

oceans.svg:
  Copyright © Ed Hawkins
  CC BY 4.0 License.
"""


def _doc(tmp_path, copyright_text, authors=None):
    doc = tmp_path / "pkg"
    doc.mkdir()
    (doc / "copyright").write_text(copyright_text)
    if authors:
        (doc / "AUTHORS").write_text(authors)
    return CopyrightFile(doc)


def test_dep5_per_file_stanza_matches_the_installed_path(tmp_path):
    c = _doc(tmp_path, DEP5)
    lic = c.licence_for("/usr/share/backgrounds/warty-final-ubuntu.png")
    assert lic.licence == "CC-BY-SA-3.0" and "Someone Else" in lic.copyright
    assert "Files: warty-final-ubuntu.png" in lic.origin
    assert c.licence_for("/usr/share/backgrounds/16.04/photo_by_A.jpg").licence == "CC0-1.0"


def test_dep5_without_a_catch_all_says_unknown(tmp_path):
    assert _doc(tmp_path, DEP5).licence_for("/usr/share/backgrounds/other.png").licence == "unknown"


def test_dep5_catch_all_is_the_package_licence(tmp_path):
    text = DEP5.replace("Files: debian/*", "Files: *\nCopyright: 2020 Team\nLicense: GPL-2+\n\nFiles: debian/*")
    lic = _doc(tmp_path, text).licence_for("/usr/share/wallpapers/Foo/contents/images/1x1.png")
    assert lic.licence == "GPL-2+" and "Files: *" in lic.origin


def test_free_form_lists_then_authors_then_package_licence(tmp_path):
    c = _doc(tmp_path, FREE_FORM, AUTHORS)
    assert c.licence_for("/usr/share/backgrounds/gnome/adwaita-d.webp").licence == "CC-BY-SA-3.0"
    stones = c.licence_for("/usr/share/backgrounds/gnome/Stones.jpg")
    assert stones.licence == "CC-BY-2.0" and "Felix Leupold" in stones.copyright
    wood = c.licence_for("/usr/share/backgrounds/gnome/wood-l.webp")  # "Wood*" in AUTHORS, any case
    assert wood.licence == "CC-BY-SA-3.0" and wood.origin.endswith("(- grid* Wood*)") and "AUTHORS" in wood.origin
    other = c.licence_for("/usr/share/backgrounds/gnome/licorice-d.webp")
    assert other.licence == "GPL-2+" and "package licence" in other.origin


def test_licence_phrases():
    assert licence_name("Licensed under Creative Commons Attribution-ShareAlike 2.0 License.") == "CC-BY-SA-2.0"
    assert licence_name("Licensed under Creative Commons Attribution 2.0 License.") == "CC-BY-2.0"
    assert licence_name("CC BY 4.0 License.") == "CC-BY-4.0"
    assert licence_name("no licence here") is None
