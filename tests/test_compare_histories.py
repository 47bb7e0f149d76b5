"""benchmarks/compare_histories.py: two runs' PSNR trajectories and final images, side by side."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.compare_histories import image_difference, psnr_differences
from benchmarks.compare_histories import main as compare_main
from utils.atomic_files import write_csv
from utils.image_io import save_png
FIELDS = ("iteration", "loss", "psnr", "ssim", "seconds")


def history(pairs):
    return [{"iteration": i, "loss": 0.1, "psnr": p, "ssim": 0.5, "seconds": 1.0} for i, p in pairs]


def test_psnr_differences_join_on_iteration():
    a = history([(0, 10.0), (500, 12.0), (999, 14.0)])
    b = history([(0, 10.1), (500, 11.7), (1000, 15.0)])
    assert psnr_differences(a, b) == [(0, 10.0, 10.1), (500, 12.0, 11.7)]


@pytest.mark.parametrize("shift,status", [(0.1, 0), (0.3, 1)])
def test_compare_exit_status_follows_tolerance(tmp_path, capsys, shift, status):
    write_csv(tmp_path / "a.csv", FIELDS, history([(0, 10.0), (500, 20.0)]))
    write_csv(tmp_path / "b.csv", FIELDS, history([(0, 10.0), (500, 20.0 + shift)]))
    save_png(tmp_path / "a.png", np.zeros((3, 64, 64), np.float32))
    images = ["--images", str(tmp_path / "a.png"), str(tmp_path / "a.png")]
    assert compare_main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")] + images) == status
    out = capsys.readouterr().out
    assert f"max |dPSNR|: {shift:.3f} dB over 2 iterations" in out
    assert "final images (iterations 500 and 500): identical" in out


@pytest.mark.parametrize("bad", ["missing history", "not a history", "missing image"])
def test_compare_bad_input_is_one_line(tmp_path, capsys, bad):
    write_csv(tmp_path / "a.csv", FIELDS, history([(0, 10.0)]))
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    b = {"missing history": "nowhere.csv", "not a history": "b.csv", "missing image": "a.csv"}[bad]
    argv = [str(tmp_path / "a.csv"), str(tmp_path / b)]
    if bad == "missing image":
        argv += ["--images", str(tmp_path / "nowhere.png"), str(tmp_path / "nowhere.png")]
    with pytest.raises(SystemExit) as exit_info:
        compare_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("compare_histories.py: ")


def test_image_difference_measures_final_images(tmp_path):
    image = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    moved = image.copy()
    moved[0, 0, 0] = 1.0 - moved[0, 0, 0]  # one value far off
    for name, array in (("a", image), ("b", image), ("c", moved)):
        save_png(tmp_path / f"{name}.png", array)
    assert image_difference(tmp_path / "a.png", tmp_path / "b.png") == "identical"
    saved = [np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.float64) for name in "ac"]
    levels = int(np.abs(saved[0] - saved[1]).max())
    expected_psnr = 10 * np.log10(255**2 / np.mean((saved[0] - saved[1]) ** 2))
    sentence = image_difference(tmp_path / "a.png", tmp_path / "c.png")
    assert sentence == f"PSNR of one against the other {expected_psnr:.2f} dB, largest difference {levels}/255"


