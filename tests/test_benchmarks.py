import subprocess
import sys

import pytest

from benchmarks.compare_histories import main as compare_main
from benchmarks.compare_histories import psnr_differences
from conftest import REPO
from utils.atomic_files import write_csv

FIELDS = ("iteration", "loss", "psnr", "ssim", "seconds")


def history(pairs):
    return [{"iteration": i, "loss": 0.1, "psnr": p, "ssim": 0.5, "seconds": 1.0} for i, p in pairs]


def test_psnr_differences_join_on_iteration():
    a = history([(0, 10.0), (500, 12.0), (999, 14.0)])
    b = history([(0, 10.1), (500, 11.7), (1000, 15.0)])
    assert psnr_differences(a, b) == [(0, 10.0, 10.1), (500, 12.0, 11.7)]


@pytest.mark.parametrize("shift,status", [(0.1, 0), (0.3, 1)])
def test_compare_exit_status_follows_tolerance(tmp_path, capsys, shift, status):
    write_csv(tmp_path / "a.csv", FIELDS, history([(0, 10.0), (500, 20.0)]))
    write_csv(tmp_path / "b.csv", FIELDS, history([(0, 10.0), (500, 20.0 + shift)]))
    assert compare_main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == status
    assert f"max |dPSNR|: {shift:.3f} dB over 2 iterations" in capsys.readouterr().out


def test_step_time_runs_on_cpu():
    result = subprocess.run(
        [sys.executable, "benchmarks/step_time.py", "--device", "cpu", "--size", "64", "--width", "4", "--iters", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].startswith("eager fp32: ") and "ms/iteration" in lines[1]
    assert lines[-1].startswith("speedup: ") and lines[-1].endswith("x")


def test_profile_step_runs_on_cpu():
    result = subprocess.run(
        [sys.executable, "benchmarks/profile_step.py", "--device", "cpu", "--size", "64", "--width", "4", "--iters", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "aten::convolution_backward" in result.stdout  # the backward pass was profiled
    assert result.stdout.strip().splitlines()[-1].startswith("total self time per iteration: ")
