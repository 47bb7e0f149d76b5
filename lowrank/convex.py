"""The convex program the theorem names: ``min tr(X) + lam ||s||_1  s.t.  A(X) + s = y,  X PSD``.

Solved by cvxpy with Clarabel, an interior-point solver for semidefinite cones that comes with
cvxpy. With commuting measurements the program fixes only what A sees of X (for ``diagonal``
measurements, its diagonal); Clarabel's answer is then one of the optimal X, and comparisons
should rest on the objective or on what A sees.
"""

import dataclasses
import warnings

import numpy as np

from utils.optional import import_optional

SOLVER = "CLARABEL"
# What an answer must meet to be used, whatever the solver's status says: Clarabel stops at
# "almost solved" when its residuals stall just above its own 1e-8 (seen at 2e-8 on robust PCA).
FEASIBILITY = 1e-6  # ||A(X) + s - y|| / ||y||
PSD_SLACK = 1e-6  # least eigenvalue of X, relative to its largest (or to 1)


@dataclasses.dataclass(frozen=True)
class ConvexSolution:
    """:param numpy.ndarray X: ``n x n`` symmetric PSD (to the solver's tolerance, about 1e-8).
    :param numpy.ndarray s: ``m``.
    :param float objective: ``tr(X) + lam ||s||_1`` at the optimum."""

    X: np.ndarray
    s: np.ndarray
    objective: float


def solve_convex(measurements, y, lam):
    """Solve the program for ``measurements`` (A), ``y`` (``m``) and ``lam`` (> 0).

    Raises RuntimeError if the solver finds no answer, or one that is not feasible to
    FEASIBILITY and PSD_SLACK.
    """
    cp = import_optional("cvxpy")
    n = measurements.n
    X = cp.Variable((n, n), PSD=True)
    s = cp.Variable(measurements.count)
    # The A_i are symmetric, so the row-major vec of X that the operator's rows expect is safe.
    constraint = measurements.operator @ cp.vec(X, order="C") + s == y
    program = cp.Problem(cp.Minimize(cp.trace(X) + lam * cp.norm1(s)), [constraint])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")  # checked below
        program.solve(solver=SOLVER)
    if program.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"{SOLVER} did not solve the convex program: {program.status}")
    X_value, s_value = (X.value + X.value.T) / 2, np.asarray(s.value)
    infeasibility = np.linalg.norm(measurements.forward(X_value) + s_value - y) / np.linalg.norm(y)
    eigenvalues = np.linalg.eigvalsh(X_value)
    if infeasibility > FEASIBILITY or eigenvalues[0] < -PSD_SLACK * max(1.0, eigenvalues[-1]):
        raise RuntimeError(f"{SOLVER}'s answer ({program.status}) is off by {infeasibility:.1e} in A(X) + s = y "
                           f"and {eigenvalues[0]:.1e} in X's least eigenvalue")
    return ConvexSolution(X_value, s_value, float(program.value))
