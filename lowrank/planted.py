"""A planted robust recovery problem: ``y = A(X*) + s*``, X* low-rank positive semidefinite, s* sparse.

X* is ``U* U*^T`` with ``U*`` of shape ``n x rank``: N(0, 1/n) entries, so that its nonzero
eigenvalues are near 1; for ``diagonal`` measurements (which see only X's diagonal) X* is diagonal
instead, ``rank`` entries uniform in [0.5, 1.5] at random places. A fraction ``corruption`` of the
measurements is corrupted by values of random sign and magnitude uniform in
CORRUPTION_MAGNITUDE, gross against the measurements of X* (of order 0.1); for ``entrywise``
measurements the corrupted places are symmetric (``(j, k)`` with ``(k, j)``), so that y is a
symmetric matrix.
"""

import dataclasses

import numpy as np

from .measurements import Measurements, make_measurements

CORRUPTION_MAGNITUDE = (0.5, 1.0)
DIAGONAL_VALUES = (0.5, 1.5)


@dataclasses.dataclass(frozen=True)
class PlantedProblem:
    """:param Measurements measurements: A.
    :param numpy.ndarray X_star: ``n x n``, symmetric positive semidefinite.
    :param numpy.ndarray s_star: ``m``, sparse.
    :param numpy.ndarray y: ``m``, ``A(X_star) + s_star``."""

    measurements: Measurements
    X_star: np.ndarray
    s_star: np.ndarray
    y: np.ndarray


def low_rank_psd(kind, n, rank, rng):
    """The ``n x n`` X* of rank ``rank`` (see the module's docstring)."""
    if kind == "diagonal":
        diagonal = np.zeros(n)
        diagonal[rng.choice(n, rank, replace=False)] = rng.uniform(*DIAGONAL_VALUES, rank)
        return np.diag(diagonal)
    factor = rng.standard_normal((n, rank)) / np.sqrt(n)
    return factor @ factor.T


def sparse_corruption(measurements, fraction, rng):
    """``m`` values, each nonzero with probability ``fraction`` (symmetric places for ``entrywise``)."""
    m, n = measurements.count, measurements.n
    corrupted = rng.random(m) < fraction
    if measurements.kind == "entrywise":
        corrupted = np.triu(corrupted.reshape(n, n))
        corrupted = (corrupted | corrupted.T).ravel()
    magnitude = rng.uniform(*CORRUPTION_MAGNITUDE, m)
    sign = rng.choice((-1.0, 1.0), m)
    s = np.where(corrupted, sign * magnitude, 0.0)
    if measurements.kind == "entrywise":
        s = np.triu(s.reshape(n, n))
        s = (s + np.triu(s, 1).T).ravel()
    return s


def plant(kind, n, rank, corruption, seed, m=None):
    """A problem with ``kind`` measurements (``m`` of them; ignored for ``entrywise``), an
    ``n x n`` X* of rank ``rank`` (0 to n) and a fraction ``corruption`` (in [0, 1]) of
    corrupted measurements, all drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    measurements = make_measurements(kind, n, m, rng)
    X_star = low_rank_psd(kind, n, rank, rng)
    s_star = sparse_corruption(measurements, corruption, rng)
    return PlantedProblem(measurements, X_star, s_star, measurements.forward(X_star) + s_star)
