"""The data of one problem: the image, cropped for the network, and its seeded corruption."""

import dataclasses
import functools
import os

import numpy as np

from utils.atomic_files import printable_path
from utils.corruption import corrupt_salt_pepper
from utils.errors import InputError
from utils.image_io import ALPHA_NOTE, crop_to_multiple, is_jpeg, load_image, resize_shorter_side
from utils.metrics import psnr

from .settings import MIN_SIDE

# Five stride-2 scales: sides must be multiples of 32 (and at least MIN_SIDE).
SIDE_MULTIPLE = 32


@dataclasses.dataclass
class Observation:
    """What a run sees: ``noisy``, the observation y, and ``clean``, the image it should recover
    (None when only a corrupted image is known, ``noisy=``), both ``3 x H x W float32`` in
    [0, 1]; a description of the source and notes on what was converted."""

    noisy: np.ndarray
    clean: np.ndarray
    description: str
    notes: list

    @functools.cached_property
    def noisy_psnr(self):
        """The PSNR of the observation itself against the clean image (None without one)."""
        return None if self.clean is None else psnr(self.clean, self.noisy)


def prepare_observation(config):
    """Load, resize and crop the image of ``config`` (a RecoveryConfig) and, unless it is already
    noisy, corrupt it with the seeded salt-and-pepper noise of ``config.nlevel``."""
    if config.noisy is not None and not os.path.isfile(config.noisy):
        problem = "is a folder, not an image file" if os.path.isdir(config.noisy) else "not found"
        raise InputError(f"`noisy` image '{printable_path(config.noisy)}' {problem}")
    image, description, notes = load_image(config.noisy or config.image, config.data_dir)
    if config.resize is not None:
        image = resize_shorter_side(image, config.resize)
        notes.append(f"resized to {image.shape[2]}x{image.shape[1]}")
    image = _crop_for_network(image, notes)
    if config.noisy is not None:
        notes += _impulse_notes(config.noisy, notes)
        return Observation(noisy=image, clean=None, description=description, notes=notes)
    noisy = corrupt_salt_pepper(image, config.nlevel, config.seed)
    return Observation(noisy=noisy, clean=image, description=description, notes=notes)


def _crop_for_network(image, notes):
    original = image.shape
    image = crop_to_multiple(image, SIDE_MULTIPLE)
    if image.shape[1] < MIN_SIDE or image.shape[2] < MIN_SIDE:
        raise InputError(
            f"image is {original[2]}x{original[1]}: the network needs at least {MIN_SIDE}x{MIN_SIDE} "
            f"after centre-cropping to multiples of {SIDE_MULTIPLE}"
        )
    if image.shape != original:
        notes.append(f"centre-cropped from {original[2]}x{original[1]} to multiples of {SIDE_MULTIPLE}")
    return image


def _impulse_notes(path, notes):
    """The model takes every impulse to be an exact 0 or 1: say where the file cannot hold them."""
    extra = []
    if ALPHA_NOTE in notes:
        extra.append("white is the salt value: transparent pixels will be taken for impulses")
    if is_jpeg(path):
        extra.append("JPEG compression has blurred the impulses into their neighbours, so they are not exact "
                     "0s and 1s as the model assumes; a lossless file (PNG) keeps them")
    return extra
