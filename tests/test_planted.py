"""lowrank.planted: y = A(X*) + s*, X* positive semidefinite of exactly the rank asked, s* with the
corrupted places and magnitudes stated (symmetric for robust PCA), all from the seed."""

import numpy as np
import pytest

from lowrank.measurements import KINDS
from lowrank.planted import CORRUPTION_MAGNITUDE, plant


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,rank,fraction,seed", [(8, 1, 0.1, 0), (10, 3, 0.3, 1), (6, 6, 0.0, 2)])
def test_the_problem_is_as_planted(kind, n, rank, fraction, seed):
    problem = plant(kind, n, rank, fraction, seed, m=40)
    X, s = problem.X_star, problem.s_star
    eigenvalues = np.linalg.eigvalsh(X)
    assert np.array_equal(X, X.T) and eigenvalues.min() > -1e-12
    assert np.sum(eigenvalues > 1e-9) == rank
    assert np.array_equal(problem.y, problem.measurements.forward(X) + s)
    assert problem.measurements.count == (n * n if kind == "entrywise" else 40)
    magnitudes = np.abs(s[s != 0])
    assert np.all((magnitudes >= CORRUPTION_MAGNITUDE[0]) & (magnitudes <= CORRUPTION_MAGNITUDE[1]))
    if fraction == 0:
        assert not s.any()
    if kind == "entrywise":
        assert np.array_equal(s.reshape(n, n), s.reshape(n, n).T)


def test_the_corrupted_fraction_is_near_the_one_asked():
    problem = plant("gaussian", 10, 2, 0.3, 0, m=4000)
    assert abs(np.mean(problem.s_star != 0) - 0.3) < 0.03
    both_signs = np.sign(problem.s_star[problem.s_star != 0])
    assert abs(both_signs.mean()) < 0.1


def test_the_seed_decides_everything():
    first, again, other = (plant("gaussian", 6, 2, 0.2, seed, 20) for seed in (5, 5, 6))
    assert np.array_equal(first.y, again.y) and np.array_equal(first.measurements.operator, again.measurements.operator)
    assert not np.array_equal(first.y, other.y)
