"""Gradient descent on the double over-parameterization, with discrepant learning rates.

The loss is ``f(U, g, h) = 1/4 ||A(U U^T) + g*g - h*h - y||^2``; with the residual
``r = A(U U^T) + g*g - h*h - y`` its gradients are ``A*(r) U`` for U, ``r*g`` for g and ``-r*h``
for h. U (``n x n``) steps by ``step``, g and h (``m``) by ``alpha * step``, all from
``U = eps I``, ``g = h = eps 1``. Without the corruption term (``corruption_term=False``) it is
plain over-parameterization, ``1/4 ||A(U U^T) - y||^2`` in U alone, which fits the corruption.

The run also keeps ``nu = -step * sum_k r_k``, the integral of minus the residual. Under gradient
flow, ``g*g - h*h = 2 eps^2 sinh(2 alpha nu)`` for any measurements and, when the ``A_i`` commute,
``U U^T = eps^2 exp(2 A*(nu))`` (docs/theory.md).

Several problems sharing one A run together as a batch (a leading axis of size B on y, and
optionally on alpha and eps): one NumPy operation serves them all, each stops on its own.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DescentResult:
    """Where a run of :func:`descend_batch` stopped, for each of its B problems.

    :param numpy.ndarray X: ``B x n x n``, ``U U^T``.
    :param numpy.ndarray s: ``B x m``, ``g*g - h*h`` (zeros without the corruption term).
    :param numpy.ndarray nu: ``B x m``, ``-step`` times the sum of the residuals of the steps taken.
    :param numpy.ndarray iterations: ``B`` ints, the steps taken.
    :param numpy.ndarray residual: ``B`` floats, ``||A(X) + s - y|| / ||y||`` at the end.
    :param numpy.ndarray converged: ``B`` bools, the residual fell to ``tolerance``.
    :param list errors: ``(iteration, B floats ||X - reference||_F / ||reference||_F)`` every
        ``record_every`` iterations and at the end, when references were given (a problem that
        has stopped keeps its last X in the records after it).
    """

    X: np.ndarray
    s: np.ndarray
    nu: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    errors: list

    def item(self, b):
        """Problem ``b`` alone, as :func:`descend` gives it: the same fields without the batch axis,
        ``errors`` as floats recorded up to the iteration where it stopped, and there."""
        taken = int(self.iterations[b])
        errors = [(i, float(e[b])) for i, e in self.errors if i < taken]
        if self.errors:
            errors.append((taken, float(self.errors[-1][1][b])))
        return DescentResult(self.X[b], self.s[b], self.nu[b], taken, float(self.residual[b]),
                             bool(self.converged[b]), errors)


def gradients(measurements, U, g, h, y):
    """``(grad_U, grad_g, grad_h, r)`` of f at ``U`` (``... x n x n``), ``g``, ``h``, ``y``
    (``... x m``); ``g = h = None`` drops the corruption term (its gradients are then None)."""
    r = measurements.forward(U @ np.swapaxes(U, -1, -2)) - y
    if g is not None:
        r = r + g * g - h * h
    grad_U = measurements.adjoint(r) @ U
    return grad_U, (None if g is None else r * g), (None if h is None else -r * h), r


def loss(measurements, U, g, h, y):
    """``f(U, g, h)`` of one problem, the quantity :func:`gradients` differentiates."""
    return 0.25 * float(np.sum(gradients(measurements, U, g, h, y)[3] ** 2))


def descend_batch(measurements, y, alpha, eps, step, iterations, tolerance=0.0, corruption_term=True,
                  reference=None, record_every=0):
    """Run gradient descent on B problems, each for at most ``iterations`` steps.

    :param Measurements measurements: A, shared by the B problems.
    :param numpy.ndarray y: ``B x m`` observations.
    :param alpha: ratio of the learning rate of g, h to that of U: a float or ``B`` floats, > 0.
    :param eps: initialisation scale: a float or ``B`` floats, > 0.
    :param float step: learning rate of U (> 0).
    :param float tolerance: a problem stops once ``||r|| <= tolerance ||y||`` (0: never).
    :param numpy.ndarray reference: ``B x n x n`` matrices to record the error of X to (e.g. X*).
    :param int record_every: record that error every this many iterations (0: at the end only).
    """
    batch, n = y.shape[0], measurements.n
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (batch,))[:, None]
    eps = np.broadcast_to(np.asarray(eps, dtype=float), (batch,))
    scale = np.linalg.norm(y, axis=1)
    U = eps[:, None, None] * np.eye(n)
    g = h = None
    if corruption_term:
        g, h = eps[:, None] * np.ones(measurements.count), eps[:, None] * np.ones(measurements.count)
    nu = np.zeros_like(y, dtype=float)
    taken = np.zeros(batch, dtype=int)
    errors = []

    def record(iteration):
        if reference is not None:
            gap = np.linalg.norm(U @ np.swapaxes(U, 1, 2) - reference, axis=(1, 2))
            errors.append((iteration, gap / np.linalg.norm(reference, axis=(1, 2))))

    for iteration in range(iterations + 1):
        grad_U, grad_g, grad_h, r = gradients(measurements, U, g, h, y)
        residual = np.linalg.norm(r, axis=1) / scale
        # A problem that has converged (or diverged) takes no more steps: its rate is 0 from here.
        moving = (residual > tolerance) & np.isfinite(residual)
        if iteration == iterations or not moving.any():
            break
        if record_every and iteration % record_every == 0:
            record(iteration)
        rate = step * moving[:, None]
        U = U - rate[:, :, None] * grad_U
        if corruption_term:
            g, h = g - alpha * rate * grad_g, h - alpha * rate * grad_h
        nu -= rate * r
        taken += moving
    record(iteration)
    s = g * g - h * h if corruption_term else np.zeros_like(nu)
    return DescentResult(U @ np.swapaxes(U, 1, 2), s, nu, taken, residual, residual <= tolerance, errors)


def descend(measurements, y, alpha, eps, step, iterations, tolerance=0.0, corruption_term=True,
            reference=None, record_every=0):
    """:func:`descend_batch` for one problem: ``y`` (``m``), float ``alpha`` and ``eps``, ``reference``
    ``n x n`` or None; returns its result without the batch axis (:meth:`DescentResult.item`)."""
    reference = None if reference is None else reference[None]
    return descend_batch(measurements, y[None], alpha, eps, step, iterations, tolerance, corruption_term,
                         reference, record_every).item(0)
