"""An image as overlapping tiles, and the tiles' answers blended back into one image.

A tiled run (``--tile N``) recovers each N x N tile as a run of its own (its own network, seed and
checkpoint: ``reproduction/tiles.py`` makes and launches them) and blends their images into one of
the image's size. Along each axis the tiles are spread evenly from one border to the other, as few
as share at least ``overlap`` pixels with each neighbour; a side no longer than N is one tile of
that side. Where two tiles overlap, each one's weight falls from 1 to 0 across the overlap as a
raised cosine and the other's rises as its mirror image, so the weights of every pixel sum to 1
(and are normalised to 1 wherever rounding leaves them otherwise): a seam is a gradual mix, never
a step.
"""

import dataclasses
import math

import numpy as np

from utils.errors import InputError

from .padding import SIDE_MULTIPLE
from .settings import MIN_SIDE


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: its place in the grid (``row``, ``column``, ``index`` row by row from 0) and its
    pixels in the image, ``image[:, top:top + height, left:left + width]``."""

    index: int
    row: int
    column: int
    top: int
    left: int
    height: int
    width: int

    @property
    def window(self):
        """``(rows, columns)`` slices of the image that are this tile."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    @property
    def name(self):
        """``tile_r<row>_c<column>``: the suffix of its run's name."""
        return f"tile_r{self.row}_c{self.column}"

    def describe(self):
        return f"{self.width}x{self.height} at x {self.left}, y {self.top}"


def axis_starts(length, tile, overlap):
    """The first pixels of the tiles along an axis of ``length`` pixels: the fewest tiles of
    ``tile`` pixels, spread evenly from border to border, that share at least ``overlap`` pixels with
    each neighbour; ``[0]`` when one tile (of the whole ``length``) covers it.

    >>> axis_starts(450, 128, 32), axis_starts(100, 128, 32)
    ([0, 80, 161, 242, 322], [0])
    """
    if length <= tile:
        return [0]
    count = 1 + math.ceil((length - tile) / (tile - overlap))
    return [round(k * (length - tile) / (count - 1)) for k in range(count)]


def tile_grid(height, width, tile, overlap):
    """The tiles (:class:`Tile`, row by row) of a ``height x width`` image. InputError when ``tile``
    is at least both sides: the one tile would be the whole image."""
    if tile >= height and tile >= width:
        raise InputError(f"`tile` {tile} covers the whole {width}x{height} image in one tile: run it without "
                         f"`tile`, or give a smaller one")
    rows, columns = axis_starts(height, tile, overlap), axis_starts(width, tile, overlap)
    tile_height, tile_width = min(tile, height), min(tile, width)
    return [Tile(r * len(columns) + c, r, c, top, left, tile_height, tile_width)
            for r, top in enumerate(rows) for c, left in enumerate(columns)]


def _axis_weights(starts, size, length):
    """``[weights]`` of each tile along an axis (``starts`` of tiles of ``size`` pixels over
    ``length``): 1 inside, a raised cosine across each overlap with a neighbour, rising from the
    start of the overlap to its end on the later tile and falling on the earlier one, so that the
    two sum to 1 at every pixel of it."""
    weights = []
    for k, start in enumerate(starts):
        weight = np.ones(size)
        if k > 0:  # the overlap with the tile before: [start, end of the one before)
            shared = starts[k - 1] + size - start
            weight[:shared] = np.minimum(weight[:shared], _rising(shared))
        if k + 1 < len(starts):  # the overlap with the tile after: [start of the next, end)
            shared = start + size - starts[k + 1]
            weight[size - shared:] = np.minimum(weight[size - shared:], _rising(shared)[::-1])
        weights.append(weight)
    return weights


def _rising(length):
    """A raised cosine rising over ``length`` pixels, sampled at their centres: ``r[i] + r[-1 - i]``
    is 1 for every i, and no sample is 0 (every pixel of a tile counts)."""
    return np.sin(np.pi / 2 * (np.arange(length) + 0.5) / length) ** 2


class Blend:
    """Tiles' images of one kind (``C x H_t x W_t``, one per tile of ``tiles``) added one at a time
    (:meth:`add`, so that only one tile's images need be in memory) into one ``C x height x width``
    image (:meth:`result`), each pixel the mean of the tiles over it weighted by :meth:`weight`."""

    def __init__(self, tiles, height, width):
        rows = sorted({tile.top for tile in tiles})
        columns = sorted({tile.left for tile in tiles})
        self.row_weights = dict(zip(rows, _axis_weights(rows, tiles[0].height, height)))
        self.column_weights = dict(zip(columns, _axis_weights(columns, tiles[0].width, width)))
        self.total = np.zeros((height, width))
        for tile in tiles:
            self.total[tile.window] += self._unnormalised(tile)
        self.whole = None

    def _unnormalised(self, tile):
        return np.outer(self.row_weights[tile.top], self.column_weights[tile.left])

    def weight(self, tile):
        """``H_t x W_t float64``, positive: the weight of the tile's pixels; the weights of every pixel
        of the image sum to 1."""
        return self._unnormalised(tile) / self.total[tile.window]

    def add(self, tile, image):
        if self.whole is None:
            self.whole = np.zeros((image.shape[0],) + self.total.shape)
        self.whole[:, tile.window[0], tile.window[1]] += self.weight(tile) * image

    def result(self):
        """The blended image, ``C x height x width float32``."""
        return self.whole.astype(np.float32)


def blend_weights(tiles, height, width):
    """``[H_t x W_t float64]``: :meth:`Blend.weight` of each tile of ``tiles``."""
    weights = Blend(tiles, height, width)
    return [weights.weight(tile) for tile in tiles]


def blend(images, tiles, height, width):
    """One ``C x height x width float32`` image from ``images`` (a ``C x H_t x W_t`` array per tile of
    ``tiles``): see :class:`Blend`."""
    blended = Blend(tiles, height, width)
    for tile, image in zip(tiles, images, strict=True):
        blended.add(tile, image)
    return blended.result()


def largest_fitting_tile(fits, height, width, overlap):
    """The largest tile side (a multiple of ``SIDE_MULTIPLE``, at least ``MIN_SIDE``, more than twice
    ``overlap``, less than the image's longer side) for whose N x N canvas ``fits(N)`` is true, or
    None if none is. ``fits`` grows false with N (the memory a run needs grows with its size)."""
    smallest = max(MIN_SIDE, -(-(2 * overlap + 1) // SIDE_MULTIPLE) * SIDE_MULTIPLE)
    sides = list(range(smallest, max(height, width), SIDE_MULTIPLE))
    low, high = 0, len(sides)  # sides[:low] fit, sides[high:] do not
    while low < high:
        middle = (low + high) // 2
        if fits(sides[middle]):
            low = middle + 1
        else:
            high = middle
    return sides[low - 1] if low else None
