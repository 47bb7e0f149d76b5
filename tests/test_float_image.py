import numpy as np
import pytest
from layouts import LAYOUTS, in_layout

from utils.errors import InputError
from utils.float_image import check_float_image


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 5), (7,), (2, 3)])
def test_a_float_array_in_0_1_passes(dtype, shape):
    image = np.random.default_rng(0).random(shape).astype(dtype)
    image.flat[0], image.flat[-1] = 0, 1  # both ends belong to the range
    check_float_image(image)


@pytest.mark.parametrize("image,message", [
    (np.full((3, 4, 4), 200, np.uint8), "image must be a float array in [0, 1], got a uint8 array of shape (3, 4, 4)"),
    (np.full((3, 4, 4), True), "image must be a float array in [0, 1], got a bool array of shape (3, 4, 4)"),
    ([[0.5]], "image must be a float array in [0, 1], got a list"),
    (np.full((3, 4, 4), 255.0), "image must be a float array in [0, 1], got values from 255 to 255"),
    (np.array([0.5, -0.25, 1.5]), "image must be a float array in [0, 1], got values from -0.25 to 1.5"),
    (np.array([0.5, np.nan, 1.5]), "image must be a float array in [0, 1], got NaN"),
])
def test_what_is_not_a_float_array_in_0_1_is_refused_and_named(image, message):
    with pytest.raises(InputError) as info:
        check_float_image(image)
    assert str(info.value) == message


def test_the_message_names_the_array_and_the_layout_asked_for():
    with pytest.raises(InputError) as info:
        check_float_image(np.full((4, 4), 0.5), "noisy image", layout="C x H x W")
    assert str(info.value) == ("noisy image must be a C x H x W float array in [0, 1], "
                               "got a float64 array of shape (4, 4)")
    check_float_image(np.full((1, 4, 4), 0.5), layout="C x H x W")


@pytest.mark.parametrize("value", [-3.0, 1.5, np.nan])
def test_a_clipped_array_is_checked_for_its_type_only(value):
    check_float_image(np.full((3, 4, 4), value), clipped=True)
    with pytest.raises(InputError, match="got a uint8"):
        check_float_image(np.full((3, 4, 4), 2, np.uint8), clipped=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("value,passes", [(0.5, True), (1.5, False), (np.nan, False)])
def test_the_check_is_the_same_for_any_memory_layout(layout, value, passes):
    image = np.full((3, 4, 5), 0.25, np.float32)
    image[1, 2, 3] = value
    view = in_layout(image, layout)
    if passes:
        check_float_image(view)
    else:
        with pytest.raises(InputError):
            check_float_image(view)
