"""Input-image loading, validation and fitting in i2v.io.images (inputs built with Pillow/numpy)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from i2v.io.images import (
    MAX_IMAGE_PIXELS,
    CorruptImageError,
    FitReport,
    ImageInputError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    fit_image,
    load_image,
    snap_size,
)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(path, width: int, height: int):
    """A PNG whose header declares width x height but whose pixel data is garbage."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", b"not zlib data") + png_chunk(b"IEND", b""))
    return path


def assert_rgb(image, size):
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB" and image.size == size


def pixel(image, x, y):
    return tuple(int(v) for v in np.asarray(image)[y, x])


# ------------------------------------------------------------------ modes


def test_rgb_path_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert_rgb(image, (30, 20))
    np.testing.assert_array_equal(np.asarray(image), array)
    assert load_image(str(tmp_path / "a.png")).size == (30, 20)


def test_rgba_is_composited_over_white(tmp_path):
    array = np.zeros((16, 16, 4), np.uint8)
    array[..., 0] = 255  # red
    array[:, :8, 3] = 255  # left half opaque, right half transparent
    array[:, 8:, 3] = 0
    Image.fromarray(array).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert_rgb(image, (16, 16))
    assert pixel(image, 2, 2) == (255, 0, 0)
    assert pixel(image, 12, 2) == (255, 255, 255)


def test_la_is_composited_over_white():
    image = load_image(Image.new("LA", (16, 16), (0, 0)))
    assert pixel(image, 0, 0) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)  # 0 = blue, 1 = green
    image.paste(1, (0, 0, 8, 16))
    image.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert_rgb(loaded, (16, 16))
    assert pixel(loaded, 2, 2) == (0, 255, 0)
    assert pixel(loaded, 12, 2) == (255, 255, 255)  # transparent index -> white


def test_greyscale(tmp_path):
    Image.new("L", (16, 12), 77).save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png")
    assert_rgb(image, (16, 12))
    assert pixel(image, 0, 0) == (77, 77, 77)


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535] * 4] * 12, dtype=np.uint16)  # (12, 12)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode in ("I;16", "I")
    image = load_image(tmp_path / "g16.png")
    assert_rgb(image, (12, 12))
    assert [pixel(image, x, 0)[0] for x in range(3)] == [0, 100, 255]


def test_32_bit_integer_and_float_modes():
    as_i = Image.fromarray(np.full((10, 10), 65535, np.int32))
    assert as_i.mode == "I"
    assert pixel(load_image(as_i), 0, 0) == (255, 255, 255)
    as_f = Image.fromarray(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10))
    assert as_f.mode == "F"
    loaded = load_image(as_f)
    assert pixel(loaded, 0, 0) == (0, 0, 0) and pixel(loaded, 9, 9) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    image = load_image(tmp_path / "c.jpg")
    assert_rgb(image, (16, 16))
    r, g, b = pixel(image, 8, 8)
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full -> red


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)  # (H, W, 3): left half red, right half blue
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    Image.fromarray(array).save(tmp_path / "r.jpg", exif=exif, quality=95)
    image = load_image(tmp_path / "r.jpg")
    assert_rgb(image, (20, 40))  # portrait now
    top, bottom = pixel(image, 10, 5), pixel(image, 10, 34)
    assert top[0] > 200 and top[2] < 60  # the left (red) half ends up on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_numpy_inputs():
    assert_rgb(load_image(np.zeros((10, 12, 3), np.uint8)), (12, 10))
    assert pixel(load_image(np.full((10, 12), 9, np.uint8)), 0, 0) == (9, 9, 9)
    with pytest.raises(ImageInputError, match="uint8"):
        load_image(np.zeros((10, 12, 3), np.float32))
    with pytest.raises(ImageInputError, match="shape"):
        load_image(np.zeros((10, 12, 2), np.uint8))


# ------------------------------------------------------------------ bad files


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageNotFoundError, match="nope.png") as info:
        load_image(path)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("content", [b"just some text\n", b""])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(NotAnImageError, match="notes.png"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_corrupt(tmp_path, fmt):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    array = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / f"t.{fmt.lower()}"
    Image.fromarray(array).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImageError, match=path.name):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_too_large_is_refused_before_decoding(tmp_path):
    # 8000x8000 = 64 M px: above our cap, below Pillow's own bomb limit. The pixel data is
    # garbage, so reaching the decoder would raise CorruptImageError instead.
    path = png_header_only(tmp_path / "big.png", 8000, 8000)
    with pytest.raises(ImageTooLargeError, match="big.png"):
        load_image(path)
    assert 8000 * 8000 > MAX_IMAGE_PIXELS


def test_decompression_bomb_is_too_large(tmp_path):
    path = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ImageTooLargeError, match="bomb.png"):
        load_image(path, max_pixels=None)


def test_max_pixels_argument(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    with pytest.raises(ImageTooLargeError, match="1,200"):
        load_image(tmp_path / "a.png", max_pixels=1000)
    assert load_image(tmp_path / "a.png", max_pixels=1200).size == (40, 30)


def test_too_small(tmp_path):
    Image.new("RGB", (7, 40)).save(tmp_path / "thin.png")
    with pytest.raises(ImageTooSmallError, match="thin.png"):
        load_image(tmp_path / "thin.png")


# ------------------------------------------------------------------ fit_image / snap_size


def test_fit_image_covers_then_centre_crops():
    source = np.zeros((480, 640, 3), np.uint8)
    source[:, :60] = 255  # white stripe on the far left (16 px once resized) is cropped away
    image, report = fit_image(Image.fromarray(source), 128, 128)
    assert_rgb(image, (128, 128))
    assert isinstance(report, FitReport)
    assert report.source_size == (640, 480) and report.target_size == (128, 128)
    assert report.scale == pytest.approx(128 / 480)
    assert report.crop_box == (21, 0, 149, 128)
    assert report.message == "input 640x480 resized to 171x128 and centre-cropped to 128x128"
    assert np.asarray(image)[:, :3].max() < 30  # stripe gone


def test_fit_image_same_aspect_and_exact_size():
    image, report = fit_image(Image.new("RGB", (256, 128)), 128, 64)
    assert image.size == (128, 64) and report.message == "input 256x128 resized to 128x64"
    image, report = fit_image(Image.new("RGB", (64, 64)), 64, 64)
    assert image.size == (64, 64) and not report.changed
    assert report.message == "input 64x64 already matches 64x64"
    image, report = fit_image(np.zeros((100, 50, 3), np.uint8), 64, 32)  # upscales to cover
    assert image.size == (64, 32) and report.crop_box[2] - report.crop_box[0] == 64


def test_snap_size():
    assert snap_size(128, 64, 16) == (128, 64, None)
    width, height, notice = snap_size(100, 60, 16)
    assert (width, height) == (96, 64)
    assert "100x60" in notice and "96x64" in notice and "16" in notice
    assert snap_size(3, 200, 8)[:2] == (8, 200)  # never below one multiple
    assert snap_size(12, 12, 8)[:2] == (16, 16)  # halves round up
    with pytest.raises(ValueError, match="multiple"):
        snap_size(64, 64, 0)


def test_jpeg_with_truncated_header_is_corrupt(tmp_path):
    from i2v.io.images import CorruptImageError, load_image

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CorruptImageError, match="bad.jpg"):
        load_image(bad)


def test_a_thin_image_is_fitted_in_bounded_memory(tmp_path):
    """An 8x500,000 strip (4 Mpx, under the pixel cap) is cropped in source pixels before resampling:
    the fit stays small (resizing the whole strip first would need about 3 GB)."""
    import subprocess
    import sys

    path = tmp_path / "strip.png"
    strip = np.zeros((500_000, 8, 3), np.uint8)
    strip[:, :, 0] = (np.arange(500_000) % 251)[:, None]
    Image.fromarray(strip).save(path)
    code = (  # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across exec)
        "from i2v.io.images import fit_image, load_image\n"
        f"img, rep = fit_image(load_image({str(path)!r}), 128, 128)\n"
        "peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "print(img.size, rep.changed, peak)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["(128,", "128)", "True"]
    assert int(out[3]) < 600 * 1024  # peak RSS in KiB: well under 600 MB


def test_fitting_matches_resize_then_crop():
    """Cropping in source pixels gives the picture a full resize then a centre crop gives."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    fitted, report = fit_image(image, 128, 96)
    reference = image.resize((128, 96), Image.Resampling.LANCZOS, reducing_gap=3.0)  # 640x480 -> 128x96 exactly
    assert fitted.size == (128, 96) and report.crop_box == (0, 0, 128, 96)
    assert np.abs(np.asarray(fitted, int) - np.asarray(reference, int)).max() <= 1
    tall = Image.fromarray(rng.integers(0, 256, (900, 300, 3), dtype=np.uint8))
    fitted, report = fit_image(tall, 128, 128)
    full = tall.resize((128, 384), Image.Resampling.LANCZOS, reducing_gap=3.0).crop(report.crop_box)
    assert np.abs(np.asarray(fitted, int) - np.asarray(full, int)).max() <= 1


@pytest.mark.parametrize("suffix", [".gif", ".tiff", ".webp"])
def test_multi_frame_inputs_use_the_first_frame_and_say_so(tmp_path, suffix):
    from i2v.io.images import input_notices

    frames = [Image.new("RGB", (32, 24), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image = load_image(path)
    assert image.getpixel((5, 5))[0] > 150  # the first (red) frame
    assert input_notices(image) == [f"{path} holds 3 frames or pages (animated image or multi-page file); "
                                    "the first is used"]
    single = tmp_path / "one.png"
    frames[0].save(single)
    assert input_notices(load_image(single)) == []
