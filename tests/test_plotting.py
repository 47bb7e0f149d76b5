import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from layouts import LAYOUTS, in_layout
from utils.plotting import PANEL_DPI, _compact_number, panel_layout, save_curves, save_grid, save_panel


def tiles(height, width, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (3, height, width)).astype(np.float32) / 255, f"tile {i}") for i in range(count)]


def as_uint8(image):
    return np.round(image * 255).astype(np.uint8).transpose(1, 2, 0)


@pytest.mark.parametrize("height,width,count", [(64, 48, 3), (40, 40, 1), (512, 512, 2)])
def test_the_panel_holds_each_tile_pixel_for_pixel(tmp_path, height, width, count):
    panel_tiles = tiles(height, width, count)
    save_panel(tmp_path / "panel.png", panel_tiles)
    saved = np.asarray(Image.open(tmp_path / "panel.png").convert("RGB"))
    pixels, zoom, centres = panel_layout(panel_tiles)
    assert max(height, width) * zoom >= 3.0 * PANEL_DPI and (zoom == 1 or max(height, width) * (zoom - 1) < 3.0 * PANEL_DPI)
    band = saved.shape[0] - pixels.shape[0]
    assert saved.shape[1] == pixels.shape[1] and band > 0
    assert np.array_equal(saved[band:], pixels)  # the tiles, never resampled
    for (image, _), centre in zip(panel_tiles, centres):
        left, top = round(centre - width * zoom / 2), band + (saved.shape[0] - band - height * zoom) // 2
        block = saved[top : top + height * zoom, left : left + width * zoom]
        assert np.array_equal(block, as_uint8(image).repeat(zoom, 0).repeat(zoom, 1))
    assert (saved[:band] < 128).any()  # captions are drawn above the tiles


def test_a_panel_of_grayscale_and_colour_tiles(tmp_path):
    grey = np.full((1, 32, 32), 0.5, np.float32)
    colour = np.zeros((3, 32, 32), np.float32)
    colour[0] = 1
    save_panel(tmp_path / "panel.pdf", [(grey, "grey"), (colour, "red")])
    assert (tmp_path / "panel.pdf").read_bytes().startswith(b"%PDF")
    pixels, zoom, centres = panel_layout([(grey, "grey"), (colour, "red")])
    assert tuple(pixels[int(pixels.shape[0] / 2), int(centres[0])]) == (128, 128, 128)
    assert tuple(pixels[int(pixels.shape[0] / 2), int(centres[1])]) == (255, 0, 0)
    with pytest.raises(ValueError, match="of one size"):
        panel_layout([(grey, "a"), (np.zeros((3, 32, 16), np.float32), "b")])


def test_grid_draws_every_tile_and_an_empty_frame_for_a_missing_run(tmp_path):
    red, blue = np.zeros((3, 64, 64), np.float32), np.zeros((3, 64, 96), np.float32)
    red[0], blue[2] = 1, 1
    rows = [[(red, "a"), (blue, "b")], [(red, "c"), (None, "not run")]]
    paths = [str(tmp_path / "grid.png"), str(tmp_path / "grid.pdf")]
    save_grid(paths, rows, ["clean", "ours"], ["F16", "kodim03"])
    assert (tmp_path / "grid.pdf").read_bytes().startswith(b"%PDF")
    saved = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)
    is_red = (saved[..., 0] > 200) & (saved[..., 1] < 50) & (saved[..., 2] < 50)
    is_blue = (saved[..., 2] > 200) & (saved[..., 0] < 50) & (saved[..., 1] < 50)
    red_rows, red_columns = np.flatnonzero(is_red.any(axis=1)), np.flatnonzero(is_red.any(axis=0))
    blue_rows, blue_columns = np.flatnonzero(is_blue.any(axis=1)), np.flatnonzero(is_blue.any(axis=0))
    assert red_columns.max() < blue_columns.min()  # red in the first column, blue in the second
    assert np.diff(red_rows).max() > 1 and blue_rows.max() < red_rows.max()  # red in both rows, blue in one
    below_blue = (saved < 100).all(axis=2)[blue_rows.max() + 1 :, blue_columns.min() - 5 :]  # the missing run
    assert (below_blue.sum(axis=0) > 0.8 * len(blue_rows)).sum() >= 2  # the two sides of its frame


@pytest.mark.parametrize("level", [0.25, 0.5, 1.0])
def test_a_grid_draws_a_grayscale_tile_in_gray_at_its_own_levels(tmp_path, level):
    flat = np.full((1, 64, 64), level, np.float32)  # one level: a colormap stretched to its range would lose it
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (1, 64, 64))
    save_grid([str(tmp_path / "grid.png")], [[(flat, "flat"), (ramp, "ramp")]], ["row"], ["a", "b"])
    saved = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)
    expected = round(level * 255)
    assert (np.abs(saved - expected).max(axis=2) <= 1).sum() >= 60 * 60  # the flat tile, in gray
    assert ((saved.max(axis=2) - saved.min(axis=2)) <= 1).all()  # no colour anywhere: the ramp too is in gray


@pytest.mark.parametrize("layout", LAYOUTS)
def test_panels_and_grids_are_the_same_for_any_memory_layout(tmp_path, layout):
    panel_tiles = tiles(16, 12, 2) + [(np.full((1, 16, 12), 0.5, np.float32), "grey")]
    viewed_tiles = [(in_layout(image, layout), caption) for image, caption in panel_tiles]
    (pixels, zoom, centres), viewed = panel_layout(panel_tiles), panel_layout(viewed_tiles)
    assert np.array_equal(viewed[0], pixels) and viewed[1:] == (zoom, centres)
    for name, grid_tiles in [("contiguous", panel_tiles), ("viewed", viewed_tiles)]:
        save_grid([str(tmp_path / f"{name}.png")], [[grid_tiles[0], grid_tiles[-1]]], ["row"], ["a", "b"],
                  tile_inches=1)
    assert (tmp_path / "viewed.png").read_bytes() == (tmp_path / "contiguous.png").read_bytes()


def test_curves_are_written_in_each_format(tmp_path):
    series = [{"x": [0, 50_000, 100_000], "y": [10.0, 20.0, 25.0], "label": "ours", "marker": "o"}]
    paths = [str(tmp_path / "curves.png"), str(tmp_path / "curves.pdf")]
    save_curves(paths, [("left", series), ("right", [])], "iteration", "PSNR (dB)")
    assert Image.open(paths[0]).size[0] > Image.open(paths[0]).size[1] > 100
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(os.listdir(tmp_path)) == ["curves.pdf", "curves.png"]


@pytest.mark.parametrize("value,label", [(500, "500"), (50_000, "50k"), (1_500_000, "1.5M"), (0, "0")])
def test_compact_tick_labels(value, label):
    assert _compact_number(value) == label


BACKEND_SCRIPT = """
import json, sys
import matplotlib
if sys.argv[1] == "with":
    import utils.plotting
    import numpy as np
    utils.plotting.save_panel(sys.argv[2], [(np.zeros((3, 8, 8)), "black")])
print(json.dumps({"backend": matplotlib.get_backend(), "pyplot": "matplotlib.pyplot" in sys.modules,
                  "rc": {key: repr(value) for key, value in matplotlib.rcParams.items()}}))
"""


def test_importing_and_drawing_leave_matplotlib_as_it_was(tmp_path):
    """A program that uses another backend (here svg, chosen as a user would, through MPLBACKEND)
    keeps it: importing this module and drawing a figure choose no backend and import no pyplot."""
    environment = {**os.environ, "MPLBACKEND": "svg"}
    states = {}
    for case in ("without", "with"):
        result = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT, case, str(tmp_path / "p.png")], cwd=REPO,
                                env=environment, capture_output=True, text=True, check=True)
        states[case] = json.loads(result.stdout)
    assert states["with"]["backend"] == states["without"]["backend"] == "svg"
    assert not states["with"]["pyplot"]
    assert states["with"]["rc"] == states["without"]["rc"]
    assert (tmp_path / "p.png").exists()
