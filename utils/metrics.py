"""Image quality against the clean image, for ``C x H x W`` float arrays in [0, 1]."""

import numpy as np
import skimage.metrics

from .float_image import check_float_image


def _check_float_images(clean, estimate):
    check_float_image(clean, "clean image")
    check_float_image(estimate, "estimate", clipped=True)


def psnr(clean, estimate):
    """Peak signal-to-noise ratio in dB, data range 1 (as the reference computes it).

    ``clean`` and ``estimate``: float arrays of one shape in [0, 1] (``estimate`` is clipped to it).
    """
    _check_float_images(clean, estimate)
    return float(skimage.metrics.peak_signal_noise_ratio(clean, np.clip(estimate, 0, 1), data_range=1))


def ssim(clean, estimate):
    """Structural similarity (scikit-image defaults: 7x7 window), data range 1, averaged over
    channels.

    ``clean`` and ``estimate``: ``C x H x W`` float arrays in [0, 1], H and W at least 7
    (``estimate`` is clipped to [0, 1]).
    """
    _check_float_images(clean, estimate)
    return float(
        skimage.metrics.structural_similarity(
            clean, np.clip(estimate, 0, 1), data_range=1, channel_axis=0
        )
    )
