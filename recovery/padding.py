"""An image of any size on a network that takes only some: the canvas the network computes on, and
the window of it that is the image.

The skip encoder-decoder halves its input five times, so it takes sides that are multiples of
``SIDE_MULTIPLE`` and at least ``settings.MIN_SIDE``. An image of other sides is not cropped: the
network computes on the smallest canvas of such sides that holds it, the image centred on it (its
borders get the same context on every side), and its output is cut back to the image's window
before anything else sees it. The loss, the corruption term g*g - h*h, every candidate and every
file therefore have the image's own size, and the canvas's extra pixels are never asked to fit
anything: the network is free there (docs/tiling.md measures this against fitting a reflected
border). An image whose sides the network takes has no window at all: its run is the run it always
was, bit for bit.
"""

from .settings import MIN_SIDE

# Five stride-2 scales: the network takes sides that are multiples of 32 (and at least MIN_SIDE).
SIDE_MULTIPLE = 32


def network_side(side):
    """The least side the network takes that holds ``side`` pixels.

    >>> network_side(300), network_side(448), network_side(40)
    (320, 448, 64)
    """
    return max(MIN_SIDE, -(-side // SIDE_MULTIPLE) * SIDE_MULTIPLE)


def network_sides(height, width):
    """``(height, width)`` of the canvas the network computes an image of ``height x width`` on."""
    return network_side(height), network_side(width)


def image_window(height, width):
    """The ``(rows, columns)`` slices of the canvas (:func:`network_sides`) that hold an image of
    ``height x width``, centred; None when the canvas is the image itself.

    >>> image_window(300, 450)
    (slice(10, 310, None), slice(15, 465, None))
    >>> image_window(64, 96) is None
    True
    """
    canvas = network_sides(height, width)
    if canvas == (height, width):
        return None
    top, left = ((outer - inner) // 2 for outer, inner in zip(canvas, (height, width)))
    return slice(top, top + height), slice(left, left + width)


def describe_padding(height, width):
    """The note a run logs for an image the network cannot take as it is, else None."""
    canvas_height, canvas_width = network_sides(height, width)
    if (canvas_height, canvas_width) == (height, width):
        return None
    return (f"the network computes on a {canvas_width}x{canvas_height} canvas (sides multiples of {SIDE_MULTIPLE}, "
            f"at least {MIN_SIDE}) with the image at its centre; the loss counts the image's pixels only, and "
            f"every output is the image's {width}x{height}")
