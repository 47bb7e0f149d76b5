"""Figures for people to look at (the recovered pixels themselves are written by image_io)."""

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from .atomic_files import atomic_path  # noqa: E402


def save_figure(fig, *paths):
    """Save a matplotlib figure atomically to each path (format from the extension) and close it."""
    for path in paths:
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


def save_grid(paths, rows, row_labels, column_titles, tile_inches=2.5):
    """Save a grid of images, a caption under each, rows labelled on the left, columns on top.

    :param list paths: output files (.png, .pdf, ...), all of the same figure.
    :param list rows: one list per row of ``(image, caption)`` pairs, image ``C x H x W`` float in
        [0, 1], or None for an empty tile (e.g. a run not made yet).
    :param list row_labels: one label per row; :param list column_titles: one title per column.

    The resolution is chosen so that the largest image is drawn at its own pixel size.
    """
    shapes = [image.shape for row in rows for image, _ in row if image is not None]
    largest_side = max((max(shape[1:]) for shape in shapes), default=1)
    fig, axes = plt.subplots(
        len(rows), len(column_titles), figsize=(tile_inches * len(column_titles), (tile_inches + 0.5) * len(rows)),
        squeeze=False, dpi=max(100, largest_side / tile_inches),
    )
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            ax = axes[r, c]
            if image is not None:
                ax.imshow(np.clip(image, 0, 1).transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=10)
            for spine in ax.spines.values():
                spine.set_visible(image is None)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=11)
    for c, title in enumerate(column_titles):
        axes[0, c].set_title(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, *paths)


def save_curves(paths, panels, xlabel, ylabel, panel_inches=(5.0, 3.6)):
    """Save line plots side by side, one panel per entry of ``panels``.

    :param list paths: output files, all of the same figure.
    :param list panels: ``(title, series)`` pairs; each series is a dict with ``x``, ``y`` (equal
        length sequences), ``label``, and any further matplotlib ``plot`` keywords (e.g. ``marker``).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_inches[0] * len(panels), panel_inches[1]), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for line in series:
            options = {k: v for k, v in line.items() if k not in ("x", "y")}
            ax.plot(line["x"], line["y"], **options)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact_number))
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=9)
    fig.tight_layout()
    save_figure(fig, *paths)


def _compact_number(value, _position=None):
    """Tick labels that stay short on an axis of iterations: 500, 50k, 1.5M."""
    for threshold, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"
