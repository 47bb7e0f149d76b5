"""reproduction.table: a run not made yet is a row that says "not run", in results.csv and
results.md, and the classical filters are reported on every cell all the same (the table written by
``reproduce.py --figure teaser``, which makes the teaser's runs only and draws no other figure)."""

from reproduce import main
from sweep_helpers import TINY, read_rows


def test_runs_not_made_say_not_run(sample_data_dir, classical_results, tmp_path):
    classical_results(tmp_path)
    assert main(["--figure", "teaser", "--out_dir", str(tmp_path), "--data_dir", sample_data_dir, *TINY]) == 0
    rows = read_rows(tmp_path / "results.csv")
    made = [row for row in rows if row["width"] in ("6", "2")]  # the teaser's widths 192 and 64, scaled
    assert len(made) == 8 and all(row["status"] == "done" and row["psnr"] for row in made)
    missing = [row for row in rows if row["width"] == "4"]
    assert len(missing) == 7 * 8 and all(row["status"] == "not run" and not row["psnr"] for row in missing)
    assert all(row["psnr"] for row in rows if not row["width"])  # the classical filters always run
    assert "| not run |" in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "figure3.png").exists()
