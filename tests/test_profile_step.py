"""benchmarks/profile_step.py: where one iteration spends its time."""

import subprocess
import sys

import pytest

from benchmarks import profile_step
from conftest import REPO
from test_step_time import SMALL, refuse_to_benchmark


def test_profile_step_refuses_no_rows(capsys, monkeypatch):
    refuse_to_benchmark(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        profile_step.main(SMALL + ["--rows", "0"])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("profile_step.py: error: --rows ")


def test_profile_step_runs_on_cpu():
    result = subprocess.run(
        [sys.executable, "benchmarks/profile_step.py", "--device", "cpu", "--size", "64", "--width", "4", "--iters", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "aten::convolution_backward" in result.stdout  # the backward pass was profiled
    assert result.stdout.strip().splitlines()[-1].startswith("total self time per iteration: ")
