"""benchmarks/logging_overhead.py: what a logged iteration costs a run of the command line."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import logging_overhead
from conftest import REPO

SMALL = ["--device", "cpu", "--size", "64", "--width", "2", "--num_iter", "11", "--show_every", "2", "10",
         "--rounds", "1"]  # valid; a bad flag given after it overrides one


@pytest.mark.parametrize("num_iter,every,logged", [(201, 10, 21), (201, 200, 2), (300, 50, 7), (1, 5, 1), (11, 2, 6)])
def test_logged_iterations_count_the_multiples_and_the_last(num_iter, every, logged):
    assert logging_overhead.logged_iterations(num_iter, every) == logged


@pytest.mark.parametrize("bad", [["--size", "50"], ["--width", "0"], ["--rounds", "0"], ["--num_iter", "1"],
                                 ["--show_every", "0", "200"], ["--show_every", "300", "400"],
                                 ["--device", "bogus"], ["--json", "/nowhere/x.json"]], ids=" ".join)
def test_bad_input_is_one_line_and_exit_2_before_any_run(capsys, monkeypatch, bad):
    def refuse(*args, **kwargs):
        raise AssertionError("a run was started although the input is bad")

    monkeypatch.setattr(logging_overhead, "timed_run", refuse)
    with pytest.raises(SystemExit) as exit_info:
        logging_overhead.main(SMALL + bad)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("logging_overhead.py: error: ") and bad[0] in err


def test_summary_divides_by_the_extra_logged_iterations():
    runs = [{"show_every": 10, "wall": 12.0, "loop": 3.0, "logged": 21}, {"show_every": 200, "wall": 10.0, "loop": 1.1,
                                                                         "logged": 2},
            {"show_every": 10, "wall": 13.0, "loop": 3.2, "logged": 21}, {"show_every": 200, "wall": 9.0, "loop": 1.3,
                                                                         "logged": 2}]
    summary = logging_overhead.summarise(runs, [10, 200], 201, step_ms=5.0)
    assert summary["extra_logged"] == 19
    assert summary["wall_per_log"] == pytest.approx((12.5 - 9.5) / 19)  # medians of the rounds
    assert summary["loop_per_log"] == pytest.approx((3.1 - 1.2) / 19)
    assert summary["loop_over_steps"] == pytest.approx({"10": 3.1, "200": 1.2})  # 200 steps of 5 ms: 1 s
    assert summary["unlogged_ms"] == pytest.approx((1.2 - 0.1) / 200 * 1000)  # less the first row's logging


@pytest.mark.slow
def test_runs_the_command_line_and_reports(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/logging_overhead.py", *SMALL, "--json", str(tmp_path / "l.json")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "l.json").read_text())
    assert [(run["show_every"], run["logged"]) for run in saved["runs"]] == [(2, 6), (10, 2)]  # from the histories
    walls = {run["show_every"]: run["wall"] for run in saved["runs"]}
    assert saved["summary"]["wall_per_log"] == pytest.approx((walls[2] - walls[10]) / 4)
    lines = result.stdout.strip().splitlines()
    assert lines[-3].startswith("extra per logged iteration: ") and "1 and 1 runs: (t2 - t10) / (6 - 2)" in lines[-3]
    assert lines[-2].startswith("step alone: ") and saved["summary"]["step_ms"] > 0
    assert lines[-1].startswith("the runs' own seconds against 10 steps alone: logged every 2 ")


@pytest.mark.slow
def test_stopped_by_sigint_it_reports_the_runs_done(tmp_path):
    # As `timeout -s INT` stops it: the signal goes to its process group, its child run included.
    json_path = tmp_path / "l.json"
    command = [sys.executable, "benchmarks/logging_overhead.py", *SMALL, "--rounds", "3", "--json", str(json_path)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:  # until both intervals have a run
        if json_path.exists() and len(json.loads(json_path.read_text())["runs"]) >= 2:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "Traceback" not in err
    assert "interrupted: the figures below are from the runs done" in out
    assert "extra per logged iteration: " in out and "step alone: not measured (interrupted)" in out
