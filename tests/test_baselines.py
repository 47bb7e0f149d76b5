"""The classical filters: the adaptive median filter against its definition, the median filter
against a direct computation, TV-L1 and adaptive median + BM3D on impulse-corrupted images."""

import numpy as np
import pytest
from conftest import needs_package, optional_module
from layouts import LAYOUTS, in_layout

import utils.baselines
from utils.baselines import (BM3D_SIGMA_PER_DENSITY, adaptive_median_filter, adaptive_median_then_bm3d, impulse_density,
                             median_filter, tv_l1_restoration)
from utils.corruption import corrupt_salt_pepper
from utils.errors import InputError
from utils.metrics import psnr


def mirrored_window(image, channel, row, col, size):
    """The ``size x size`` window around one element, borders mirrored (d c b a | a b c d)."""
    _, h, w = image.shape
    mirror = lambda i, n: -i - 1 if i < 0 else (2 * n - i - 1 if i >= n else i)  # noqa: E731
    half = size // 2
    return np.array([[image[channel, mirror(r, h), mirror(c, w)] for c in range(col - half, col + half + 1)]
                     for r in range(row - half, row + half + 1)])


def adaptive_median_by_definition(noisy, max_window):
    """Gonzalez and Woods' stages A and B, one element at a time."""
    out = noisy.copy()
    for (channel, row, col), z_xy in np.ndenumerate(noisy):
        for size in range(3, max_window + 1, 2):
            window = mirrored_window(noisy, channel, row, col, size)
            z_min, z_med, z_max = window.min(), np.median(window), window.max()
            if z_min < z_med < z_max:  # stage B
                out[channel, row, col] = z_xy if z_min < z_xy < z_max else z_med
                break
        else:
            out[channel, row, col] = z_med
    return out


def smooth_image(shape=(3, 64, 80)):
    """Slowly varying colours, strictly inside (0, 1)."""
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]] / 64.0
    return np.stack([0.5 + 0.35 * np.sin(2 * xx + c) * np.cos(1.5 * yy) for c in range(shape[0])]).astype(np.float32)


@pytest.mark.parametrize("value", [0.2, 0.5, 0.83])
@pytest.mark.parametrize("nlevel,seed", [(0.3, 0), (0.5, 1), (0.7, 2)])
def test_adaptive_median_restores_a_corrupted_constant_image_exactly(value, nlevel, seed):
    clean = np.full((3, 48, 40), value, dtype=np.float32)
    noisy = corrupt_salt_pepper(clean, nlevel, seed)
    assert (noisy != clean).mean() > nlevel * 0.9  # the impulses are there
    assert np.array_equal(adaptive_median_filter(noisy), clean)


@pytest.mark.parametrize("nlevel,seed", [(0.3, 0), (0.5, 1), (0.7, 2)])
def test_adaptive_median_restores_a_smooth_image_well(nlevel, seed):
    # Measured on this image: 52.0 / 46.9 / 42.7 dB at 30 / 50 / 70% (seeds 0, 1, 2); the noisy
    # input is 7 to 11 dB and the 5x5 median 14 to 48 dB.
    clean = smooth_image()
    noisy = corrupt_salt_pepper(clean, nlevel, seed)
    restored = adaptive_median_filter(noisy)
    assert psnr(clean, restored) > 40
    assert psnr(clean, restored) > psnr(clean, median_filter(noisy, 5)) + 3
    # An element the noise did not touch lies strictly between the impulses 0 and 1: it is kept.
    untouched = noisy == clean
    assert (restored[untouched] == clean[untouched]).mean() > 0.99


@pytest.mark.parametrize("max_window", [3, 5, 9])
def test_adaptive_median_follows_its_definition(max_window, monkeypatch):
    monkeypatch.setattr(utils.baselines, "CHUNK", 37)  # gather windows in many small chunks
    rng = np.random.default_rng(max_window)
    noisy = corrupt_salt_pepper(rng.random((2, 14, 11)).astype(np.float32), 0.6, max_window)
    noisy[0, :4, :4] = 1.0  # an all-salt corner: no window up to 7x7 has a clean median there
    assert np.array_equal(adaptive_median_filter(noisy, max_window), adaptive_median_by_definition(noisy, max_window))


@pytest.mark.parametrize("max_window", [1, 4, 0])
def test_adaptive_median_refuses_a_bad_window(max_window):
    with pytest.raises(ValueError, match="max_window"):
        adaptive_median_filter(np.zeros((3, 8, 8), np.float32), max_window)


@pytest.mark.parametrize("size", [3, 5, 7])
def test_median_filter_is_the_per_channel_window_median(size):
    rng = np.random.default_rng(size)
    noisy = corrupt_salt_pepper(rng.random((3, 9, 12)).astype(np.float32), 0.5, size)
    expected = np.array([[[np.median(mirrored_window(noisy, c, r, col, size)) for col in range(12)]
                          for r in range(9)] for c in range(3)], dtype=np.float32)
    filtered = median_filter(noisy, size)
    assert filtered.shape == noisy.shape and filtered.dtype == noisy.dtype
    assert np.array_equal(filtered, expected)


def test_median_filter_removes_isolated_impulses():
    clean = smooth_image((3, 32, 32))
    noisy = clean.copy()
    noisy[0, 10, 10], noisy[1, 20, 5], noisy[2, 0, 0] = 1.0, 0.0, 1.0
    restored = median_filter(noisy, 3)
    assert np.abs(restored - clean).max() < 0.03  # a smooth image moves by at most its local slope


BAD_IMAGES = [
    ("uint8", np.full((3, 32, 32), 128, np.uint8)),
    ("2-D", np.full((32, 32), 0.5, np.float32)),
    ("above 1", np.full((3, 32, 32), 1.5, np.float32)),
    ("NaN", np.full((3, 32, 32), np.nan, np.float32)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nlevel,seed", [(0.3, 0), (0.5, 1)])
def test_tv_l1_restores_a_smooth_image(nlevel, seed, dtype):
    # Measured on this image: the noisy input is 9 and 11 dB at 50% and 30%, TV-L1 26 and 29 dB.
    clean = smooth_image((3, 64, 64)).astype(dtype)
    noisy = corrupt_salt_pepper(clean, nlevel, seed).astype(dtype)
    restored = tv_l1_restoration(noisy)
    assert restored.shape == noisy.shape and restored.dtype == dtype
    assert restored.min() >= 0 and restored.max() <= 1
    assert psnr(clean, restored) > psnr(clean, noisy) + 12
    assert np.array_equal(tv_l1_restoration(noisy), restored)  # deterministic


def test_tv_l1_weight_trades_impulses_for_smoothness():
    # A large weight holds the result to the noisy input, impulses and all; lambda 1 removes them.
    clean = smooth_image((3, 48, 48))
    noisy = corrupt_salt_pepper(clean, 0.5, 3)
    assert psnr(clean, tv_l1_restoration(noisy, 1.0)) > psnr(clean, tv_l1_restoration(noisy, 3.0)) + 6


def test_tv_l1_restores_each_channel_on_its_own():
    noisy = corrupt_salt_pepper(smooth_image((3, 40, 40)), 0.5, 4)
    together = tv_l1_restoration(noisy)
    alone = np.concatenate([tv_l1_restoration(noisy[c : c + 1]) for c in range(3)])
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("weight", [0, -1.0, float("nan"), float("inf"), "1"])
def test_tv_l1_refuses_a_bad_weight(weight):
    with pytest.raises(InputError, match="weight"):
        tv_l1_restoration(np.zeros((3, 16, 16), np.float32), weight)


@pytest.mark.parametrize("iterations", [0, -3, 2.5])
def test_tv_l1_refuses_bad_iterations(iterations):
    with pytest.raises(InputError, match="iterations"):
        tv_l1_restoration(np.zeros((3, 16, 16), np.float32), 1.0, iterations)


@pytest.mark.parametrize("function", [tv_l1_restoration, adaptive_median_then_bm3d])
@pytest.mark.parametrize("what,image", BAD_IMAGES, ids=[what for what, _ in BAD_IMAGES])
def test_new_filters_refuse_what_is_not_a_float_image_in_0_1(function, what, image):
    with pytest.raises(InputError, match="image must be"):
        function(image)


@pytest.mark.parametrize("nlevel,seed", [(0.0, 0), (0.3, 1), (0.7, 2)])
def test_impulse_density_counts_the_impulses(nlevel, seed):
    clean = smooth_image((3, 40, 50))  # strictly inside (0, 1): every 0 or 1 is an impulse
    noisy = corrupt_salt_pepper(clean, nlevel, seed)
    assert impulse_density(noisy) == np.mean(noisy != clean)


@pytest.fixture(scope="module")
def bm3d_cells():
    """(clean, noisy, adaptive median + BM3D) on a 48 x 48 smooth image at 30% and 50%: BM3D
    takes about a second on it however small, so each cell is computed once for all tests."""
    optional_module("bm3d")
    clean = smooth_image((3, 48, 48))
    cells = {}
    for nlevel, seed in [(0.3, 0), (0.5, 1)]:
        noisy = corrupt_salt_pepper(clean, nlevel, seed)
        cells[nlevel] = clean, noisy, adaptive_median_then_bm3d(noisy)
    return cells


@pytest.mark.parametrize("nlevel", [0.3, 0.5])
def test_adaptive_median_then_bm3d_restores_a_smooth_image(bm3d_cells, nlevel):
    # Measured on this image: the noisy input is 8 and 11 dB at 50% and 30%, this filter 46 and 50 dB.
    clean, noisy, restored = bm3d_cells[nlevel]
    assert restored.shape == noisy.shape and restored.dtype == noisy.dtype
    assert restored.min() >= 0 and restored.max() <= 1
    assert psnr(clean, restored) > psnr(clean, noisy) + 25


def test_adaptive_median_then_bm3d_is_deterministic(bm3d_cells):
    _, noisy, restored = bm3d_cells[0.5]
    assert np.array_equal(adaptive_median_then_bm3d(noisy), restored)


def test_adaptive_median_then_bm3d_takes_sigma_from_the_impulse_density(bm3d_cells):
    clean, noisy, restored = bm3d_cells[0.3]
    sigma = BM3D_SIGMA_PER_DENSITY * impulse_density(noisy)
    assert np.array_equal(adaptive_median_then_bm3d(noisy, sigma), restored)


@pytest.mark.parametrize("sigma", [0, -0.1, float("nan"), float("inf")])
def test_adaptive_median_then_bm3d_refuses_a_bad_sigma(sigma):
    with pytest.raises(InputError, match="sigma"):
        adaptive_median_then_bm3d(np.full((3, 16, 16), 0.5, np.float32), sigma)


@pytest.mark.parametrize("shape", [(2, 32, 32), (4, 32, 32), (3, 8, 8), (3, 15, 40), (1, 15, 40)])
def test_adaptive_median_then_bm3d_refuses_what_bm3d_cannot_take(shape):
    with pytest.raises(InputError, match="colour image"):
        adaptive_median_then_bm3d(np.full(shape, 0.5, np.float32))


@needs_package("bm3d")
def test_adaptive_median_then_bm3d_takes_a_grayscale_image_as_one_channel():
    clean = smooth_image((1, 48, 48))
    noisy = corrupt_salt_pepper(clean, 0.5, 1)
    restored = adaptive_median_then_bm3d(noisy)
    assert restored.shape == (1, 48, 48) and restored.dtype == noisy.dtype
    assert psnr(clean, restored) > psnr(clean, noisy) + 25


FILTERS = [lambda noisy: median_filter(noisy, 3), adaptive_median_filter, tv_l1_restoration, impulse_density,
           pytest.param(adaptive_median_then_bm3d, marks=needs_package("bm3d"))]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("function", FILTERS, ids=["median", "adaptive_median", "tv_l1", "density", "bm3d"])
def test_every_filter_answers_the_same_for_any_memory_layout(function, layout):
    # TV-L1 once returned another image for a transposed view (largest difference 0.91): OpenCV
    # wrote into a temporary copy of a channel that was not contiguous.
    noisy = corrupt_salt_pepper(smooth_image((3, 16, 20)), 0.5, 5)
    assert np.array_equal(function(in_layout(noisy, layout)), function(noisy))
