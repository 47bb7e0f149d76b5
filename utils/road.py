"""Detect, fill, denoise: a baseline made for random-valued impulses, which carry no 0 or 1 to tell
them by.

The detector is Garnett, Huegerich, Chui and He's ROAD statistic (rank-ordered absolute
differences, IEEE TIP 14, 2005): for each element, the sum of its ``ROAD_NEIGHBOURS`` smallest
absolute differences to its eight neighbours in the same channel. An element of a smooth region,
an edge or a line has at least four neighbours close to it; an impulse has none. Elements whose
ROAD exceeds ``ROAD_THRESHOLD`` are taken as impulses, filled by scikit-image's biharmonic
inpainting from the elements kept, and the result is denoised by BM3D (what the fill and
the impulses the detector missed leave behind). Each channel is detected and filled on its own, as
the impulses of ``random_valued`` and ``salt_pepper`` fall on each element independently.

The two constants were tuned once on scikit-image samples (astronaut, coffee, chelsea, rocket,
camera at 128x128, random-valued impulses at 10%, 30% and 50%), never on the images the docs
report: docs/impulse_noise.md has the tuning table.
"""

import math
import numbers

import numpy as np
import skimage.restoration

from .baselines import bm3d_denoise, check_bm3d_input
from .errors import InputError
from .float_image import check_float_image

ROAD_NEIGHBOURS = 4  # m of ROAD_m: the number of closest neighbours summed (the paper's choice for 3x3)
ROAD_THRESHOLD = 0.5  # ROAD above this (data range 1): an impulse. The best mean PSNR when tuned
ROAD_BM3D_SIGMA_PER_DENSITY = 120 / 255  # BM3D's sigma per unit of the fraction of elements detected
NEIGHBOUR_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def road_statistic(noisy, neighbours=ROAD_NEIGHBOURS):
    """ROAD of every element: the sum of its ``neighbours`` smallest absolute differences to the
    eight elements around it in its channel.

    Borders are mirrored without repeating the edge (``c b | a b c``, numpy's ``reflect``): a
    repeated edge element would be its own neighbour, at distance 0.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1], H and W at least 2.
    :param int neighbours: m, from 1 to 8.
    :return: ``C x H x W float32``, each value in [0, ``neighbours``].
    """
    check_float_image(noisy, layout="C x H x W")
    if min(noisy.shape[1:]) < 2:
        raise InputError(f"ROAD needs an image of at least 2 x 2 pixels, got {noisy.shape}")
    if not (isinstance(neighbours, numbers.Integral) and 1 <= neighbours <= len(NEIGHBOUR_OFFSETS)):
        raise InputError(f"ROAD sums 1 to 8 neighbours, got {neighbours}")
    image = noisy.astype(np.float32)
    height, width = image.shape[1:]
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    differences = np.stack([np.abs(padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] - image)
                            for dy, dx in NEIGHBOUR_OFFSETS])
    return np.partition(differences, neighbours - 1, axis=0)[:neighbours].sum(axis=0)


def road_detect(noisy, threshold=ROAD_THRESHOLD):
    """``C x H x W`` bool: True where ROAD exceeds ``threshold`` (a positive number)."""
    if not (isinstance(threshold, numbers.Real) and math.isfinite(threshold) and threshold > 0):
        raise InputError(f"ROAD threshold must be a positive number, got {threshold}")
    return road_statistic(noisy) > threshold


def road_fill(noisy, threshold=ROAD_THRESHOLD):
    """The impulses ROAD detects replaced by biharmonic inpainting from the other elements of their
    channel (``skimage.restoration.inpaint_biharmonic``); every other element kept as it is.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1].
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1] (the inpainting's overshoot clipped).
    """
    return _inpaint(noisy, road_detect(noisy, threshold))


def road_fill_then_bm3d(noisy, threshold=ROAD_THRESHOLD, sigma=None, detected=None):
    """:func:`road_fill`, then BM3D (colour or grayscale) with ``sigma`` (data range 1); unless given,
    ``ROAD_BM3D_SIGMA_PER_DENSITY`` times the fraction of elements ROAD detects, read from the
    noisy image itself (at least 1/255). ``detected``: :func:`road_detect` of ``noisy`` with
    ``threshold``, where the caller has it already.

    :param numpy.ndarray noisy: ``C x H x W`` float in [0, 1], C 1 or 3, H and W at least ``BM3D_MIN_SIDE``.
    :return: ``C x H x W`` array of ``noisy``'s dtype, in [0, 1].
    """
    check_bm3d_input(noisy)
    if detected is None:
        detected = road_detect(noisy, threshold)
    if sigma is None:
        sigma = max(ROAD_BM3D_SIGMA_PER_DENSITY * float(detected.mean()), 1 / 255)
    return bm3d_denoise(_inpaint(noisy, detected), sigma)


def _inpaint(noisy, detected):
    filled = np.array(noisy, order="C")  # ours to write, whatever the layout of ``noisy``
    for channel in range(noisy.shape[0]):
        if detected[channel].all():  # nothing to inpaint from: left as observed
            continue
        inpainted = skimage.restoration.inpaint_biharmonic(filled[channel], detected[channel])
        filled[channel] = np.where(detected[channel], np.clip(inpainted, 0, 1), filled[channel])
    return filled
