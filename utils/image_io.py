"""Reading, cropping, resizing and writing images as ``C x H x W float32`` arrays in [0, 1].

Where an image comes from (``--image NAME``: a file, a name in the data folder, a scikit-image
sample) and how it becomes the project's array; the decoding of a file's bytes, and the refusal of
a damaged file, are utils/image_decoding.py's.

C is 1 for a grayscale image (as the file or sample stores it: a 2-D array, one channel, or one
with alpha) and 3 for colour; an RGB file whose three channels are equal stays colour. The bit
depth of an image (8, or 16 for a 16-bit or floating-point file) is that of the PNG files written
from it.
"""

import os

import cv2
import numpy as np
import skimage.data
import skimage.transform
from PIL import Image

from .atomic_files import atomic_path, printable_path
from .errors import InputError
from .float_image import check_float_image
from .image_decoding import decode_image_file, not_a_regular_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NOT_SAMPLES = ("download_all",)  # in skimage.data.__all__, callable, but fetches every sample
ALPHA_NOTE = "transparent pixels composited onto white"
GRAYSCALE_NOTE = "grayscale image recovered as one channel"
BIT_DEPTHS = (8, 16)  # of the PNG files written
# Where ``--image NAME`` is looked up unless told otherwise: this checkout's data/denoising, so that
# the scripts (and the modules, imported from elsewhere) find it from any working folder.
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "denoising")


def resolve_image(name, data_dir):
    """Find the image that ``--image NAME`` means.

    In order: a path to an existing file; ``NAME`` or ``NAME.<ext>`` in ``data_dir``; the name of a
    scikit-image sample (e.g. ``astronaut``). Returns ``("file", path)`` or ``("sample", name)``.
    """
    if os.path.isfile(name):
        return "file", name
    for candidate in [name] + [name + ext for ext in IMAGE_EXTENSIONS]:
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return "file", path
    sample = getattr(skimage.data, name, None)
    if sample is not None and name in skimage.data.__all__ and callable(sample) and name not in NOT_SAMPLES:
        return "sample", name
    if not name:  # joined to data_dir, it would name the folder itself
        raise InputError("`image` is empty")
    for path in (name, os.path.join(data_dir, name)):
        if (kind := not_a_regular_file(path)) is not None:
            raise InputError(f"image '{printable_path(path)}' is a {kind}, not an image file")
    raise InputError(
        f"image '{printable_path(name)}' not found: not a file, not in {printable_path(data_dir)}/, "
        f"and not a scikit-image sample (e.g. astronaut, coffee, chelsea)"
    )


def to_float_image(array):
    """Convert an image array as read (``H x W``, ``H x W x 1|2|3|4``; uint8, uint16 or float) to
    ``C x H x W float32`` in [0, 1], C 1 (grayscale, with or without alpha) or 3 (colour, with or
    without alpha). Returns the array and a list of notes on what was converted."""
    notes = []
    array = np.asarray(array)
    if array.dtype == np.uint8:
        img = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        img = array.astype(np.float32) / 65535.0
        notes.append("16-bit image scaled to [0, 1]")
    elif array.dtype == bool:
        img = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        img = array.astype(np.float32)
        check_float_image(img)
    else:
        raise InputError(f"unsupported pixel type {array.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"unsupported image shape {array.shape}")
    if img.shape[2] in (2, 4):
        # Composite onto white: transparent pixels carry no colour of their own.
        alpha = img[:, :, -1:]
        img = img[:, :, :-1] * alpha + (1.0 - alpha)
        notes.append(ALPHA_NOTE if (alpha < 1).any() else "opaque alpha channel dropped")
    if img.shape[2] == 1:
        notes.append(GRAYSCALE_NOTE)
    return np.ascontiguousarray(img.transpose(2, 0, 1)), notes


def bit_depth(array):
    """The bit depth (8 or 16) of the files written from an image array as read: 16 for uint16
    and for floating-point pixels (finer than 8 bits), 8 for uint8 and bool."""
    return 16 if array.dtype == np.uint16 or np.issubdtype(array.dtype, np.floating) else 8


def read_image_file(path):
    """Read an image file as a numpy array of its own depth (see
    :func:`utils.image_decoding.decode_image_file`, which also says how it was read)."""
    return decode_image_file(path)[0]


def is_jpeg(path):
    """True for a JPEG file (lossy: salt-and-pepper impulses in it are no longer exact 0s and 1s)."""
    with open(path, "rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def load_sample(name):
    """A scikit-image sample as a numpy array, or InputError if it is not one image here."""
    try:
        array = getattr(skimage.data, name)()
    except ModuleNotFoundError:  # not shipped with scikit-image: downloaded through pooch, not a dependency here
        raise InputError(f"scikit-image sample '{name}' is downloaded on demand, which needs the package pooch") from None
    except TypeError:  # a function of skimage.data that needs arguments
        raise InputError(f"'{name}' is not a scikit-image sample image") from None
    if not isinstance(array, np.ndarray):
        raise InputError(f"scikit-image sample '{name}' is not one image")
    return array


def load_image(name, data_dir=DEFAULT_DATA_DIR):
    """Load ``--image NAME`` (see :func:`resolve_image`) as ``C x H x W float32`` in [0, 1], C 1
    or 3 (see :func:`to_float_image`).

    Returns ``(image, description, notes, bit_depth)``; the description names the file in printable
    form (see :func:`utils.atomic_files.printable_path`), ``bit_depth`` is :func:`bit_depth`'s
    (scikit-image's samples are 8-bit).
    """
    kind, where = resolve_image(name, data_dir)
    if kind == "sample":
        array, notes = load_sample(where), []
        description = f"scikit-image sample '{where}'"
    else:
        array, notes = decode_image_file(where)
        description = printable_path(where)
    image, conversion_notes = to_float_image(array)
    return image, description, notes + conversion_notes, bit_depth(array)


def resized_shape(shape, size):
    """The shape ``(C, H, W)`` of a ``shape`` image resized so that its shorter side is ``size``."""
    c, h, w = shape
    scale = size / min(h, w)
    return c, max(1, round(h * scale)), max(1, round(w * scale))


def resize_shorter_side(image, size):
    """Resize a ``C x H x W`` image so that its shorter side is ``size`` pixels (anti-aliased)."""
    shape = resized_shape(image.shape, size)
    out = skimage.transform.resize(image, shape, order=3, anti_aliasing=size < min(image.shape[1:]), mode="reflect")
    return np.clip(out, 0, 1).astype(np.float32)


def crop_to_multiple(image, multiple=32):
    """Centre-crop a ``C x H x W`` image so that H and W are multiples of ``multiple``."""
    _, h, w = image.shape
    new_h, new_w = h - h % multiple, w - w % multiple
    top, left = (h - new_h) // 2, (w - new_w) // 2
    return image[:, top : top + new_h, left : left + new_w]


def to_uint8(image):
    """``C x H x W`` float in [0, 1] -> ``H x W x C`` uint8 (rounded, clipped)."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def to_uint16(image):
    """``C x H x W`` float in [0, 1] -> ``H x W x C`` uint16 (rounded, clipped)."""
    return np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16).transpose(1, 2, 0)


def save_png(path, image, depth=8):
    """Write a ``C x H x W`` float image in [0, 1] (C 1 or 3) as a PNG of ``depth`` bits (8 or 16),
    grayscale for one channel, atomically, pixel for pixel."""
    if depth not in BIT_DEPTHS or np.shape(image)[0] not in (1, 3):
        raise ValueError(f"a PNG is written from a 1- or 3-channel image at 8 or 16 bits, not {np.shape(image)} "
                         f"at {depth}")
    pixels = to_uint8(image) if depth == 8 else to_uint16(image)
    pixels = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    if depth == 8:
        picture = Image.fromarray(pixels)
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
        return
    # Pillow writes no 16-bit colour PNG: OpenCV writes both kinds, colour in BGR order.
    pixels = np.ascontiguousarray(pixels[:, :, ::-1] if pixels.ndim == 3 else pixels)
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} 16-bit PNG")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(encoded.tobytes())
