import os

import numpy as np
import pytest
from layouts import LAYOUTS, in_layout
from PIL import Image

from utils.errors import InputError
from utils.image_io import (crop_to_multiple, load_image, read_image_file, resize_shorter_side, save_png, to_rgb_float,
                            to_uint8)


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
    by_name, description, _ = load_image("red", str(tmp_path))
    assert by_name[0].min() == 1 and by_name[1].max() == 0
    sample, description, _ = load_image("astronaut", str(tmp_path))
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
