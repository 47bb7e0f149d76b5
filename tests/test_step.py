import numpy as np
import pytest
import torch

from recovery import INPUT_NOISE_STD, Recovery, RecoveryConfig
from utils.corruption import corrupt_salt_pepper


def make_recovery(method="ours", l1=False, lr=1.0, lr_c=500.0, seed=0, shape=(64, 64)):
    clean = np.random.default_rng(seed).random((3,) + shape).astype(np.float32)
    noisy = corrupt_salt_pepper(clean, 0.5, seed)
    config = RecoveryConfig(method=method, l1=l1, lr=lr, lr_c=lr_c, width=8, seed=seed)
    return Recovery(config, noisy, "cpu")


def test_initial_state():
    rec = make_recovery()
    assert rec.z.shape == (1, 32, 64, 64)
    assert 0 <= rec.z.min() and rec.z.max() < 0.1 and abs(rec.z.mean().item() - 0.05) < 0.002
    for p in (rec.corruption.g, rec.corruption.h):
        assert p.shape == (1, 3, 64, 64)
        assert abs(p.std().item() - 1e-5) < 0.05e-5


def test_same_seed_same_problem_different_seed_different_problem():
    a, b, c = make_recovery(seed=1), make_recovery(seed=1), make_recovery(seed=2)
    for x, y in zip(a.state_dict()["net"].values(), b.state_dict()["net"].values()):
        assert torch.equal(x, y)
    assert torch.equal(a.z, b.z) and torch.equal(a.corruption.g, b.corruption.g)
    assert not torch.equal(a.z, c.z) and not torch.equal(a.corruption.g, c.corruption.g)
    assert torch.equal(a.step()[0], b.step()[0])


@pytest.mark.parametrize("lr,lr_c", [(1.0, 500.0), (0.5, 20.0)])
def test_one_step_is_plain_sgd(lr, lr_c):
    rec = make_recovery(lr=lr, lr_c=lr_c)
    theta = [p.detach().clone() for p in rec.net.parameters()]
    g, h = rec.corruption.g.detach().clone(), rec.corruption.h.detach().clone()

    # The same forward pass, by hand, with the perturbation the step will draw.
    noise_gen = torch.Generator().manual_seed(0)
    noise_gen.set_state(rec.generator.get_state())
    noise = torch.empty_like(rec.z).normal_(0.0, INPUT_NOISE_STD, generator=noise_gen)
    phi = rec.net(rec.z + noise)
    residual = phi + g * g - h * h - rec.y
    loss = (residual**2).mean()
    grads = torch.autograd.grad(loss, list(rec.net.parameters()))
    for m in rec.net.modules():  # the hand-made pass moved the BatchNorm running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()

    step_loss, step_phi = rec.step()
    assert torch.equal(step_loss, loss.detach())
    assert torch.equal(step_phi, phi.detach())
    for new, old, grad in zip(rec.net.parameters(), theta, grads):
        torch.testing.assert_close(new.detach(), old - lr * grad, rtol=1e-6, atol=1e-9)
    # d(mean r^2)/dg = 4 g r / N and d/dh = -4 h r / N, N = 3 H W: the mean, not the sum.
    n = residual.numel()
    r = residual.detach()
    torch.testing.assert_close(rec.corruption.g.detach(), g - lr_c * 4 * g * r / n, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(rec.corruption.h.detach(), h + lr_c * 4 * h * r / n, rtol=1e-6, atol=1e-12)
    assert not torch.equal(rec.corruption.g.detach(), g)


@pytest.mark.parametrize(
    "method,l1,loss_type",
    [("dip", False, torch.nn.MSELoss), ("dip-l1", False, torch.nn.L1Loss), ("ours", True, torch.nn.L1Loss)],
)
def test_methods(method, l1, loss_type):
    rec = make_recovery(method=method, l1=l1)
    assert isinstance(rec.criterion, loss_type)
    assert (rec.corruption is None) == (method != "ours")
    assert (rec.impulses() is None) == (method != "ours")
    loss, phi = rec.step()
    assert torch.isfinite(loss) and phi.shape == (1, 3, 64, 64)


def test_adam():
    rec = Recovery(RecoveryConfig(alg="adam", width=8), np.zeros((3, 64, 64), np.float32), "cpu")
    assert isinstance(rec.optimizer, torch.optim.Adam) and isinstance(rec.optimizer_c, torch.optim.Adam)
    assert rec.optimizer_c.param_groups[0]["lr"] == 500.0
