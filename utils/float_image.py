"""The one check that an array is an image as this project holds it: float, every value in [0, 1]."""

import numpy as np

from .errors import InputError


def check_float_image(image, what="image", layout=None, clipped=False):
    """Refuse (InputError) what is not a numpy float array with every value in [0, 1].

    An image of 0..255 integers would otherwise be measured, filtered or corrupted as if it were
    in [0, 1], without a word; NaN is refused too.

    :param str what: names the array in the message (``image``, ``clean image``).
    :param str layout: ``"C x H x W"`` to require as many dimensions; None: any shape.
    :param bool clipped: the caller clips the values to [0, 1] itself: only the type is checked.
    """
    dimensions = None if layout is None else layout.count(" x ") + 1
    if (not isinstance(image, np.ndarray) or not np.issubdtype(image.dtype, np.floating)
            or dimensions not in (None, image.ndim)):
        kind = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"{what} must be a {layout + ' ' if layout else ''}float array in [0, 1], got a {kind}")
    if not clipped and not np.all((image >= 0) & (image <= 1)):  # written so that NaN fails too
        found = "NaN" if np.isnan(image).any() else f"values from {image.min():g} to {image.max():g}"
        raise InputError(f"{what} must be a float array in [0, 1], got {found}")
