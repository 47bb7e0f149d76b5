"""Classical impulse-noise filters the paper's method is compared with.

The median filters and TV-L1 work on each colour channel separately, because salt-and-pepper
noise here corrupts every channel of every pixel independently. The median filters extend borders
by mirroring (``d c b a | a b c d``, scipy.ndimage's ``reflect`` mode, numpy's ``symmetric``).
The constants of TV-L1 and of BM3D were tuned once on scikit-image samples, never on the paper's
images: docs/baselines.md has the tuning tables.
"""

import math
import numbers

import cv2
import numpy as np
import scipy.ndimage

from .errors import InputError
from .optional import import_optional
from .float_image import check_float_image

CHUNK = 1 << 15  # windows gathered at once by the adaptive median filter (19x19 x 4 bytes: 47 MB)
TV_L1_WEIGHT = 1.0  # lambda: the best mean PSNR over both tuning noise levels (50% and 70%)
TV_L1_ITERATIONS = 300  # within 0.02 dB of 3,000 iterations (astronaut, 50% and 70%)
BM3D_SIGMA_PER_DENSITY = 45 / 255  # residual noise sigma per unit of impulse density: the best mean PSNR when tuned
BM3D_MIN_SIDE = 16  # twice BM3D's 8x8 block; bm3d 4.0.3 crashes the process on an 8x8 image


def median_filter(noisy, size):
    """Median over a ``size x size`` window around every pixel, per channel.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1].
    :param int size: odd window side (3, 5, 7, ...).
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1].
    """
    return scipy.ndimage.median_filter(noisy, size=(1, size, size), mode="reflect")


def adaptive_median_filter(noisy, max_window=19):
    """Hwang and Haddad's adaptive median filter (as in Gonzalez and Woods), per channel.

    For every element, the window grows 3x3, 5x5, ... until its median is not an impulse, i.e.
    ``z_min < z_med < z_max`` holds. Then the element is kept if it is not an impulse itself
    (``z_min < z_xy < z_max``) and replaced by that median otherwise. Where even the
    ``max_window`` window's median is an impulse, the element becomes that median.

    Only the elements still undecided are looked at with the next window; at 50% salt-and-pepper
    nearly all are decided by the 7x7 one.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1].
    :param int max_window: largest odd window side.
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1].
    """
    if max_window < 3 or max_window % 2 == 0:
        raise InputError(f"max_window must be odd and at least 3, got {max_window}")
    margin = max_window // 2
    padded = np.pad(noisy, ((0, 0), (margin, margin), (margin, margin)), mode="symmetric")
    output = noisy.copy()
    undecided = np.indices(noisy.shape).reshape(3, -1)  # (channel, row, col) of each element
    for size in range(3, max_window + 1, 2):
        z_min, z_med, z_max = _window_statistics(padded, undecided, size, margin)
        z_xy = noisy[tuple(undecided)]
        median_is_clean = (z_min < z_med) & (z_med < z_max)
        decided = median_is_clean | (size == max_window)
        keep = median_is_clean & (z_min < z_xy) & (z_xy < z_max)
        replace = decided & ~keep
        output[tuple(undecided[:, replace])] = z_med[replace]
        undecided = undecided[:, ~decided]
        if undecided.shape[1] == 0:
            break
    return output


def _window_statistics(padded, elements, size, margin):
    """Minimum, median and maximum of the ``size x size`` window around each element.

    :param numpy.ndarray padded: ``C x (H + 2 margin) x (W + 2 margin)``, the image mirrored at
        its borders.
    :param numpy.ndarray elements: ``3 x n`` int, (channel, row, col) in the unpadded image.
    :return: three arrays of n values. Windows are gathered ``CHUNK`` elements at a time so that
        memory stays bounded (``CHUNK * size**2`` values) however many elements are undecided.
    """
    offsets = np.arange(-(size // 2), size // 2 + 1)
    statistics = []
    for start in range(0, elements.shape[1], CHUNK):
        channel, row, col = elements[:, start : start + CHUNK]
        rows = (row + margin)[:, None, None] + offsets[None, :, None]
        cols = (col + margin)[:, None, None] + offsets[None, None, :]
        windows = padded[channel[:, None, None], rows, cols].reshape(len(row), -1)
        # An odd number of values: the median is one of them, exactly.
        statistics.append((windows.min(axis=1), np.median(windows, axis=1), windows.max(axis=1)))
    if not statistics:
        empty = np.empty(0, padded.dtype)
        return empty, empty, empty
    return tuple(np.concatenate(parts).astype(padded.dtype) for parts in zip(*statistics))


def tv_l1_restoration(noisy, weight=TV_L1_WEIGHT, iterations=TV_L1_ITERATIONS):
    """TV-L1 restoration per channel: the minimiser of ``TV(x) + weight * |x - noisy|_1``.

    Solved by OpenCV's primal-dual ``cv2.denoise_TVL1`` (isotropic TV, step sizes fixed inside
    OpenCV), which starts from ``noisy`` and runs ``iterations`` steps. The L1 data term makes it a
    restoration for impulses: a large ``weight`` keeps them, a small one blurs the image.

    OpenCV reads and writes 8-bit images only (a float array is silently read as bytes), so
    ``noisy`` is rounded to the nearest 1/255, which changes nothing for an 8-bit image corrupted
    by 0/1 impulses, and the result comes in steps of 1/255 (measured: below 0.02 dB of PSNR).

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1].
    :param float weight: lambda, positive.
    :param int iterations: primal-dual steps, at least 1.
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1].
    """
    check_float_image(noisy, layout="C x H x W")
    if not (isinstance(weight, numbers.Real) and math.isfinite(weight) and weight > 0):
        raise InputError(f"TV-L1 weight must be a positive number, got {weight}")
    if not (isinstance(iterations, numbers.Integral) and iterations >= 1):
        raise InputError(f"TV-L1 iterations must be a whole number of at least 1, got {iterations}")
    # C order, whatever the layout of ``noisy``: OpenCV writes into a channel of ``restored`` only
    # if it is contiguous (into a temporary otherwise, which is lost).
    levels = np.rint(noisy * 255).astype(np.uint8, order="C")
    restored = np.empty_like(levels)
    for channel in range(levels.shape[0]):
        # OpenCV writes into a preallocated result of the right shape and type (it returns None).
        cv2.denoise_TVL1([levels[channel]], restored[channel], float(weight), int(iterations))
    return (restored / 255.0).astype(noisy.dtype)


def impulse_density(noisy):
    """The fraction of elements of ``noisy`` that are exactly 0 or 1: the salt-and-pepper density
    as the image shows it, without the clean image (clean elements at 0 or 1 count too)."""
    return float(np.mean((noisy == 0) | (noisy == 1)))


def adaptive_median_then_bm3d(noisy, sigma=None, max_window=19):
    """Detect and fill, then denoise: the adaptive median filter, then BM3D on its output.

    The adaptive median filter replaces the impulses it detects by window medians; what it leaves
    is a small error spread over the image, which BM3D (:func:`bm3d_denoise`; for colour the
    ``bm3d`` package's ``bm3d_rgb``: opponent colour transform, block matching on the luminance)
    removes as if it were white Gaussian noise of standard deviation ``sigma``. Unless given, ``sigma`` is
    ``BM3D_SIGMA_PER_DENSITY * impulse_density(noisy)``: the filter's error grows with the density
    of impulses, and the density is read from the noisy image itself.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1], C 1 or 3, H and W at least ``BM3D_MIN_SIDE``.
    :param float sigma: residual noise standard deviation (data range 1), positive; None: the rule.
    :param int max_window: the adaptive median filter's largest odd window side.
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1] (BM3D's slight overshoot clipped).
    """
    check_bm3d_input(noisy)
    if sigma is None:
        # A noisy image with no impulse at all would give sigma 0, which BM3D cannot take.
        sigma = max(BM3D_SIGMA_PER_DENSITY * impulse_density(noisy), 1 / 255)
    return bm3d_denoise(adaptive_median_filter(noisy, max_window), sigma)


def check_bm3d_input(noisy):
    """InputError unless ``noisy`` is a ``C x H x W`` float image in [0, 1], C 1 or 3, that BM3D can
    take."""
    check_float_image(noisy, layout="C x H x W")
    if noisy.shape[0] not in (1, 3) or min(noisy.shape[1:]) < BM3D_MIN_SIDE:
        raise InputError(f"BM3D here takes a 1 x H x W grayscale or 3 x H x W colour image, H and W at least "
                         f"{BM3D_MIN_SIDE}; got {noisy.shape}")


def bm3d_denoise(image, sigma):
    """BM3D of a ``C x H x W`` image in [0, 1] (C 3: the ``bm3d`` package's colour ``bm3d_rgb``;
    C 1: its ``bm3d``) taken to carry white noise of standard deviation ``sigma`` (data range 1,
    positive); the result in the image's dtype, BM3D's slight overshoot clipped to [0, 1]."""
    if not (isinstance(sigma, numbers.Real) and math.isfinite(sigma) and sigma > 0):
        raise InputError(f"BM3D sigma must be a positive number, got {sigma}")
    # Imported here: the import takes over a second, nothing else needs it, and it is optional.
    bm3d = import_optional("bm3d")

    profile = bm3d.BM3DProfile()
    profile.num_threads = 1  # the package warns that several threads may change the result run to run
    if image.shape[0] == 1:
        denoised = bm3d.bm3d(image[0], sigma_psd=float(sigma), profile=profile)[None]
    else:
        denoised = bm3d.bm3d_rgb(image.transpose(1, 2, 0), sigma_psd=float(sigma), profile=profile)
        denoised = denoised.transpose(2, 0, 1)
    return np.clip(denoised, 0, 1).astype(image.dtype)
