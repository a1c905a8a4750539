"""The sample images shipped inside scikit-image and scikit-learn, and which of them are photographs.

Only files bundled in the installed wheels are read (never the libraries' download helpers), so
gathering works offline. Credits and licences are copied from each library's own documentation:
the docstrings of ``skimage.data.<name>`` and ``sklearn/datasets/images/README.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LibraryImage:
    name: str  # the loader's name, e.g. "astronaut"
    file: str  # path inside the library's data folder
    licence: str
    credit: str


@dataclass(frozen=True)
class SkippedImage:
    file: str
    reason: str


# scikit-image 0.2x bundles these files in skimage/data/ (the rest of skimage.data downloads).
SKIMAGE_PHOTOS: tuple[LibraryImage, ...] = (
    LibraryImage("astronaut", "astronaut.png", "public-domain",
                 "NASA (Eileen Collins), NASA Great Images database; no known copyright restrictions"),
    LibraryImage("camera", "camera.png", "CC0-1.0", "Lav Varshney (photographer)"),
    LibraryImage("chelsea", "chelsea.png", "CC0-1.0", "Stefan van der Walt (photographer)"),
    LibraryImage("coffee", "coffee.png", "CC0-1.0", "Rachel Michetti (photographer), courtesy of Pikolo Espresso Bar"),
    LibraryImage("rocket", "rocket.jpg", "public-domain", "SpaceX (launch of DSCOVR on Falcon 9)"),
    LibraryImage("coins", "coins.png", "no-known-copyright-restrictions",
                 "Greek coins from Pompeii, Brooklyn Museum Collection"),
    LibraryImage("brick", "brick.png", "CC0-1.0", "CC0Textures (Bricks25), perspective-corrected by scikit-image"),
    LibraryImage("grass", "grass.png", "CC0-1.0", "linolafett (DeviantArt, Grass-01)"),
    LibraryImage("gravel", "gravel.png", "CC0-1.0", "CC0Textures (Gravel04)"),
    LibraryImage("hubble_deep_field", "hubble_deep_field.jpg", "public-domain",
                 "NASA / Hubble eXtreme Deep Field (HubbleSite)"),
)

# What the wheel also ships, and why it is not a training photograph.
SKIMAGE_SKIPPED: tuple[SkippedImage, ...] = (
    SkippedImage("moon.png", "no licence documented"),
    SkippedImage("motorcycle_left.png", "no licence documented (Middlebury 2014 stereo)"),
    SkippedImage("motorcycle_right.png", "no licence documented (Middlebury 2014 stereo)"),
    SkippedImage("clock_motion.png", "deliberately motion-blurred"),
    SkippedImage("retina.jpg", "medical image (fundus photograph)"),
    SkippedImage("microaneurysms.png", "medical image (retina detail)"),
    SkippedImage("ihc.png", "microscopy"),
    SkippedImage("cell.png", "microscopy (phase image)"),
    SkippedImage("page.png", "scanned text"),
    SkippedImage("text.png", "text / synthetic"),
    SkippedImage("horse.png", "binary silhouette"),
    SkippedImage("logo.png", "logo (graphic)"),
    SkippedImage("color.png", "synthetic"),
    SkippedImage("chessboard_GRAY.png", "synthetic"),
    SkippedImage("chessboard_RGB.png", "synthetic"),
    SkippedImage("phantom.png", "synthetic"),
    SkippedImage("lfw_subset.npy", "array of 25x25 face crops, not an image file"),
    SkippedImage("multipage.tif", "synthetic test file"),
    SkippedImage("multipage_rgb.tif", "synthetic test file"),
    SkippedImage("no_time_for_that_tiny.gif", "animation"),
)

SKLEARN_PHOTOS: tuple[LibraryImage, ...] = (
    LibraryImage("china", "china.jpg", "CC-BY-2.0", "danielbuechele (Flickr), retrieved by Robert Layton"),
    # the README's attribution line repeats "danielbuechele", but its link is vultilion's photostream
    LibraryImage("flower", "flower.jpg", "CC-BY-2.0", "vultilion (Flickr), retrieved by Robert Layton"),
)
SKLEARN_SKIPPED: tuple[SkippedImage, ...] = ()
