"""The optional packages: each is imported where its feature runs, so that everything else runs
without it (a GPU machine's fixed image, a lab's environment with no Slurm).

A feature asked for without its package stops with one line (an InputError: exit status 2 at the
command line) naming the package and how to install it.
"""

import importlib

from utils.errors import InputError

# import name: (what `pip install` takes, as requirements.txt pins it; what needs it)
OPTIONAL_PACKAGES = {
    "submitit": ("submitit>=1.5,<1.6", "running on Slurm or one local job per GPU"),
    "cvxpy": ("cvxpy>=1.5,<2", "the convex program of the matrix experiments"),
    "bm3d": ("bm3d>=4.0.3,<5", "the BM3D baselines"),
}


def import_optional(name, feature=None):
    """The module ``name``, one of ``OPTIONAL_PACKAGES``; InputError naming it, the feature that
    needs it (``feature``, else its usual one) and the pip command that installs it, where it is
    not installed."""
    requirement, usual = OPTIONAL_PACKAGES[name]
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if exc.name != name:  # the package is there but broken: its own error says why
            raise
        raise InputError(f"{feature or usual} needs the package {name}, which is not installed: "
                         f"python3 -m pip install '{requirement}'") from None
