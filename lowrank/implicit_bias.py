"""Experiment 1, this project's test of the paper's theorem: the distance between gradient
descent's limit and the convex program's solution (``lam = 1 / alpha``) as ``eps`` falls.

For each measurement kind, ``instances`` planted problems; on each, one run per ``(alpha, eps)``
(all of a problem's runs in one batch), each until its residual falls to ``tolerance`` or
``iterations`` are spent, and one convex solution per alpha. The theorem predicts a distance
going to 0 with eps for the commuting kind (``diagonal``); it says nothing of the others.
"""

import dataclasses
import os
import time

import numpy as np

from reproduction.figures import figure_paths
from utils.atomic_files import write_csv
from utils.plotting import save_curves

from .compare import objective, relative_distance, relative_error
from .convex import solve_convex
from .descent import descend_batch
from .measurements import KINDS
from .planted import plant

STEM = "matrix_implicit_bias"
FIELDS = ("kind", "commuting", "instance", "seed", "alpha", "lam", "eps", "distance", "objective_gap", "error",
          "convex_error", "residual", "iterations", "converged")
KIND_TITLES = {"diagonal": "diagonal A_i (commuting)", "entrywise": "robust PCA (not commuting)",
               "gaussian": "Gaussian sensing (not commuting)"}


@dataclasses.dataclass(frozen=True)
class ImplicitBiasPlan:
    """The problems and runs of the experiment.

    ``n x n`` matrices of rank ``rank``, a fraction ``corruption`` of ``m`` measurements corrupted
    (``entrywise`` has ``n * n``); gradient descent with learning rate ``step`` for U.
    """

    kinds: tuple = KINDS
    n: int = 10
    m: int = 60
    rank: int = 2
    corruption: float = 0.2
    alphas: tuple = (1.0, 2.0, 4.0)
    epsilons: tuple = (1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
    instances: int = 3
    step: float = 0.1
    iterations: int = 200_000
    tolerance: float = 1e-8


FULL = ImplicitBiasPlan()
QUICK = ImplicitBiasPlan(alphas=(2.0,), epsilons=(1e-2, 1e-4, 1e-8), instances=1, iterations=20_000)


def run_implicit_bias(plan, seed, log=print):
    """Run the experiment; returns one row (a dict of FIELDS) per run. Problem ``i`` of each kind is
    drawn from ``seed + i``."""
    rows = []
    alphas, epsilons = (grid.ravel() for grid in np.meshgrid(plan.alphas, plan.epsilons, indexing="ij"))
    for kind in plan.kinds:
        for instance in range(plan.instances):
            start = time.perf_counter()
            problem = plant(kind, plan.n, plan.rank, plan.corruption, seed + instance, plan.m)
            commuting = problem.measurements.commute()
            solutions = {alpha: solve_convex(problem.measurements, problem.y, 1 / alpha) for alpha in plan.alphas}
            runs = descend_batch(problem.measurements, np.tile(problem.y, (len(alphas), 1)), alphas, epsilons,
                                 plan.step, plan.iterations, plan.tolerance)
            for b, (alpha, eps) in enumerate(zip(alphas, epsilons)):
                run, solution = runs.item(b), solutions[alpha]
                rows.append({
                    "kind": kind, "commuting": int(commuting), "instance": instance, "seed": seed + instance,
                    "alpha": alpha, "lam": 1 / alpha, "eps": eps,
                    "distance": relative_distance(run.X, run.s, solution.X, solution.s),
                    "objective_gap": objective(run.X, run.s, 1 / alpha) / solution.objective - 1,
                    "error": relative_error(run.X, problem.X_star),
                    "convex_error": relative_error(solution.X, problem.X_star),
                    "residual": run.residual, "iterations": run.iterations, "converged": int(run.converged),
                })
            smallest = [row for row in rows[-len(alphas):] if row["eps"] == min(plan.epsilons)]
            log(f"implicit bias: {kind} problem {instance}: {len(alphas)} runs in {time.perf_counter() - start:.1f} s; "
                f"at eps {min(plan.epsilons):g}, distance " +
                ", ".join(f"{row['distance']:.2e} (alpha {row['alpha']:g})" for row in smallest))
    return rows


def median_distances(rows, kind, alpha):
    """``(epsilons, median distances)`` over the problems of ``kind`` at ``alpha``, eps falling."""
    chosen = [row for row in rows if row["kind"] == kind and row["alpha"] == alpha]
    epsilons = sorted({row["eps"] for row in chosen}, reverse=True)
    medians = [float(np.median([row["distance"] for row in chosen if row["eps"] == eps])) for eps in epsilons]
    return epsilons, medians


def describe(rows):
    """Lines for the log: per kind and alpha, the median distance at the largest and the smallest
    eps, and the median errors to X* of gradient descent (at the smallest eps) and of the program."""
    lines = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        for alpha in dict.fromkeys(row["alpha"] for row in rows):
            epsilons, medians = median_distances(rows, kind, alpha)
            last = [row for row in rows if row["kind"] == kind and row["alpha"] == alpha and row["eps"] == epsilons[-1]]
            lines.append(f"implicit bias: {KIND_TITLES[kind]}, alpha {alpha:g}: median distance {medians[0]:.2e} "
                         f"at eps {epsilons[0]:g}, {medians[-1]:.2e} at eps {epsilons[-1]:g}; median error to X*: "
                         f"gradient descent {np.median([row['error'] for row in last]):.2e}, convex program "
                         f"{np.median([row['convex_error'] for row in last]):.2e}")
    return lines


def commuting_summary(rows):
    """``(median, eps, worst)`` over the commuting kind's runs at its smallest eps (every alpha and
    problem): the median distance, that eps, and the row of the largest distance; None without
    such runs."""
    commuting = [row for row in rows if row["commuting"]]
    if not commuting:
        return None
    eps = min(row["eps"] for row in commuting)
    last = [row for row in commuting if row["eps"] == eps]
    return float(np.median([row["distance"] for row in last])), eps, max(last, key=lambda row: row["distance"])


def write_implicit_bias(rows, out_dir):
    """Write ``<out_dir>/matrix_implicit_bias.csv`` and the figure (PNG, PDF): per kind, the median
    distance against eps, one line per alpha. Returns the paths written."""
    csv_path = os.path.join(out_dir, STEM + ".csv")
    write_csv(csv_path, FIELDS, rows)
    panels = []
    for kind in dict.fromkeys(row["kind"] for row in rows):
        series = []
        for alpha in dict.fromkeys(row["alpha"] for row in rows):
            epsilons, medians = median_distances(rows, kind, alpha)
            series.append({"x": [-np.log10(eps) for eps in epsilons], "y": [np.log10(d) for d in medians],
                           "label": f"alpha {alpha:g} (lambda {1 / alpha:.3g})", "marker": "o"})
        panels.append((KIND_TITLES[kind], series))
    paths = figure_paths(os.path.join(out_dir, STEM))
    save_curves(paths, panels, "log10(1 / eps)", "log10 distance to the convex solution")
    return [csv_path, *paths]
