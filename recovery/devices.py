"""Where a run computes: device names, their descriptions, what each device can run, and a device
that runs out of memory as one line."""

import contextlib
import os
import re
import shutil
import sys
import sysconfig

import torch

from utils.errors import InputError, RunFailure

from .cuda_graph import graph_step_unsupported
from .nvidia import UNUSABLE, USABLE, judge_gpu, read_gpu_facts

# The least compute capability of what a GPU runs: cuDNN's bfloat16 convolutions (before it, PyTorch
# falls back to slow generic kernels without a word) and Triton, which torch.compile builds with.
BF16_MIN_CAPABILITY = (8, 0)
COMPILE_MIN_CAPABILITY = (7, 0)
GPU_DEVICES = ("auto", "cuda")  # the `device` values that denoising.py's --gpu choice of GPU agrees with

# What the out-of-memory errors that are not torch.OutOfMemoryError say, all plain RuntimeErrors:
# MPS's allocator; CUDA's own error for allocations outside PyTorch's caching allocator (cuBLAS and
# cuDNN handles and workspaces, a context); the CPU's allocator refusing one large allocation.
OUT_OF_MEMORY_MARKERS = ("MPS backend out of memory", "CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED",
                         "CUDNN_STATUS_ALLOC_FAILED", "DefaultCPUAllocator: can't allocate memory")


def resolve_device(name, facts=None):
    """The ``torch.device`` that ``name`` means: ``auto`` (CUDA if present, else CPU), ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``; InputError for a name that is not one, or absent here.

    ``auto`` and ``cuda`` refuse a GPU that is there but cannot compute with this PyTorch (an old
    driver, no kernels for its compute capability), naming it and what to install, rather than
    fall back to the CPU for hours; ``auto`` takes the CPU where there is no GPU or
    CUDA_VISIBLE_DEVICES hides them all (``recovery.nvidia``). ``facts`` (a ``GpuFacts``) stands
    for this machine's, read when needed.
    """
    if name == "auto":
        verdict, reason = judge_gpu(read_gpu_facts() if facts is None else facts)
        if verdict == UNUSABLE:
            raise InputError(f"`device` auto {reason}; `device` cpu computes on the CPU instead")
        return torch.device("cuda" if verdict == USABLE else "cpu")
    unknown = InputError(f"unknown `device` '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise unknown from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise unknown
    if device.type == "cuda":
        if device.index is not None and torch.cuda.is_available() and device.index >= torch.cuda.device_count():
            raise InputError(f"`device` {name} asked for, but only {torch.cuda.device_count()} GPUs are visible")
        refuse_unusable_gpu(f"`device` {name} asked for", read_gpu_facts(device.index) if facts is None else facts)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("`device` mps asked for, but MPS is not available here")
    return device


def refuse_unusable_gpu(request, facts, remedy=""):
    """InputError ``<request>, but CUDA is not available here: <why><remedy>`` (``<request>:
    <why><remedy>`` for a GPU that CUDA sees but cannot compute on) unless a GPU of ``facts`` (a
    ``GpuFacts``) is usable."""
    verdict, reason = judge_gpu(facts)
    if verdict != USABLE:
        joint = ": " if facts.available else ", but CUDA is not available here: "
        raise InputError(f"{request}{joint}{reason}{remedy}")


def check_gpu_flag(gpu, device, facts=None):
    """InputError unless ``--gpu`` ``gpu`` (already set as CUDA_VISIBLE_DEVICES) can be honoured
    with ``--device`` ``device``: a device that names another (``cuda:1``: the second of the GPUs
    that --gpu leaves visible, ``cpu``) contradicts it, and a GPU that is not there or cannot
    compute is refused rather than the run quietly taking the CPU for hours. ``facts`` (a
    ``GpuFacts``) stands for this machine's."""
    if device not in GPU_DEVICES:
        raise InputError(f"`gpu` {gpu} makes GPU {gpu} the only one CUDA sees, as cuda; it contradicts `device` "
                         f"{device}: give `gpu` with `device` auto or cuda, or `device` alone")
    refuse_unusable_gpu(f"`gpu` {gpu} asks for a GPU", read_gpu_facts() if facts is None else facts,
                        "; leave `gpu` out to run on the CPU")


def synchronize(device):
    """Wait for the work queued on ``device`` (a torch.device; the CPU's is done already)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def describe_device(device):
    """A person's name for a ``torch.device``: ``NVIDIA H200``, ``2-core CPU``, ``Apple MPS``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"{os.cpu_count()}-core CPU"


def cpp_compiler():
    """The C++ compiler that torch.compile builds CPU kernels with, as Inductor chooses it ($CXX,
    else g++; clang++ on macOS), if it is on the PATH; else None."""
    name = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
    return name if shutil.which(name) else None


def c_compiler():
    """The C compiler that Triton builds its kernel launcher with for a compiled network on CUDA,
    as Triton chooses it ($CC, else gcc, else clang), if it is on the PATH; else None."""
    names = [os.environ["CC"]] if "CC" in os.environ else ["gcc", "clang"]
    return next((name for name in names if shutil.which(name)), None)


def python_headers_folder():
    """Where this Python's C headers belong (Python.h), which both torch.compile's C++ kernels
    (CPU) and Triton's launcher (CUDA) include. The scheme is Triton's: Debian's ``posix_local``
    has no headers, its ``posix_prefix`` does."""
    scheme = sysconfig.get_default_scheme()
    return sysconfig.get_paths(scheme="posix_prefix" if scheme == "posix_local" else scheme)["include"]


def capability_refusal(options, config, capability):
    """Why a GPU of compute capability ``capability`` ``(major, minor)`` cannot compute
    ``config`` (a RecoveryConfig) with ``options`` (StepOptions) as asked, or None.

    >>> from recovery.settings import RecoveryConfig, StepOptions
    >>> print(capability_refusal(StepOptions(), RecoveryConfig(precision="bf16"), (7, 5)))
    `precision` bf16 needs a GPU of compute capability 8.0 or later (bfloat16 convolutions), this one is 7.5: ...
    >>> print(capability_refusal(StepOptions(compile=True), RecoveryConfig(), (9, 0)))
    None
    """
    found = f"this one is {capability[0]}.{capability[1]}"
    if config.precision == "bf16" and tuple(capability) < BF16_MIN_CAPABILITY:
        return (f"`precision` bf16 needs a GPU of compute capability {BF16_MIN_CAPABILITY[0]}.{BF16_MIN_CAPABILITY[1]} "
                f"or later (bfloat16 convolutions), {found}: use tf32")
    if options.compile and tuple(capability) < COMPILE_MIN_CAPABILITY:
        return (f"`compile` on CUDA needs a GPU of compute capability {COMPILE_MIN_CAPABILITY[0]}."
                f"{COMPILE_MIN_CAPABILITY[1]} or later (Triton), {found}")
    return None


def check_options(options, device, config):
    """InputError unless the StepOptions ``options`` can compute the RecoveryConfig ``config`` on
    the torch.device ``device``: checked before anything is written, since a compiler found
    missing while compiling is a traceback minutes into the run."""
    reason = graph_step_unsupported(device, config) if options.step == "graph" else None
    if reason is not None:
        raise InputError(f"`step` graph {reason}")
    if device.type == "cuda" and torch.cuda.is_available():  # (resolve_device has refused a cuda that is not)
        reason = capability_refusal(options, config, torch.cuda.get_device_capability(device))
        if reason is not None:
            raise InputError(reason)
    if not options.compile:
        return
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"`compile` works on cpu and cuda devices, not {device.type}")
    if device.type == "cpu" and cpp_compiler() is None:
        raise InputError("`compile` on a CPU needs a C++ compiler (g++, or the one $CXX names); none was found")
    if device.type == "cuda" and c_compiler() is None:
        raise InputError("`compile` on CUDA needs a C compiler for Triton's kernel launcher (gcc or clang, or the "
                         "one $CC names); none was found")
    if not os.path.isfile(os.path.join(headers := python_headers_folder(), "Python.h")):
        version = sysconfig.get_python_version()
        raise InputError(f"`compile` needs Python's C headers, and {headers} has no Python.h: install this "
                         f"Python's development files (python{version}-dev on Debian and Ubuntu)")


def is_out_of_memory(exc):
    """Whether the exception ``exc`` says a device ran out of memory: torch.OutOfMemoryError, or
    a RuntimeError saying one of ``OUT_OF_MEMORY_MARKERS`` (a RunFailure has said it already)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    if not isinstance(exc, RuntimeError) or isinstance(exc, RunFailure):
        return False
    return any(marker in str(exc) for marker in OUT_OF_MEMORY_MARKERS)


def out_of_memory_line(device, message):
    """The one line of a RunFailure for ``device`` (a torch.device) running out of memory, from
    the error's ``message``: what it tried to allocate, and of how much (CUDA says), where the
    message tells."""
    asked = re.search(r"tried to allocate ([0-9.]+) ?([KMGT]i?B|bytes)", message, re.IGNORECASE)
    total = re.search(r"total capacity of ([0-9.]+ ?[KMGT]i?B)", message)
    detail = "out of memory"
    if asked is not None:
        amount = (f"{float(asked.group(1)) / 2**30:.2f} GiB" if asked.group(2) == "bytes"
                  else f"{asked.group(1)} {asked.group(2)}")
        detail = f"tried to allocate {amount}"
    if total is not None:
        detail += f" on a GPU of {total.group(1)}"
    return f"{device} ran out of memory ({detail}); use `resize` or a smaller `width`"


@contextlib.contextmanager
def out_of_memory_as_failure(device):
    """A device that runs out of memory inside the context (while a problem is built, in the
    loop, in an evaluation pass) raises RunFailure's one line instead of a traceback."""
    try:
        yield
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            raise
        raise RunFailure(out_of_memory_line(device, str(exc))) from None
