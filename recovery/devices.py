"""Where a run computes: device names, their descriptions, and what each device can run."""

import os
import shutil

import torch

from utils.errors import InputError

from .cuda_graph import graph_step_unsupported


def resolve_device(name):
    """The ``torch.device`` that ``name`` means: ``auto`` (CUDA if present, else CPU), ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``; InputError for a name that is not one, or absent here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unknown = InputError(f"unknown `device` '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise unknown from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise unknown
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("`device` cuda asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"`device` {name} asked for, but only {torch.cuda.device_count()} GPUs are visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("`device` mps asked for, but MPS is not available here")
    return device


def describe_device(device):
    """A person's name for a ``torch.device``: ``NVIDIA H200``, ``2-core CPU``, ``Apple MPS``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"{os.cpu_count()}-core CPU"


def cpp_compiler():
    """The C++ compiler that torch.compile would build CPU kernels with ($CXX, else g++, c++ or
    clang++ on the PATH), or None."""
    return next((name for name in (os.environ.get("CXX"), "g++", "c++", "clang++") if name and shutil.which(name)), None)


def check_options(options, device, config):
    """InputError unless the StepOptions ``options`` can compute the RecoveryConfig ``config`` on
    the torch.device ``device``."""
    reason = graph_step_unsupported(device, config) if options.step == "graph" else None
    if reason is not None:
        raise InputError(f"`step` graph {reason}")
    if options.compile and device.type not in ("cpu", "cuda"):
        raise InputError(f"`compile` works on cpu and cuda devices, not {device.type}")
    if options.compile and device.type == "cpu" and cpp_compiler() is None:
        raise InputError("`compile` on a CPU needs a C++ compiler (g++, c++ or clang++, or $CXX); none was found")
