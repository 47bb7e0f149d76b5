"""benchmarks/step_time.py (and the bad input it shares with profile_step.py): the iteration timed."""

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import profile_step, step_time
from conftest import REPO
from utils.errors import OutputError

BENCHMARKS = {"step_time.py": step_time, "profile_step.py": profile_step}
SMALL = ["--device", "cpu", "--size", "64", "--width", "2", "--iters", "1"]  # valid; the bad flag overrides one


def refuse_to_benchmark(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a benchmark was prepared although the input is bad")

    for module in BENCHMARKS.values():
        monkeypatch.setattr(module, "prepare_variant", refuse)


@pytest.mark.parametrize("script", sorted(BENCHMARKS))
@pytest.mark.parametrize("bad", [["--device", "bogus"], ["--device", "cuda:99"], ["--iters", "0"], ["--iters", "-5"],
                                 ["--size", "50"], ["--size", "32"], ["--width", "0"]], ids=" ".join)
def test_benchmark_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, script, bad):
    refuse_to_benchmark(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        BENCHMARKS[script].main(SMALL + bad)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{script}: error: ") and bad[0].lstrip("-") in err


@pytest.mark.parametrize("iters", [1, 3, 5, 7, 12])
def test_step_time_runs_exactly_the_iterations_asked(iters):
    calls, result = [], {}
    step_time.time_rounds(torch.device("cpu"), [(result, lambda: calls.append(1))], iters)
    assert len(calls) == iters and result["ms"] > 0


@pytest.mark.parametrize("where", ["missing folder", "a folder", "a file as folder"])
def test_step_time_checks_the_json_path_first(tmp_path, capsys, monkeypatch, where):
    refuse_to_benchmark(monkeypatch)
    (tmp_path / "a_file").write_text("")
    path = {"missing folder": tmp_path / "nowhere" / "x.json", "a folder": tmp_path,
            "a file as folder": tmp_path / "a_file" / "x.json"}[where]
    with pytest.raises(SystemExit) as exit_info:
        step_time.main(SMALL + ["--json", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("step_time.py: error: --json ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_step_time_says_once_that_its_json_could_not_be_written(tmp_path, capsys, monkeypatch):
    def full_disk(path, obj):
        raise OutputError(f"cannot write {path} (No space left on device)")

    monkeypatch.setattr(step_time, "write_json", full_disk)
    status = step_time.main(SMALL + ["--iters", "3", "--json", str(tmp_path / "x.json")])  # written after each round
    captured = capsys.readouterr()
    assert status == 1 and captured.err.count("warning: cannot write") == 1
    assert captured.out.strip().splitlines()[-1].startswith("speedup over ")  # the timings are still reported


@pytest.mark.parametrize("size", [64, 96, 512])
def test_sides_the_network_takes_are_accepted(size):
    step_time.check_problem(size, width=1, iters=1)


def cuda_results(ms):
    """step_time's results on CUDA, with the times ``ms`` (``{label: ms or None}``)."""
    return [{"label": label, "precision": precision, "flags": options.to_argv(), "ms": ms.get(label)}
            for label, precision, options in step_time.variants(torch.device("cuda"))]


def test_speedups_are_over_the_default_eager_step_and_over_fp32_each():
    # torch.device("cuda") is only a name here: no GPU is used.
    labels = [label for label, _, _ in step_time.variants(torch.device("cuda"))]
    fast = next(label for label in labels if label.startswith(step_time.FAST_LABEL))
    ms = {labels[0]: 15.0, labels[1]: 20.0, fast: 5.0, labels[-1]: 1.0}  # bf16 faster still: not the fast step
    assert labels[0].startswith("eager tf32") and labels[1].startswith("eager fp32")
    assert step_time.speedups(torch.device("cuda"), cuda_results(ms)) == {
        "eager tf32 (the default)": 3.0, "eager fp32": 4.0}


def test_a_speedup_without_its_baseline_is_unknown():
    labels = [label for label, _, _ in step_time.variants(torch.device("cuda"))]
    fast = next(label for label in labels if label.startswith(step_time.FAST_LABEL))
    ratios = step_time.speedups(torch.device("cuda"), cuda_results({labels[1]: 20.0, fast: 5.0}))
    assert ratios == {"eager tf32 (the default)": None, "eager fp32": 4.0}


def test_off_cuda_one_baseline_is_both_the_default_and_fp32():
    results = [{"label": label, "precision": precision, "flags": options.to_argv(), "ms": 10.0}
               for label, precision, options in step_time.variants(torch.device("cpu"))]
    ratios = step_time.speedups(torch.device("cpu"), results)
    assert list(ratios.values()) == [1.0]
    assert "eager fp32" in next(iter(ratios)) and "eager tf32, the default" in next(iter(ratios))


def test_step_time_runs_on_cpu(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/step_time.py", "--device", "cpu", "--size", "64", "--width", "4", "--iters", "2",
         "--json", str(tmp_path / "t.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].startswith("eager fp32 (also the default") and "ms/iteration" in lines[1]
    assert lines[-1].startswith("speedup over eager fp32 (= eager tf32") and lines[-1].endswith("x")
    saved = json.loads((tmp_path / "t.json").read_text())
    assert [f"{ratio:.2f}x" for ratio in saved["speedups"].values()] == [lines[-1].split(": ")[-1]]
