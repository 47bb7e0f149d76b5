"""recovery.nvidia: a GPU that is there but cannot compute with this PyTorch is named, with its
driver, the PyTorch build and what to install. No such GPU is here: the decision is driven by the
facts of the machines it is meant for (driver version text, nvidia-smi's lines, capabilities,
the build's kernels)."""

import dataclasses

import pytest
import torch

from recovery.nvidia import (
    HIDDEN, NO_GPU, UNUSABLE, USABLE, GpuFacts, judge_gpu, parse_driver_version, parse_nvidia_smi, read_gpu_facts,
    release_capabilities, runs_kernels_of)

# torch 2.14.1 from PyPI, as torch.cuda records its release builds for x86_64.
CU130 = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
RELEASES = {"12.6": (50, 60, 70, 75, 80, 86, 90), "13.0": (75, 80, 86, 90, 100, 120),
            "13.2": (75, 80, 86, 90, 100, 120), "13.4": (75, 80, 86, 90, 100, 120)}
PYPI = GpuFacts(available=False, driver=None, gpus=(), arch_list=CU130, torch_version="2.14.1+cu130",
                torch_cuda="13.0", torchvision_version="0.29.1", releases=RELEASES)
CU126_PIP = "pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu126"
# torch 2.11.0 from PyPI (the GPU machine's), as it is on a machine whose driver is too old: its
# release table has one host (read in the wheel), and its arch list is empty while CUDA is unavailable.
TORCH_2_11_TABLE = {"12.6": {80, 50, 70, 86, 90, 60}, "12.8": {80, 100, 70, 86, 120, 90},
                    "13.0": {80, 100, 86, 120, 90, 75, 110}}
TORCH_2_11 = GpuFacts(available=False, driver=None, gpus=(), arch_list=(), torch_version="2.11.0+cu130",
                      torch_cuda="13.0", torchvision_version="0.26.0",
                      releases=release_capabilities(TORCH_2_11_TABLE, "x86_64"))


def facts(**changes):
    return dataclasses.replace(PYPI, **changes)


@pytest.mark.parametrize("capability,arch_list,runs", [
    ((9, 0), CU130, True),
    ((8, 9), CU130, True),  # RTX 4090: sm_86 cubins run on 8.9
    ((12, 1), CU130, True),  # sm_120 cubins on 12.1
    ((7, 0), CU130, False),  # V100
    ((6, 0), CU130, False),  # P100
    ((11, 0), CU130, False),  # no 11.x cubin
    ((9, 0), ("sm_90a",), True),
    ((10, 0), ("sm_90a",), False),  # arch-specific code runs on its own capability only
    ((10, 0), ("compute_90",), True),  # PTX is compiled for any later capability
    ((8, 6), ("compute_90",), False),
])
def test_which_gpus_run_which_kernels(capability, arch_list, runs):
    assert runs_kernels_of(capability, arch_list) is runs


@pytest.mark.parametrize("text,version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
     "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n", "550.54.15"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
     "(dvs-builder@U16-I3-B13-4-1)  Sun Jul 27 07:09:48 UTC 2025\n", "580.65.06"),
    ("NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104  Sat Aug 19 01:04:31 UTC 2023\n", "535.104"),
    ("something else\n", None),
])
def test_the_driver_version_is_read_from_the_kernel_modules_text(text, version):
    assert parse_driver_version(text) == version


def test_nvidia_smi_lines_give_gpus_capabilities_and_driver():
    text = "Tesla V100-SXM2-16GB, 550.54.15, 7.0\nNVIDIA H100 80GB HBM3, 550.54.15, [N/A]\n\n"
    assert parse_nvidia_smi(text) == ((("Tesla V100-SXM2-16GB", (7, 0)), ("NVIDIA H100 80GB HBM3", None)),
                                      "550.54.15")
    # An nvidia-smi too old for the compute_cap field is asked for name and driver only.
    assert parse_nvidia_smi("Tesla P100-PCIE-16GB, 470.82.01\n") == ((("Tesla P100-PCIE-16GB", None),), "470.82.01")
    assert parse_nvidia_smi("") == ((), None)


def test_a_machine_without_a_driver_has_no_gpu():
    verdict, reason = judge_gpu(PYPI)
    assert verdict == NO_GPU and reason.startswith("no NVIDIA driver is loaded")


def test_a_gpu_with_kernels_is_usable():
    h100 = facts(available=True, driver="580.65.06", gpus=(("NVIDIA H100 80GB HBM3", (9, 0)),))
    assert judge_gpu(h100) == (USABLE, None)


def test_a_gpu_without_kernels_is_named_with_the_build_to_install():
    # A V100 on a driver new enough for CUDA 13: CUDA starts, but the build has no sm_70 code.
    verdict, reason = judge_gpu(facts(available=True, driver="580.65.06", gpus=(("Tesla V100-SXM2-16GB", (7, 0)),)))
    assert verdict == UNUSABLE
    assert reason == ("found GPU 0, Tesla V100-SXM2-16GB with NVIDIA driver 580.65.06, but PyTorch 2.14.1+cu130 "
                      "(CUDA 13.0) has no kernels for compute capability 7.0 (it has sm_75 sm_80 sm_86 sm_90 sm_100 "
                      f"sm_120); install the same PyTorch built for CUDA 12.6: {CU126_PIP}")


@pytest.mark.parametrize("driver,gpus,expected", [
    # An A100 on a driver for CUDA 12: a newer driver, or the CUDA 12.6 build.
    ("550.54.15", (("NVIDIA A100-SXM4-80GB", (8, 0)),),
     "found NVIDIA A100-SXM4-80GB with NVIDIA driver 550.54.15, but PyTorch 2.14.1+cu130 (CUDA 13.0) needs driver "
     f"580 or later; update the driver to 580 or later, or install the same PyTorch built for CUDA 12.6: {CU126_PIP}"),
    # A P100 on such a driver: only the CUDA 12.6 build has its kernels, and runs on that driver.
    ("535.104.05", (("Tesla P100-PCIE-16GB", (6, 0)),),
     "found Tesla P100-PCIE-16GB with NVIDIA driver 535.104.05, but PyTorch 2.14.1+cu130 (CUDA 13.0) needs driver "
     "580 or later and PyTorch 2.14.1+cu130 (CUDA 13.0) has no kernels for compute capability 6.0 (it has sm_75 "
     f"sm_80 sm_86 sm_90 sm_100 sm_120); install the same PyTorch built for CUDA 12.6: {CU126_PIP}"),
    # A driver older than any build's: the driver must change.
    ("470.82.01", (("NVIDIA GeForce RTX 3090", None),),
     "found NVIDIA GeForce RTX 3090 with NVIDIA driver 470.82.01, but PyTorch 2.14.1+cu130 (CUDA 13.0) needs driver "
     "580 or later; update the driver to 580 or later, or install a PyTorch build for this GPU and driver "
     "(https://pytorch.org/get-started/locally/)"),
])
def test_an_old_driver_is_named_with_what_to_install(driver, gpus, expected):
    assert judge_gpu(facts(driver=driver, gpus=gpus)) == (UNUSABLE, expected)


@pytest.mark.parametrize("table,machine,expected", [
    (TORCH_2_11_TABLE, "x86_64", {"12.6": (50, 60, 70, 80, 86, 90), "12.8": (70, 80, 86, 90, 100, 120),
                                  "13.0": (75, 80, 86, 90, 100, 110, 120)}),
    (TORCH_2_11_TABLE, "aarch64", {"12.6": (), "12.8": (), "13.0": ()}),  # a table of one host is x86_64's
    ({"13.0": {"x86_64": {90, 75}, "aarch64": {90, 100}}}, "x86_64", {"13.0": (75, 90)}),  # torch 2.14's shape
    ({"13.0": {"x86_64": {90, 75}, "aarch64": {90, 100}}}, "arm64", {"13.0": (90, 100)}),
    ({}, "x86_64", {}),  # a torch without the table
], ids=["2.11 x86_64", "2.11 aarch64", "2.14 x86_64", "2.14 arm64", "none"])
def test_the_release_table_is_read_in_either_shape(table, machine, expected):
    assert release_capabilities(table, machine) == expected


def test_the_installed_torchs_release_table_is_read():
    releases = read_gpu_facts().releases  # the mirror of the GPU machine runs this on torch 2.11
    assert releases and all(isinstance(code, int) for codes in releases.values() for code in codes)
    if torch.version.cuda in releases:
        assert releases[torch.version.cuda]


@pytest.mark.parametrize("driver,gpus,expected", [
    # An A100 on a driver for CUDA 12: torch 2.11 lists no kernels, yet the driver is the one to change.
    ("550.54.15", (("NVIDIA A100-SXM4-80GB", (8, 0)),),
     "found NVIDIA A100-SXM4-80GB with NVIDIA driver 550.54.15, but PyTorch 2.11.0+cu130 (CUDA 13.0) needs driver "
     "580 or later; update the driver to 580 or later, or install the same PyTorch built for CUDA 12.8: pip install "
     "torch==2.11.0 torchvision==0.26.0 --index-url https://download.pytorch.org/whl/cu128"),
    # A V100 there: the release build for CUDA 13.0 has no sm_70, so only another build helps.
    ("550.54.15", (("Tesla V100-SXM2-16GB", (7, 0)),),
     "found Tesla V100-SXM2-16GB with NVIDIA driver 550.54.15, but PyTorch 2.11.0+cu130 (CUDA 13.0) needs driver "
     "580 or later and PyTorch 2.11.0+cu130 (CUDA 13.0) has no kernels for compute capability 7.0 (it has sm_75 "
     "sm_80 sm_86 sm_90 sm_100 sm_110 sm_120); install the same PyTorch built for CUDA 12.8: pip install "
     "torch==2.11.0 torchvision==0.26.0 --index-url https://download.pytorch.org/whl/cu128"),
])
def test_an_old_driver_under_torch_2_11_is_told_to_update(driver, gpus, expected):
    assert judge_gpu(dataclasses.replace(TORCH_2_11, driver=driver, gpus=gpus)) == (UNUSABLE, expected)


def test_a_cpu_only_build_on_a_gpu_machine_is_refused():
    verdict, reason = judge_gpu(facts(driver="580.65.06", gpus=(("NVIDIA L4", (8, 9)),), torch_version="2.14.1+cpu",
                                      torch_cuda=None, arch_list=()))
    assert verdict == UNUSABLE
    assert reason.startswith("found NVIDIA L4 with NVIDIA driver 580.65.06, but PyTorch 2.14.1+cpu (a CPU-only build) "
                             "cannot use it; install the same PyTorch built for CUDA 13.4: pip install torch==2.14.1 ")


def test_gpus_hidden_by_cuda_visible_devices_are_told_apart():
    verdict, reason = judge_gpu(facts(driver="580.65.06", gpus=(("NVIDIA L4", (8, 9)),), visible="1"))
    assert verdict == HIDDEN
    assert reason == ("found NVIDIA L4 with NVIDIA driver 580.65.06, but CUDA sees none with CUDA_VISIBLE_DEVICES=1 "
                      "(nvidia-smi lists 1, numbered from 0)")


def test_cuda_failing_to_start_gives_its_reason():
    verdict, reason = judge_gpu(facts(driver="580.65.06", init_error="CUDA initialization: CUDA driver initialization "
                                      "failed, you might not have a CUDA gpu."))
    assert verdict == UNUSABLE
    assert reason.startswith("found an NVIDIA GPU with NVIDIA driver 580.65.06, but CUDA could not use it with "
                             "PyTorch 2.14.1+cu130 (CUDA 13.0): CUDA initialization: CUDA driver")


def test_this_machine_is_judged_as_it_is():
    here = read_gpu_facts()
    assert here.available is torch.cuda.is_available() and here.torch_cuda == torch.version.cuda
    assert here.arch_list == tuple(torch.cuda.get_arch_list())
    verdict, _ = judge_gpu(here)
    if here.driver is None:
        assert verdict == (USABLE if here.available else NO_GPU)
