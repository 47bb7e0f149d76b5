"""matrix_recovery.py: bad input is one line and exit 2 with nothing written (in process, and once
through a real interpreter); --quick runs all three experiments end to end and ends with the
implicit-bias line; --experiment runs only those named."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, needs_package
from matrix_recovery import main
SUMMARY = re.compile(r"implicit bias: relative distance (\S+) at eps (\S+)")


@pytest.mark.parametrize("bad,message", [
    (["--seed", "-3"], "--seed must be in [0, 2**63 - 1], got -3"),
    (["--threshold", "1.5"], "--threshold must be in (0, 1), got 1.5"),
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--trials", "100000000000"], "--trials must be at most 1000, got 100000000000"),  # not 23 GB of problems
    (["--out_dir", "a_file"], "--out_dir a_file exists and is not a folder"),
    (["--experiment", "pictures"], "--experiment: invalid choice: 'pictures'"),
    (["--trials", "many"], "--trials: invalid int value: 'many'"),
    (["--quick", "yes"], "unrecognized arguments: yes"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, bad, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    try:
        status = main(["--quick", "--out_dir", "out", *bad] if bad[0] != "--out_dir" else ["--quick", *bad])
    except SystemExit as exit_info:  # argparse's own refusals
        status = exit_info.code
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("matrix_recovery.py: error: ")
    assert message in captured.err
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.slow  # torch, cvxpy and matplotlib take seconds to import in a fresh interpreter
def test_bad_input_through_the_interpreter_has_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(REPO, "matrix_recovery.py"), "--threshold", "nan",
                           "--out_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "matrix_recovery.py: error: --threshold must be in (0, 1), got nan\n"
    assert not (tmp_path / "out").exists()


@needs_package("cvxpy")
def test_one_experiment_alone(tmp_path, capsys):
    assert main(["--quick", "--experiment", "learning_curves", "--out_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["matrix_learning_curves.csv", "matrix_learning_curves.pdf",
                                            "matrix_learning_curves.png"]
    assert "learning curves: error to X* after 5000 iterations" in out and not SUMMARY.search(out)


@needs_package("cvxpy")
def test_quick_runs_everything_and_ends_with_the_implicit_bias_line(tmp_path, capsys):
    assert main(["--quick", "--out_dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    match = SUMMARY.fullmatch(lines[-1])
    assert match and float(match.group(2)) == 1e-8 and float(match.group(1)) < 1e-2
    assert lines[-2].startswith("implicit bias: the commuting runs' largest distance at eps 1e-08 is ")
    for stem in ("implicit_bias", "phase_transition", "learning_curves"):
        for ext in ("csv", "png", "pdf"):
            assert os.path.getsize(tmp_path / f"matrix_{stem}.{ext}") > 0
