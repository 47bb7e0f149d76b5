"""lowrank.measurements: A and A* are adjoint for every kind, each kind is the operator its name
says (every entry, diagonals, symmetric Gaussians), only the diagonal kind commutes, and batches
are measured as their members."""

import numpy as np
import pytest

from lowrank.measurements import KINDS, Measurements, make_measurements


def symmetric(n, rng, batch=()):
    G = rng.standard_normal(batch + (n, n))
    return G + np.swapaxes(G, -1, -2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,m,seed", [(5, 12, 0), (8, 30, 1)])
def test_forward_and_adjoint_are_adjoint(kind, n, m, seed):
    rng = np.random.default_rng(seed)
    A = make_measurements(kind, n, m, rng)
    X, r = symmetric(n, rng), rng.standard_normal(A.count)
    assert np.isclose(A.forward(X) @ r, np.sum(X * A.adjoint(r)), rtol=1e-12, atol=0)
    assert np.array_equal(A.adjoint(r), A.adjoint(r).T)
    for i in (0, A.count - 1):
        assert np.array_equal(A.matrix(i), A.matrix(i).T)
        assert np.isclose(A.forward(X)[i], np.sum(A.matrix(i) * X), rtol=1e-12)


def test_entrywise_measures_every_entry():
    rng = np.random.default_rng(3)
    X = symmetric(6, rng)
    A = make_measurements("entrywise", 6, None, rng)
    assert A.count == 36 and np.allclose(A.forward(X), X.ravel(), rtol=0, atol=1e-15)
    assert np.allclose(A.adjoint(X.ravel()), X, rtol=0, atol=1e-15)


def test_diagonal_sees_the_diagonal_only():
    rng = np.random.default_rng(4)
    A = make_measurements("diagonal", 5, 9, rng)
    X = symmetric(5, rng)
    off = X - np.diag(np.diag(X))
    assert np.allclose(A.forward(off), 0, atol=1e-15)
    assert all(np.count_nonzero(A.matrix(i) - np.diag(np.diag(A.matrix(i)))) == 0 for i in range(A.count))


def test_gaussian_matrices_have_the_stated_variance():
    A = make_measurements("gaussian", 30, 400, np.random.default_rng(5))
    stack = np.stack([A.matrix(i) for i in range(A.count)])
    off = stack[:, np.triu_indices(30, 1)[0], np.triu_indices(30, 1)[1]]
    # (G + G^T) / sqrt(2 m): off-diagonal variance 1/m, diagonal 2/m (within sampling error).
    assert abs(off.var() * A.count - 1) < 0.02
    assert abs(np.einsum("iaa->ia", stack).var() * A.count - 2) < 0.05


@pytest.mark.parametrize("kind,commuting", [("diagonal", True), ("entrywise", False), ("gaussian", False)])
def test_only_diagonal_measurements_commute(kind, commuting):
    assert make_measurements(kind, 4, 6, np.random.default_rng(6)).commute() is commuting


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_is_measured_as_its_members(kind):
    rng = np.random.default_rng(7)
    A = make_measurements(kind, 4, 10, rng)
    X, r = symmetric(4, rng, (3,)), rng.standard_normal((3, A.count))
    assert np.allclose(A.forward(X), np.stack([A.forward(x) for x in X]), rtol=1e-14, atol=1e-15)
    assert np.allclose(A.adjoint(r), np.stack([A.adjoint(v) for v in r]), rtol=1e-14, atol=1e-15)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown measurement kind 'sparse'"):
        make_measurements("sparse", 4, 4, np.random.default_rng(0))
    assert isinstance(make_measurements("entrywise", 2, None, None), Measurements)
