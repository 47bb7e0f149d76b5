import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks import profile_step, step_time
from benchmarks.compare_histories import main as compare_main
from benchmarks.compare_histories import image_difference, psnr_differences
from conftest import REPO
from utils.atomic_files import write_csv
from utils.errors import OutputError
from utils.image_io import save_png

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
    save_png(tmp_path / "a.png", np.zeros((3, 64, 64), np.float32))
    images = ["--images", str(tmp_path / "a.png"), str(tmp_path / "a.png")]
    assert compare_main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")] + images) == status
    out = capsys.readouterr().out
    assert f"max |dPSNR|: {shift:.3f} dB over 2 iterations" in out
    assert "final images (iterations 500 and 500): identical" in out


@pytest.mark.parametrize("bad", ["missing history", "not a history", "missing image"])
def test_compare_bad_input_is_one_line(tmp_path, capsys, bad):
    write_csv(tmp_path / "a.csv", FIELDS, history([(0, 10.0)]))
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    b = {"missing history": "nowhere.csv", "not a history": "b.csv", "missing image": "a.csv"}[bad]
    argv = [str(tmp_path / "a.csv"), str(tmp_path / b)]
    if bad == "missing image":
        argv += ["--images", str(tmp_path / "nowhere.png"), str(tmp_path / "nowhere.png")]
    with pytest.raises(SystemExit) as exit_info:
        compare_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("compare_histories.py: ")


def test_image_difference_measures_final_images(tmp_path):
    image = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    moved = image.copy()
    moved[0, 0, 0] = 1.0 - moved[0, 0, 0]  # one value far off
    for name, array in (("a", image), ("b", image), ("c", moved)):
        save_png(tmp_path / f"{name}.png", array)
    assert image_difference(tmp_path / "a.png", tmp_path / "b.png") == "identical"
    saved = [np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.float64) for name in "ac"]
    levels = int(np.abs(saved[0] - saved[1]).max())
    expected_psnr = 10 * np.log10(255**2 / np.mean((saved[0] - saved[1]) ** 2))
    sentence = image_difference(tmp_path / "a.png", tmp_path / "c.png")
    assert sentence == f"PSNR of one against the other {expected_psnr:.2f} dB, largest difference {levels}/255"


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


def test_profile_step_refuses_no_rows(capsys, monkeypatch):
    refuse_to_benchmark(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        profile_step.main(SMALL + ["--rows", "0"])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("profile_step.py: error: --rows ")


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
    assert captured.out.strip().splitlines()[-1].startswith("speedup: ")  # the timings are still reported


@pytest.mark.parametrize("size", [64, 96, 512])
def test_sides_the_network_takes_are_accepted(size):
    step_time.check_problem(size, width=1, iters=1)


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
