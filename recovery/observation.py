"""The data of one problem: the image, cropped for the network, and its seeded corruption."""

import dataclasses
import functools
import os

import numpy as np

from utils.atomic_files import printable_path
from utils.corruption import corrupt
from utils.errors import InputError, RunFailure
from utils.image_decoding import not_a_regular_file
from utils.image_io import ALPHA_NOTE, crop_to_multiple, is_jpeg, load_image, resize_shorter_side, resized_shape
from utils.metrics import psnr

from .settings import MIN_SIDE

# Five stride-2 scales: sides must be multiples of 32 (and at least MIN_SIDE).
SIDE_MULTIPLE = 32


@dataclasses.dataclass
class Observation:
    """What a run sees: ``noisy``, the observation y, and ``clean``, the image it should recover
    (None when only a corrupted image is known, ``noisy=``), both ``C x H x W float32`` in
    [0, 1] (C 1 for a grayscale image, 3 for colour); a description of the source, notes on what
    was converted, and ``bit_depth``, that of the source file (8 or 16, see
    :func:`utils.image_io.bit_depth`) and of the PNG files written from the run's images."""

    noisy: np.ndarray
    clean: np.ndarray
    description: str
    notes: list
    bit_depth: int = 8

    @functools.cached_property
    def noisy_psnr(self):
        """The PSNR of the observation itself against the clean image (None without one)."""
        return None if self.clean is None else psnr(self.clean, self.noisy)


def prepare_observation(config, check_size=None):
    """Load, resize and crop the image of ``config`` (a RecoveryConfig) and, unless it is already
    noisy, corrupt it with the seeded impulses of ``config.noise`` at ``config.nlevel``.

    ``check_size(channels, height, width)``, if given, is called with the shape the run's images will have
    before an image of that size is made (resizing makes it), so that a caller can refuse there a
    size that would not fit in memory: an InputError it raises comes out of this call.
    """
    if config.noisy is not None and not os.path.isfile(config.noisy):
        kind = not_a_regular_file(config.noisy)
        problem = "not found" if kind is None else f"is a {kind}, not an image file"
        raise InputError(f"`noisy` image '{printable_path(config.noisy)}' {problem}")
    image, description, notes, depth = load_image(config.noisy or config.image, config.data_dir)
    shape = image.shape if config.resize is None else resized_shape(image.shape, config.resize)
    height, width = _network_sides(shape)
    if check_size is not None:
        check_size(shape[0], height, width)
    if config.resize is not None:
        try:
            image = resize_shorter_side(image, config.resize)
        except MemoryError:  # a size that no memory check refused
            raise RunFailure(f"resizing the image to {shape[2]}x{shape[1]} ran out of memory; use a smaller "
                             f"`resize`") from None
        notes.append(f"resized to {image.shape[2]}x{image.shape[1]}")
    if image.shape[1:] != (height, width):
        notes.append(f"centre-cropped from {image.shape[2]}x{image.shape[1]} to multiples of {SIDE_MULTIPLE}")
    image = crop_to_multiple(image, SIDE_MULTIPLE)
    if config.noisy is not None:
        notes += _impulse_notes(config.noisy, notes)
        return Observation(noisy=image, clean=None, description=description, notes=notes, bit_depth=depth)
    noisy = corrupt(image, config.noise, config.nlevel, config.seed)
    return Observation(noisy=noisy, clean=image, description=description, notes=notes, bit_depth=depth)


def _network_sides(shape):
    """The height and width of a ``shape`` (C, H, W) image centre-cropped for the network, or
    InputError if they are too small for it."""
    height, width = (side - side % SIDE_MULTIPLE for side in shape[1:])
    if height < MIN_SIDE or width < MIN_SIDE:
        raise InputError(
            f"image is {shape[2]}x{shape[1]}: the network needs at least {MIN_SIDE}x{MIN_SIDE} "
            f"after centre-cropping to multiples of {SIDE_MULTIPLE}"
        )
    return height, width


def _impulse_notes(path, notes):
    """The model needs the corruption sparse (any values, any sign): say where the file makes it
    dense, or makes clean pixels look like salt."""
    extra = []
    if ALPHA_NOTE in notes:
        extra.append("white is the salt value: transparent pixels will be taken for impulses")
    if is_jpeg(path):
        extra.append("JPEG compression has spread the impulses into their neighbours, so the corruption is no "
                     "longer sparse as the model needs; a lossless file (PNG) keeps it sparse")
    return extra
