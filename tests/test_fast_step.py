"""The fast step computes the same iteration as the eager fp32 step.

On the CPU this checks what the CUDA-graph step is built from: ``Recovery.update`` on noise drawn
into a static buffer is the eager step exactly, and channels-last, the compiled network and bf16
give the same loss and updates within float tolerance. The CUDA tests run where a GPU is present.
"""

import numpy as np
import pytest
import torch

from recovery import Recovery, RecoveryConfig, StepOptions, cpp_compiler, prepare_observation
from utils.corruption import corrupt_salt_pepper
from utils.errors import InputError
from utils.metrics import psnr

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
# torch.compile on a CPU builds C++ kernels.
needs_compiler = pytest.mark.skipif(cpp_compiler() is None, reason="needs a C++ compiler")


def problem(seed=0, size=64):
    clean = np.random.default_rng(seed).random((3, size, size)).astype(np.float32)
    return clean, corrupt_salt_pepper(clean, 0.5, seed)


def parameters(recovery):
    tensors = list(recovery.net.parameters())
    if recovery.corruption is not None:
        tensors += list(recovery.corruption.parameters())
    return [t.detach().float().cpu() for t in tensors]


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_update_on_static_noise_is_the_eager_step(method):
    _, noisy = problem()
    eager = Recovery(RecoveryConfig(width=8, method=method), noisy, "cpu")
    static = Recovery(RecoveryConfig(width=8, method=method), noisy, "cpu")
    buffer = torch.empty_like(static.z)
    for _ in range(3):
        loss_a, phi_a = eager.step()
        loss_b, phi_b = static.update(static.draw_input_noise(out=buffer))
        assert torch.equal(loss_a, loss_b) and torch.equal(phi_a, phi_b)
    for a, b in zip(parameters(eager), parameters(static)):
        assert torch.equal(a, b)


def assert_close(a, b, tolerance, what):
    """``|a - b| <= tolerance * |b|`` in the 2-norm (exact equality when tolerance is 0)."""
    difference, size = (a - b).norm().item(), b.norm().item()
    assert difference <= tolerance * size, f"{what}: relative difference {difference / size:.2e} > {tolerance:.0e}"


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


@needs_cuda
@pytest.mark.parametrize(
    "options",
    [StepOptions(step="graph", channels_last=True), StepOptions(step="graph", channels_last=True, compile=True)],
    ids=["graph-channels-last", "graph-channels-last-compiled"],
)
def test_cuda_graph_variants_compute_the_same_step(options):
    # Looser than on the CPU: other kernels (and atomics in the padding's backward) on a GPU. A
    # wrong step (noise not drawn, or drawn twice) differs by 0.2 in the output, 1.5 in the update.
    assert_same_first_step("cuda", "fp32", options, 1e-4, 1e-2)


def assert_same_first_step(device, precision, options, tolerance, update_tolerance):
    """The first iteration of ``options`` at ``precision`` against the eager fp32 step: its loss and
    output within ``tolerance``, the update of all parameters within ``update_tolerance``."""
    _, noisy = problem()
    start = Recovery(RecoveryConfig(width=8), noisy, device)
    reference = Recovery(RecoveryConfig(width=8, precision="fp32"), noisy, device)
    variant = Recovery(RecoveryConfig(width=8, precision=precision), noisy, device, options)
    loss_a, phi_a = reference.step()
    loss_b, phi_b = variant.iteration()()
    assert phi_b.dtype == torch.float32
    assert_close(loss_b, loss_a, tolerance, "loss")
    assert_close(phi_b, phi_a, tolerance, "output")
    if update_tolerance is not None:
        # The update of all parameters at once: per tensor is ill-posed, since a convolution's bias
        # before BatchNorm has no effect on the output and so a gradient of rounding noise only.
        old = torch.cat([p.flatten() for p in parameters(start)])
        update_a = torch.cat([p.flatten() for p in parameters(reference)]) - old
        update_b = torch.cat([p.flatten() for p in parameters(variant)]) - old
        assert_close(update_b, update_a, update_tolerance, "update")


@pytest.mark.parametrize(
    "options,device,message",
    [
        (StepOptions(step="graph"), "cpu", "--step graph needs a CUDA device"),
        (StepOptions(compile=True), "mps", "--compile works on cpu and cuda devices"),
        (StepOptions(step="fused"), "cpu", "step must be one of eager, graph"),
        (StepOptions(threads=0), "cpu", "--threads must be at least 1"),
    ],
)
def test_options_a_device_cannot_run_are_refused(options, device, message):
    with pytest.raises(InputError, match=message):
        options.check(torch.device(device), RecoveryConfig())


def test_compiling_on_a_cpu_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(InputError, match="needs a C\\+\\+ compiler"):
        StepOptions(compile=True).check(torch.device("cpu"), RecoveryConfig())


@pytest.mark.parametrize(
    "device,options",
    [
        ("cpu", StepOptions(channels_last=True)),
        pytest.param("cuda", StepOptions(step="graph"), marks=needs_cuda),
        pytest.param("cuda", StepOptions(step="graph", channels_last=True, compile=True), marks=needs_cuda),
    ],
    ids=["cpu-channels-last", "cuda-graph", "cuda-graph-channels-last-compiled"],
)
def test_fast_trajectory_follows_eager(device, options):
    """A smoke test of whole runs (the 0.2 dB bar is measured over 20,000 iterations at full size,
    docs/speed.md): a graph replaying stale weights would stay flat, about 5 dB away at the end.
    Rounding alone moved this tiny problem's channels-last trajectory by up to 0.35 dB (CPU)."""
    observation = prepare_observation(RecoveryConfig(image="astronaut", resize=64, seed=0))
    runs = []
    for variant in (StepOptions(), options):
        recovery = Recovery(RecoveryConfig(width=8, precision="fp32"), observation.noisy, device, variant)
        iterate = recovery.iteration()
        runs.append([psnr(observation.clean, iterate()[1][0].cpu().numpy()) for _ in range(200)][::25])
    eager, fast = runs
    assert eager[-1] > eager[0] + 4  # far from flat: 9.8 to 15.3 dB on the CPU
    assert max(abs(a - b) for a, b in zip(eager, fast)) < 1.0


@needs_cuda
def test_cuda_graph_step_leaves_no_trace_of_its_warmup():
    from graph_step import CudaGraphStep

    _, noisy = problem()
    recovery = Recovery(RecoveryConfig(width=8), noisy, "cuda")
    modules = (recovery.net, recovery.corruption)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]  # BatchNorm statistics too
    CudaGraphStep(recovery)
    for module, state in zip(modules, before):
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[key]), key
