"""lowrank.implicit_bias: on commuting measurements gradient descent's limit approaches the convex
solution as eps falls (the paper's theorem, on a small real run); the summary line's number is
the worst commuting run at the smallest eps; the files are written."""

import csv
import os

import numpy as np
import pytest

from conftest import optional_module
from lowrank.implicit_bias import (FIELDS, ImplicitBiasPlan, commuting_summary, describe, run_implicit_bias,
                                   write_implicit_bias)

SMALL = ImplicitBiasPlan(kinds=("diagonal",), n=6, m=24, rank=1, corruption=0.1, alphas=(2.0, 4.0),
                         epsilons=(1e-1, 1e-3, 1e-6, 1e-12), instances=1, iterations=6000)


@pytest.fixture(scope="module")
def small_rows():
    optional_module("cvxpy")  # each experiment compares with the convex program
    return run_implicit_bias(SMALL, seed=1, log=lambda line: None)


def test_the_distance_to_the_convex_solution_falls_with_eps_on_commuting_measurements(small_rows):
    assert len(small_rows) == 8 and all(row["commuting"] == 1 and row["kind"] == "diagonal" for row in small_rows)
    for alpha in SMALL.alphas:
        distances = [row["distance"] for row in small_rows if row["alpha"] == alpha]  # eps falling
        assert all(later < earlier for earlier, later in zip(distances, distances[1:]))
        assert distances[-1] < 1e-2 and distances[-1] < distances[0] / 20
    assert all(row["lam"] == 1 / row["alpha"] and 0 < row["residual"] for row in small_rows)


def test_the_summary_is_the_median_and_the_worst_commuting_run_at_the_smallest_eps():
    rows = [{"commuting": 1, "eps": 1e-8, "distance": 0.2}, {"commuting": 1, "eps": 1e-12, "distance": 3e-4},
            {"commuting": 1, "eps": 1e-12, "distance": 5e-2}, {"commuting": 1, "eps": 1e-12, "distance": 1e-4},
            {"commuting": 0, "eps": 1e-14, "distance": 0.9}]
    assert commuting_summary(rows) == (3e-4, 1e-12, rows[2])
    assert commuting_summary(rows[4:]) is None


def test_the_csv_and_figure_are_written(small_rows, tmp_path):
    paths = write_implicit_bias(small_rows, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["matrix_implicit_bias.csv", "matrix_implicit_bias.png",
                                                     "matrix_implicit_bias.pdf"]
    with open(paths[0], newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(FIELDS) and len(table) == len(small_rows)
    assert np.allclose([float(row["distance"]) for row in table], [row["distance"] for row in small_rows], rtol=1e-12)
    assert all(os.path.getsize(path) > 1000 for path in paths[1:])


def test_the_log_lines_give_the_medians(small_rows):
    lines = describe(small_rows)
    assert len(lines) == 2 and lines[0].startswith("implicit bias: diagonal A_i (commuting), alpha 2: median distance ")
    last = small_rows[3]  # alpha 2, eps 1e-12: one problem, so the median is its value
    assert f"{last['distance']:.2e} at eps 1e-12" in lines[0] and f"gradient descent {last['error']:.2e}" in lines[0]
