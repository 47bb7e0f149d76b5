"""recovery.cuda_graph: the iteration replayed as a CUDA graph computes the eager iteration.

On the CPU, tests/test_problem.py checks what the graph is built from (``descend`` on a static
noise buffer is the eager step exactly); the CUDA tests here run where a GPU is present.
"""

import pytest
import torch

from recovery import Recovery, RecoveryConfig, StepOptions, prepare_observation
from recovery.cuda_graph import CudaGraphStep
from test_problem import assert_same_first_step, make_recovery
from utils.metrics import psnr

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


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
        step = recovery.stepper()
        runs.append([psnr(observation.clean, step()[1][0].cpu().numpy()) for _ in range(200)][::25])
    eager, fast = runs
    assert eager[-1] > eager[0] + 4  # far from flat: 9.8 to 15.3 dB on the CPU
    assert max(abs(a - b) for a, b in zip(eager, fast)) < 1.0


@needs_cuda
def test_cuda_graph_step_leaves_no_trace_of_its_warmup():
    recovery = make_recovery("cuda")
    modules = (recovery.network, recovery.corruption)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]  # BatchNorm statistics too
    CudaGraphStep(recovery)
    for module, state in zip(modules, before):
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[key]), key


def test_the_graph_step_refuses_what_it_cannot_capture():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        CudaGraphStep(make_recovery("cpu"))
