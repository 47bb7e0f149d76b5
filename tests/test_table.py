"""reproduction.table: a run not made yet is a row that says "not run", in results.csv and
results.md, and the classical filters are reported on every cell all the same (the table written by
``reproduce.py --figure teaser``, which makes the teaser's runs only and draws no other figure)."""

import json

from conftest import needs_package
from sweep_helpers import TINY_SWEEP, read_rows
from test_baselines import smooth_image

from recovery import Observation
from reproduce import main
from reproduction import plan, table
from utils.corruption import corrupt


def test_runs_not_made_say_not_run(sample_data_dir, classical_results, tmp_path):
    classical_results(tmp_path)
    assert main(["--figure", "teaser", "--out_dir", str(tmp_path), "--data_dir", sample_data_dir, *TINY_SWEEP]) == 0
    rows = read_rows(tmp_path / "results.csv")
    made = [row for row in rows if row["width"] in ("6", "2")]  # the teaser's widths 192 and 64, scaled
    assert len(made) == 8 and all(row["status"] == "done" and row["psnr"] for row in made)
    missing = [row for row in rows if row["width"] == "4"]
    # Seven cells of nine rows: DIP and DIP-L1's oracle peak, last and final, ours' last, final and refined.
    assert len(missing) == 7 * 9 and all(row["status"] == "not run" and not row["psnr"] for row in missing)
    assert all(row["psnr"] for row in rows if not row["width"])  # the classical filters always run
    assert "| not run |" in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "figure3.png").exists()


def test_the_papers_noise_keeps_its_filters_and_others_add_the_road_ones():
    assert table.classical_filters("salt_pepper") == table.CLASSICAL_FILTERS
    for noise in ("salt_pepper_pixel", "random_valued"):
        names = [name for name, _ in table.classical_filters(noise)]
        assert names[: len(table.CLASSICAL_FILTERS)] == [name for name, _ in table.CLASSICAL_FILTERS]
        assert [name.split(" (")[0] for name in names[len(table.CLASSICAL_FILTERS):]] == [
            "ROAD + inpainting", "ROAD + inpainting + BM3D"]


@needs_package("bm3d")
def test_a_cell_cached_for_one_noise_is_computed_again_for_another(tmp_path):
    clean = smooth_image((3, 32, 32))
    path = tmp_path / "cell_classical.json"
    rows = {}
    for noise in ("random_valued", "salt_pepper_pixel"):
        observation = Observation(noisy=corrupt(clean, noise, 0.3, 0), clean=clean, description="", notes=[])
        rows[noise] = table.classical_rows("smooth", 0.3, observation, plan.Settings(noise=noise), str(path), "cpu")
        assert json.loads(path.read_text())["key"]["noise"] == noise
        written = path.stat().st_mtime_ns
        again = table.classical_rows("smooth", 0.3, observation, plan.Settings(noise=noise), str(path), "cpu")
        assert again == rows[noise]
        assert path.stat().st_mtime_ns == written  # read from the cache
    assert rows["random_valued"] != rows["salt_pepper_pixel"]
