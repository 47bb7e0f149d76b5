"""Figures for people to look at (the recovered pixels themselves are written by image_io)."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic_files import atomic_path  # noqa: E402


def save_figure(fig, path):
    """Save a matplotlib figure atomically (format from the extension) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)


def save_panel(path, tiles, tile_inches=3.0):
    """Save images side by side, each with its caption.

    :param str path: output file (.png or .pdf).
    :param list tiles: ``(image, caption)`` pairs, image ``C x H x W`` float in [0, 1].
    """
    fig, axes = plt.subplots(1, len(tiles), figsize=(tile_inches * len(tiles), tile_inches + 0.4))
    for ax, (image, caption) in zip(np.atleast_1d(axes), tiles):
        ax.imshow(np.clip(image, 0, 1).transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(caption, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)
