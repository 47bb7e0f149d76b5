"""Reading, cropping, resizing and writing images as ``C x H x W float32`` arrays in [0, 1].

PNG, JPEG and WebP files are decoded by torchvision, which reads a 16-bit colour PNG at its full
precision (Pillow reads it at 8 bits); every other format (BMP, TIFF, GIF, ...) by Pillow, which
torchvision 0.29 cannot decode. A PNG is checked here from end to end before torchvision sees it:
torchvision's PNG decoder crashes the process (segmentation fault) on a damaged pixel stream.
"""

import io
import os
import re
import struct
import warnings
import zlib

import numpy as np
import skimage.data
import skimage.transform
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image

from .atomic_files import atomic_path, printable_path
from .errors import InputError
from .float_image import check_float_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NOT_SAMPLES = ("download_all",)  # in skimage.data.__all__, callable, but fetches every sample
ALPHA_NOTE = "transparent pixels composited onto white"
# Where ``--image NAME`` is looked up unless told otherwise: this checkout's data/denoising, so that
# the scripts (and the modules, imported from elsewhere) find it from any working folder.
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "denoising")
# The most pixels an image file may declare (8192 x 8192), refused from its header before anything
# of the image's size is allocated: decoded at 16-bit RGBA it takes 512 MiB, as 3 x H x W float32
# 768 MiB. Pillow's decompression-bomb limit (a warning above 89,478,485 pixels, an error above
# twice that) lies above it, so Pillow never warns about a file that is read.
MAX_IMAGE_PIXELS = 8192 * 8192
# The largest file read into memory: more than any image within MAX_IMAGE_PIXELS needs, even
# stored uncompressed at 16-bit RGBA (512 MiB).
MAX_FILE_BYTES = 1 << 30
TORCHVISION_FORMATS = ("JPEG", "WEBP")  # as Pillow names them; PNG is recognised by its signature
TORCHVISION_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel (3: palette index)
PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
PNG_PALETTE = 3
PNG_LAST_FILTER = 4  # filter types 0 (none) to 4 (Paeth) start each row of pixel data
PNG_EXTRA_PIXEL_BYTES = 1 << 20  # inflated past the rows a header implies: tolerated (libpng drops them)
# Adam7 interlacing: the first column, first row, column step and row step of each of its passes.
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


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
    for folder in (name, os.path.join(data_dir, name)):
        if os.path.isdir(folder):
            raise InputError(f"image '{printable_path(folder)}' is a folder, not an image file")
    raise InputError(
        f"image '{printable_path(name)}' not found: not a file, not in {printable_path(data_dir)}/, "
        f"and not a scikit-image sample (e.g. astronaut, coffee, chelsea)"
    )


def to_rgb_float(array):
    """Convert an image array as read (``H x W``, ``H x W x 1|2|3|4``; uint8, uint16 or float) to
    ``3 x H x W float32`` in [0, 1]. Returns the array and a list of notes on what was converted."""
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
        img = np.repeat(img, 3, axis=2)
        notes.append("grayscale image replicated to 3 channels")
    return np.ascontiguousarray(img.transpose(2, 0, 1)), notes


def _unreadable(shown, reason):
    return InputError(f"cannot read '{shown}' as an image: {reason}")


def _check_pixel_count(width, height, shown):
    if width * height > MAX_IMAGE_PIXELS:
        raise _unreadable(shown, f"it declares {width} x {height} pixels, more than the "
                                 f"{MAX_IMAGE_PIXELS:,} read here (MAX_IMAGE_PIXELS)")


def _read_bytes(path, shown):
    """The whole file as a (writable) bytearray, or InputError: a folder, empty, too large."""
    if os.path.isdir(path):
        raise _unreadable(shown, "it is a folder")
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


def _png_chunks(data, shown):
    """The ``(type, body)`` of each chunk of a PNG, up to IEND; InputError if the file ends first
    or a chunk's checksum fails. Bodies are views of ``data``, not copies."""
    view = memoryview(data)
    chunks, position = [], len(PNG_SIGNATURE)
    while True:
        if position + 12 > len(data):
            raise _unreadable(shown, "the PNG file is truncated")
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            raise _unreadable(shown, "the PNG file is truncated")
        body = view[position + 8 : end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, end - 4)[0]:
            raise _unreadable(shown, f"the PNG file is corrupted (the checksum of its "
                                     f"{kind.decode('latin-1')!r} chunk fails)")
        chunks.append((kind, body))
        if kind == b"IEND":
            return chunks
        position = end


def _png_rows(width, height, bits_per_pixel, interlaced):
    """``(rows, bytes per row with its filter byte)`` of each non-empty pass of a PNG's pixel data."""
    passes = []
    for x0, y0, dx, dy in ADAM7_PASSES if interlaced else ((0, 0, 1, 1),):
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)  # ceiling division
        if columns > 0 and rows > 0:
            passes.append((rows, 1 + (columns * bits_per_pixel + 7) // 8))
    return passes


def _inflate_png_pixels(bodies, expected, shown):
    """The ``expected`` bytes of pixel rows in the zlib stream of IDAT ``bodies``; InputError
    unless the stream holds that many and also ends (libpng reads it to its end) without an error.

    At most PNG_EXTRA_PIXEL_BYTES more are inflated (and dropped), so that a stream holding far
    more than its header says costs neither memory nor time.
    """
    inflater, pixels, extra = zlib.decompressobj(), bytearray(), 0
    try:
        for body in bodies:
            pending = body
            while pending and not inflater.eof:
                room = expected - len(pixels)
                if room > 0:
                    pixels += inflater.decompress(pending, room)
                else:
                    extra += len(inflater.decompress(pending, PNG_EXTRA_PIXEL_BYTES + 1 - extra))
                    if extra > PNG_EXTRA_PIXEL_BYTES:
                        raise _unreadable(shown, "the PNG file is corrupted (its pixel data is longer than "
                                                 "its header says)")
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:
        raise _unreadable(shown, "the PNG file is corrupted (its compressed pixel data is damaged)") from None
    if len(pixels) < expected:
        raise _unreadable(shown, "the PNG file is truncated (its pixel data ends early)")
    if not inflater.eof:
        raise _unreadable(shown, "the PNG file is truncated or corrupted (its compressed pixel data does not end)")
    return pixels


def _check_png(data, shown):
    """Check a PNG from end to end: header, every chunk's checksum, and the pixel data inflated
    (zlib) to the length its header implies, each row with a valid filter. InputError otherwise.

    Only such a file reaches torchvision, whose decoder crashes the process (segmentation fault)
    where libpng finds a damaged pixel stream. Returns True when pixels are palette indices with
    transparency (a tRNS chunk), which torchvision then expands to RGBA.
    """
    if len(data) < 33 or data[12:16] != b"IHDR":  # signature, then IHDR's length, type and body
        raise _unreadable(shown, "the PNG file is truncated" if len(data) < 33 else "the PNG file has no header chunk")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise _unreadable(shown, f"the PNG header declares {width} x {height} pixels")
    _check_pixel_count(width, height, shown)
    if depth not in PNG_DEPTHS.get(colour, ()) or compression or filtering or interlace not in (0, 1):
        raise _unreadable(shown, f"the PNG header is invalid (bit depth {depth}, colour type {colour})")
    chunks = _png_chunks(data, shown)
    kinds = [kind for kind, _ in chunks]
    if b"IDAT" not in kinds:
        raise _unreadable(shown, "the PNG file has no pixel data")
    first = kinds.index(b"IDAT")
    last = len(kinds) - 1 - kinds[::-1].index(b"IDAT")
    if any(kind != b"IDAT" for kind in kinds[first:last]):
        raise _unreadable(shown, "the PNG file is corrupted (its pixel data is split by other chunks)")
    if colour == PNG_PALETTE and b"PLTE" not in kinds[:first]:
        raise _unreadable(shown, "the PNG file is corrupted (a palette image without a palette)")
    passes = _png_rows(width, height, depth * PNG_SAMPLES[colour], interlace == 1)
    expected = sum(rows * row_bytes for rows, row_bytes in passes)
    pixels = _inflate_png_pixels([body for _, body in chunks[first : last + 1]], expected, shown)
    filters, start = np.frombuffer(pixels, np.uint8), 0
    for rows, row_bytes in passes:
        if filters[start : start + rows * row_bytes : row_bytes].max() > PNG_LAST_FILTER:
            raise _unreadable(shown, "the PNG file is corrupted (a row of pixels has an unknown filter)")
        start += rows * row_bytes
    return colour == PNG_PALETTE and b"tRNS" in kinds


def _decode_with_torchvision(data, mode, shown):
    """Decode PNG, JPEG or WebP bytes as an ``H x W x C`` array, uint8 (uint16 for a 16-bit PNG)."""
    try:
        with warnings.catch_warnings():
            # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec, which is not
            # a dependency here; the warning says nothing about the file.
            warnings.filterwarnings("ignore", message=TORCHVISION_DEPRECATION, category=DeprecationWarning)
            tensor = decode_image(torch.frombuffer(data, dtype=torch.uint8), mode=mode)
    except RuntimeError as exc:
        # torchvision's messages start with the C++ function, file and line: the reason follows.
        reason = re.sub(r"^.*?\.cpp:\d+, ", "", str(exc).splitlines()[0] if str(exc) else "")
        raise _unreadable(shown, f"the file is corrupted ({reason.rstrip('.') or type(exc).__name__})") from None
    return tensor.permute(1, 2, 0).numpy()


def _decode_with_pillow(data, shown):
    """Decode any format Pillow reads. Returns an ``H x W [x C]`` array of the file's own depth
    and notes (a file of several frames: the first is read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _unreadable(shown, f"it declares more than {MAX_IMAGE_PIXELS:,} pixels, "
                                 f"the most read here (MAX_IMAGE_PIXELS)") from None
    except Exception:  # Pillow raises many kinds on a file that is no image it knows
        raise _unreadable(shown, "not an image format that is read here (PNG, JPEG, WebP, BMP, TIFF, "
                                 "or another that Pillow reads)") from None
    with image:
        _check_pixel_count(*image.size, shown)
        frames = getattr(image, "n_frames", 1)
        notes = [f"first of {frames} frames read"] if frames > 1 else []
        if image.format in TORCHVISION_FORMATS and frames == 1:
            # JPEG: CMYK and YCbCr come out as RGB; grayscale and WebP's RGB or RGBA as they are.
            mode = ImageReadMode.UNCHANGED if image.mode in ("L", "RGB", "RGBA") else ImageReadMode.RGB
            return _decode_with_torchvision(data, mode, shown), notes
        try:
            image.load()
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
            elif image.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("L" if image.mode == "1" else "RGB")
            array = np.array(image)
        except Exception as exc:  # a damaged file: OSError mostly, but Pillow's decoders vary
            raise _unreadable(shown, f"the file is truncated or corrupted ({exc or type(exc).__name__})") from None
    if image.mode.startswith("I") and array.dtype != np.uint16:
        # Pillow opens some 16-bit files as 32-bit integers.
        if array.min() < 0 or array.max() > 65535:
            raise _unreadable(shown, "it has integer pixels outside 16 bits")
        array = array.astype(np.uint16)
    return array, notes


def _read_image(path):
    """Read an image file as an array of its own depth and notes on how it was read."""
    shown = printable_path(path)
    data = _read_bytes(path, shown)
    if data.startswith(PNG_SIGNATURE):
        palette_with_transparency = _check_png(data, shown)
        # Palette PNGs are expanded to colour here: torchvision's UNCHANGED mode returns the raw
        # (packed) palette indices.
        is_palette = data[25] == PNG_PALETTE
        mode = (ImageReadMode.RGB_ALPHA if palette_with_transparency
                else ImageReadMode.RGB if is_palette else ImageReadMode.UNCHANGED)
        return _decode_with_torchvision(data, mode, shown), []
    return _decode_with_pillow(data, shown)


def read_image_file(path):
    """Read an image file as a numpy array of its own depth: ``H x W`` or ``H x W x C``, uint8,
    uint16 (a 16-bit PNG or TIFF, colour included) or float. One-line InputError on a file that
    is missing, a folder, empty, truncated, corrupted, of more than MAX_IMAGE_PIXELS pixels, or
    no image."""
    return _read_image(path)[0]


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
    """Load ``--image NAME`` (see :func:`resolve_image`) as ``3 x H x W float32`` in [0, 1].

    Returns ``(image, description, notes)``; the description names the file in printable form
    (see :func:`utils.atomic_files.printable_path`).
    """
    kind, where = resolve_image(name, data_dir)
    if kind == "sample":
        array, notes = load_sample(where), []
        description = f"scikit-image sample '{where}'"
    else:
        array, notes = _read_image(where)
        description = printable_path(where)
    image, conversion_notes = to_rgb_float(array)
    return image, description, notes + conversion_notes


def resize_shorter_side(image, size):
    """Resize a ``C x H x W`` image so that its shorter side is ``size`` pixels (anti-aliased)."""
    c, h, w = image.shape
    scale = size / min(h, w)
    shape = (c, max(1, round(h * scale)), max(1, round(w * scale)))
    out = skimage.transform.resize(image, shape, order=3, anti_aliasing=scale < 1, mode="reflect")
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


def save_png(path, image):
    """Write a ``C x H x W`` float image in [0, 1] as an 8-bit PNG, atomically, pixel for pixel."""
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")
