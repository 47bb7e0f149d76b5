"""Whether this machine's NVIDIA GPU can compute with the installed PyTorch, and if not, why and
what to install.

A GPU can be there and still be unusable: PyTorch's CUDA build needs a recent enough driver (with
an older one ``torch.cuda.is_available()`` is simply False), and it carries kernels for some
compute capabilities only (PyPI's CUDA 13 build of torch 2.14.1 has none for the V100, sm_70, or
the P100, sm_60). Quietly falling back to the CPU would turn a GPU run of hours into one of weeks,
so the facts are read once (:func:`read_gpu_facts`) and judged by :func:`judge_gpu`, a pure
function of them that the tests drive with the facts of machines that are not here.
"""

import dataclasses
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import typing
import warnings

import torch

DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"  # present wherever the NVIDIA kernel module is loaded
NVIDIA_SMI_TIMEOUT_S = 15  # a wedged driver can hang nvidia-smi; then it has not answered
# The least NVIDIA driver (its major version, Linux) of each CUDA major version: NVIDIA's minor
# version compatibility lets a build for CUDA X.y run on any driver of CUDA X.0.
MIN_DRIVER = {11: 450, 12: 525, 13: 580}
PYTORCH_INDEX = "https://download.pytorch.org/whl"  # the PyTorch site's wheel index, one folder per CUDA build
PYTORCH_GET_STARTED = "https://pytorch.org/get-started/locally/"
USABLE, NO_GPU, HIDDEN, UNUSABLE = "usable", "no GPU", "hidden", "unusable"  # the verdicts of judge_gpu


@dataclasses.dataclass(frozen=True)
class GpuFacts:
    """What decides whether a GPU can be used, as :func:`read_gpu_facts` reads it.

    ``gpus`` are ``(name, (major, minor))`` pairs (the capability None where unknown): the GPUs
    CUDA sees when ``available``, else those nvidia-smi lists. ``driver`` is the loaded NVIDIA
    driver's version (``"580.65.06"``), None where no driver answers: a machine without an NVIDIA
    GPU. ``arch_list`` is ``torch.cuda.get_arch_list()`` (empty in torch 2.11 and older while CUDA
    is unavailable: :func:`build_kernels`); ``torch_cuda`` is ``torch.version.cuda``
    (None for a CPU-only build); ``releases`` maps the CUDA versions PyTorch's release builds are
    made for to the capabilities each has kernels for, on this machine's architecture
    (``{"12.6": (50, 60, 70, 75, 80, 86, 90), ...}``). ``visible`` is CUDA_VISIBLE_DEVICES;
    ``init_error`` what CUDA's initialisation warned, if anything.
    """

    available: bool
    driver: typing.Optional[str]
    gpus: tuple
    arch_list: tuple
    torch_version: str
    torch_cuda: typing.Optional[str]
    torchvision_version: typing.Optional[str] = None
    releases: dict = dataclasses.field(default_factory=dict)
    visible: typing.Optional[str] = None
    init_error: typing.Optional[str] = None


def runs_kernels_of(capability, arch_list):
    """Whether a GPU of ``capability`` ``(major, minor)`` can run a build for ``arch_list``
    (``sm_86``, ``sm_90a``, ``compute_90``...): a cubin runs on its own major version at its minor
    or above (``sm_86`` on an 8.9 GPU), an arch-specific one (``sm_90a``) on that capability only,
    and PTX (``compute_XY``) is compiled for any capability at or above its own."""
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        specific = number.endswith(("a", "f"))
        code = int(number.rstrip("af")) if number.rstrip("af").isdigit() else None
        if code is None:
            continue
        if kind == "compute" and 10 * major + minor >= code:
            return True
        if kind == "sm" and major == code // 10 and (minor == code % 10 if specific else minor >= code % 10):
            return True
    return False


def _major(version):
    """The leading number of a version string (``580`` of ``580.65.06``), or None."""
    match = re.match(r"\d+", version or "")
    return int(match.group(0)) if match else None


def _build(facts):
    cuda = "a CPU-only build" if facts.torch_cuda is None else f"CUDA {facts.torch_cuda}"
    return f"PyTorch {facts.torch_version} ({cuda})"


def _install_advice(facts, capability):
    """What to install for a GPU of ``capability`` (None: unknown) on ``facts.driver``: the same
    PyTorch built for the newest CUDA whose driver the machine has and whose kernels the GPU runs,
    as a pip command, else the PyTorch site."""
    driver = _major(facts.driver)
    fitting = [cuda for cuda, codes in facts.releases.items()
               if cuda != facts.torch_cuda
               and (driver is None or driver >= MIN_DRIVER.get(_major(cuda), 0))
               and (capability is None or runs_kernels_of(capability, [f"sm_{code}" for code in codes]))]
    if not fitting:
        return f"install a PyTorch build for this GPU and driver ({PYTORCH_GET_STARTED})"
    cuda = max(fitting, key=lambda version: tuple(int(part) for part in version.split(".")))
    packages = f"torch=={facts.torch_version.split('+')[0]}"
    if facts.torchvision_version:
        packages += f" torchvision=={facts.torchvision_version.split('+')[0]}"
    return (f"install the same PyTorch built for CUDA {cuda}: pip install {packages} --index-url "
            f"{PYTORCH_INDEX}/cu{cuda.replace('.', '')}")


def build_kernels(facts):
    """The kernels of the installed build: its arch list, or where it gives none (torch 2.11 and
    older while CUDA is unavailable) those of PyTorch's release build for its CUDA (``sm_XY``);
    empty where neither is known (a CPU-only or custom build)."""
    if facts.arch_list or facts.torch_cuda is None:
        return facts.arch_list
    return tuple(f"sm_{code}" for code in facts.releases.get(facts.torch_cuda, ()))


def _without_kernels(facts, capability):
    return (f"{_build(facts)} has no kernels for compute capability {capability[0]}.{capability[1]} "
            f"(it has {' '.join(build_kernels(facts)) or 'none'})")


def judge_gpu(facts):
    """What the GPUs of ``facts`` (a :class:`GpuFacts`) are to this PyTorch: ``(verdict,
    reason)``, the verdict one of

    - ``USABLE``: CUDA sees at least one GPU and has kernels for every one it sees (reason None);
    - ``NO_GPU``: no NVIDIA driver answers: a machine without an NVIDIA GPU;
    - ``HIDDEN``: the driver is fine but CUDA_VISIBLE_DEVICES shows CUDA none of the GPUs;
    - ``UNUSABLE``: a GPU is there but cannot compute with this PyTorch: a driver too old for its
      CUDA, no kernels for the GPU's compute capability, a CPU-only build, or CUDA failing to
      start. The reason names the GPU where it is known, the driver, the PyTorch build and what
      to install.

    The reason is a clause to follow "but" or a colon: ``found NVIDIA ... with NVIDIA driver ...,
    but ...``.
    """
    driver = f" with NVIDIA driver {facts.driver}" if facts.driver else ""
    if facts.available:
        for index, (name, capability) in enumerate(facts.gpus):
            if capability is not None and not runs_kernels_of(capability, facts.arch_list):
                return UNUSABLE, (f"found GPU {index}, {name}{driver}, but {_without_kernels(facts, capability)}; "
                                  f"{_install_advice(facts, capability)}")
        return USABLE, None
    if facts.driver is None:
        return NO_GPU, f"no NVIDIA driver is loaded (no {DRIVER_VERSION_FILE}, no answer from nvidia-smi)"
    names = ", ".join(dict.fromkeys(name for name, _ in facts.gpus)) or "an NVIDIA GPU"
    capabilities = [capability for _, capability in facts.gpus if capability is not None]
    capability = min(capabilities) if capabilities else None
    found = f"found {names}{driver}"
    if facts.torch_cuda is None:
        return UNUSABLE, f"{found}, but {_build(facts)} cannot use it; {_install_advice(facts, capability)}"
    need = MIN_DRIVER.get(_major(facts.torch_cuda))
    old_driver = need is not None and _major(facts.driver) is not None and _major(facts.driver) < need
    kernels = build_kernels(facts)  # unknown (empty): not judged
    no_kernels = capability is not None and bool(kernels) and not runs_kernels_of(capability, kernels)
    if old_driver or no_kernels:
        reasons = [f"{_build(facts)} needs driver {need} or later"] if old_driver else []
        reasons += [_without_kernels(facts, capability)] if no_kernels else []
        fix = _install_advice(facts, capability)
        if not no_kernels:  # a newer driver is enough only where the kernels are there
            fix = f"update the driver to {need} or later, or {fix}"
        return UNUSABLE, f"{found}, but {' and '.join(reasons)}; {fix}"
    if facts.visible is not None:
        return HIDDEN, (f"{found}, but CUDA sees none with CUDA_VISIBLE_DEVICES={facts.visible} (nvidia-smi "
                        f"lists {len(facts.gpus) or 'some'}, numbered from 0)")
    return UNUSABLE, f"{found}, but CUDA could not use it with {_build(facts)}: {facts.init_error or 'no reason given'}"


def parse_driver_version(text):
    """The driver version in the text of the kernel module's version file (``NVRM version: NVIDIA
    UNIX x86_64 Kernel Module  550.54.15  ...``, or ``... Open Kernel Module for x86_64
    580.65.06 ...``), or None."""
    match = re.search(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return match.group(1) if match else None


def _driver_from_file(path=DRIVER_VERSION_FILE):
    try:
        with open(path) as f:
            return parse_driver_version(f.read())
    except OSError:
        return None


def parse_nvidia_smi(text):
    """``(gpus, driver)`` from nvidia-smi's ``--query-gpu=name,driver_version,compute_cap
    --format=csv,noheader`` output (``compute_cap`` may be missing: older nvidia-smi has no such
    field): ``((name, (major, minor) or None), ...)`` and the driver version (None if no line)."""
    gpus, driver = [], None
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) not in (2, 3) or not fields[0]:
            continue
        driver = fields[1]
        match = re.fullmatch(r"(\d+)\.(\d+)", fields[2]) if len(fields) == 3 else None
        gpus.append((fields[0], (int(match.group(1)), int(match.group(2))) if match else None))
    return tuple(gpus), driver


def _nvidia_smi():
    """nvidia-smi's GPUs and driver (:func:`parse_nvidia_smi`), or ``((), None)`` where it is not
    installed or does not answer (no driver)."""
    if shutil.which("nvidia-smi") is None:
        return (), None
    for fields in ("name,driver_version,compute_cap", "name,driver_version"):
        try:
            result = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError):
            return (), None
        if result.returncode == 0:
            return parse_nvidia_smi(result.stdout)
    return (), None


def release_capabilities(table, machine):
    """``{cuda version: capabilities}`` of PyTorch's release builds for the architecture
    ``machine`` (``platform.machine()``), from ``table``, the installed torch's
    ``torch.cuda.PYTORCH_RELEASES_CODE_CC`` (it warns from the same table). Its shape depends on
    the release: ``{cuda: {host: capabilities}}`` in recent ones, ``{cuda: capabilities}`` (x86_64
    builds only) in 2.11 and older.

    >>> release_capabilities({"13.0": {75, 90, 80}}, "x86_64")
    {'13.0': (75, 80, 90)}
    >>> release_capabilities({"13.0": {"x86_64": {75, 90}, "aarch64": {90, 100}}}, "arm64")
    {'13.0': (90, 100)}
    """
    host = "aarch64" if machine.lower() in ("aarch64", "arm64") else "x86_64"
    capabilities = {}
    for cuda, codes in table.items():
        if isinstance(codes, dict):
            codes = codes.get(host, ())
        elif host != "x86_64":  # a table of one host is x86_64's
            codes = ()
        capabilities[cuda] = tuple(sorted(codes))
    return capabilities


def _version_of(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_gpu_facts(index=None):
    """The :class:`GpuFacts` of this machine; ``index`` narrows the GPUs CUDA sees to that one
    (``cuda:N``). Where CUDA is not available, the driver's version file and nvidia-smi are read;
    CUDA's warnings while starting (an old driver, a GPU without kernels) are kept as facts, not
    printed, so that the caller's one line says it all."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
        gpus = ()
        if available:
            indices = range(torch.cuda.device_count()) if index is None else [index]
            gpus = tuple((torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i)) for i in indices)
    init_error = next((str(w.message).strip().splitlines()[0] for w in caught if "CUDA" in str(w.message)), None)
    driver = _driver_from_file()
    if not available:
        gpus, listed_driver = _nvidia_smi()
        driver = driver or listed_driver
    releases = release_capabilities(getattr(torch.cuda, "PYTORCH_RELEASES_CODE_CC", {}), platform.machine())
    return GpuFacts(available=available, driver=driver, gpus=gpus, arch_list=tuple(torch.cuda.get_arch_list()),
                    torch_version=torch.__version__, torch_cuda=torch.version.cuda,
                    torchvision_version=_version_of("torchvision"), releases=releases,
                    visible=os.environ.get("CUDA_VISIBLE_DEVICES"), init_error=init_error)
