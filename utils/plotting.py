"""Figures for people to look at (the recovered pixels themselves are written by image_io).

Figures are ``matplotlib.figure.Figure`` objects, saved through the canvas of their file's format
(Agg for PNG): no pyplot, so no backend is chosen and importing this module changes nothing.
"""

import math

import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure

from .atomic_files import atomic_path

# The panel's resolution: a power of two, so that its size in pixels divided by it and multiplied
# back (as matplotlib sizes its canvas) is exact and the canvas is the panel's pixel size.
PANEL_DPI = 128
PANEL_GAP_INCHES = 0.1  # white between the panel's tiles and around them
CAPTION_FONTSIZE = 10
CAPTION_LINES = 2.0  # height of the caption band above the panel's tiles, in lines of caption


def save_figure(fig, *paths, tight=True):
    """Save a matplotlib figure atomically to each path (format from the extension).

    ``tight`` crops the saved figure to what is drawn (captions included); without it the file
    has the figure's own size.
    """
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=fig.dpi, bbox_inches="tight" if tight else None)


def _to_tensor(image):
    """``C x H x W`` float in [0, 1] (C is 1 or 3) as a ``3 x H x W`` float32 tensor, clipped."""
    tensor = torch.from_numpy(np.clip(np.asarray(image, dtype=np.float32), 0, 1))
    return tensor.expand(3, -1, -1)


def panel_layout(tiles, tile_inches=3.0):
    """The panel of :func:`save_panel` as one picture: returns ``(pixels, zoom, centres)``.

    ``pixels`` is the tiles side by side on white (``torchvision.utils.make_grid``), enlarged
    ``zoom`` times (each pixel a ``zoom x zoom`` block, so that the longer side of a tile is drawn
    at least ``tile_inches`` at PANEL_DPI), ``H' x W' x 3 uint8``; ``centres`` the column of each
    tile's centre in it.
    """
    sizes = {np.shape(image)[1:] for image, _ in tiles}
    if len(sizes) != 1:
        raise ValueError(f"a panel's tiles must be of one size, not {sorted(sizes)}")
    height, width = sizes.pop()
    zoom = max(1, math.ceil(tile_inches * PANEL_DPI / max(height, width)))
    padding = max(1, round(PANEL_GAP_INCHES * PANEL_DPI / zoom))
    # Imported here: torchvision's import takes over a second, nearly half of denoising.py's, and a run
    # lays out its panel only when it writes its outputs.
    from torchvision.utils import make_grid

    grid = make_grid([_to_tensor(image) for image, _ in tiles], nrow=len(tiles), padding=padding, pad_value=1.0)
    padding = (grid.shape[2] - len(tiles) * width) // (len(tiles) + 1)  # make_grid pads no single tile
    pixels = np.round(grid.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    pixels = pixels.repeat(zoom, axis=0).repeat(zoom, axis=1)
    centres = [(padding + i * (width + padding) + width / 2) * zoom for i in range(len(tiles))]
    return pixels, zoom, centres


def save_panel(path, tiles, tile_inches=3.0):
    """Save images side by side, each with its caption above it.

    :param str path: output file (.png or .pdf).
    :param list tiles: ``(image, caption)`` pairs, image ``C x H x W`` float in [0, 1], all of one
        size (C is 1 or 3).

    Each tile's pixels are drawn as exact blocks (see :func:`panel_layout`), never resampled: the
    PNG holds the tiles' 8-bit values as they are, below a band of captions.
    """
    pixels, _, centres = panel_layout(tiles, tile_inches)
    height, width, _ = pixels.shape
    band = math.ceil(CAPTION_LINES * CAPTION_FONTSIZE / 72 * PANEL_DPI)
    fig = Figure(figsize=(width / PANEL_DPI, (height + band) / PANEL_DPI), dpi=PANEL_DPI, facecolor="white")
    fig.figimage(pixels, xo=0, yo=0, origin="upper")
    for centre, (_, caption) in zip(centres, tiles):
        fig.text(centre / width, 1 - band / 2 / (height + band), caption, fontsize=CAPTION_FONTSIZE,
                 ha="center", va="center")
    save_figure(fig, path, tight=False)


def save_grid(paths, rows, row_labels, column_titles, tile_inches=2.5):
    """Save a grid of images, a caption under each, rows labelled on the left, columns on top.

    :param list paths: output files (.png, .pdf, ...), all of the same figure.
    :param list rows: one list per row of ``(image, caption)`` pairs, image ``C x H x W`` float in
        [0, 1] (C 1, drawn in gray, or 3), or None for an empty tile (e.g. a run not made yet),
        drawn as an empty frame.
    :param list row_labels: one label per row; :param list column_titles: one title per column.

    Columns may hold images of different sizes (one axes per tile, each image fitted in it). The
    resolution is chosen so that the largest image is drawn at its own pixel size.
    """
    shapes = [image.shape for row in rows for image, _ in row if image is not None]
    largest_side = max((max(shape[1:]) for shape in shapes), default=1)
    fig = Figure(figsize=(tile_inches * len(column_titles), (tile_inches + 0.5) * len(rows)),
                 dpi=max(100, largest_side / tile_inches))
    axes = fig.subplots(len(rows), len(column_titles), squeeze=False)
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            ax = axes[r, c]
            if image is not None:
                _draw_image(ax, image)
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


def _draw_image(ax, image):
    """Draw a ``C x H x W`` float image in [0, 1] (C 1 or 3) in ``ax``, pixel for pixel: one
    channel in a gray colormap from black at 0 to white at 1 (not stretched to its own range)."""
    pixels = np.clip(image, 0, 1).transpose(1, 2, 0)
    if pixels.shape[2] == 1:
        ax.imshow(pixels[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(pixels, interpolation="nearest")


def save_curves(paths, panels, xlabel, ylabel, panel_inches=(5.0, 3.6)):
    """Save line plots side by side, one panel per entry of ``panels``.

    :param list paths: output files, all of the same figure.
    :param list panels: ``(title, series)`` pairs; each series is a dict with ``x``, ``y`` (equal
        length sequences), ``label``, and any further matplotlib ``plot`` keywords (e.g. ``marker``).
    """
    fig = Figure(figsize=(panel_inches[0] * len(panels), panel_inches[1]))
    axes = fig.subplots(1, len(panels), squeeze=False)
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
