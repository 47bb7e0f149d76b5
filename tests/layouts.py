"""Helper of the tests that a function of utils/ answers the same for any memory layout of its
array arguments (tests/test_baselines.py, test_corruption.py, test_metrics.py, test_image_io.py,
test_plotting.py): the same logical array as views of other layouts."""

import numpy as np

LAYOUTS = ("transposed", "fortran", "strided", "negative_strides")


def in_layout(array, layout):
    """A view equal to ``array`` element for element, laid out in memory as ``layout`` says:

    - ``transposed``: its last two axes swapped in memory (a transposed view: neither C nor
      Fortran order);
    - ``fortran``: Fortran order (the first axis varies fastest);
    - ``strided``: every other element of a larger array along every axis;
    - ``negative_strides``: a reversed view of a reversed copy (every stride negative).
    """
    array = np.asarray(array)
    if layout == "transposed":
        view = np.ascontiguousarray(np.swapaxes(array, -1, -2)).swapaxes(-1, -2)
    elif layout == "fortran":
        view = np.asfortranarray(array)
    elif layout == "strided":
        every_other = (slice(None, None, 2),) * array.ndim
        larger = np.zeros(tuple(2 * side for side in array.shape), array.dtype)
        larger[every_other] = array
        view = larger[every_other]
    elif layout == "negative_strides":
        view = np.flip(np.flip(array).copy())
    else:
        raise ValueError(f"unknown layout {layout}")
    assert np.array_equal(view, array, equal_nan=True) and not view.flags.c_contiguous
    return view
