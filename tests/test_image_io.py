import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from utils.errors import InputError
from utils.image_io import crop_to_multiple, load_image, resize_shorter_side, save_png, to_rgb_float


def test_rgb_uint8_is_divided_by_255():
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    img, notes = to_rgb_float(array)
    assert img.shape == (3, 2, 3) and img.dtype == np.float32
    assert np.array_equal(img, array.transpose(2, 0, 1).astype(np.float32) / 255.0)
    assert notes == []


@pytest.mark.parametrize(
    "array,expected,note",
    [
        (np.full((4, 4), 51, np.uint8), 0.2, "grayscale"),
        (np.full((4, 4), 65535, np.uint16), 1.0, "16-bit"),
        (np.dstack([np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4), np.uint8)]), 1.0, "transparent pixels"),
        (np.dstack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 255, np.uint8)]), 0.0, "opaque alpha"),
    ],
)
def test_conversions_are_sensible_and_reported(array, expected, note):
    img, notes = to_rgb_float(array)
    assert img.shape == (3, 4, 4)
    np.testing.assert_allclose(img, expected, atol=1e-6)
    assert any(note in n for n in notes)


def test_png_roundtrip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 8, 8)).astype(np.float32) / 255
    save_png(tmp_path / "x.png", pixels)
    back, _, _ = load_image(str(tmp_path / "x.png"))
    assert np.array_equal(back, pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary left behind


def test_16bit_grayscale_png_keeps_precision(tmp_path):
    values = np.array([[0, 1, 65535]], dtype=np.uint16).repeat(2, 0)
    Image.fromarray(values).save(tmp_path / "deep.png")
    img, _, notes = load_image(str(tmp_path / "deep.png"))
    assert img.shape == (3, 2, 3)
    assert img[2, 0, 1] == np.float32(1) / np.float32(65535)
    assert any("16-bit" in n for n in notes) and any("grayscale" in n for n in notes)


def write_png_rgb16(path, pixels):
    """An ``H x W x 3`` uint16 array as a 16-bit RGB PNG, written by hand: Pillow cannot write one."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))  # filter 0 per row
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16bit_colour_png_is_read_at_8_bits_and_says_so(tmp_path):
    pixels = np.full((2, 3, 3), 0x8000, np.uint16)
    pixels[0, 0] = (0xFFFF, 0, 0x0101)
    write_png_rgb16(tmp_path / "deep.png", pixels)
    img, _, notes = load_image(str(tmp_path / "deep.png"))
    assert img.shape == (3, 2, 3)
    np.testing.assert_allclose(img[:, 0, 0], [1, 0, 1 / 255], atol=1e-6)  # the high byte of each value
    assert any("16-bit colour PNG read at 8 bits" in n for n in notes)
    Image.new("RGB", (2, 2)).save(tmp_path / "shallow.png")
    assert not any("16-bit" in n for n in load_image(str(tmp_path / "shallow.png"))[2])


@pytest.mark.parametrize(
    "name,message",
    [
        ("stereo_motorcycle", "is not one image"),  # a tuple of images
        ("file_hash", "is not a scikit-image sample image"),  # needs an argument
        ("download_all", "not found"),  # fetches every sample
        ("lfw_subset", "unsupported image shape"),  # a stack of faces
    ],
)
def test_scikit_image_functions_that_are_not_one_image_are_refused(tmp_path, name, message):
    with pytest.raises(InputError, match=message):
        load_image(name, str(tmp_path))


def test_lookup_order(tmp_path):
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png")
    by_name, description, _ = load_image("red", str(tmp_path))
    assert by_name[0].min() == 1 and by_name[1].max() == 0
    sample, description, _ = load_image("astronaut", str(tmp_path))
    assert sample.shape == (3, 512, 512) and "sample" in description
    with pytest.raises(InputError, match="not found"):
        load_image("no_such_image", str(tmp_path))


def test_not_an_image(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(InputError, match="cannot read"):
        load_image(str(tmp_path / "text.png"))


@pytest.mark.parametrize("shape,expected", [((3, 512, 512), (512, 512)), ((3, 70, 100), (64, 96))])
def test_centre_crop(shape, expected):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    out = crop_to_multiple(img, 32)
    assert out.shape[1:] == expected
    top, left = (shape[1] - expected[0]) // 2, (shape[2] - expected[1]) // 2
    assert np.array_equal(out, img[:, top : top + expected[0], left : left + expected[1]])


def test_resize_shorter_side():
    img = np.random.default_rng(0).random((3, 512, 768)).astype(np.float32)
    out = resize_shorter_side(img, 64)
    assert out.shape == (3, 64, 96) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
