"""Decoding an image file into an array of its own depth, and refusing a file no decoder should see.

Pillow reads every file's header (its format, size and mode: a file declaring too many pixels is
refused before anything of its size is allocated) and decodes every format but PNG. A PNG is
decoded by libpng, through OpenCV: at its full precision (Pillow reads a 16-bit PNG with colour or
alpha at 8 bits), and refused with libpng's own words where it is damaged (Pillow takes some
damages, a pixel stream that ends before the last row among them, and returns rows of zeros).
"""

import io
import os
import re
import stat
import sys
import tempfile
import warnings

import cv2
import numpy as np
from PIL import Image

from .atomic_files import printable_path
from .errors import InputError

# The most pixels an image file may declare (8192 x 8192), refused from its header before anything
# of the image's size is allocated: decoded at 16-bit RGBA it takes 512 MiB, as 3 x H x W float32
# 768 MiB. Pillow's decompression-bomb limit (a warning above 89,478,485 pixels, an error above
# twice that) lies above it, so Pillow never warns about a file that is read.
MAX_IMAGE_PIXELS = 8192 * 8192
# The largest file read into memory: more than any image within MAX_IMAGE_PIXELS needs, even
# stored uncompressed at 16-bit RGBA (512 MiB).
MAX_FILE_BYTES = 1 << 30
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file
# The reason given where OpenCV refuses a PNG without a word (a file cut inside its pixel data).
PNG_REFUSED = "the PNG decoder (libpng, through OpenCV) refuses it"


def _unreadable(shown, reason):
    return InputError(f"cannot read '{shown}' as an image: {reason}")


def _damaged(shown, exc):
    """The InputError for a file that Pillow found damaged, in the first line of Pillow's words."""
    words = (str(exc).splitlines() or [""])[0].rstrip(".")
    return _unreadable(shown, f"the file is truncated or corrupted: {words or type(exc).__name__}")


def not_a_regular_file(path):
    """What ``path`` is if it exists but is no regular file (nor a link to one): ``folder``,
    ``device``, ``pipe`` or ``socket``; else None. Reading a device or a pipe would wait forever or
    never end (``/dev/zero``)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    kinds = ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"),
             (stat.S_ISFIFO, "pipe"), (stat.S_ISSOCK, "socket"))
    return next((kind for test, kind in kinds if test(mode)), None)


def _read_bytes(path, shown):
    """The whole file as a bytearray, or InputError: a folder, a device, empty, too large."""
    if (kind := not_a_regular_file(path)) is not None:
        raise _unreadable(shown, f"it is a {kind}")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _unreadable(shown, f"the file has {size:,} bytes, more than the {MAX_FILE_BYTES:,} "
                                         f"read here (MAX_FILE_BYTES)")
            data = bytearray(size)
            del data[f.readinto(data):]
    except OSError as exc:
        raise _unreadable(shown, exc.strerror or type(exc).__name__) from None
    if not data:
        raise _unreadable(shown, "the file is empty")
    return data


def _open(data, shown):
    """Pillow's image of ``data``, its header read and no pixels yet; InputError for a file that is
    no image Pillow knows, has a damaged header, or declares more than MAX_IMAGE_PIXELS pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _unreadable(shown, f"it declares more than {MAX_IMAGE_PIXELS:,} pixels, "
                                 f"the most read here (MAX_IMAGE_PIXELS)") from None
    except Image.UnidentifiedImageError:
        raise _unreadable(shown, "the PNG header is invalid" if data.startswith(PNG_SIGNATURE) else
                                 "not an image format that is read here (PNG, JPEG, WebP, BMP, TIFF, "
                                 "or another that Pillow reads)") from None
    except Exception as exc:  # Pillow raises many kinds on a damaged header
        raise _damaged(shown, exc) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise _unreadable(shown, f"it declares {width} x {height} pixels, more than the "
                                 f"{MAX_IMAGE_PIXELS:,} read here (MAX_IMAGE_PIXELS)")
    return image


def _libpng_reason(text):
    """The reason in what libpng and OpenCV wrote to stderr on refusing a file: libpng's error, else
    OpenCV's last message, without their prefixes."""
    lines = text.splitlines()
    chosen = ([line for line in lines if line.startswith("libpng error: ")]
              or [line for line in lines if line.startswith("[ERROR")] or lines or [""])[-1]
    return re.sub(r"^(libpng error: |\[[^]]*\] global \S+ \w+ )", "", chosen).split(". ")[0].strip().rstrip(".")


def _decode_with_libpng(data):
    """OpenCV's (libpng's) decoding of PNG bytes, as stored (BGR order, uint16 for 16 bits), or
    None, and the text libpng and OpenCV wrote meanwhile. libpng writes its warnings and errors to
    the process's stderr (file descriptor 2) itself: they are caught in a file for that one call, so
    that a damaged file is one line, not libpng's lines and then the refusal."""
    pixels = np.frombuffer(data, np.uint8)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to keep clean
        return cv2.imdecode(pixels, cv2.IMREAD_UNCHANGED), ""
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            array = cv2.imdecode(pixels, cv2.IMREAD_UNCHANGED)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        return array, caught.read().decode(errors="replace")


def _decode_png(data, image, shown):
    """The pixels of a PNG, decoded by libpng, as an ``H x W [x C]`` array of the file's own depth
    in RGB(A) order. ``image`` is Pillow's reading of its header, which keeps the channels Pillow
    gives: libpng gives a grayscale image with alpha as BGRA (Pillow's raw mode says ``LA``, its
    mode for a 16-bit one is RGBA), and an RGB image with a transparent colour with an alpha
    channel (Pillow's mode is RGB)."""
    # OpenCV raises on an empty buffer and on more than 2**30 pixels: both refused before it is called.
    array, text = _decode_with_libpng(data)
    if array is None:
        raise _unreadable(shown, f"the file is truncated or corrupted: {_libpng_reason(text) or PNG_REFUSED}")
    if array.ndim == 2:
        return array
    raw_mode = str(image.tile[0].args) if image.tile else image.mode
    channels = [0, 3] if raw_mode.startswith("LA") else [2, 1, 0, 3][: 3 if image.mode == "RGB" else array.shape[2]]
    return np.ascontiguousarray(array[:, :, channels])


def _decode_with_pillow(image, shown):
    """The pixels of a Pillow image as an ``H x W [x C]`` array of the file's own depth."""
    try:
        image.load()
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
        elif image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("L" if image.mode == "1" else "RGB")
        array = np.array(image)
    except Exception as exc:  # a damaged file: OSError mostly, but Pillow's decoders vary
        raise _damaged(shown, exc) from None
    if image.mode.startswith("I") and array.dtype != np.uint16:
        # Pillow opens some 16-bit files as 32-bit integers.
        if array.min() < 0 or array.max() > 65535:
            raise _unreadable(shown, "it has integer pixels outside 16 bits")
        array = array.astype(np.uint16)
    return array


def decode_image_file(path):
    """Read an image file as a numpy array of its own depth: ``H x W`` or ``H x W x C``, uint8,
    uint16 (a 16-bit PNG or TIFF, colour included) or float, and notes on how it was read.

    One-line InputError on a file that is missing, a folder, empty, truncated, corrupted, of more
    than MAX_IMAGE_PIXELS pixels, or no image.
    """
    shown = printable_path(path)
    data = _read_bytes(path, shown)
    with _open(data, shown) as image:
        frames = getattr(image, "n_frames", 1)
        array = _decode_png(data, image, shown) if image.format == "PNG" else _decode_with_pillow(image, shown)
    return array, [f"first of {frames} frames read"] if frames > 1 else []
