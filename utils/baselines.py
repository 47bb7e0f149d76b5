"""Classical impulse-noise filters the paper's method is compared with.

Both work on each colour channel separately, because salt-and-pepper noise here corrupts every
channel of every pixel independently. Borders are extended by mirroring (``d c b a | a b c d``,
scipy.ndimage's ``reflect`` mode, numpy's ``symmetric``), the same for both filters.
"""

import numpy as np
import scipy.ndimage

CHUNK = 1 << 15  # windows gathered at once by the adaptive median filter (19x19 x 4 bytes: 47 MB)


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
        raise ValueError(f"max_window must be odd and at least 3, got {max_window}")
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
