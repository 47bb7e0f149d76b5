"""Experiment 3, this project's: the error to X* over the iterations of one robust PCA problem.

Double over-parameterization with discrepant rates (``alpha = sqrt(n)``) and with equal rates
(``alpha = 1``), plain over-parameterization (U alone), all for the same number of iterations
(no early stopping), and the convex program's answer (``lam = 1 / sqrt(n)``) as a level line.
"""

import dataclasses
import math
import os

import numpy as np

from reproduction.figures import figure_paths
from utils.atomic_files import write_csv
from utils.plotting import save_curves

from .compare import relative_error
from .convex import solve_convex
from .descent import descend, descend_batch
from .planted import plant

STEM = "matrix_learning_curves"
CURVES = ("discrepant", "equal", "plain", "convex")
CURVE_LABELS = {"discrepant": "double over-param., alpha = sqrt(n)", "equal": "double over-param., alpha = 1",
                "plain": "plain over-param. (U only)", "convex": "convex program, lambda = 1/sqrt(n)"}
FIELDS = ("iteration",) + CURVES


@dataclasses.dataclass(frozen=True)
class CurvesPlan:
    """One ``n x n`` problem of rank ``rank`` with a fraction ``fraction`` of corrupted entries; the
    error recorded every ``record_every`` of the ``iterations``."""

    n: int = 20
    rank: int = 2
    fraction: float = 0.1
    eps: float = 1e-10
    step: float = 0.1
    iterations: int = 30_000
    record_every: int = 100


FULL = CurvesPlan()
QUICK = CurvesPlan(n=10, rank=1, iterations=5_000, record_every=50)


def run_learning_curves(plan, seed):
    """Run the experiment on the problem drawn from ``seed``; returns one row (a dict of FIELDS) per
    recorded iteration, the iteration 0 and the last included."""
    problem = plant("entrywise", plan.n, plan.rank, plan.fraction, seed)
    alpha = math.sqrt(plan.n)
    double = descend_batch(problem.measurements, np.stack([problem.y] * 2), [alpha, 1.0], plan.eps, plan.step,
                           plan.iterations, reference=np.stack([problem.X_star] * 2), record_every=plan.record_every)
    plain = descend(problem.measurements, problem.y, alpha, plan.eps, plan.step, plan.iterations,
                    corruption_term=False, reference=problem.X_star, record_every=plan.record_every)
    convex = relative_error(solve_convex(problem.measurements, problem.y, 1 / alpha).X, problem.X_star)
    return [{"iteration": iteration, "discrepant": float(pair[0]), "equal": float(pair[1]), "plain": plain_error,
             "convex": convex}
            for (iteration, pair), (_, plain_error) in zip(double.errors, plain.errors)]


def describe(rows):
    """A line for the log: each curve's error at the last iteration, and its least on the way."""
    last = rows[-1]
    return (f"learning curves: error to X* after {last['iteration']} iterations (least on the way): " +
            ", ".join(f"{CURVE_LABELS[c]} {last[c]:.2e} ({min(row[c] for row in rows):.2e})" for c in CURVES))


def write_learning_curves(rows, out_dir):
    """Write ``<out_dir>/matrix_learning_curves.csv`` and the figure (PNG, PDF). Returns the paths."""
    csv_path = os.path.join(out_dir, STEM + ".csv")
    write_csv(csv_path, FIELDS, rows)
    iterations = [row["iteration"] for row in rows]
    series = [{"x": iterations, "y": [np.log10(row[curve]) for row in rows], "label": CURVE_LABELS[curve]}
              for curve in CURVES]
    series[-1]["linestyle"] = "--"
    paths = figure_paths(os.path.join(out_dir, STEM))
    save_curves(paths, [("robust PCA, error to X* (no early stopping)", series)], "iteration",
                "log10 ||X - X*||_F / ||X*||_F")
    return [csv_path, *paths]
