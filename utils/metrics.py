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


def metric_dtype(device):
    """The dtype the tensor metrics compute in on ``device`` (a ``torch.device``)."""
    # MPS has no float64; everywhere else the sums are exact enough in float64 to match
    # scikit-image to 1e-5 whatever the image size.
    return torch.float32 if device.type == "mps" else torch.float64


def psnr_tensor(clean, estimates):
    """PSNR in dB, data range 1, of each of ``estimates`` against ``clean``, on their device:
    :func:`psnr` for tensors, with no host synchronisation.

    ``clean``: ``C x H x W`` float tensor in [0, 1]; ``estimates``: ``K x C x H x W`` (clipped to
    [0, 1]). Returns a ``K`` tensor of the metric's dtype (float64; float32 on MPS).
    """
    dtype = metric_dtype(clean.device)
    error = estimates.to(dtype).clamp(0, 1) - clean.to(dtype)
    return -10 * torch.log10(error.square().mean(dim=(1, 2, 3)))


def _window_means(planes):
    """The mean of every 7x7 window inside ``planes`` (``K x C x H x W``): ``K x C x (H-6) x (W-6)``.

    scikit-image filters with reflected borders, then crops (window - 1) / 2 from each side, which
    leaves exactly these windows."""
    # Channels-last: the CPU's pooling then runs over the channels in vector steps (5x faster here);
    # and two one-dimensional passes take 14 additions per value rather than 49.
    planes = planes.contiguous(memory_format=torch.channels_last)
    for window in ((SSIM_WINDOW, 1), (1, SSIM_WINDOW)):
        planes = torch.nn.functional.avg_pool2d(planes, window, stride=1)
    return planes


def ssim_tensor(clean, estimates):
    """Structural similarity of each of ``estimates`` against ``clean``, on their device:
    :func:`ssim` (scikit-image's 7x7 uniform window, sample covariance, data range 1, averaged over
    the windows inside the image, then over channels) for tensors.

    ``clean``: ``C x H x W`` float tensor in [0, 1], H and W at least 7; ``estimates``:
    ``K x C x H x W`` (clipped to [0, 1]). Returns a ``K`` tensor (float64; float32 on MPS).
    """
    dtype = metric_dtype(clean.device)
    x = clean.to(dtype)[None]
    y = estimates.to(dtype).clamp(0, 1)
    mx, mxx = _window_means(torch.cat([x, x * x], dim=1)).chunk(2, dim=1)  # once for every estimate
    my, myy, mxy = _window_means(torch.cat([y, y * y, x * y], dim=1)).chunk(3, dim=1)
    sample = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample, not population, covariance
    vx, vy, vxy = sample * (mxx - mx * mx), sample * (myy - my * my), sample * (mxy - mx * my)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    similarity = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return similarity.mean(dim=(2, 3)).mean(dim=1)
