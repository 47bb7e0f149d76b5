"""Image quality against the clean image, for ``C x H x W`` float arrays in [0, 1]."""

import numpy as np
import skimage.metrics


def psnr(clean, estimate):
    """Peak signal-to-noise ratio in dB, data range 1 (as the reference computes it)."""
    return float(skimage.metrics.peak_signal_noise_ratio(clean, np.clip(estimate, 0, 1), data_range=1))


def ssim(clean, estimate):
    """Structural similarity (scikit-image defaults: 7x7 window), data range 1, over channels."""
    return float(
        skimage.metrics.structural_similarity(
            clean, np.clip(estimate, 0, 1), data_range=1, channel_axis=0
        )
    )
