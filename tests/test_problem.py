"""recovery.problem: the problem's initial state, and one iteration as the reference computes it."""

import numpy as np
import pytest
import torch

from recovery import Recovery, RecoveryConfig, StepOptions
from recovery.devices import cpp_compiler
from recovery.problem import INPUT_NOISE_STD
from utils.corruption import corrupt_salt_pepper

# torch.compile on a CPU builds C++ kernels.
needs_compiler = pytest.mark.skipif(cpp_compiler() is None, reason="needs a C++ compiler")


def noisy_image(seed=0, shape=(64, 64)):
    clean = np.random.default_rng(seed).random((3,) + shape).astype(np.float32)
    return corrupt_salt_pepper(clean, 0.5, seed)


def make_recovery(device="cpu", options=StepOptions(), **settings):
    config = RecoveryConfig(**{"width": 8, **settings})
    return Recovery(config, noisy_image(settings.get("seed", 0)), device, options)


def parameters(recovery):
    tensors = list(recovery.network.parameters())
    if recovery.corruption is not None:
        tensors += list(recovery.corruption.parameters())
    return [t.detach().float().cpu() for t in tensors]


def test_initial_state(device):
    rec = make_recovery(device)
    z = rec.z.cpu()
    assert z.shape == (1, 32, 64, 64)
    assert 0 <= z.min() and z.max() < 0.1 and abs(z.mean().item() - 0.05) < 0.002
    for p in (rec.corruption.g, rec.corruption.h):
        assert p.shape == (1, 3, 64, 64) and p.device.type == device.type
        assert abs(p.std().item() - 1e-5) < 0.05e-5


@pytest.mark.parametrize("channels", [1, 3])
def test_the_network_g_and_h_have_the_image_channels_and_z_has_32(channels):
    clean = np.random.default_rng(channels).random((channels, 64, 96)).astype(np.float32)
    rec = Recovery(RecoveryConfig(width=8), corrupt_salt_pepper(clean, 0.3, 0), "cpu")
    assert rec.z.shape == (1, 32, 64, 96)
    assert rec.corruption.g.shape == rec.corruption.h.shape == (1, channels, 64, 96)
    loss, phi = rec.step()
    assert phi.shape == (1, channels, 64, 96) and rec.impulses().shape == (channels, 64, 96)
    assert rec.num_parameters == 13_071 - 2 * 9 * (channels == 1)  # width 8: the head's 1x1 convolution
    assert torch.isfinite(loss)


def test_initialisation_is_the_same_on_every_device(device):
    """Drawn on the CPU, then moved: a seed gives one problem wherever it computes."""
    here, cpu = make_recovery(device, seed=3), make_recovery("cpu", seed=3)
    assert torch.equal(here.z.cpu(), cpu.z) and torch.equal(here.corruption.g.cpu(), cpu.corruption.g)
    for a, b in zip(parameters(here), parameters(cpu)):
        assert torch.equal(a, b)


def test_same_seed_same_problem_different_seed_different_problem():
    a, b, c = make_recovery(seed=1), make_recovery(seed=1), make_recovery(seed=2)
    for x, y in zip(a.state_dict()["network"].values(), b.state_dict()["network"].values()):
        assert torch.equal(x, y)
    assert torch.equal(a.z, b.z) and torch.equal(a.corruption.g, b.corruption.g)
    assert not torch.equal(a.z, c.z) and not torch.equal(a.corruption.g, c.corruption.g)
    assert torch.equal(a.step()[0], b.step()[0])


@pytest.mark.parametrize("lr,lr_c", [(1.0, 500.0), (0.5, 20.0)])
def test_one_step_is_plain_sgd(lr, lr_c):
    rec = make_recovery(lr=lr, lr_c=lr_c)
    theta = [p.detach().clone() for p in rec.network.parameters()]
    g, h = rec.corruption.g.detach().clone(), rec.corruption.h.detach().clone()

    # The same forward pass, by hand, with the perturbation the step will draw.
    noise_gen = torch.Generator().manual_seed(0)
    noise_gen.set_state(rec.generator.get_state())
    noise = torch.empty_like(rec.z).normal_(0.0, INPUT_NOISE_STD, generator=noise_gen)
    phi = rec.network(rec.z + noise)
    residual = phi + g * g - h * h - rec.y
    loss = (residual**2).mean()
    grads = torch.autograd.grad(loss, list(rec.network.parameters()))
    for m in rec.network.modules():  # the hand-made pass moved the BatchNorm running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()

    step_loss, step_phi = rec.step()
    assert torch.equal(step_loss, loss.detach())
    assert torch.equal(step_phi, phi.detach())
    for new, old, grad in zip(rec.network.parameters(), theta, grads):
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
def test_methods(device, method, l1, loss_type):
    rec = make_recovery(device, method=method, l1=l1)
    assert isinstance(rec.criterion, loss_type)
    assert (rec.corruption is None) == (method != "ours")
    assert (rec.impulses() is None) == (method != "ours")
    loss, phi = rec.step()
    assert torch.isfinite(loss) and phi.shape == (1, 3, 64, 64)


def test_adam(device):
    rec = make_recovery(device, alg="adam")
    assert isinstance(rec.optimizer, torch.optim.Adam) and isinstance(rec.optimizer_c, torch.optim.Adam)
    assert rec.optimizer_c.param_groups[0]["lr"] == 500.0
    assert torch.isfinite(rec.step()[0])


def test_state_dict_round_trip_continues_the_same_trajectory():
    a = make_recovery(seed=5)
    for _ in range(3):
        a.step()
    b = make_recovery(seed=5)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.step()[0], b.step()[0])
    for x, y in zip(parameters(a), parameters(b)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_descend_on_noise_drawn_into_a_buffer_is_the_eager_step(method):
    """What the CUDA-graph step replays: ``descend`` on a static buffer."""
    eager, static = make_recovery(method=method), make_recovery(method=method)
    buffer = torch.empty_like(static.z)
    for _ in range(3):
        loss_a, phi_a = eager.step()
        loss_b, phi_b = static.descend(static.draw_input_noise(out=buffer))
        assert torch.equal(loss_a, loss_b) and torch.equal(phi_a, phi_b)
    for a, b in zip(parameters(eager), parameters(static)):
        assert torch.equal(a, b)


def assert_close(a, b, tolerance, what):
    """``|a - b| <= tolerance * |b|`` in the 2-norm (exact equality when tolerance is 0)."""
    difference, size = (a - b).norm().item(), b.norm().item()
    assert difference <= tolerance * size, f"{what}: relative difference {difference / size:.2e} > {tolerance:.0e}"


def assert_same_first_step(device, precision, options, tolerance, update_tolerance):
    """The first iteration of ``options`` at ``precision`` against the eager fp32 step: its loss and
    output within ``tolerance``, the update of all parameters within ``update_tolerance``."""
    start = make_recovery(device)
    reference = make_recovery(device, precision="fp32")
    variant = make_recovery(device, options, precision=precision)
    loss_a, phi_a = reference.step()
    loss_b, phi_b = variant.stepper()()
    assert phi_b.dtype == torch.float32
    assert_close(loss_b.cpu(), loss_a.cpu(), tolerance, "loss")
    assert_close(phi_b.cpu(), phi_a.cpu(), tolerance, "output")
    if update_tolerance is not None:
        # The update of all parameters at once: per tensor is ill-posed, since a convolution's bias
        # before BatchNorm has no effect on the output and so a gradient of rounding noise only.
        old = torch.cat([p.flatten() for p in parameters(start)])
        update_a = torch.cat([p.flatten() for p in parameters(reference)]) - old
        update_b = torch.cat([p.flatten() for p in parameters(variant)]) - old
        assert_close(update_b, update_a, update_tolerance, "update")


@pytest.mark.parametrize(
    "precision,options,tolerance,update_tolerance",
    [
        ("fp32", StepOptions(channels_last=True), 1e-5, 1e-3),  # only the summation order differs
        ("tf32", StepOptions(), 0.0, 0.0),  # TF32 is a CUDA matter: nothing changes on the CPU
        # Fused kernels (about a minute to compile on 2 cores): again only the summation order.
        pytest.param("fp32", StepOptions(compile=True), 1e-5, 1e-3, marks=needs_compiler),
        # bfloat16 activations: the first pass agrees to ~1%; the update does not (a convolution
        # bias before BatchNorm gets a rounding-noise gradient), so no bound on it.
        ("bf16", StepOptions(), 1e-2, None),
    ],
    ids=["channels-last", "tf32", "compiled", "bf16"],
)
def test_variants_compute_the_same_step(precision, options, tolerance, update_tolerance):
    assert_same_first_step("cpu", precision, options, tolerance, update_tolerance)
