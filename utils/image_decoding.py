"""Decoding an image file into an array of its own depth, and refusing a file no decoder should see.

Pillow decodes every format but one: a 16-bit PNG with colour or alpha, which Pillow reads at 8
bits and torchvision at its full precision. A PNG is checked by Pillow first (``verify()``: each
chunk's checksum, up to the end chunk) and decoded by it in full (a row with an unknown filter, a
damaged compressed stream). Pillow takes damages that libpng refuses: a compressed pixel stream
that ends before the last row or is split by another chunk (Pillow returns rows of zeros), or that
never ends. On these, torchvision's decoder crashes the process (segmentation fault):
:func:`_check_png` refuses them before any decoder runs.
"""

import io
import itertools
import os
import re
import stat
import struct
import warnings
import zlib

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torchvision.io import ImageReadMode, decode_image

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
TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel (3: palette index)
PNG_GRAY, PNG_PALETTE = 0, 3
PNG_EXTRA_PIXEL_BYTES = 1 << 20  # inflated past the rows a header implies: tolerated (libpng drops them)
# Adam7 interlacing: the first column, first row, column step and row step of each of its passes.
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _unreadable(shown, reason):
    return InputError(f"cannot read '{shown}' as an image: {reason}")


def _damaged(shown, exc):
    """The InputError for a file that a decoder found damaged, in the first line of the decoder's
    own words (torchvision's start with its C++ function, file and line: those are dropped)."""
    words = re.sub(r"^.*?\.cpp:\d+, ", "", (str(exc).splitlines() or [""])[0]).rstrip(".")
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
    """The whole file as a (writable) bytearray, or InputError: a folder, a device, empty, too large."""
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


def _png_chunks(data):
    """``(type, body)`` of each chunk of a PNG that Pillow has verified, up to its end chunk; Pillow
    reads each chunk's header, and the bodies are views of ``data``, not copies."""
    view, stream = memoryview(data), PngImagePlugin.ChunkStream(io.BytesIO(data))
    stream.fp.seek(len(PNG_SIGNATURE))
    while (header := stream.read())[0] != b"IEND":
        kind, position, length = header
        yield kind, view[position : position + length]
        stream.fp.seek(position + length + 4)  # past the body's checksum


def _png_pixel_bytes(width, height, bits_per_pixel, interlaced):
    """The bytes of a PNG's pixel rows, each with its filter byte: of one image, or of the seven
    reduced images of Adam7 interlacing."""
    total = 0
    for x0, y0, dx, dy in ADAM7_PASSES if interlaced else ((0, 0, 1, 1),):
        if width > x0 and height > y0:
            columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)  # ceiling divisions
            total += rows * (1 + (columns * bits_per_pixel + 7) // 8)
    return total


def _check_png(data, shown):
    """InputError unless a PNG passes Pillow's ``verify()`` and what Pillow takes but libpng refuses:
    its header chunk comes first, a palette image has its palette, and its one run of IDAT chunks
    holds a zlib stream that inflates to the rows the header implies (at most PNG_EXTRA_PIXEL_BYTES
    more) and ends there.

    Returns True for a 16-bit image with colour or alpha, which only torchvision reads in full.
    """
    with _open(data, shown) as image:
        if not image.tile:
            raise _unreadable(shown, "the PNG file has no pixel data")
        try:
            image.verify()
        except Exception as exc:  # SyntaxError, OSError, struct.error: Pillow's words name the damage
            raise _damaged(shown, exc) from None
    chunks = list(_png_chunks(data))
    kinds = [kind for kind, _ in chunks]
    if kinds[0] != b"IHDR":
        raise _unreadable(shown, "the PNG file is corrupted (its header chunk is not the first)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", chunks[0][1])
    if compression or filtering or interlace > 1:  # one method of each is defined; Pillow reads past others
        raise _unreadable(shown, "the PNG header is invalid")
    pixel_data = [body for _, body in itertools.takewhile(lambda chunk: chunk[0] == b"IDAT",
                                                          chunks[kinds.index(b"IDAT"):])]
    if len(pixel_data) < kinds.count(b"IDAT"):
        raise _unreadable(shown, "the PNG file is corrupted (its pixel data is split by other chunks)")
    if colour == PNG_PALETTE and b"PLTE" not in kinds:
        raise _unreadable(shown, "the PNG file is corrupted (a palette image without a palette)")
    # Pillow opens no file of another colour type.
    expected = _png_pixel_bytes(width, height, depth * PNG_SAMPLES[colour], interlace == 1)
    inflater = zlib.decompressobj()
    try:
        inflated = len(inflater.decompress(b"".join(pixel_data), expected + PNG_EXTRA_PIXEL_BYTES + 1))
    except zlib.error:
        raise _unreadable(shown, "the PNG file is corrupted (its compressed pixel data is damaged)") from None
    if inflated < expected:
        raise _unreadable(shown, "the PNG file is truncated (its pixel data ends early)")
    if inflated > expected + PNG_EXTRA_PIXEL_BYTES:
        raise _unreadable(shown, "the PNG file is corrupted (its pixel data is longer than its header says)")
    if not inflater.eof:
        raise _unreadable(shown, "the PNG file is truncated or corrupted (its compressed pixel data does not end)")
    return depth == 16 and colour != PNG_GRAY


def _decode_with_torchvision(data, shown):
    """Decode PNG bytes as an ``H x W x C`` array as stored: uint16 for a 16-bit PNG."""
    try:
        with warnings.catch_warnings():
            # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec, which is not
            # a dependency here; the warning says nothing about the file.
            warnings.filterwarnings("ignore", message=TORCHVISION_DEPRECATION, category=DeprecationWarning)
            tensor = decode_image(torch.frombuffer(data, dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as exc:
        raise _damaged(shown, exc) from None
    return tensor.permute(1, 2, 0).numpy()


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
    full_precision = _check_png(data, shown) if data.startswith(PNG_SIGNATURE) else False
    with _open(data, shown) as image:
        frames = getattr(image, "n_frames", 1)
        array = _decode_with_pillow(image, shown)
    if full_precision:
        # Pillow's decode above read these pixels at 8 bits; it also checked each row's filter,
        # on which torchvision's decoder crashes the process too.
        array = _decode_with_torchvision(data, shown)
    return array, [f"first of {frames} frames read"] if frames > 1 else []
