"""lowrank.descent: the closed-form gradients are autograd's, the run obeys the gradient-flow
identities (s = 2 eps^2 sinh(2 alpha nu) always; X = eps^2 exp(2 A*(nu)) only when the A_i
commute), a batch runs as its members, and a run stops at its tolerance and nowhere else."""

import numpy as np
import pytest
import scipy.linalg
import torch

from lowrank.descent import descend, descend_batch, gradients, loss
from lowrank.measurements import KINDS
from lowrank.planted import plant


def torch_loss(operator, U, g, h, y):
    """f written directly in torch: 1/4 ||A(U U^T) + g*g - h*h - y||^2."""
    r = operator @ (U @ U.T).reshape(-1) - y
    if g is not None:
        r = r + g * g - h * h
    return 0.25 * (r ** 2).sum()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("corruption_term", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_are_autograds(kind, corruption_term, seed):
    problem = plant(kind, 5, 2, 0.2, seed, m=15)
    rng = np.random.default_rng(seed + 10)
    U = rng.standard_normal((5, 5))
    g, h = (rng.standard_normal(problem.measurements.count) for _ in range(2)) if corruption_term else (None, None)
    operator = problem.measurements.operator
    dense = operator if isinstance(operator, np.ndarray) else operator.toarray()
    tensors = [None if v is None else torch.tensor(v, requires_grad=True) for v in (U, g, h)]
    value = torch_loss(torch.tensor(dense), *tensors, torch.tensor(problem.y))
    value.backward()
    grad_U, grad_g, grad_h, _ = gradients(problem.measurements, U, g, h, problem.y)
    assert np.isclose(loss(problem.measurements, U, g, h, problem.y), value.item(), rtol=1e-13)
    assert np.allclose(grad_U, tensors[0].grad.numpy(), rtol=1e-11, atol=1e-12)
    if corruption_term:
        assert np.allclose(grad_g, tensors[1].grad.numpy(), rtol=1e-11, atol=1e-12)
        assert np.allclose(grad_h, tensors[2].grad.numpy(), rtol=1e-11, atol=1e-12)
    else:
        assert grad_g is None and grad_h is None


def flow_gaps(kind, step, alpha=2.0, eps=1e-2, time=4.0):
    """The relative gaps of s and X to their gradient-flow formulas in nu after a flow time ``time``."""
    problem = plant(kind, 4, 1, 0.25, 3, m=8)
    run = descend(problem.measurements, problem.y, alpha, eps, step, round(time / step))
    s_flow = 2 * eps ** 2 * np.sinh(2 * alpha * run.nu)
    X_flow = eps ** 2 * scipy.linalg.expm(2 * problem.measurements.adjoint(run.nu))
    gap = lambda value, flow: np.linalg.norm(value - flow) / np.linalg.norm(flow)  # noqa: E731
    return gap(run.s, s_flow), gap(run.X, X_flow)


def test_the_flow_identities_hold_when_the_measurements_commute():
    coarse, fine = flow_gaps("diagonal", 2e-3), flow_gaps("diagonal", 1e-3)
    assert coarse[0] < 1e-2 and coarse[1] < 1e-2
    # Gradient descent is the flow's Euler scheme: halving the step halves the gaps.
    assert 1.8 < coarse[0] / fine[0] < 2.2 and 1.8 < coarse[1] / fine[1] < 2.2


@pytest.mark.parametrize("kind", ["entrywise", "gaussian"])
def test_only_the_identity_for_s_holds_when_they_do_not(kind):
    coarse, fine = flow_gaps(kind, 2e-3), flow_gaps(kind, 1e-3)
    assert fine[0] < 3e-2 and 1.8 < coarse[0] / fine[0] < 2.2  # s: the Euler scheme's error, shrinking
    assert fine[1] > 0.1 and abs(coarse[1] / fine[1] - 1) < 0.05  # X: a gap that no step size closes


def test_a_batch_runs_as_its_members():
    problem = plant("gaussian", 5, 1, 0.2, 0, m=20)
    alphas, epsilons = np.array([1.0, 3.0, 3.0]), np.array([1e-3, 1e-3, 1e-6])
    ys = np.stack([problem.y, problem.y, 2 * problem.y])
    batch = descend_batch(problem.measurements, ys, alphas, epsilons, 0.1, 3000, tolerance=1e-6,
                          reference=np.stack([problem.X_star] * 3), record_every=1000)
    for b in range(3):
        alone = descend(problem.measurements, ys[b], alphas[b], epsilons[b], 0.1, 3000, tolerance=1e-6,
                        reference=problem.X_star, record_every=1000)
        item = batch.item(b)
        assert item.iterations == alone.iterations and item.converged == alone.converged
        for field in ("X", "s", "nu"):
            assert np.allclose(getattr(item, field), getattr(alone, field), rtol=1e-10, atol=1e-14)
        assert [i for i, _ in item.errors] == [i for i, _ in alone.errors]
        assert np.allclose([e for _, e in item.errors], [e for _, e in alone.errors], rtol=1e-10)
    assert len(set(batch.iterations)) > 1  # the members stopped at different iterations


def test_a_run_stops_at_its_tolerance_and_not_before():
    problem = plant("diagonal", 6, 2, 0.1, 1, m=30)
    run = descend(problem.measurements, problem.y, 4.0, 1e-3, 0.1, 50_000, tolerance=1e-6)
    assert run.converged and run.residual <= 1e-6 and run.iterations < 50_000
    one_less = descend(problem.measurements, problem.y, 4.0, 1e-3, 0.1, run.iterations - 1, tolerance=1e-6)
    assert not one_less.converged and one_less.residual > 1e-6 and one_less.iterations == run.iterations - 1
    assert np.isclose(run.residual, np.linalg.norm(problem.measurements.forward(run.X) + run.s - problem.y)
                      / np.linalg.norm(problem.y), rtol=1e-9)


def test_plain_over_parameterization_has_no_corruption_term():
    problem = plant("entrywise", 6, 1, 0.0, 2)
    run = descend(problem.measurements, problem.y, 5.0, 1e-4, 0.1, 4000, corruption_term=False,
                  reference=problem.X_star, record_every=1000)
    assert not run.s.any()
    assert run.errors[0] == (0, pytest.approx(1.0, abs=1e-6)) and run.errors[-1][0] == 4000
    assert run.errors[-1][1] < 1e-6  # nothing to fit but X*, which it finds
