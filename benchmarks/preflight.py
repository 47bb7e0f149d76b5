"""What this machine runs the project with, and whether it can: the GPU session's first stage.

    python3 benchmarks/preflight.py --device cuda

Prints one line per fact: Python; torch and torchvision against constraints.txt (the versions the
README's commands pin) and requirements.txt (the range accepted); every other requirement; the
GPU, its driver and the build's kernels as ``recovery.nvidia`` judges them; what torch.compile
needs (Triton, a C compiler, Python's headers); the optional packages missing; and whether each
entry point imports. Exit status 0 when the project can run on ``--device``; 2, the last line
saying why, when it cannot: an entry point does not import, or the GPU asked for cannot compute.
Only the standard library, torch and packaging (matplotlib's own dependency) are imported before
the project is: a project that does not import is reported, not a traceback.
"""

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback

from packaging.requirements import InvalidRequirement, Requirement

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The scripts the session runs, and the modules behind them; the core is what every stage needs.
ENTRY_POINTS = ("denoising", "reproduce", "matrix_recovery", "benchmarks.step_time", "benchmarks.logging_overhead",
                "benchmarks.memory_peak", "benchmarks.compare_histories")
CORE = ("denoising", "benchmarks.compare_histories")
TEST_TOOLS = ("pytest", "hypothesis", "nbclient", "nbformat", "ipykernel")  # requirements-test.txt's


def requirements(path):
    """``{name: Requirement}`` of a pip requirements file's requirement lines (options such as
    ``-r`` and ``-e`` and comments are not requirements)."""
    found = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            found[requirement.name.lower()] = requirement
    return found


def installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_requirement(name, version, pinned, accepted):
    """``torch 2.11.0+cu130: constraints.txt pins ==2.14.1 (another); requirements.txt accepts
    >=2.11.0,<3 (within)`` for an installed ``version``."""
    parts = []
    if pinned is not None:
        parts.append(f"constraints.txt pins {pinned.specifier} "
                     f"({'this one' if pinned.specifier.contains(version, prereleases=True) else 'another'})")
    if accepted is not None:
        parts.append(f"requirements.txt accepts {accepted.specifier or 'any'} "
                     f"({'within' if accepted.specifier.contains(version, prereleases=True) else 'OUTSIDE'})")
    return f"{name} {version}: {'; '.join(parts) or 'not a requirement'}"


def import_error(module):
    """None if ``module`` imports, else its error's last line."""
    try:
        importlib.import_module(module)
    except BaseException:  # an entry point may exit at import, or raise anything: reported, not raised
        return traceback.format_exc().strip().splitlines()[-1]
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="preflight.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N: the device the session measures")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    pinned = requirements(os.path.join(REPO, "constraints.txt"))
    accepted = requirements(os.path.join(REPO, "requirements.txt"))
    if (error := import_error("torch")) is not None:
        print(f"cannot run: torch does not import ({error})")
        return 2
    import torch

    # torch's own version names its build (2.11.0+cu130), which the package's metadata may not.
    for name, version in (("torch", torch.__version__), ("torchvision", installed_version("torchvision"))):
        print(describe_requirement(name, version, pinned.get(name), accepted.get(name)) if version else f"{name}: MISSING")

    missing, outside = [], []
    for name, requirement in accepted.items():
        version = installed_version(name)
        if version is None:
            missing.append(name)
        elif name not in ("torch", "torchvision") and not requirement.specifier.contains(version, prereleases=True):
            outside.append(f"{name} {version} (requirements.txt: {requirement.specifier})")
    print(f"requirements.txt's others outside their range: {', '.join(outside) or 'none'}")

    import_failures = {module: error for module in ENTRY_POINTS if (error := import_error(module)) is not None}
    if (error := import_error("recovery")) is not None:
        print(f"cannot run: the project's recovery package does not import ({error})")
        return 2
    from recovery.devices import c_compiler, cpp_compiler, python_headers_folder
    from recovery.nvidia import USABLE, build_kernels, judge_gpu, read_gpu_facts
    from utils.optional import OPTIONAL_PACKAGES

    optional = [name for name in OPTIONAL_PACKAGES if importlib.util.find_spec(name) is None]
    tools = [name for name in TEST_TOOLS if importlib.util.find_spec(name) is None]
    print(f"optional packages missing: {', '.join(optional) or 'none'} (their features stop with one line; "
          f"their tests skip)")
    print(f"test tools missing: {', '.join(tools) or 'none'}")
    print(f"requirements missing: {', '.join(name for name in missing if name not in OPTIONAL_PACKAGES) or 'none'}")

    index = int(args.device.partition(":")[2]) if args.device.startswith("cuda:") else None
    facts = read_gpu_facts(index)
    verdict, reason = judge_gpu(facts)
    cuda = f"CUDA {facts.torch_cuda}" if facts.torch_cuda else "a CPU-only build"
    print(f"torch built for {cuda}, cuDNN {torch.backends.cudnn.version()}; cuda available: {facts.available}")
    print(f"driver: {facts.driver or 'none'}; gpus: {', '.join(f'{name} {cap}' for name, cap in facts.gpus) or 'none'}")
    print(f"arch list: {' '.join(facts.arch_list) or '(empty)'}; kernels judged by: "
          f"{' '.join(build_kernels(facts)) or 'unknown'}")
    print(f"gpu verdict: {verdict}{f' ({reason})' if reason else ''}")
    triton = installed_version("triton")
    headers = python_headers_folder()
    found = "found" if os.path.isfile(os.path.join(headers, "Python.h")) else "MISSING"
    print(f"torch.compile: triton {triton or 'not installed'}; c compiler {c_compiler() or 'none'}; c++ compiler "
          f"{cpp_compiler() or 'none'}; Python.h {found} in {headers}")
    print(f"cpus: {os.cpu_count()}")
    for module in ENTRY_POINTS:
        print(f"import {module}: {import_failures.get(module, 'ok')}")

    if broken := [module for module in CORE if module in import_failures]:
        print(f"cannot run: {broken[0]} does not import ({import_failures[broken[0]]})")
        return 2
    if args.device.startswith("cuda") and verdict != USABLE:
        print(f"cannot run on {args.device}: {reason}")
        return 2
    print(f"ready: the project runs on {args.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
