"""Helpers of the tests of the reproduction package (tests/test_sweep.py, test_figures.py,
test_table.py, test_pipeline.py, test_reproduce.py, test_slurm_launch.py...): the tiny settings of
``reproduce.py`` and a tiny run on a scikit-image sample (tests/tiny.py's), a guard that no run is
started, and the rows of a results.csv."""

import csv

import reproduction.sweep
from recovery import RecoveryConfig, RunSpec, StepOptions
from tiny import TINY_PROBLEM, tiny_flags

# reproduce.py's tiny sweep: two iterations of each run.
TINY_SWEEP = ["--num_iter", "2", *tiny_flags(image=None)]


def tiny_run(folder, ckpt, num_iter=6, method="ours", show_every=2, threads=None):
    """A run on a scikit-image sample, so that the sweep's logic is tested without the paper's
    images; ``threads`` its PyTorch threads (None: this process's). It writes a checkpoint at
    every logged iteration, since the tests watch its progress through them."""
    config = RecoveryConfig(**TINY_PROBLEM, num_iter=num_iter, show_every=show_every, method=method)
    return RunSpec(ckpt, str(folder), "cpu", config, StepOptions(threads=threads, checkpoint_seconds=0, no_refined=True))


def forbid_runs(monkeypatch):
    """Make any recovery the sweep starts fail the test: for sweeps that must make none."""
    def refuse(*args, **kwargs):
        raise AssertionError("run_recovery called where no run is to be made")

    monkeypatch.setattr(reproduction.sweep, "run_recovery", refuse)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
