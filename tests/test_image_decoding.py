import io
import os
import random
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from utils.errors import InputError
from utils.image_decoding import MAX_IMAGE_PIXELS, PNG_REFUSED, PNG_SIGNATURE, decode_image_file
from utils.image_io import ALPHA_NOTE, load_image

# Adam7 interlacing: the first column, first row, column step and row step of each of its passes;
# the files written here are the test's (no library writes an interlaced 16-bit colour PNG, or a
# damaged one), read only by the libraries.
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def decoded(path):
    return decode_image_file(str(path))[0]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(*chunks):
    """A PNG of the ``(type, body)`` chunks given, in order, each with its checksum."""
    return PNG_SIGNATURE + b"".join(png_chunk(kind, body) for kind, body in chunks)


def png_header(width, height, depth, colour, interlace=0):
    return struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)


def png_bytes(width, height, depth, colour, pixel_data, interlace=0, compress=zlib.compress):
    """A PNG written by hand (Pillow cannot write 16-bit colour): ``pixel_data`` is the filtered
    rows, before compression."""
    return png_file((b"IHDR", png_header(width, height, depth, colour, interlace)),
                    (b"IDAT", compress(pixel_data)), (b"IEND", b""))


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
    assert np.array_equal(decoded(tmp_path / "deep.png"), pixels)
    img, _, notes, _ = load_image(str(tmp_path / "deep.png"))
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
    img, _, notes, _ = load_image(str(tmp_path / "deep.png"))
    assert img.shape == (1, 2, 3)
    assert img[0, 0, 1] == np.float32(1) / np.float32(65535)
    assert any("16-bit" in n for n in notes) and any("grayscale" in n for n in notes)
    Image.new("RGB", (2, 2)).save(tmp_path / "shallow.png")
    assert not any("16-bit" in n for n in load_image(str(tmp_path / "shallow.png"))[2])


def rgb_pixels(seed=0, shape=(6, 5, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("extension,options", [
    ("png", {}), ("bmp", {}), ("tif", {}), ("tiff", {"compression": "tiff_lzw"}), ("webp", {"lossless": True}),
])
def test_lossless_formats_read_exactly(tmp_path, extension, options):
    pixels = rgb_pixels()
    Image.fromarray(pixels).save(tmp_path / f"x.{extension}", **options)
    assert np.array_equal(decoded(tmp_path / f"x.{extension}"), pixels)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg_is_decoded_as_pillow_decodes_it(tmp_path, mode):
    Image.fromarray(rgb_pixels(shape=(24, 16, 3))).convert(mode).save(tmp_path / "x.jpg", quality=80)
    with Image.open(tmp_path / "x.jpg") as image:
        expected = np.array(image.convert("L" if mode == "L" else "RGB"))
    img, _, notes, _ = load_image(str(tmp_path / "x.jpg"))
    assert np.array_equal(decoded(tmp_path / "x.jpg").squeeze(), expected)
    assert img.shape == (1 if mode == "L" else 3, 24, 16) and not any("alpha" in n for n in notes)


def test_palette_png_with_transparency_is_composited_onto_white(tmp_path):
    image = Image.new("P", (3, 1))
    image.putpalette([200, 10, 20, 30, 40, 50])
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png", transparency=bytes([255, 0]))  # colour 1 fully transparent
    img, _, notes, _ = load_image(str(tmp_path / "palette.png"))
    np.testing.assert_allclose(img[:, 0, :], np.array([[200, 255, 200], [10, 255, 10], [20, 255, 20]]) / 255, atol=1e-6)
    assert ALPHA_NOTE in notes
    image.save(tmp_path / "opaque.png")
    img, _, notes, _ = load_image(str(tmp_path / "opaque.png"))
    np.testing.assert_allclose(img[:, 0, 1], np.array([30, 40, 50]) / 255, atol=1e-6)
    assert not any("alpha" in n for n in notes)


@pytest.mark.parametrize("extension", ["gif", "webp"])
def test_an_animation_is_read_as_its_first_frame_and_says_so(tmp_path, extension):
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / f"moving.{extension}", save_all=True, append_images=frames[1:], lossless=True)
    img, _, notes, _ = load_image(str(tmp_path / f"moving.{extension}"))
    np.testing.assert_allclose(img[:, 4, 4], [1, 0, 0], atol=1 / 255)
    assert "first of 2 frames read" in notes


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


COMPRESSED_ROWS = zlib.compress(filtered_rows(0))
PILLOW_TRUNCATED = r"the file is truncated or corrupted: .*[Tt]runcated"


# Damaged files, each one InputError naming the problem in the words of the library that finds it:
# Pillow (the header) or libpng (the rest of a PNG). Those marked "Pillow" pass Pillow's verify()
# and load() (it returns rows of zeros, or reads past the damage): libpng refuses them.
LIBPNG = "the file is truncated or corrupted: "
DAMAGED_FILES = [
    pytest.param(b"", "the file is empty", id="empty"),
    pytest.param(good_png()[:20], PILLOW_TRUNCATED, id="cut-in-header"),
    pytest.param(good_png()[:len(good_png()) // 2], re.escape(LIBPNG + PNG_REFUSED), id="cut-in-half"),
    pytest.param(good_png()[:-12], LIBPNG + "PNG input buffer is incomplete", id="no-end-chunk"),  # no IEND
    pytest.param(damaged(good_png(), 100, 0), LIBPNG + "IDAT: incorrect data check", id="checksum"),
    pytest.param(with_fixed_checksums(damaged(good_png(), 100, 0)), LIBPNG + "IDAT: incorrect data check",
                 id="zlib-data"),
    pytest.param(png_bytes(4, 4, 8, 2, filtered_rows(0)[:-5]), LIBPNG + "Not enough image data", id="last-row-short"),
    pytest.param(png_bytes(4, 8, 8, 2, filtered_rows(0)),  # Pillow: 4 rows of 8, the others read as zeros
                 LIBPNG + "Not enough image data", id="rows-missing"),
    pytest.param(png_bytes(2, 8, 16, 2, filtered_rows(0)),  # Pillow: the same in 16-bit colour
                 LIBPNG + "Not enough image data", id="rows-missing-16-bit"),
    pytest.param(png_bytes(4, 4, 8, 2, filtered_rows(7)), LIBPNG + "bad adaptive filter value", id="unknown-filter"),
    pytest.param(png_bytes(4, 4, 8, 2, filtered_rows(0), compress=lambda rows: zlib.compress(rows)[:-4]),
                 LIBPNG + "Not enough image data", id="zlib-unended"),  # Pillow
    pytest.param(png_file((b"IHDR", png_header(4, 4, 8, 2)), (b"IDAT", COMPRESSED_ROWS[:9]), (b"tEXt", b"a\x00b"),
                          (b"IDAT", COMPRESSED_ROWS[9:]), (b"IEND", b"")),  # Pillow
                 LIBPNG + "Not enough image data", id="split"),
    pytest.param(png_file((b"tEXt", b"a\x00b"), (b"IHDR", png_header(4, 4, 8, 2)), (b"IDAT", COMPRESSED_ROWS),
                          (b"IEND", b"")),  # Pillow
                 LIBPNG + "IHDR chunk shall be first$", id="header-second"),
    pytest.param(png_file((b"IHDR", png_header(4, 4, 8, 2)), (b"IEND", b"")), LIBPNG + "PNG input buffer is incomplete",
                 id="no-pixel-data"),
    pytest.param(png_bytes(4, 4, 3, 2, filtered_rows(0)), "the PNG header is invalid", id="bit-depth-3"),
    pytest.param(png_bytes(3, 2, 16, 2, png_rows(np.ones((2, 3, 3), np.uint16), True), interlace=2),
                 LIBPNG + "Invalid IHDR data", id="interlace-2"),  # Pillow: read as interlaced
    pytest.param(png_bytes(4, 4, 8, 3, filtered_rows(0)),  # Pillow: read as a grey ramp
                 LIBPNG + "IDAT: Missing PLTE before IDAT", id="no-palette"),
    pytest.param(png_bytes(100_000, 100_000, 8, 2, filtered_rows(0)),
                 f"it declares more than {MAX_IMAGE_PIXELS:,} pixels", id="huge"),
    pytest.param(b"hello, not an image", "not an image format that is read here", id="no-image"),
]


@pytest.mark.parametrize("contents,reason", DAMAGED_FILES)
def test_a_bad_image_file_is_one_line_naming_the_problem(tmp_path, capfd, contents, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(contents)
    with pytest.raises(InputError) as info:
        load_image(str(path))
    assert re.match(f"cannot read '{re.escape(str(path))}' as an image: {reason}", str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
    assert capfd.readouterr().err == ""  # libpng's own lines on stderr are caught, not shown beside the refusal


@pytest.mark.parametrize("surplus", [1000, (1 << 20) + 1])
def test_pixel_data_past_the_rows_is_tolerated_as_libpng_does(tmp_path, surplus):
    (tmp_path / "long.png").write_bytes(png_bytes(4, 4, 8, 2, filtered_rows(0) + bytes(surplus)))
    assert np.array_equal(decoded(tmp_path / "long.png"), np.zeros((4, 4, 3), np.uint8))


FUZZ_SCRIPT = """
import sys
import cv2
import numpy as np
from utils.errors import InputError
from utils.image_decoding import decode_image_file
for path in sys.argv[1:]:
    print(path, end=" ", flush=True)
    try:
        array = decode_image_file(path)[0]
    except InputError as exc:
        print("refused", len(str(exc).splitlines()), flush=True)
        continue
    # libpng's own reading, through OpenCV (which reports libpng's errors rather than crashing).
    reference = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if reference is not None and reference.ndim == 3:
        reference = reference[..., [2, 1, 0, 3][: reference.shape[2]]]  # BGR(A) to RGB(A)
    same = reference is None or (reference.shape == array.shape and np.array_equal(reference, array))
    print("read", "as-libpng" if same else "NOT-as-libpng", flush=True)
"""


def fuzzed_pngs(seed):
    """``(name, bytes)`` of damaged copies of three PNGs: 8-bit RGB, a palette with transparency and
    16-bit RGB interlaced: each cut short at 15 places, and
    with 40 bytes changed one at a time, with and without their chunk's checksum made right."""
    rng = random.Random(seed)
    palette = io.BytesIO()
    image = Image.new("P", (17, 5))
    image.putpalette([200, 10, 20, 30, 40, 50])
    image.save(palette, format="PNG", transparency=bytes([255, 0]))
    deep = np.random.default_rng(seed).integers(0, 65536, (11, 13, 3), dtype=np.uint16)
    for name, good in [("rgb8", good_png()), ("palette", palette.getvalue()),
                       ("rgb16", png_bytes(13, 11, 16, 2, png_rows(deep, 1), 1))]:
        for cut in sorted(rng.sample(range(8, len(good)), 15)):
            yield f"{name}-cut{cut}", good[:cut]
        for _ in range(40):
            offset, value = rng.randrange(8, len(good)), rng.randrange(256)
            yield f"{name}-at{offset}-{value}", damaged(good, offset, value)
            yield f"{name}-at{offset}-{value}-checksum", with_fixed_checksums(damaged(good, offset, value))


@pytest.mark.parametrize("seed", [0])
def test_damaged_pngs_are_refused_in_one_line_or_read_as_libpng_reads_them_never_a_crash(tmp_path, seed):
    paths = []
    for name, data in fuzzed_pngs(seed):
        paths.append(str(tmp_path / f"{name}.png"))
        (tmp_path / f"{name}.png").write_bytes(data)
    result = subprocess.run([sys.executable, "-c", FUZZ_SCRIPT, *paths], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, f"the decoding of {lines[-1].split()[0] if lines else '?'} ended the process"
    outcomes = [line.split()[1:] for line in lines]
    assert len(outcomes) == len(paths)
    assert all(outcome in (["refused", "1"], ["read", "as-libpng"]) for outcome in outcomes), lines
    assert outcomes.count(["refused", "1"]) > len(paths) // 2  # most damage is found


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
    with pytest.raises(InputError, match=f"^cannot read '.*x.jpg' as an image: {PILLOW_TRUNCATED}"):
        load_image(str(tmp_path / "x.jpg"))


@pytest.mark.parametrize("kind", ["folder", "pipe", "device"])
def test_what_is_no_regular_file_is_refused_as_what_it_is(tmp_path, kind):
    path = {"folder": tmp_path / "photos", "pipe": tmp_path / "photos", "device": "/dev/zero"}[kind]
    if kind == "folder":
        path.mkdir()
    if kind == "pipe":
        os.mkfifo(path)  # opened, it would wait for a writer forever
    with pytest.raises(InputError, match=f"^cannot read '{path}' as an image: it is a {kind}$"):
        decoded(path)
