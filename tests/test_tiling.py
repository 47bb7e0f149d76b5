"""recovery.tiling: the grid covers the image with the overlap asked, the blend's weights sum to one
and a constant image tiles to itself; a tile's observation is the whole one's pixels, its seed its
own; the tile a memory refusal names fits."""

import dataclasses

import numpy as np
import pytest

from recovery import RecoveryConfig, prepare_observation
from recovery.settings import MIN_SIDE
from recovery.tiling import axis_starts, blend, blend_weights, largest_fitting_tile, tile_grid
from tiny import WIDTH
from utils.errors import InputError

SHAPES = [(300, 450, 128, 32), (300, 450, 96, 16), (70, 450, 64, 0), (1000, 129, 128, 63), (257, 257, 128, 32)]


@pytest.mark.parametrize("height,width,tile,overlap", SHAPES)
def test_the_tiles_cover_the_image_each_neighbour_sharing_the_overlap(height, width, tile, overlap):
    grid = tile_grid(height, width, tile, overlap)
    covered = np.zeros((height, width), int)
    for number, cell in enumerate(grid):
        assert cell.index == number and cell.height == min(tile, height) and cell.width == min(tile, width)
        covered[cell.window] += 1
    assert covered.min() >= 1
    for starts, length, side in ((sorted({c.top for c in grid}), height, min(tile, height)),
                                 (sorted({c.left for c in grid}), width, min(tile, width))):
        assert starts[0] == 0 and starts[-1] + side == length
        assert all(before + side - after >= overlap for before, after in zip(starts, starts[1:]))
        # The fewest tiles: one fewer could not share the overlap.
        assert len(starts) == 1 or (len(starts) - 2) * (side - overlap) + side < length


@pytest.mark.parametrize("height,width,tile,overlap", SHAPES)
def test_the_blend_weights_sum_to_one_and_a_constant_tiles_to_itself(height, width, tile, overlap):
    grid = tile_grid(height, width, tile, overlap)
    total = np.zeros((height, width))
    for cell, weight in zip(grid, blend_weights(grid, height, width)):
        assert weight.min() > 0
        total[cell.window] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    images = [np.full((3, cell.height, cell.width), 0.37, np.float32) for cell in grid]
    np.testing.assert_allclose(blend(images, grid, height, width), 0.37, atol=1e-6)


def test_a_seam_is_a_gradual_mix_of_the_two_tiles():
    grid = tile_grid(64, 200, 128, 32)  # two tiles sharing columns 72 to 127
    left = [np.zeros((1, 64, 128), np.float32), np.ones((1, 64, 128), np.float32)]
    row = blend(left, grid, 64, 200)[0, 0]
    assert np.all(row[:72] == 0) and np.all(row[128:] == 1) and np.all(np.diff(row) >= 0)
    assert np.all(np.diff(row[72:128]) > 0)


@pytest.mark.parametrize("tile,says", [
    (450, "`tile` 450 covers the whole 450x300 image in one tile"),
    (1000, "`tile` 1000 covers the whole 450x300 image in one tile"),
])
def test_a_tile_as_large_as_the_image_is_refused(tile, says):
    with pytest.raises(InputError) as caught:
        tile_grid(300, 450, tile, 32)
    assert str(caught.value).startswith(says.replace("`", ""))


def test_axis_starts_of_a_side_no_longer_than_the_tile_is_one_tile():
    assert axis_starts(100, 128, 32) == [0] and axis_starts(128, 128, 32) == [0]


def test_a_tiles_observation_is_the_whole_images_pixels_and_its_seed_its_own():
    config = RecoveryConfig(image="coffee", resize=100, width=WIDTH, tile=96, tile_overlap=16)
    whole = prepare_observation(config)
    grid = tile_grid(*whole.noisy.shape[1:], 96, 16)
    seeds = set()
    for cell in grid:
        tile_config = dataclasses.replace(config, tile_index=cell.index)
        part = prepare_observation(tile_config)
        assert np.array_equal(part.noisy, whole.noisy[:, cell.window[0], cell.window[1]])
        assert np.array_equal(part.clean, whole.clean[:, cell.window[0], cell.window[1]])
        seeds.add(tile_config.network_seed)
    assert len(seeds) == len(grid) and config.network_seed == config.seed
    with pytest.raises(InputError, match=f"tile_index {len(grid)} is beyond the {len(grid)} tiles"):
        prepare_observation(dataclasses.replace(config, tile_index=len(grid)))


@pytest.mark.parametrize("budget,expected", [(10**9, 3968), (300**2, 288), (64**2, 64), (63**2, None)])
def test_the_largest_fitting_tile_is_the_largest_that_fits(budget, expected):
    assert largest_fitting_tile(lambda side: side * side <= budget, 4000, 500, 16) == expected
    assert expected is None or expected >= MIN_SIDE
