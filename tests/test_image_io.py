import itertools
import os

import numpy as np
import pytest
from layouts import LAYOUTS, in_layout
from PIL import Image

from utils.errors import InputError
from utils.image_io import (BIT_DEPTHS, GRAYSCALE_NOTE, bit_depth, crop_to_multiple, load_image, read_image_file,
                            resize_shorter_side, save_png, to_float_image, to_uint8, to_uint16)


def test_rgb_uint8_is_divided_by_255():
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    img, notes = to_float_image(array)
    assert img.shape == (3, 2, 3) and img.dtype == np.float32
    assert np.array_equal(img, array.transpose(2, 0, 1).astype(np.float32) / 255.0)
    assert notes == []


@pytest.mark.parametrize(
    "array,expected,channels,note",
    [
        (np.full((4, 4), 51, np.uint8), 0.2, 1, "grayscale image recovered as one channel"),
        (np.full((4, 4, 1), 51, np.uint8), 0.2, 1, "grayscale image recovered as one channel"),
        (np.full((4, 4), 65535, np.uint16), 1.0, 1, "16-bit"),
        (np.dstack([np.full((4, 4), 255, np.uint8), np.zeros((4, 4), np.uint8)]), 1.0, 1, "transparent pixels"),
        (np.dstack([np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4), np.uint8)]), 1.0, 3, "transparent pixels"),
        (np.dstack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 255, np.uint8)]), 0.0, 3, "opaque alpha"),
        (np.full((4, 4, 3), 51, np.uint8), 0.2, 3, None),  # equal channels: colour still, as the file says
    ],
)
def test_conversions_are_sensible_and_reported(array, expected, channels, note):
    img, notes = to_float_image(array)
    assert img.shape == (channels, 4, 4) and img.dtype == np.float32
    np.testing.assert_allclose(img, expected, atol=1e-6)
    assert any(note in n for n in notes) if note else notes == []
    assert (GRAYSCALE_NOTE in notes) == (channels == 1)


@pytest.mark.parametrize("value,found", [(np.nan, "NaN"), (-0.5, "values from -0.5 to -0.5"), (1.5, "values from 1.5")])
def test_floating_point_pixels_outside_0_1_are_refused(value, found):
    with pytest.raises(InputError, match=rf"^image must be a float array in \[0, 1\], got {found}"):
        to_float_image(np.full((2, 2, 3), value, np.float32))


def test_png_roundtrip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 8, 8)).astype(np.float32) / 255
    save_png(tmp_path / "x.png", pixels)
    back, _, _, _ = load_image(str(tmp_path / "x.png"))
    assert np.array_equal(back, pixels)
    assert np.array_equal(read_image_file(str(tmp_path / "x.png")), to_uint8(pixels))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary left behind


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
    by_name, description, _, _ = load_image("red", str(tmp_path))
    assert by_name[0].min() == 1 and by_name[1].max() == 0
    sample, description, _, _ = load_image("astronaut", str(tmp_path))
    assert sample.shape == (3, 512, 512) and "sample" in description
    with pytest.raises(InputError, match="not found"):
        load_image("no_such_image", str(tmp_path))


def test_a_folder_or_a_device_is_named_as_what_it_is(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(InputError, match=f"^image '{tmp_path}/photos' is a folder, not an image file$"):
        load_image(str(tmp_path / "photos"))
    with pytest.raises(InputError, match="^image '.*photos' is a folder"):
        load_image("photos", str(tmp_path))  # found as a folder in data_dir
    with pytest.raises(InputError, match="^image '/dev/null' is a device, not an image file$"):
        load_image("/dev/null", str(tmp_path))
    with pytest.raises(InputError, match="^image is empty$"):
        load_image("", str(tmp_path))  # not data_dir itself


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
    _, description, notes, _ = load_image(bad)
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
        converted, notes = to_float_image(in_layout(array, layout))
        assert (converted.tolist(), notes) == (to_float_image(array)[0].tolist(), to_float_image(array)[1])
    image = to_float_image(pixels)[0]
    view = in_layout(image, layout)
    assert np.array_equal(resize_shorter_side(view, 13), resize_shorter_side(image, 13))
    assert np.array_equal(crop_to_multiple(view, 8), crop_to_multiple(image, 8))
    assert np.array_equal(to_uint8(view), to_uint8(image))
    assert np.array_equal(to_uint16(view), to_uint16(image))
    for channels, depth in itertools.product((1, 3), BIT_DEPTHS):
        save_png(tmp_path / "view.png", in_layout(image[:channels], layout), depth)
        save_png(tmp_path / "contiguous.png", image[:channels], depth)
        assert (tmp_path / "view.png").read_bytes() == (tmp_path / "contiguous.png").read_bytes()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("depth,dtype,mode", [(8, np.uint8, {1: "L", 3: "RGB"}),
                                              (16, np.uint16, {1: "I;16", 3: "RGB"})])
def test_png_of_each_depth_and_channel_count_reads_back_exactly(tmp_path, channels, depth, dtype, mode):
    levels = 2**depth - 1
    rng = np.random.default_rng(channels + depth)
    pixels = rng.integers(0, levels + 1, (channels, 9, 7)).astype(np.float32) / levels
    save_png(tmp_path / "x.png", pixels, depth)
    read = read_image_file(str(tmp_path / "x.png"))
    assert read.dtype == dtype and read.shape == ((9, 7) if channels == 1 else (9, 7, 3))  # grayscale: a 2-D file
    assert np.array_equal(read.reshape(9, 7, channels).transpose(2, 0, 1), np.round(pixels * levels))
    back, _, _, bit_depth = load_image(str(tmp_path / "x.png"))
    assert bit_depth == depth and back.shape == pixels.shape and np.abs(back - pixels).max() < 1e-6
    if depth == 16:
        assert (read % 257 != 0).any()  # finer than 8 bits
    with Image.open(tmp_path / "x.png") as image:
        assert image.mode == mode[channels] and image.size == (7, 9)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


@pytest.mark.parametrize("array,depth", [(np.zeros((4, 4), np.uint8), 8), (np.zeros((4, 4), bool), 8),
                                         (np.zeros((4, 4, 3), np.uint16), 16), (np.zeros((4, 4), np.float32), 16)])
def test_bit_depth_of_what_is_read(array, depth):
    assert bit_depth(array) == depth


@pytest.mark.parametrize("channels,depth", [(2, 8), (4, 16), (3, 12)])
def test_a_png_of_other_channels_or_depth_is_refused(tmp_path, channels, depth):
    with pytest.raises(ValueError, match="1- or 3-channel image at 8 or 16 bits"):
        save_png(tmp_path / "x.png", np.zeros((channels, 4, 4), np.float32), depth)
