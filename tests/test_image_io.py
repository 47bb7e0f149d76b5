import io
import os
import struct
import zlib

import numpy as np
import pytest
from layouts import LAYOUTS, in_layout
from PIL import Image

from utils.errors import InputError
from utils.image_io import (
    ADAM7_PASSES, ALPHA_NOTE, MAX_IMAGE_PIXELS, PNG_EXTRA_PIXEL_BYTES, crop_to_multiple, load_image, read_image_file,
    resize_shorter_side, save_png, to_rgb_float, to_uint8)


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


@pytest.mark.parametrize("value,found", [(np.nan, "NaN"), (-0.5, "values from -0.5 to -0.5"), (1.5, "values from 1.5")])
def test_floating_point_pixels_outside_0_1_are_refused(value, found):
    with pytest.raises(InputError, match=rf"^image must be a float array in \[0, 1\], got {found}"):
        to_rgb_float(np.full((2, 2, 3), value, np.float32))


def test_png_roundtrip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 8, 8)).astype(np.float32) / 255
    save_png(tmp_path / "x.png", pixels)
    back, _, _ = load_image(str(tmp_path / "x.png"))
    assert np.array_equal(back, pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary left behind


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width, height, depth, colour, pixel_data, interlace=0, compress=zlib.compress):
    """A PNG written by hand (Pillow cannot write 16-bit colour): ``pixel_data`` is the filtered
    rows, before compression."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", compress(pixel_data))
            + png_chunk(b"IEND", b""))


def png_rows(pixels, interlace):
    """The rows (filter 0) of an ``H x W x C`` uint16 array, Adam7 passes one after the other if
    ``interlace``."""
    passes = ADAM7_PASSES if interlace else ((0, 0, 1, 1),)
    parts = [pixels[y0::dy, x0::dx] for x0, y0, dx, dy in passes]
    return b"".join(b"\x00" + row.astype(">u2").tobytes() for part in parts if part.size for row in part)


@pytest.mark.parametrize("interlace", [0, 1])
@pytest.mark.parametrize("channels,colour", [(3, 2), (4, 6)])
def test_16bit_colour_png_keeps_its_full_precision(tmp_path, channels, colour, interlace):
    rng = np.random.default_rng(channels + interlace)
    pixels = rng.integers(0, 65536, (11, 13, channels), dtype=np.uint16)
    pixels[0, 0, :3] = (1, 0x1234, 65534)  # values 8 bits cannot hold
    if channels == 4:
        pixels[..., 3] = 65535
        pixels[1, 1, 3] = 0x8001  # one pixel partly transparent
    (tmp_path / "deep.png").write_bytes(png_bytes(13, 11, 16, colour, png_rows(pixels, interlace), interlace))
    assert np.array_equal(read_image_file(str(tmp_path / "deep.png")), pixels)
    img, _, notes = load_image(str(tmp_path / "deep.png"))
    expected = pixels.astype(np.float32) / np.float32(65535)
    if channels == 4:
        expected = expected[..., :3] * expected[..., 3:] + (1 - expected[..., 3:])
    np.testing.assert_allclose(img, expected.transpose(2, 0, 1), rtol=0, atol=1e-7)
    assert img[0, 0, 0] == np.float32(1) / np.float32(65535) and img[1, 0, 0] != img[1, 0, 1]
    assert any("16-bit" in n for n in notes) and not any("8 bits" in n for n in notes)
    assert (ALPHA_NOTE in notes) == (channels == 4)


def test_16bit_grayscale_png_keeps_precision(tmp_path):
    values = np.array([[0, 1, 65535]], dtype=np.uint16).repeat(2, 0)
    Image.fromarray(values).save(tmp_path / "deep.png")
    img, _, notes = load_image(str(tmp_path / "deep.png"))
    assert img.shape == (3, 2, 3)
    assert img[2, 0, 1] == np.float32(1) / np.float32(65535)
    assert any("16-bit" in n for n in notes) and any("grayscale" in n for n in notes)
    Image.new("RGB", (2, 2)).save(tmp_path / "shallow.png")
    assert not any("16-bit" in n for n in load_image(str(tmp_path / "shallow.png"))[2])


def rgb_pixels(seed=0, shape=(6, 5, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("extension,options", [
    ("png", {}), ("bmp", {}), ("tif", {}), ("tiff", {"compression": "tiff_lzw"}), ("webp", {"lossless": True}),
])
def test_lossless_formats_read_exactly(tmp_path, extension, options):
    """PNG and WebP are decoded by torchvision, BMP and TIFF (which it cannot decode) by Pillow."""
    pixels = rgb_pixels()
    Image.fromarray(pixels).save(tmp_path / f"x.{extension}", **options)
    assert np.array_equal(read_image_file(str(tmp_path / f"x.{extension}")), pixels)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg_is_decoded_as_pillow_decodes_it(tmp_path, mode):
    Image.fromarray(rgb_pixels(shape=(24, 16, 3))).convert(mode).save(tmp_path / "x.jpg", quality=80)
    with Image.open(tmp_path / "x.jpg") as image:
        expected = np.array(image.convert("L" if mode == "L" else "RGB"))
    img, _, notes = load_image(str(tmp_path / "x.jpg"))
    assert np.array_equal(read_image_file(str(tmp_path / "x.jpg")).squeeze(), expected)
    assert img.shape == (3, 24, 16) and not any("alpha" in n for n in notes)


def test_palette_png_with_transparency_is_composited_onto_white(tmp_path):
    image = Image.new("P", (3, 1))
    image.putpalette([200, 10, 20, 30, 40, 50])
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png", transparency=bytes([255, 0]))  # colour 1 fully transparent
    img, _, notes = load_image(str(tmp_path / "palette.png"))
    np.testing.assert_allclose(img[:, 0, :], np.array([[200, 255, 200], [10, 255, 10], [20, 255, 20]]) / 255, atol=1e-6)
    assert ALPHA_NOTE in notes
    image.save(tmp_path / "opaque.png")
    img, _, notes = load_image(str(tmp_path / "opaque.png"))
    np.testing.assert_allclose(img[:, 0, 1], np.array([30, 40, 50]) / 255, atol=1e-6)
    assert not any("alpha" in n for n in notes)


@pytest.mark.parametrize("extension", ["gif", "webp"])
def test_an_animation_is_read_as_its_first_frame_and_says_so(tmp_path, extension):
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / f"moving.{extension}", save_all=True, append_images=frames[1:], lossless=True)
    img, _, notes = load_image(str(tmp_path / f"moving.{extension}"))
    np.testing.assert_allclose(img[:, 4, 4], [1, 0, 0], atol=1 / 255)
    assert "first of 2 frames read" in notes


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


def good_png():
    buffer = io.BytesIO()
    Image.fromarray(rgb_pixels(shape=(32, 32, 3))).save(buffer, format="PNG")
    return buffer.getvalue()


def with_fixed_checksums(data):
    """``data`` with every chunk's CRC recomputed: damage inside a chunk that its checksum hides."""
    data, position = bytearray(data), 8
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        end = position + 12 + length
        data[end - 4 : end] = struct.pack(">I", zlib.crc32(bytes(data[position + 4 : end - 4])))
        position = end
    return bytes(data)


def damaged(data, offset, value):
    data = bytearray(data)
    data[offset] = value
    return bytes(data)


def filtered_rows(filter_byte):
    return b"".join(bytes([filter_byte]) + bytes(3 * 4) for _ in range(4))


# Each of these damaged PNGs made torchvision 0.29.1's decoder crash the process (segmentation
# fault) when handed to it unchecked; each must be one InputError naming the problem.
@pytest.mark.parametrize("contents,reason", [
    (b"", "the file is empty"),
    (good_png()[:20], "the PNG file is truncated"),
    (good_png()[:len(good_png()) // 2], "the PNG file is truncated"),
    (good_png()[:-12], "the PNG file is truncated"),  # all pixel data, no IEND
    (damaged(good_png(), 100, 0), "the PNG file is corrupted (the checksum of its 'IDAT' chunk fails)"),
    (with_fixed_checksums(damaged(good_png(), 100, 0)), "the PNG file is corrupted (its compressed pixel data is damaged)"),
    (png_bytes(4, 4, 8, 2, filtered_rows(0)[:-5]), "the PNG file is truncated (its pixel data ends early)"),
    (png_bytes(4, 4, 8, 2, filtered_rows(7)), "the PNG file is corrupted (a row of pixels has an unknown filter)"),
    (png_bytes(4, 4, 8, 2, filtered_rows(0), compress=lambda rows: zlib.compress(rows)[:-4]),
     "the PNG file is truncated or corrupted (its compressed pixel data does not end)"),
    (png_bytes(4, 4, 8, 2, filtered_rows(0) + bytes(PNG_EXTRA_PIXEL_BYTES + 1)),
     "the PNG file is corrupted (its pixel data is longer than its header says)"),
    (png_bytes(4, 4, 3, 2, filtered_rows(0)), "the PNG header is invalid (bit depth 3, colour type 2)"),
    (png_bytes(4, 4, 8, 3, filtered_rows(0)), "the PNG file is corrupted (a palette image without a palette)"),
    (png_bytes(100_000, 100_000, 8, 2, filtered_rows(0)),
     f"it declares 100000 x 100000 pixels, more than the {MAX_IMAGE_PIXELS:,} read here (MAX_IMAGE_PIXELS)"),
    (b"hello, not an image", "not an image format that is read here"),
])
def test_a_bad_image_file_is_one_line_naming_the_problem(tmp_path, contents, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(contents)
    with pytest.raises(InputError) as info:
        load_image(str(path))
    assert str(info.value).startswith(f"cannot read '{path}' as an image: {reason}"), str(info.value)
    assert "\n" not in str(info.value)


def test_a_little_pixel_data_past_the_rows_is_tolerated_as_libpng_does(tmp_path):
    (tmp_path / "long.png").write_bytes(png_bytes(4, 4, 8, 2, filtered_rows(0) + bytes(1000)))
    assert np.array_equal(read_image_file(str(tmp_path / "long.png")), np.zeros((4, 4, 3), np.uint8))


def bmp_header(width, height):
    """A 24-bit BMP header declaring ``width x height`` with no pixels after it."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


@pytest.mark.parametrize("width,height,reason", [
    (9000, 9000, "it declares 9000 x 9000 pixels, more than the"),  # within Pillow's own limit
    (100_000, 100_000, f"it declares more than {MAX_IMAGE_PIXELS:,} pixels"),  # Pillow's bomb error
])
def test_a_huge_size_is_refused_from_the_header_of_any_format(tmp_path, width, height, reason):
    (tmp_path / "huge.bmp").write_bytes(bmp_header(width, height))
    with pytest.raises(InputError, match=f"^cannot read '.*huge.bmp' as an image: {reason}"):
        load_image(str(tmp_path / "huge.bmp"))


def test_a_truncated_jpeg_is_one_line(tmp_path):
    Image.fromarray(rgb_pixels(shape=(64, 64, 3))).save(tmp_path / "x.jpg")
    data = (tmp_path / "x.jpg").read_bytes()
    (tmp_path / "x.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"^cannot read '.*x.jpg' as an image: the file is corrupted \(Image is "
                                         r"incomplete or truncated\)$"):
        load_image(str(tmp_path / "x.jpg"))


def test_a_folder_is_named_as_a_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(InputError, match=f"^image '{tmp_path}/photos' is a folder, not an image file$"):
        load_image(str(tmp_path / "photos"))
    with pytest.raises(InputError, match="^image '.*photos' is a folder"):
        load_image("photos", str(tmp_path))  # found as a folder in data_dir
    with pytest.raises(InputError, match=f"^cannot read '{tmp_path}/photos' as an image: it is a folder$"):
        read_image_file(str(tmp_path / "photos"))


@pytest.mark.skipif(os.name != "posix", reason="file names are bytes on POSIX only")
def test_a_file_name_that_is_not_utf8_is_printed_escaped(tmp_path):
    folder = os.fsencode(tmp_path)
    # sys.argv holds such a name as surrogate escapes: os.fsdecode gives the same string.
    bad = os.fsdecode(os.path.join(folder, b"caf\xe9.png"))
    with open(bad, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(InputError) as info:
        load_image(bad)
    assert f"'{tmp_path}/caf\\xe9.png'" in str(info.value)
    str(info.value).encode("utf-8")  # printable on a UTF-8 terminal: no surrogates left
    Image.new("RGB", (2, 2)).save(bad, format="PNG")
    _, description, notes = load_image(bad)
    assert description == f"{tmp_path}/caf\\xe9.png"
    "".join([description, *notes]).encode("utf-8")


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


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_array_functions_answer_the_same_for_any_memory_layout(tmp_path, layout):
    pixels = np.random.default_rng(1).integers(0, 256, (20, 24, 4), dtype=np.uint8)  # as read: H x W x RGBA
    for array in (pixels, pixels.astype(np.float32) / 255):
        converted, notes = to_rgb_float(in_layout(array, layout))
        assert (converted.tolist(), notes) == (to_rgb_float(array)[0].tolist(), to_rgb_float(array)[1])
    image = to_rgb_float(pixels)[0]
    view = in_layout(image, layout)
    assert np.array_equal(resize_shorter_side(view, 13), resize_shorter_side(image, 13))
    assert np.array_equal(crop_to_multiple(view, 8), crop_to_multiple(image, 8))
    assert np.array_equal(to_uint8(view), to_uint8(image))
    save_png(tmp_path / "view.png", view)
    save_png(tmp_path / "contiguous.png", image)
    assert (tmp_path / "view.png").read_bytes() == (tmp_path / "contiguous.png").read_bytes()
