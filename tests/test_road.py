"""ROAD, detect and fill, then BM3D: the statistic against its definition, the detection of known
impulses, the fill of a smooth image, the sigma rule and the refusals."""

import numpy as np
import pytest
from conftest import needs_package, optional_module
from layouts import LAYOUTS, in_layout
from test_baselines import smooth_image

from utils.corruption import corrupt
from utils.errors import InputError
from utils.metrics import psnr
from utils.road import (ROAD_BM3D_SIGMA_PER_DENSITY, road_detect, road_fill, road_fill_then_bm3d,
                        road_statistic)


def road_by_definition(image, neighbours):
    """The sum of the ``neighbours`` smallest |x - y| over the eight neighbours y, borders mirrored
    without repeating the edge, one element at a time."""
    _, h, w = image.shape
    mirror = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)  # noqa: E731
    out = np.zeros(image.shape, np.float32)
    for (channel, row, col), value in np.ndenumerate(image):
        differences = sorted(abs(float(image[channel, mirror(row + dy, h), mirror(col + dx, w)]) - float(value))
                             for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
        out[channel, row, col] = sum(differences[:neighbours])
    return out


@pytest.mark.parametrize("neighbours", [1, 4, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_road_follows_its_definition(neighbours, seed):
    image = np.random.default_rng(seed).random((2, 7, 9)).astype(np.float32)
    np.testing.assert_allclose(road_statistic(image, neighbours), road_by_definition(image, neighbours), atol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_road_and_its_fill_answer_the_same_for_any_layout(layout):
    noisy = corrupt(smooth_image((3, 20, 24)), "random_valued", 0.3, 0)
    assert np.array_equal(road_statistic(in_layout(noisy, layout)), road_statistic(noisy))
    assert np.array_equal(road_fill(in_layout(noisy, layout)), road_fill(noisy))


@pytest.mark.parametrize("value,impulse", [(0.5, 0.9), (0.2, 0.0), (0.7, 0.05)])
def test_isolated_impulses_on_a_flat_image_are_found_and_filled_exactly(value, impulse):
    clean = np.full((3, 16, 16), value, np.float32)
    noisy = clean.copy()
    where = [(0, 3, 4), (1, 10, 12), (2, 0, 0), (2, 15, 7)]  # a corner and a border among them
    for element in where:
        noisy[element] = impulse
    detected = road_detect(noisy, 0.5 * abs(value - impulse))  # impulse: 4|v - i|; its neighbours: 0
    assert sorted(zip(*np.nonzero(detected))) == sorted(where)
    np.testing.assert_allclose(road_fill(noisy, 0.5 * abs(value - impulse)), clean, atol=1e-6)


@pytest.mark.parametrize("nlevel,seed", [(0.1, 0), (0.3, 1), (0.5, 2)])
def test_road_fill_restores_a_smooth_image_and_keeps_what_it_does_not_detect(nlevel, seed):
    # Measured on this image: the noisy input 19.1, 14.6 and 12.3 dB, the fill 36.1, 28.6 and 22.4 dB.
    clean = smooth_image()
    noisy = corrupt(clean, "random_valued", nlevel, seed)
    filled = road_fill(noisy)
    assert filled.dtype == noisy.dtype and filled.min() >= 0 and filled.max() <= 1
    assert psnr(clean, filled) > psnr(clean, noisy) + 9
    kept = ~road_detect(noisy)
    assert np.array_equal(filled[kept], noisy[kept])


def test_a_channel_detected_everywhere_is_left_as_observed():
    noisy = np.random.default_rng(0).random((2, 6, 6)).astype(np.float32)  # no two elements equal
    assert road_detect(noisy, 1e-9).all()
    assert np.array_equal(road_fill(noisy, 1e-9), noisy)


@pytest.fixture(scope="module")
def road_bm3d_cell():
    optional_module("bm3d")
    clean = smooth_image((3, 48, 48))
    noisy = corrupt(clean, "random_valued", 0.3, 0)
    return clean, noisy, road_fill_then_bm3d(noisy)


def test_road_fill_then_bm3d_improves_on_the_fill(road_bm3d_cell):
    clean, noisy, restored = road_bm3d_cell
    assert restored.shape == noisy.shape and restored.dtype == noisy.dtype
    assert psnr(clean, restored) > psnr(clean, road_fill(noisy))


@needs_package("bm3d")
def test_a_grayscale_image_is_filled_and_denoised_as_one_channel():
    clean = smooth_image((1, 48, 48))
    noisy = corrupt(clean, "random_valued", 0.3, 0)
    restored = road_fill_then_bm3d(noisy)
    assert restored.shape == (1, 48, 48)
    assert psnr(clean, restored) > psnr(clean, road_fill(noisy)) > psnr(clean, noisy) + 9


def test_road_fill_then_bm3d_takes_sigma_from_the_fraction_detected(road_bm3d_cell):
    _, noisy, restored = road_bm3d_cell
    sigma = ROAD_BM3D_SIGMA_PER_DENSITY * float(road_detect(noisy).mean())
    assert np.array_equal(road_fill_then_bm3d(noisy, sigma=sigma), restored)
    assert not np.array_equal(road_fill_then_bm3d(noisy, sigma=2 * sigma), restored)


def test_road_fill_then_bm3d_fills_and_reads_sigma_from_the_detection_it_is_given(road_bm3d_cell):
    _, noisy, restored = road_bm3d_cell
    detected = road_detect(noisy)
    assert np.array_equal(road_fill_then_bm3d(noisy, detected=detected), restored)
    fewer = detected & (np.arange(noisy.shape[-1]) % 2 == 0)  # half the columns' detections
    sigma = ROAD_BM3D_SIGMA_PER_DENSITY * float(fewer.mean())
    from_fewer = road_fill_then_bm3d(noisy, detected=fewer)
    assert np.array_equal(from_fewer, road_fill_then_bm3d(noisy, sigma=sigma, detected=fewer))
    assert not np.array_equal(from_fewer, restored)


@pytest.mark.parametrize("threshold", [0, -1, float("nan"), float("inf")])
def test_road_refuses_a_bad_threshold(threshold):
    with pytest.raises(InputError, match="threshold"):
        road_fill(np.full((3, 16, 16), 0.5, np.float32), threshold)


@pytest.mark.parametrize("neighbours", [0, 9, 2.5])
def test_road_refuses_a_bad_number_of_neighbours(neighbours):
    with pytest.raises(InputError, match="neighbours"):
        road_statistic(np.full((3, 8, 8), 0.5, np.float32), neighbours)


@pytest.mark.parametrize("image", [np.full((3, 1, 8), 0.5, np.float32), np.full((8, 8), 0.5, np.float32),
                                   np.full((3, 8, 8), 255, np.uint8), np.full((3, 8, 8), 1.5, np.float32)])
def test_road_refuses_what_it_cannot_filter(image):
    with pytest.raises(InputError):
        road_fill(image)


@pytest.mark.parametrize("shape", [(2, 32, 32), (3, 12, 32)])
def test_road_fill_then_bm3d_refuses_what_bm3d_cannot_take(shape):
    with pytest.raises(InputError, match="BM3D"):
        road_fill_then_bm3d(np.full(shape, 0.5, np.float32))
