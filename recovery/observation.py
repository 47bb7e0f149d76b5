"""The data of one problem: the image at its own size (or one tile of it), and its seeded corruption."""

import dataclasses
import functools
import os

import numpy as np

from utils.atomic_files import printable_path
from utils.corruption import corrupt
from utils.errors import InputError, RunFailure
from utils.image_decoding import not_a_regular_file
from utils.image_io import ALPHA_NOTE, is_jpeg, load_image, resize_shorter_side, resized_shape
from utils.metrics import psnr

from .padding import describe_padding, network_sides
from .tiling import tile_grid


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
    """Load and resize the image of ``config`` (a RecoveryConfig) and, unless it is already noisy,
    corrupt it with the seeded impulses of ``config.noise`` at ``config.nlevel``; with
    ``config.tile_index``, cut that tile out of the whole (the corruption is the whole image's, the
    same for every tile). The image keeps its own size: the network's canvas is ``padding``'s.

    ``check_size(channels, height, width)``, if given, is called with the canvas the run's network
    will compute on before an image of that size is made (resizing makes it), so that a caller can
    refuse there a size that would not fit in memory: an InputError it raises comes out of this call.
    """
    if config.noisy is not None and not os.path.isfile(config.noisy):
        kind = not_a_regular_file(config.noisy)
        problem = "not found" if kind is None else f"is a {kind}, not an image file"
        raise InputError(f"`noisy` image '{printable_path(config.noisy)}' {problem}")
    image, description, notes, depth = load_image(config.noisy or config.image, config.data_dir)
    shape = image.shape if config.resize is None else resized_shape(image.shape, config.resize)
    tile = None if config.tile_index is None else _tile(config, shape)
    height, width = shape[1:] if tile is None else (tile.height, tile.width)
    if check_size is not None:
        check_size(shape[0], *network_sides(height, width))
    if config.resize is not None:
        try:
            image = resize_shorter_side(image, config.resize)
        except MemoryError:  # a size that no memory check refused
            raise RunFailure(f"resizing the image to {shape[2]}x{shape[1]} ran out of memory; use a smaller "
                             f"`resize`") from None
        notes.append(f"resized to {image.shape[2]}x{image.shape[1]}")
    if tile is not None:
        notes.append(f"tile {tile.index} (row {tile.row}, column {tile.column}): {tile.describe()} of the "
                     f"{shape[2]}x{shape[1]} image")
    if (padding := describe_padding(height, width)) is not None:
        notes.append(padding)
    if config.noisy is not None:
        notes += _impulse_notes(config.noisy, notes)
        return Observation(noisy=_cut(image, tile), clean=None, description=description, notes=notes,
                           bit_depth=depth)
    noisy = corrupt(image, config.noise, config.nlevel, config.seed)
    return Observation(noisy=_cut(noisy, tile), clean=_cut(image, tile), description=description, notes=notes,
                       bit_depth=depth)


def _tile(config, shape):
    """The ``tiling.Tile`` of ``config.tile_index`` in the grid of an image of ``shape`` (C, H, W)."""
    grid = tile_grid(shape[1], shape[2], config.tile, config.tile_overlap)
    if config.tile_index >= len(grid):
        raise InputError(f"`tile_index` {config.tile_index} is beyond the {len(grid)} tiles (0 to {len(grid) - 1}) "
                         f"of the {shape[2]}x{shape[1]} image")
    return grid[config.tile_index]


def _cut(image, tile):
    """The pixels of ``tile`` of a ``C x H x W`` image (a copy), or the image when ``tile`` is None."""
    return image if tile is None else np.ascontiguousarray(image[:, tile.window[0], tile.window[1]])


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
