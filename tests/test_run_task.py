"""reproduction.run_task: a task requeued more often than allowed fails and keeps its checkpoint,
and one within the limit runs to its end (the real Slurm tasks are in test_slurm_launch.py, the
local jobs in test_local_jobs.py)."""

import pytest
import torch

from conftest import optional_module

optional_module("submitit")  # a run task is a submitit job

from reproduction.run_task import RunTask  # noqa: E402 (after the skip)
from sweep_helpers import tiny_run  # noqa: E402
from utils.errors import RunFailure  # noqa: E402


def test_a_task_requeued_too_often_fails_and_keeps_its_checkpoint(tmp_path, monkeypatch):
    spec = tiny_run(tmp_path, "a", num_iter=4, show_every=2, threads=1)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    with pytest.raises(RunFailure, match="requeued 3 times, more than max_restarts 2"):
        RunTask(spec, max_restarts=2)()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    threads = torch.get_num_threads()
    try:
        assert RunTask(spec, max_restarts=2)()["iterations"] == 4
    finally:
        torch.set_num_threads(threads)
