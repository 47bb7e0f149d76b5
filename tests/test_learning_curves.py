"""lowrank.learning_curves: on a small real problem, with discrepant rates the error to X* falls
and stays down for every iteration, with equal rates and without s it does not; the convex answer
is a level line; the files are written."""

import os

import numpy as np
import pytest

from conftest import optional_module
from lowrank.learning_curves import CURVES, CurvesPlan, describe, run_learning_curves, write_learning_curves

SMALL = CurvesPlan(n=8, rank=1, fraction=0.1, iterations=3000, record_every=500)


@pytest.fixture(scope="module")
def small_rows():
    optional_module("cvxpy")  # each experiment compares with the convex program
    return run_learning_curves(SMALL, seed=0)


def test_discrepant_rates_fall_and_stay_equal_rates_and_plain_do_not(small_rows):
    assert [row["iteration"] for row in small_rows] == list(range(0, 3001, 500))
    assert all(small_rows[0][curve] == pytest.approx(1.0, abs=1e-6) for curve in ("discrepant", "equal", "plain"))
    assert all(row["discrepant"] < 1e-3 for row in small_rows[2:])  # from iteration 1000 on, to the end
    assert small_rows[-1]["discrepant"] < 1e-4
    assert min(row["equal"] for row in small_rows[1:]) > 0.5 and min(row["plain"] for row in small_rows[1:]) > 1
    assert len({row["convex"] for row in small_rows}) == 1 and small_rows[0]["convex"] > 0.1  # fails here


def test_the_log_line_and_the_files(small_rows, tmp_path):
    line = describe(small_rows)
    assert line.startswith("learning curves: error to X* after 3000 iterations")
    assert f"{small_rows[-1]['plain']:.2e} (1.00e+00)" in line
    paths = write_learning_curves(small_rows, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["matrix_learning_curves.csv", "matrix_learning_curves.png",
                                                     "matrix_learning_curves.pdf"]
    table = np.genfromtxt(paths[0], delimiter=",", names=True)
    assert table.dtype.names == ("iteration",) + CURVES
    assert np.allclose(table["discrepant"], [row["discrepant"] for row in small_rows], rtol=1e-12)
