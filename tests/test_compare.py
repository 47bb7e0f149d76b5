"""lowrank.compare: the distances and the objective on values worked out by hand."""

import numpy as np
import pytest

from lowrank.compare import objective, relative_distance, relative_error


def test_relative_error_and_distance_by_hand():
    X_ref, s_ref = np.diag([3.0, 4.0]), np.array([0.0, 0.0, 12.0])  # norm sqrt(9 + 16 + 144) = 13
    assert relative_error(np.zeros((2, 2)), X_ref) == 1.0
    assert relative_error(np.diag([3.0, 7.0]), X_ref) == pytest.approx(3 / 5)
    assert relative_distance(np.diag([3.0, 4.0]), np.array([0.0, 5.0, 0.0]), X_ref, s_ref) == pytest.approx(13 / 13)
    assert relative_distance(X_ref, s_ref, X_ref, s_ref) == 0.0
    assert relative_distance(X_ref + 1.3 * np.eye(2), s_ref, X_ref, s_ref) == pytest.approx(np.sqrt(2 * 1.69) / 13)


def test_objective_is_trace_plus_lambda_l1():
    assert objective(np.diag([1.0, 2.0, -0.5]), np.array([1.0, -2.0, 0.0]), 0.25) == pytest.approx(2.5 + 0.75)
