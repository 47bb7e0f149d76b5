"""reproduction.local_jobs: runs as local jobs, one per device at a time (two CPU jobs standing in
for two GPUs), a failing job reported with its reason, Ctrl-C stopping every job cleanly (a real
process tree: the sweep, submitit's controllers, the runs); each job seeing only its GPU."""

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import needs_package
from recovery import RunFiles
from reproduction import local_jobs, sweep
from reproduction.states import State
from slurm_cluster import wait_for
from sweep_helpers import tiny_run
from utils.errors import INTERRUPTED, InputError

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRESS_WAIT_S = 120


@pytest.mark.slow  # real submitit jobs in real processes, stopped by a real Ctrl-C
@needs_package("submitit")
def test_local_jobs_take_one_run_per_device_and_stop_cleanly_on_ctrl_c(tmp_path):
    # One thread per job, as two processes on one CPU should be: "a" and "b" are short, "bad" fails
    # (its image does not exist), "c" waits for a device, then runs until a Ctrl-C (what a terminal
    # sends: SIGINT to the whole foreground process group, the sweep, submitit's controllers and
    # the runs' processes).
    bad = tiny_run(tmp_path, "bad", num_iter=3, threads=1)
    bad = dataclasses.replace(bad, config=dataclasses.replace(bad.config, image="no_such_image"))
    specs = [tiny_run(tmp_path, "a", num_iter=3, show_every=1, threads=1),
             tiny_run(tmp_path, "b", num_iter=3, show_every=1, threads=1), bad,
             tiny_run(tmp_path, "c", num_iter=100000, threads=1)]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPOSITORY!r})
        from recovery import *
        from reproduction import local_jobs
        outcome = local_jobs.execute_in_local_jobs({specs!r}, ["cpu", "cpu"], log=lambda m: print(m, flush=True))
        for ckpt, failure in outcome.failures.items():
            print("failure", failure.line(ckpt))
        sys.exit({INTERRUPTED} if outcome.interrupted else 1)
        """)
    sweep_process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: sweep.run_state(specs[3])[1] >= 10, PROGRESS_WAIT_S, "progress of c", interval_s=0.1)
        os.killpg(sweep_process.pid, signal.SIGINT)
        output, _ = sweep_process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep_process.pid, signal.SIGKILL)
    assert sweep_process.returncode == INTERRUPTED, output
    lines = output.splitlines()
    assert [sweep.run_state(spec) for spec in specs[:2]] == [(State.COMPLETE, 3)] * 2
    assert {"a: done", "b: done", "c: interrupted"} <= set(lines), output
    failed = "bad: failed: InputError: image 'no_such_image' not found"
    reported = [line for line in lines if line.startswith(failed)]  # logged, and among the sweep's failures
    assert len(reported) == 1 and f"failure {reported[0]}" in lines, output
    started = {line.split(":")[0]: index for index, line in enumerate(lines) if ": starting on cpu" in line}
    assert started["c"] > min(lines.index("a: done"), lines.index("b: done"))  # two at a time
    log_path = re.search(r"^c: starting on cpu \(log: (\S+)\)$", output, re.M).group(1)
    with open(log_path) as f:
        log = f.read()
    stopped = re.search(r"stopped by SIGTERM after iteration (\d+); checkpoint saved", log)
    # Saved where it stopped, not at an earlier logged iteration: it was stopped, not killed.
    assert stopped and sweep.run_state(specs[3]) == (State.PARTIAL, int(stopped.group(1)) + 1), log
    for spec in specs[:2] + specs[3:]:
        with open(RunFiles(spec.out_dir, spec.ckpt).args) as f:
            assert '"threads": 1' in f.read()
    with pytest.raises(ProcessLookupError):  # no job process is left
        os.killpg(sweep_process.pid, 0)


@needs_package("submitit")
def test_a_local_job_sees_only_its_gpu(tmp_path):
    import submitit

    executor = submitit.LocalExecutor(folder=tmp_path / "%j")
    jobs = [local_jobs.submit_local_job(executor, gpu, os.getenv, "CUDA_VISIBLE_DEVICES") for gpu in (2, None)]
    assert [job.result() for job in jobs] == ["2", ""]


@pytest.mark.parametrize("visible,device,expected", [(None, "cuda:1", 1), ("3,1", "cuda:1", 1), ("3,1", "cuda", 3),
                                                     ("3,1", "cpu", None)])
def test_a_device_is_given_to_its_job_as_the_gpu_it_is(monkeypatch, visible, device, expected):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert local_jobs.physical_gpu(device) == expected


def test_gpus_named_by_uuid_are_refused(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8c6e6a4b")
    with pytest.raises(InputError, match="by UUID"):
        local_jobs.physical_gpu("cuda:0")
