"""lowrank.convex: the program's solution against answers known in closed form, and exact recovery
of a planted problem well inside the region where the program recovers."""

import numpy as np
import pytest
import scipy.sparse

from conftest import needs_package
from lowrank.compare import relative_error
from lowrank.convex import solve_convex
from lowrank.measurements import Measurements, make_measurements
from lowrank.planted import plant

pytestmark = needs_package("cvxpy")  # the convex program


def each_diagonal_entry(n):
    """A_i = E_ii: y = diag(X) + s, a separable program."""
    columns = np.arange(n) * (n + 1)
    return Measurements("diagonal", n, scipy.sparse.csr_array((np.ones(n), (np.arange(n), columns)), shape=(n, n * n)))


@pytest.mark.parametrize("lam", [0.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_separable_program_is_solved_entry_by_entry(lam, seed):
    # min x_i + lam |s_i|, x_i >= 0, x_i + s_i = y_i: for lam > 1, x = max(y, 0) and s = min(y, 0); for
    # lam < 1 all of y is cheaper in s.
    y = np.random.default_rng(seed).standard_normal(6)
    solution = solve_convex(each_diagonal_entry(6), y, lam)
    x = np.maximum(y, 0) if lam > 1 else np.zeros(6)
    assert np.allclose(np.diag(solution.X), x, atol=1e-7)
    assert np.allclose(solution.s, y - x, atol=1e-7)
    assert solution.objective == pytest.approx(x.sum() + lam * np.abs(y - x).sum(), abs=1e-7)


@pytest.mark.parametrize("rank,seed", [(1, 0), (3, 1)])
def test_a_psd_observation_is_kept_whole_when_lam_exceeds_one(rank, seed):
    # With every entry observed and y a PSD matrix Y, nu = I certifies X = Y, s = 0 for lam >= 1.
    factor = np.random.default_rng(seed).standard_normal((7, rank))
    Y = factor @ factor.T
    solution = solve_convex(make_measurements("entrywise", 7, None, None), Y.ravel(), 2.0)
    assert np.allclose(solution.X, Y, atol=1e-6) and np.abs(solution.s).max() < 1e-6
    assert solution.objective == pytest.approx(np.trace(Y), rel=1e-7)


def test_a_planted_rank_one_matrix_is_recovered_exactly():
    problem = plant("entrywise", 12, 1, 0.05, 0)
    solution = solve_convex(problem.measurements, problem.y, 1 / np.sqrt(12))
    assert relative_error(solution.X, problem.X_star) < 1e-6
    assert np.abs(solution.s - problem.s_star).max() < 1e-6
