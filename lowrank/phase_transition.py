"""Experiment 2, this project's: how often X* is recovered, over its rank and the fraction of
corrupted entries, in robust PCA of an ``n x n`` symmetric matrix (``entrywise`` measurements).

Three methods on the same problems: double over-parameterization with ``alpha = sqrt(n)``, the
convex program with ``lam = 1 / sqrt(n)``, and plain over-parameterization (U alone). Every
gradient-descent run takes all its ``iterations`` (no early stopping); all runs of one method go
in one batch. A trial recovers X* when ``||X - X*||_F / ||X*||_F`` is below the threshold.
"""

import dataclasses
import math
import os
import time

import numpy as np
from matplotlib.figure import Figure

from reproduction.figures import figure_paths
from utils.atomic_files import write_csv
from utils.plotting import save_figure

from .compare import relative_error
from .convex import solve_convex
from .descent import descend_batch
from .planted import plant

STEM = "matrix_phase_transition"
METHODS = ("double", "convex", "plain")
METHOD_TITLES = {"double": "double over-param., alpha = sqrt(n)", "convex": "convex program, lambda = 1/sqrt(n)",
                 "plain": "plain over-param. (U only)"}
FIELDS = ("rank", "fraction", "trial", "seed", "error_double", "error_convex", "error_plain", "residual_double")


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """The grid (``ranks`` x corruption ``fractions``, ``trials`` problems per cell) and the runs."""

    n: int = 20
    ranks: tuple = (1, 2, 3, 4, 5, 6)
    fractions: tuple = (0.0, 0.1, 0.2, 0.3, 0.4)
    trials: int = 5
    eps: float = 1e-10
    step: float = 0.1
    iterations: int = 30_000

    @property
    def alpha(self):
        return math.sqrt(self.n)


FULL = PhasePlan()
QUICK = PhasePlan(n=10, ranks=(1, 2, 3), fractions=(0.0, 0.2, 0.4), trials=2, iterations=5_000)


def run_phase_transition(plan, seed, log=print):
    """Run the experiment; returns one row (a dict of FIELDS) per problem. The problems are drawn
    from ``seed``, ``seed + 1``, ... in the order rank, fraction, trial."""
    cells = [(rank, fraction, trial) for rank in plan.ranks for fraction in plan.fractions
             for trial in range(plan.trials)]
    problems = [plant("entrywise", plan.n, rank, fraction, seed + i) for i, (rank, fraction, _) in enumerate(cells)]
    measurements, y = problems[0].measurements, np.stack([problem.y for problem in problems])
    start = time.perf_counter()
    errors = {"convex": [relative_error(solve_convex(measurements, problem.y, 1 / plan.alpha).X, problem.X_star)
                         for problem in problems]}
    log(f"phase transition: {len(problems)} convex programs in {time.perf_counter() - start:.1f} s")
    runs = {}
    for method in ("double", "plain"):
        start = time.perf_counter()
        runs[method] = descend_batch(measurements, y, plan.alpha, plan.eps, plan.step, plan.iterations,
                                     corruption_term=method == "double")
        errors[method] = [relative_error(X, problem.X_star) for X, problem in zip(runs[method].X, problems)]
        log(f"phase transition: {len(problems)} runs of {method} over-parameterization, {plan.iterations} "
            f"iterations each, in {time.perf_counter() - start:.1f} s")
    return [{"rank": rank, "fraction": fraction, "trial": trial, "seed": seed + i,
             **{f"error_{method}": errors[method][i] for method in METHODS},
             "residual_double": float(runs["double"].residual[i])}
            for i, (rank, fraction, trial) in enumerate(cells)]


def success_fractions(rows, method, threshold):
    """``(ranks, fractions, table)``: ``table[i][j]`` is the fraction of trials at ``ranks[i]`` and
    ``fractions[j]`` whose error for ``method`` is below ``threshold``."""
    ranks = sorted({row["rank"] for row in rows})
    fractions = sorted({row["fraction"] for row in rows})
    table = [[float(np.mean([row[f"error_{method}"] < threshold for row in rows
                             if row["rank"] == rank and row["fraction"] == fraction]))
              for fraction in fractions] for rank in ranks]
    return ranks, fractions, table


def describe(rows, threshold):
    """Lines for the log: per method, the success fraction of every cell, a row per rank."""
    lines = []
    for method in METHODS:
        ranks, fractions, table = success_fractions(rows, method, threshold)
        lines.append(f"phase transition: {METHOD_TITLES[method]}: recovered (error < {threshold:g}) per rank, "
                     f"corruption {', '.join(f'{f:g}' for f in fractions)}")
        lines += [f"  rank {rank}: " + " ".join(f"{value:.2f}" for value in row) for rank, row in zip(ranks, table)]
    return lines


def write_phase_transition(rows, out_dir, threshold):
    """Write ``<out_dir>/matrix_phase_transition.csv`` and the figure (PNG, PDF): one map of the
    success fraction per method. Returns the paths written."""
    csv_path = os.path.join(out_dir, STEM + ".csv")
    write_csv(csv_path, FIELDS, rows)
    fig = Figure(figsize=(4.2 * len(METHODS), 3.8))
    axes = fig.subplots(1, len(METHODS), squeeze=False)[0]
    for ax, method in zip(axes, METHODS):
        ranks, fractions, table = success_fractions(rows, method, threshold)
        image = ax.imshow(table, origin="lower", cmap="gray", vmin=0, vmax=1, aspect="auto")
        for i, row in enumerate(table):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if value > 0.5 else "white")
        ax.set_xticks(range(len(fractions)), [f"{f:g}" for f in fractions])
        ax.set_yticks(range(len(ranks)), [str(r) for r in ranks])
        ax.set_xlabel("fraction of corrupted entries")
        ax.set_ylabel("rank of X*")
        ax.set_title(METHOD_TITLES[method], fontsize=10)
    fig.colorbar(image, ax=list(axes), label=f"fraction recovered (error < {threshold:g})")
    paths = figure_paths(os.path.join(out_dir, STEM))
    save_figure(fig, *paths)
    return [csv_path, *paths]
