"""recovery.devices: device names, and what each device can run."""

import pytest
import torch

from recovery import RecoveryConfig, StepOptions, resolve_device
from recovery.devices import check_options, describe_device
from utils.errors import InputError


@pytest.mark.parametrize("name,message", [
    ("gpu", "unknown device 'gpu' (use auto, cpu, cuda, cuda:N or mps)"),
    ("meta", "unknown device 'meta' (use auto, cpu, cuda, cuda:N or mps)"),
    pytest.param("cuda", "device cuda asked for, but CUDA is not available here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here")),
    pytest.param("cuda:99", "device cuda:99 asked for, but only",
                 marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
])
def test_a_device_that_is_not_here_is_named(name, message):
    with pytest.raises(InputError) as caught:
        resolve_device(name)
    assert str(caught.value).startswith(message)


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert describe_device(torch.device("cpu")).endswith("-core CPU")


@pytest.mark.parametrize(
    "options,device,message",
    [
        (StepOptions(step="graph"), "cpu", "--step graph needs a CUDA device, not cpu"),
        (StepOptions(compile=True), "mps", "--compile works on cpu and cuda devices, not mps"),
    ],
)
def test_options_a_device_cannot_run_are_refused(options, device, message):
    with pytest.raises(InputError) as caught:
        check_options(options, torch.device(device), RecoveryConfig())
    assert caught.value.for_command_line() == message


def test_the_graph_step_needs_sgd():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: off CUDA the device is named first")
    with pytest.raises(InputError, match="supports alg sgd only"):
        check_options(StepOptions(step="graph"), torch.device("cuda"), RecoveryConfig(alg="adam"))


def test_compiling_on_a_cpu_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(InputError, match="needs a C\\+\\+ compiler"):
        check_options(StepOptions(compile=True), torch.device("cpu"), RecoveryConfig())
