"""How close two answers ``(X, s)`` are, and the convex program's objective at an answer."""

import numpy as np


def relative_error(X, X_ref):
    """``||X - X_ref||_F / ||X_ref||_F`` (X_ref nonzero), e.g. the error to X*."""
    return float(np.linalg.norm(X - X_ref) / np.linalg.norm(X_ref))


def relative_distance(X, s, X_ref, s_ref):
    """``||(X, s) - (X_ref, s_ref)|| / ||(X_ref, s_ref)||``, Frobenius over both parts together."""
    gap = np.sum((X - X_ref) ** 2) + np.sum((s - s_ref) ** 2)
    return float(np.sqrt(gap / (np.sum(X_ref ** 2) + np.sum(s_ref ** 2))))


def objective(X, s, lam):
    """``tr(X) + lam ||s||_1``."""
    return float(np.trace(X) + lam * np.sum(np.abs(s)))
