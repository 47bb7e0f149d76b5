"""Linear measurements of a symmetric matrix: ``A(X)_i = <A_i, X>`` with symmetric ``A_i``.

The operator is stored as one matrix ``M`` of shape ``m x n*n`` whose row ``i`` is ``A_i``
flattened (row-major), so that ``A(X) = M vec(X)`` and ``A*(r) = M^T r`` reshaped, for every kind
of measurement alike: sparse where the ``A_i`` are, dense where they are not. Three kinds:

- ``diagonal``: ``A_i = diag(b_i)``, all of them commuting (the case of the paper's theorem);
- ``entrywise``: every entry of X once, ``A_(j,k) = (E_jk + E_kj) / 2`` (robust PCA of a symmetric
  matrix, ``m = n*n``; not commuting);
- ``gaussian``: ``A_i = (G_i + G_i^T) / sqrt(2 m)``, G with independent N(0, 1) entries (matrix
  sensing; not commuting).

The random kinds are scaled so that ``E ||A(X)||^2`` is close to ``||X||_F^2``.
"""

import dataclasses
import functools

import numpy as np
import scipy.sparse

KINDS = ("diagonal", "entrywise", "gaussian")


@dataclasses.dataclass(frozen=True)
class Measurements:
    """``m`` linear measurements of an ``n x n`` symmetric matrix.

    :param str kind: one of KINDS.
    :param int n: the side of X.
    :param operator: ``m x n*n``, row i the symmetric ``A_i`` flattened: a ``scipy.sparse.csr_array``
        or a ``numpy.ndarray`` of floats.
    """

    kind: str
    n: int
    operator: object

    @functools.cached_property
    def _transpose(self):
        # Kept, as the transpose of a sparse array is made anew (slowly) at every use.
        transpose = self.operator.T
        return transpose.tocsr() if scipy.sparse.issparse(transpose) else np.ascontiguousarray(transpose)

    @functools.cached_property
    def _stack(self):
        """The ``A_i`` as a dense ``m x n x n`` array."""
        dense = self.operator.toarray() if scipy.sparse.issparse(self.operator) else self.operator
        return dense.reshape(self.count, self.n, self.n)

    @property
    def count(self):
        """m, the number of measurements."""
        return self.operator.shape[0]

    def forward(self, X):
        """``A(X)``: ``... x n x n`` floats to ``... x m`` (any leading batch shape)."""
        flat = np.reshape(X, (-1, self.n * self.n))
        return (self.operator @ flat.T).T.reshape(np.shape(X)[:-2] + (self.count,))

    def adjoint(self, r):
        """``A*(r) = sum_i r_i A_i``: ``... x m`` floats to ``... x n x n``, symmetric."""
        flat = np.reshape(r, (-1, self.count))
        return (self._transpose @ flat.T).T.reshape(np.shape(r)[:-1] + (self.n, self.n))

    def matrix(self, i):
        """``A_i`` as a dense ``n x n`` array."""
        return self._stack[i].copy()

    def commute(self, tolerance=1e-12):
        """Whether every pair ``A_i A_j = A_j A_i`` to within ``tolerance`` (max abs entry).

        ``m`` products of ``m x n x n`` arrays: fine for the sizes of this package (m, n up to a
        few hundred).
        """
        stack = self._stack
        return all(np.abs(a @ stack - stack @ a).max() <= tolerance for a in stack)


def diagonal(n, m, rng):
    """``m`` measurements ``A_i = diag(b_i)``, b_i with independent N(0, 1/m) entries."""
    values = rng.standard_normal((m, n)) / np.sqrt(m)
    rows = np.repeat(np.arange(m), n)
    columns = np.tile(np.arange(n) * (n + 1), m)  # where X_jj sits in vec(X)
    return Measurements("diagonal", n, scipy.sparse.csr_array((values.ravel(), (rows, columns)), shape=(m, n * n)))


def entrywise(n):
    """Every entry ``X_jk`` (both ``(j, k)`` and ``(k, j)``), ``m = n * n``: robust PCA."""
    j, k = np.divmod(np.arange(n * n), n)
    rows = np.concatenate([np.arange(n * n)] * 2)
    columns = np.concatenate([j * n + k, k * n + j])  # a diagonal entry gets 1/2 twice: 1
    return Measurements("entrywise", n, scipy.sparse.csr_array((np.full(2 * n * n, 0.5), (rows, columns)),
                                                               shape=(n * n, n * n)))


def gaussian(n, m, rng):
    """``m`` measurements ``A_i = (G_i + G_i^T) / sqrt(2 m)``, G_i with N(0, 1) entries."""
    G = rng.standard_normal((m, n, n))
    stack = (G + G.transpose(0, 2, 1)) / np.sqrt(2 * m)
    return Measurements("gaussian", n, stack.reshape(m, n * n))


def make_measurements(kind, n, m, rng):
    """Measurements of ``kind`` (KINDS); ``m`` is ignored for ``entrywise`` (always ``n * n``)."""
    if kind == "diagonal":
        return diagonal(n, m, rng)
    if kind == "entrywise":
        return entrywise(n)
    if kind == "gaussian":
        return gaussian(n, m, rng)
    raise ValueError(f"unknown measurement kind {kind!r}; one of {', '.join(KINDS)}")
