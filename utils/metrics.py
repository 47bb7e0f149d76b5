"""Image quality against the clean image: for ``C x H x W`` float arrays in [0, 1] on the host
(scikit-image), and for tensors on their device (the same numbers, no host synchronisation)."""

import numpy as np
import skimage.metrics
import torch

from .float_image import check_float_image


def _check_float_images(clean, estimate):
    check_float_image(clean, "clean image")
    check_float_image(estimate, "estimate", clipped=True)


def psnr(clean, estimate):
    """Peak signal-to-noise ratio in dB, data range 1 (as the reference computes it).

    ``clean`` and ``estimate``: float arrays of one shape in [0, 1] (``estimate`` is clipped to it).
    """
    _check_float_images(clean, estimate)
    with np.errstate(divide="ignore"):  # identical images: inf dB, without numpy's warning on stderr
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


# skimage.metrics.structural_similarity's defaults, which the reference's numbers use.
SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03


# Float32 on every device (MPS has no float64): scikit-image computes in float32 for float32
# images, and these sums agree with it to about 1e-7 in SSIM and 1e-5 dB in PSNR (tests/test_metrics.py,
# up to 512x512); float64 took twice the time and memory for nothing.


def psnr_tensor(clean, estimates):
    """PSNR in dB, data range 1, of each of ``estimates`` against ``clean``, on their device:
    :func:`psnr` for tensors, with no host synchronisation.

    ``clean``: ``C x H x W`` float tensor in [0, 1]; ``estimates``: ``K x C x H x W`` (clipped to
    [0, 1]). Returns a ``K`` float32 tensor.
    """
    error = estimates.float().clamp(0, 1) - clean.float()
    return -10 * torch.log10(error.square().mean(dim=(1, 2, 3)))


def _window_means(*planes):
    """The mean of every 7x7 window inside each of ``planes`` (``K x C x H x W`` float32, or
    ``1 x C x H x W``, broadcast): ``K x len(planes) C x (H-6) x (W-6)``, the planes side by side.

    scikit-image filters with reflected borders, then crops (window - 1) / 2 from each side, which
    leaves exactly these windows."""
    # Channels-last: the CPU's pooling then runs over the channels in vector steps (5x faster here);
    # written straight into it, with no copy; and two one-dimensional passes take 14 additions per
    # value rather than 49.
    count, channels, height, width = max(plane.shape[0] for plane in planes), *planes[0].shape[1:]
    stacked = torch.empty((count, channels * len(planes), height, width), device=planes[0].device,
                          memory_format=torch.channels_last)
    for index, plane in enumerate(planes):
        stacked[:, index * channels:(index + 1) * channels] = plane
    for window in ((SSIM_WINDOW, 1), (1, SSIM_WINDOW)):
        stacked = torch.nn.functional.avg_pool2d(stacked, window, stride=1)
    return stacked


def ssim_tensor(clean, estimates):
    """Structural similarity of each of ``estimates`` against ``clean``, on their device:
    :func:`ssim` (scikit-image's 7x7 uniform window, sample covariance, data range 1, averaged over
    the windows inside the image, then over channels) for tensors.

    ``clean``: ``C x H x W`` float tensor in [0, 1], H and W at least 7; ``estimates``:
    ``K x C x H x W`` (clipped to [0, 1]). Returns a ``K`` float32 tensor.
    """
    x = clean.float()[None]
    y = estimates.float().clamp(0, 1)
    mx, mxx = _window_means(x, x * x).chunk(2, dim=1)  # once for every estimate
    my, myy, mxy = _window_means(y, y * y, x * y).chunk(3, dim=1)
    sample = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample, not population, covariance
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    # scikit-image's (2 mx my + c1)(2 vxy + c2) / ((mx^2 + my^2 + c1)(vx + vy + c2)), in place:
    # the maps are the size of the estimates, and each temporary costs as much as the arithmetic.
    means_product = mx * my
    squares = my.square().add_(mx.square())
    variances = myy.add(mxx).sub_(squares).mul_(sample).add_(c2)  # vx + vy + c2
    covariance = mxy.sub(means_product).mul_(2 * sample).add_(c2)  # 2 vxy + c2
    similarity = means_product.mul_(2).add_(c1).mul_(covariance).div_(squares.add_(c1).mul_(variances))
    return similarity.mean(dim=(2, 3)).mean(dim=1)
