"""benchmarks/gpu_session.sh: the one call that measures everything on a GPU, rehearsed on the CPU."""

import os
import re
import subprocess
import sys
import tarfile
import time

import pytest
import torch

from conftest import REPO

SCRIPT = os.path.join(REPO, "benchmarks", "gpu_session.sh")
STAGES = ["a. Pre-flight", "b. CUDA tests", "c. Command line end to end", "d. Step time", "e. Logging overhead",
          "f. Fidelity of the fast step against the default eager step", "g. CUDA memory calibration"]
EIGHT_MINUTES = 480
GRACE = 5  # the script's GRACE: the last stage's program may run that long past its limit


def script_env(**settings):
    """The environment the script runs in: ``python3`` is this interpreter's, as on the GPU machine
    where the project's environment is the first ``python3``."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], **settings}
    for name in ("OUT", "DEVICE", "SIZE", "WIDTH", "DATA_DIR", "FAST_FLAGS", "FIDELITY_ITERS"):
        if name not in settings:
            env.pop(name, None)  # the script's defaults, not the caller's
    return env


def source():
    with open(SCRIPT) as f:
        return f.read()


def limits():
    """``{stage: seconds}``: the script's limits at SIZE 512, as its code has them."""
    return {key: int(value) for key, value in
            re.findall(r"\[([a-g])\]=(\d+)", re.search(r"declare -A LIMIT=\((.*)\)", source()).group(1))}


def rehearsal_limits():
    return sum(value * 40 // 100 for value in limits().values())  # at SIZE 64: 40% each


def test_the_budget_table_is_the_scripts_limits_and_fits_eight_minutes():
    text = source()
    table = {key: int(value) for key, value in re.findall(r"^#   ([a-g])  .*?\s(\d+)$", text, re.MULTILINE)}
    assert table == limits() and sorted(table) == list("abcdefg")
    total = sum(table.values())
    assert f"total   {total}" in text and f"the sum, {total} s" in text
    assert total + GRACE + 30 <= EIGHT_MINUTES  # 30 s for packing logs and the summary between stages
    assert f"ends within {rehearsal_limits()} s" in text


@pytest.mark.parametrize("settings,named", [
    ({"SIZE": "50"}, "SIZE"), ({"SIZE": "big"}, "SIZE"), ({"WIDTH": "0"}, "WIDTH"), ({"DEVICE": "gpu"}, "DEVICE"),
    ({"FIDELITY_ITERS": "1"}, "FIDELITY_ITERS"), ({"argument": "bench"}, "argument"),
], ids=["SIZE 50", "SIZE big", "WIDTH 0", "DEVICE gpu", "FIDELITY_ITERS 1", "an argument"])
def test_a_bad_setting_is_one_line_exit_2_and_nothing_written(tmp_path, settings, named):
    out = tmp_path / "out"
    argument = [settings["argument"]] if "argument" in settings else []
    env = {"DEVICE": "cpu", **{name: value for name, value in settings.items() if name != "argument"}}
    result = subprocess.run(["bash", SCRIPT, *argument], env=script_env(OUT=str(out), **env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gpu_session.sh: error: ")
    assert named in result.stderr and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_a_gpu_that_cannot_compute_stops_the_call_after_the_pre_flight(tmp_path):
    # DEVICE cuda here, where no GPU is: the pre-flight says why in one line and nothing else runs.
    out = tmp_path / "out"
    result = subprocess.run(["bash", SCRIPT], env=script_env(OUT=str(out), DEVICE="cuda", SIZE="64", WIDTH="8"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gpu_session.sh: cannot run on cuda: ")
    found = sections((out / "summary.md").read_text())
    assert list(found) == ["a. Pre-flight", "Done"]
    assert statuses(found["a. Pre-flight"]) == [f"stopped: {result.stderr.split(': ', 1)[1].strip()}"]
    assert "Stopped after the pre-flight" in found["Done"]


def sections(summary):
    """``{title: text}`` of summary.md's sections."""
    parts = re.split(r"^## (.+)$", summary, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def statuses(text):
    return re.findall(r"^Status: (.*)$", text, re.MULTILINE)


@pytest.mark.slow
def test_rehearsal_on_the_cpu_runs_every_stage(tmp_path):
    out = tmp_path / "out"
    # One thread per process: on a CPU shared with other work, oversubscribed threads make every
    # run many times slower (docs/speed.md), and the rehearsal checks paths, not speed.
    env = script_env(OUT=str(out), DEVICE="cpu", SIZE="64", WIDTH="8", OMP_NUM_THREADS="1")
    start = time.monotonic()
    result = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=400)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert seconds < rehearsal_limits() + GRACE + 30  # whatever the load
    found = sections((out / "summary.md").read_text())
    assert list(found) == STAGES + ["Done"]
    assert "Traceback" not in (out / "summary.md").read_text()
    for title in STAGES:  # a stage may be cut by its limit on a busy CPU; none may fail
        assert len(statuses(found[title])) == 1, title
        assert "fail" not in statuses(found[title])[0].lower(), (title, statuses(found[title]))
    assert statuses(found["a. Pre-flight"]) == ["ok"] and "ready: the project runs on cpu" in found["a. Pre-flight"]
    fidelity = statuses(found["f. Fidelity of the fast step against the default eager step"])[0]
    assert fidelity.startswith(("ok: fast against eager ", "partial (")), fidelity
    if fidelity.startswith("ok"):  # the CPU's eager runs are bitwise repeatable: the floor is 0
        assert "eager against eager (the floor) 0.000 dB (within the 0.2 dB bar" in fidelity
    assert statuses(found["b. CUDA tests"]) == ["skipped: needs CUDA"]
    rows = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[2]
            for row in found["c. Command line end to end"].splitlines() if row.startswith("| ") and "---" not in row}
    assert [run for run, result in rows.items() if result == "skipped: needs CUDA"] == [
        "graph", "forced out-of-memory", "compile"]
    assert not [run for run, result in rows.items() if "fail" in result.lower()], rows
    if rows["resume: on to 300"] == "ok":  # the CPU's eager runs are bitwise repeatable
        assert r"max \|dPSNR\|: 0.000 dB" in found["c. Command line end to end"]  # | escaped in a table
    if rows["memory refusal"].startswith("ok"):
        assert rows["memory refusal"] == "ok: exit 2, one line"
    if statuses(found["d. Step time"]) == ["ok"]:
        assert "speedup over eager fp32 (= eager tf32, the default" in found["d. Step time"]
    if statuses(found["e. Logging overhead"]) == ["ok"]:
        assert "extra per logged iteration: " in found["e. Logging overhead"]
    files = sorted(os.listdir(out))
    assert len(files) <= 8 and all(os.path.getsize(out / name) < 16 * 2**20 for name in files)
    assert "summary.md" in files and "logs.tar.gz" in files and "step_time.json" in files
    with tarfile.open(out / "logs.tar.gz") as logs:
        assert "logs/a_environment.txt" in logs.getnames()
    print(f"rehearsal: {seconds:.0f} s; statuses: {[statuses(found[t])[0] for t in STAGES]}")
