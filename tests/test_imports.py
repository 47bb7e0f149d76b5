"""What a script imports before it runs: a single recovery imports what it runs, not the folder
mode's sweep, the launchers, the table's baselines or the optional packages, and not torchvision,
whose import is more than a second and which only the panel drawn at the end needs."""

import subprocess
import sys

from tiny import REPO

NOT_AT_START = ("submitit", "cvxpy", "bm3d", "torchvision", "scipy", "reproduction.sweep", "reproduction.folder",
                "reproduction.table", "reproduction.local_jobs", "reproduction.slurm_launch", "utils.baselines")


def modules_after_import(script):
    """The modules loaded by importing ``script`` in a fresh interpreter, as it starts."""
    code = f"import sys, {script}; print('\\n'.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.split())


def test_a_single_recovery_imports_only_what_it_runs():
    loaded = modules_after_import("denoising")
    assert "recovery.loop" in loaded  # the check reads real imports
    assert sorted(loaded & set(NOT_AT_START)) == []
