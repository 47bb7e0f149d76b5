"""recovery.devices: device names, what each device can run, and a device out of memory as one
line. What no machine here has (a GPU, its driver, MPS's allocator) is given as the facts the
decisions read: a GpuFacts, an error's message."""

import dataclasses
import sysconfig

import pytest
import torch

from recovery import RecoveryConfig, StepOptions, resolve_device
from recovery.devices import (capability_refusal, check_gpu_flag, check_options, describe_device,
                              out_of_memory_as_failure)
from recovery.nvidia import GpuFacts
from test_nvidia import CU126_PIP, PYPI
from utils.errors import InputError, RunFailure


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


@pytest.mark.parametrize("precision,compile_network,capability,refused", [
    ("bf16", False, (7, 5), "`precision` bf16 needs a GPU of compute capability 8.0 or later (bfloat16 "
                            "convolutions), this one is 7.5: use tf32"),  # a T4: cuDNN falls back without a word
    ("bf16", False, (8, 0), None),
    ("tf32", False, (7, 5), None),
    ("tf32", True, (6, 1), "`compile` on CUDA needs a GPU of compute capability 7.0 or later (Triton), this one is "
                           "6.1"),
    ("tf32", True, (7, 0), None),
    ("bf16", True, (6, 0), "`precision` bf16 needs a GPU of compute capability 8.0 or later (bfloat16 "
                           "convolutions), this one is 6.0: use tf32"),
])
def test_what_a_gpus_capability_cannot_run_is_refused(precision, compile_network, capability, refused):
    config, options = RecoveryConfig(precision=precision), StepOptions(compile=compile_network)
    assert capability_refusal(options, config, capability) == refused


def test_compiling_on_a_cpu_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(InputError, match="needs a C\\+\\+ compiler"):
        check_options(StepOptions(compile=True), torch.device("cpu"), RecoveryConfig())


def on_path(tmp_path, monkeypatch, *names):
    """A PATH of just the executables ``names`` (empty scripts): compilers as a machine has them."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)


@pytest.mark.parametrize("compilers,cc,refused", [
    ((), None, True),
    (("g++",), None, True),  # a C++ compiler is not the C compiler Triton calls
    (("gcc",), None, False),
    (("clang",), None, False),
    (("gcc",), "icx", True),  # Triton calls $CC, which is not there
    (("icx",), "icx", False),
])
def test_compiling_on_cuda_needs_the_c_compiler_triton_calls(tmp_path, monkeypatch, compilers, cc, refused):
    on_path(tmp_path, monkeypatch, *compilers)
    if cc is not None:
        monkeypatch.setenv("CC", cc)
    check = lambda: check_options(StepOptions(compile=True), torch.device("cuda"), RecoveryConfig())  # noqa: E731
    if refused:
        with pytest.raises(InputError) as caught:
            check()
        assert caught.value.for_command_line().startswith("--compile on CUDA needs a C compiler for Triton's")
    else:
        check()


@pytest.mark.parametrize("device,compiler", [("cpu", "g++"), ("cuda", "gcc")])
def test_compiling_without_python_headers_is_refused(tmp_path, monkeypatch, device, compiler):
    on_path(tmp_path, monkeypatch, compiler)
    headers = tmp_path / "include"
    headers.mkdir()  # a Python installed without its development files
    monkeypatch.setattr(sysconfig, "get_paths", lambda *args, **kwargs: {"include": str(headers)})
    with pytest.raises(InputError) as caught:
        check_options(StepOptions(compile=True), torch.device(device), RecoveryConfig())
    assert caught.value.for_command_line().startswith(f"--compile needs Python's C headers, and {headers} has no "
                                                      "Python.h: install this Python's development files")
    (headers / "Python.h").write_text("")
    check_options(StepOptions(compile=True), torch.device(device), RecoveryConfig())


V100 = dataclasses.replace(PYPI, available=True, driver="580.65.06", gpus=(("Tesla V100-SXM2-16GB", (7, 0)),))
OLD_DRIVER = dataclasses.replace(PYPI, driver="550.54.15", gpus=(("NVIDIA A100-SXM4-80GB", (8, 0)),))


@pytest.mark.parametrize("name,facts,expected", [
    ("auto", PYPI, "cpu"),  # no GPU here: the CPU it is
    ("auto", dataclasses.replace(PYPI, available=True, gpus=(("NVIDIA H200", (9, 0)),)), "cuda"),
    # CUDA_VISIBLE_DEVICES hides the GPUs (an empty one, to compute on the CPU): its choice is kept.
    ("auto", dataclasses.replace(OLD_DRIVER, driver="580.65.06", visible=""), "cpu"),
    ("cuda:0", dataclasses.replace(PYPI, available=True, gpus=(("NVIDIA H200", (9, 0)),)), "cuda:0"),
])
def test_devices_resolve_on_the_facts_of_the_machine(name, facts, expected):
    assert resolve_device(name, facts) == torch.device(expected)


@pytest.mark.parametrize("name,facts,message", [
    ("auto", V100, "--device auto found GPU 0, Tesla V100-SXM2-16GB with NVIDIA driver 580.65.06, but PyTorch "
     "2.14.1+cu130 (CUDA 13.0) has no kernels for compute capability 7.0 (it has sm_75 sm_80 sm_86 sm_90 sm_100 "
     f"sm_120); install the same PyTorch built for CUDA 12.6: {CU126_PIP}; --device cpu computes on the CPU instead"),
    ("auto", OLD_DRIVER, "--device auto found NVIDIA A100-SXM4-80GB with NVIDIA driver 550.54.15, but PyTorch "
     "2.14.1+cu130 (CUDA 13.0) needs driver 580 or later; update the driver to 580 or later, or install the same "
     f"PyTorch built for CUDA 12.6: {CU126_PIP}; --device cpu computes on the CPU instead"),
    ("cuda", V100, "--device cuda asked for: found GPU 0, Tesla V100-SXM2-16GB with NVIDIA driver 580.65.06, but "),
    ("cuda", OLD_DRIVER, "--device cuda asked for, but CUDA is not available here: found NVIDIA A100-SXM4-80GB with "
     "NVIDIA driver 550.54.15, but PyTorch 2.14.1+cu130 (CUDA 13.0) needs driver 580 or later; update the driver"),
    ("cuda", PYPI, "--device cuda asked for, but CUDA is not available here: no NVIDIA driver is loaded (no "
     "/proc/driver/nvidia/version, no answer from nvidia-smi)"),
])
def test_a_gpu_that_cannot_compute_is_refused_not_replaced_by_the_cpu(name, facts, message):
    with pytest.raises(InputError) as caught:
        resolve_device(name, facts)
    line = caught.value.for_command_line()
    assert line.startswith(message) and "\n" not in line


CUDA_OOM = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.02 "
            "GiB is free. Including non-PyTorch memory, this process has 78.16 GiB memory in use.")
MPS_OOM = ("MPS backend out of memory (MPS allocated: 17.75 GB, other allocations: 1.69 GB, max allowed: 18.13 GB). "
           "Tried to allocate 256.00 MB on private pool. Use PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to disable upper "
           "limit for memory allocations (may cause system failure).")


@pytest.mark.parametrize("device,error,line", [
    ("cuda:1", torch.OutOfMemoryError(CUDA_OOM),
     "cuda:1 ran out of memory (tried to allocate 2.00 GiB on a GPU of 79.19 GiB); use --resize or a smaller --width"),
    # MPS's allocator raises a plain RuntimeError.
    ("mps", RuntimeError(MPS_OOM),
     "mps ran out of memory (tried to allocate 256.00 MB); use --resize or a smaller --width"),
    ("cuda", RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
     "cuda ran out of memory (out of memory); use --resize or a smaller --width"),
])
def test_every_out_of_memory_is_one_line(device, error, line):
    with pytest.raises(RunFailure) as caught:
        with out_of_memory_as_failure(torch.device(device)):
            raise error
    assert caught.value.for_command_line() == line


def test_the_cpus_own_out_of_memory_is_one_line():
    with pytest.raises(RunFailure) as caught:
        with out_of_memory_as_failure(torch.device("cpu")):
            torch.empty(2**50, dtype=torch.uint8)  # a pebibyte: refused by the allocator at once
    assert caught.value.for_command_line() == ("cpu ran out of memory (tried to allocate 1048576.00 GiB); use --resize "
                                               "or a smaller --width")


@pytest.mark.parametrize("error", [RuntimeError("Expected all tensors to be on the same device"), ValueError("memory"),
                                   RunFailure("cuda ran out of memory (out of memory)")])
def test_other_errors_pass_through(error):
    with pytest.raises(type(error)) as caught:
        with out_of_memory_as_failure(torch.device("cuda")):
            raise error
    assert caught.value is error


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_gpu_is_refused_where_cuda_sees_none_of_them(device):
    hidden = GpuFacts(available=False, driver="580.65.06", gpus=(("NVIDIA L4", (8, 9)),), arch_list=("sm_89",),
                      torch_version="2.14.1+cu130", torch_cuda="13.0", visible="3")
    with pytest.raises(InputError) as caught:
        check_gpu_flag("3", device, hidden)
    assert caught.value.for_command_line() == (
        "--gpu 3 asks for a GPU, but CUDA is not available here: found NVIDIA L4 with NVIDIA driver 580.65.06, but CUDA "
        "sees none with CUDA_VISIBLE_DEVICES=3 (nvidia-smi lists 1, numbered from 0); leave --gpu out to run on the CPU")
    check_gpu_flag("0", device, GpuFacts(available=True, driver="580.65.06", gpus=(("NVIDIA L4", (8, 9)),),
                                         arch_list=("sm_89",), torch_version="2.14.1+cu130", torch_cuda="13.0"))
