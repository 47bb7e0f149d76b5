"""benchmarks/impulse_models.py: ours and every classical filter on each impulse model, the runs
reused and the filters cached when run again."""

import csv

import pytest

from conftest import optional_module
from benchmarks import impulse_models
from tiny import tiny_flags

TINY_BENCHMARK = ["--images", "coffee", "--nlevels", "0.3", *tiny_flags(image=None, progress_bar=True, refined=True),
                  "--num_iter", "4", "--show_every", "2", "--threads", "1"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tabulated(tmp_path_factory):
    optional_module("bm3d")  # the table's filters
    out_dir = tmp_path_factory.mktemp("impulse")
    argv = TINY_BENCHMARK + ["--noises", "random_valued", "--seeds", "0", "--out_dir", str(out_dir)]
    assert impulse_models.main(argv) == 0
    return out_dir, argv


def test_every_method_is_measured_on_the_same_cell(tabulated):
    out_dir, _ = tabulated
    rows = read_rows(out_dir / "impulse_models.csv")
    methods = [row["method"] for row in rows]
    assert methods[:3] == [impulse_models.LAST, impulse_models.FINAL, impulse_models.REFINED]
    assert "ROAD + inpainting + BM3D" in " ".join(methods) and "median 3x3" in methods
    assert len({row["true_density"] for row in rows}) == 1  # one corrupted image for all
    for row in rows[:3]:  # ours carries its detection, measured against the truth
        assert row["iterations"] == "4" and 0 <= float(row["recall"]) <= 1
        # Nothing found (4 iterations are few): no precision, an empty cell rather than 1.
        assert row["precision"] == "" if float(row["impulses_found"]) == 0 else 0 <= float(row["precision"]) <= 1
    summary = (out_dir / "impulse_models.md").read_text()
    assert "## random-valued impulse (random_valued)" in summary and "| coffee | 30% |" in summary
    assert "| refined | best filter | final - best | refined - best |" in summary


def test_run_again_reuses_the_run_and_the_cached_filters(tabulated, capsys):
    out_dir, argv = tabulated
    before = read_rows(out_dir / "impulse_models.csv")
    cached = sorted(out_dir.glob("runs/*_classical.json"))
    written = [path.stat().st_mtime_ns for path in cached]
    assert impulse_models.main(argv) == 0
    assert "coffee_random_valued_03_s0: complete, reused" in capsys.readouterr().out
    assert [path.stat().st_mtime_ns for path in cached] == written
    assert read_rows(out_dir / "impulse_models.csv") == before


def test_no_run_tabulates_the_filters_of_cells_without_a_run(tabulated):
    out_dir, argv = tabulated
    assert impulse_models.main(argv[:-4] + ["--seeds", "0", "1", "--no_run", "--out_dir", str(out_dir)]) == 0
    rows = read_rows(out_dir / "impulse_models.csv")
    ours = [row for row in rows if row["method"].startswith("ours")]
    assert {row["seed"] for row in ours} == {"0"} and {row["seed"] for row in rows} == {"0", "1"}
    assert not (out_dir / "runs" / "coffee_random_valued_03_s1_checkpoint.pt").exists()
    # The summary compares on the seeds run: the filters' means are those of seed 0 alone.
    summary = (out_dir / "impulse_models.md").read_text()
    filter_psnr = next(float(row["psnr"]) for row in rows if row["method"] == "median 3x3" and row["seed"] == "0")
    assert "| coffee | 30% | 0 |" in summary and f"| {filter_psnr:.2f} |" in summary


def exit_status(argv):
    try:
        return impulse_models.main(argv)
    except SystemExit as exc:  # argparse's own refusal
        return exc.code


@pytest.mark.parametrize("bad", [["--noises", "gaussian"], ["--width", "0"], ["--images", "no_such_image"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, bad):
    assert exit_status(TINY_BENCHMARK + ["--out_dir", str(tmp_path)] + bad) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
