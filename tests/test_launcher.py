"""reproduction.launcher: a sweep as a Slurm job array on the real single-node cluster of
tests/slurm_cluster.py (figures and table equal to those of one process, a failed task reported
with its reason, a task requeued mid-run resuming bit for bit), and local jobs standing in for
several GPUs. Everything on the CPU, at 64x64 and width 4, one thread per task.
"""

import contextlib
import csv
import dataclasses
import io
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from slurm_cluster import slurm_cluster, wait_for  # noqa: F401 (the fixture)

from recovery import RecoveryConfig, RunFiles, RunSpec, RunState, StepOptions, describe_device
from reproduce import main
from reproduction import launcher, plan, sweep
from reproduction.launcher import LaunchSettings
from reproduction.plan import Settings
from test_denoising import assert_same_problem_state
from utils.errors import InputError, RunFailure

# Long enough for a task to be requeued mid-run (about 2 s of iterations on the 2-core CPU).
SWEEP_ITERATIONS = 300  # long enough (seconds) for a signal to reach a run mid-run
TINY = ["--figure", "3", "--num_iter", str(SWEEP_ITERATIONS), "--show_every", "10", "--resize", "64", "--width", "4",
        "--threads", "1", "--no_progress"]
ON_SLURM = ["--launcher", "slurm", "--gpus_per_task", "0"]
JOB_WAIT_S = 120
STATUS_LINE = re.compile(r"^  (\S+)\s+(complete|running|queued|failed|partial|not started)\b(.*)$")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_run(folder, ckpt, num_iter, show_every=10):
    """A run on a scikit-image sample, one thread."""
    config = RecoveryConfig(image="astronaut", resize=64, width=4, num_iter=num_iter, show_every=show_every)
    return RunSpec(ckpt, str(folder), "cpu", config, StepOptions(threads=1))


def command_output(argv):
    """``(exit status, what main printed)`` of ``reproduce.py argv``."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([str(arg) for arg in argv])
    return status, printed.getvalue()


def run_states(status_text):
    """``{ckpt: (state, rest of its line)}`` from a status display."""
    states = {}
    for line in status_text.splitlines():
        if match := STATUS_LINE.match(line):
            states[match.group(1)] = (match.group(2), match.group(3))
    return states


def table_without_times(path):
    """results.csv without its wall-time column."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    seconds = rows[0].index("seconds")
    return [row[:seconds] + row[seconds + 1:] for row in rows]


@pytest.fixture(scope="module")
def one_process_sweep(paper_data_dir, tmp_path_factory):
    """``reproduce.py --figure 3`` at TINY in this process: what the Slurm sweep must equal."""
    threads = torch.get_num_threads()  # --threads 1 sets this process's
    out_dir = tmp_path_factory.mktemp("one-process") / "figures"
    try:
        status, _ = command_output([*TINY, "--device", "cpu", "--out_dir", out_dir, "--data_dir", paper_data_dir])
    finally:
        torch.set_num_threads(threads)
    assert status == 0
    return out_dir


def iterations_done(runs_dir, ckpt):
    path = RunFiles(runs_dir, ckpt).checkpoint
    return RunState.load(path).iteration if os.path.exists(path) else 0


@pytest.fixture(scope="module")
def slurm_sweep(slurm_cluster, paper_data_dir, one_process_sweep, tmp_path_factory):  # noqa: F811
    """The same sweep through the Slurm launcher, with what can happen on the way.

    Submitted held, so that it is queued for sure. Baboon's image is garbage while the array
    runs, then repaired. F16 is requeued mid-run (``scontrol requeue``: SIGTERM, as an
    administrator or a preemption does) and Peppers warned mid-run (SIGUSR2, as before a time
    limit). Once the array is over, the same command resubmits Baboon alone and then, all four
    runs complete, draws. Returns what each step printed, the status displays seen meanwhile,
    and the job of each run.
    """
    folder = tmp_path_factory.mktemp("slurm")
    data_dir, out_dir = folder / "data", folder / "figures"
    data_dir.mkdir()
    for image in plan.FIGURE3_IMAGES:
        shutil.copyfile(os.path.join(paper_data_dir, f"{image}.png"), data_dir / f"{image}.png")
    argv = [*TINY, *ON_SLURM, "--out_dir", out_dir, "--data_dir", data_dir]
    runs_dir = plan.runs_dir(Settings(resize=64, out_dir=str(out_dir)))
    steps, displays = {}, []

    steps["first"] = command_output([*argv, "--sbatch", "hold"])
    steps["held"] = command_output([*argv, "--status"])
    displays.append(steps["held"][1])
    jobs = {ckpt: ids[-1] for ckpt, ids in launcher.SlurmSweep(runs_dir).submitted().items()}
    baboon = data_dir / "Baboon.png"
    image = baboon.read_bytes()
    baboon.write_bytes(b"garbage, not an image")
    slurm_cluster.command("scontrol", "release", jobs["F16_05_4"].split("_")[0])
    warned, requeued = "Peppers_05_4", "F16_05_4"  # tasks 1 and 0: the first two to start
    wait_for(lambda: iterations_done(runs_dir, warned) >= 20, JOB_WAIT_S, "progress", interval_s=0.1)
    displays.append(command_output([*argv, "--status"])[1])
    # scancel retries while the job is in transition, which it is once it requeues itself, and
    # would signal the restarted task again: it is stopped once its signal is in.
    warning = subprocess.Popen([slurm_cluster.programs["scancel"], "--signal=USR2", jobs[warned]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = pathlib.Path(runs_dir, "slurm", "submitit", jobs[warned], f"{jobs[warned]}_0_log.out")
    try:
        # At once, not after the warned run has stopped: the other run is as short and must be
        # mid-run when its signal comes.
        wait_for(lambda: iterations_done(runs_dir, requeued) >= 20, JOB_WAIT_S, "progress", interval_s=0.1)
        slurm_cluster.command("scontrol", "requeue", jobs[requeued])
        wait_for(lambda: "stopped by SIGUSR2" in log.read_text(), JOB_WAIT_S, "stop of the warned run",
                 interval_s=0.1)
    finally:
        warning.terminate()
        warning.wait()

    def array_done():
        displays.append(command_output([*argv, "--status"])[1])
        return not slurm_cluster.queued_jobs()

    wait_for(array_done, JOB_WAIT_S, "end of the array", interval_s=0.3)
    steps["failed"] = command_output([*argv, "--status"])
    displays.append(steps["failed"][1])  # the runs that ended since the last display
    baboon.write_bytes(image)
    steps["again"] = command_output(argv)
    slurm_cluster.wait_until_no_jobs(JOB_WAIT_S)
    # The classical filters' results, which the table shows beside the runs, are the same in
    # both sweeps by construction (no launcher is involved): taken from the one in this process,
    # not computed a second time (BM3D takes seconds per image on the CPU).
    reference_runs = plan.runs_dir(Settings(resize=64, out_dir=str(one_process_sweep)))
    for name in os.listdir(reference_runs):
        if name.endswith("_classical.json"):
            shutil.copyfile(os.path.join(reference_runs, name), os.path.join(runs_dir, name))
    steps["drawn"] = command_output(argv)
    records = {ckpt: slurm_cluster.job_record(job_id) for ckpt, job_id in jobs.items()}
    return {"steps": steps, "displays": displays, "out_dir": out_dir, "runs_dir": runs_dir, "jobs": jobs,
            "records": records}


def test_a_sweep_as_an_array_draws_what_one_process_draws(slurm_sweep, one_process_sweep):
    status, printed = slurm_sweep["steps"]["drawn"]
    assert status == 0 and "wrote " in printed
    assert [state for state, _ in run_states(printed).values()] == ["complete"] * 4
    out_dir = slurm_sweep["out_dir"]
    assert (out_dir / "figure3.png").read_bytes() == (one_process_sweep / "figure3.png").read_bytes()
    assert table_without_times(out_dir / "results.csv") == table_without_times(one_process_sweep / "results.csv")
    for image in plan.FIGURE3_IMAGES:
        saved = RunState.load(RunFiles(slurm_sweep["runs_dir"], f"{image}_05_4").checkpoint)
        assert saved.devices == [describe_device(torch.device("cpu"))] and saved.iteration == SWEEP_ITERATIONS


def test_submission_says_the_array_and_where_its_logs_go(slurm_sweep):
    status, printed = slurm_sweep["steps"]["first"]
    assert status == 0
    submitted = launcher.SlurmSweep(slurm_sweep["runs_dir"]).submitted()
    array_id = submitted["F16_05_4"][0].split("_")[0]
    assert f"as job array {array_id} (4 tasks)" in printed
    log_folder = os.path.join(slurm_sweep["runs_dir"], "slurm", "submitit", f"{array_id}_0")
    assert f"logs: {log_folder}" in printed
    assert sorted(jobs[0] for jobs in submitted.values()) == [f"{array_id}_{task}" for task in range(4)]


def test_status_shows_queued_running_and_complete_runs(slurm_sweep):
    held = run_states(slurm_sweep["steps"]["held"][1])
    assert sorted(held) == sorted(f"{image}_05_4" for image in plan.FIGURE3_IMAGES)
    assert all(state == "queued" and rest.startswith(" (JobHeldUser)") for state, rest in held.values())
    seen = {}
    for display in slurm_sweep["displays"]:
        for ckpt, (state, rest) in run_states(display).items():
            seen.setdefault(ckpt, []).append((state, rest))
    for image in ("F16", "Peppers", "kodim03"):
        states = [state for state, _ in seen[f"{image}_05_4"]]
        # In the order a run goes through them, each seen at least once.
        assert {"queued", "running", "complete"} <= set(states), states
        assert states.index("queued") < states.index("running") < states.index("complete")
        complete = [rest for state, rest in seen[f"{image}_05_4"] if state == "complete"]
        assert all(rest.startswith(f", {SWEEP_ITERATIONS} it.") for rest in complete)


def test_a_failed_task_is_shown_with_its_reason_and_submitted_again(slurm_sweep):
    states = run_states(slurm_sweep["steps"]["failed"][1])
    state, reason = states.pop("Baboon_05_4")
    assert state == "failed" and "Baboon.png" in reason and "as an image" in reason, reason
    assert [state for state, _ in states.values()] == ["complete"] * 3, slurm_sweep["steps"]["failed"][1]
    status, printed = slurm_sweep["steps"]["again"]
    assert status == 0 and re.search(r"submitted 1 run to Slurm as job \d+: Baboon_05_4 \d+$", printed, re.M)
    assert len(launcher.SlurmSweep(slurm_sweep["runs_dir"]).submitted()["Baboon_05_4"]) == 2


@pytest.mark.parametrize("ckpt,signal_name", [("F16_05_4", "SIGTERM"), ("Peppers_05_4", "SIGUSR2")])
def test_a_task_requeued_or_warned_mid_run_resumes_bit_for_bit(slurm_sweep, one_process_sweep, ckpt, signal_name):
    job_id = slurm_sweep["jobs"][ckpt]
    assert slurm_sweep["records"][ckpt]["Restarts"] == "1"
    with open(os.path.join(slurm_sweep["runs_dir"], "slurm", "submitit", job_id, f"{job_id}_0_log.out")) as f:
        log = f.read()
    stopped = int(re.search(rf"stopped by {signal_name} after iteration (\d+); checkpoint saved", log).group(1))
    assert 20 <= stopped + 1 < SWEEP_ITERATIONS and f"resuming at iteration {stopped + 1} " in log
    resumed = RunState.load(RunFiles(slurm_sweep["runs_dir"], ckpt).checkpoint)
    uninterrupted = RunState.load(RunFiles(plan.runs_dir(Settings(resize=64, out_dir=str(one_process_sweep))),
                                           ckpt).checkpoint)
    assert resumed.iteration == uninterrupted.iteration == SWEEP_ITERATIONS
    assert_same_problem_state(resumed, uninterrupted)


def test_a_gpu_asked_of_a_cluster_without_is_one_line_and_exit_2(slurm_cluster, tmp_path, capsys,  # noqa: F811
                                                                   paper_data_dir):
    argv = [*TINY, "--launcher", "slurm", "--out_dir", tmp_path, "--data_dir", paper_data_dir]
    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpus_per_task 0" in err and "gres" in err
    submitit_folder = tmp_path / "runs" / "resize64" / "slurm" / "submitit"
    assert os.listdir(submitit_folder) == [] and not (submitit_folder.parent / "jobs.json").exists()


# --- without Slurm ---------------------------------------------------------------------------


def test_a_task_requeued_too_often_fails_and_keeps_its_checkpoint(tmp_path, monkeypatch):
    run = tiny_run(tmp_path, "a", num_iter=4, show_every=2)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    with pytest.raises(RunFailure, match="requeued 3 times, more than max_restarts 2"):
        launcher.RunTask(run, max_restarts=2)()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    threads = torch.get_num_threads()
    try:
        assert launcher.RunTask(run, max_restarts=2)()["iterations"] == 4
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("flags,named", [
    (["--gpus_per_task", "1", "--device", "cpu"], "--device cpu cannot be used"),
    (["--gpus_per_task", "0", "--threads", "2", "--cpus_per_task", "1"], "--threads 2 differs"),
    (["--sbatch", "time=10"], "--sbatch time is set by --time_min"),
    (["--sbatch", "=x"], "--sbatch takes KEY=VALUE"),
])
def test_launcher_settings_that_disagree_are_one_line(tmp_path, capsys, flags, named):
    argv = ["--figure", "3", "--launcher", "slurm", "--out_dir", str(tmp_path / "out"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags,named", [(["--partition", "gpu"], "--partition is for --launcher slurm"),
                                         (["--status"], "--status shows the state of Slurm jobs")])
def test_slurm_flags_need_the_slurm_launcher(tmp_path, capsys, flags, named):
    assert main(["--figure", "3", "--out_dir", str(tmp_path / "out"), *flags]) == 2
    assert named in capsys.readouterr().err


def test_local_jobs_take_one_run_per_device_and_stop_cleanly_on_ctrl_c(tmp_path):
    # Two CPU jobs stand in for two GPUs, one thread each as two processes on one CPU should be:
    # "a" and "b" are short, "c" waits for a device, then runs until a Ctrl-C (what a terminal
    # sends: SIGINT to the whole foreground process group, the sweep, submitit's controllers and
    # the runs' processes).
    runs = [tiny_run(tmp_path, "a", num_iter=3, show_every=1), tiny_run(tmp_path, "b", num_iter=3, show_every=1),
            tiny_run(tmp_path, "c", num_iter=100000)]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPOSITORY!r})
        from recovery import *
        from reproduction import launcher
        outcome = launcher.execute_in_local_jobs({runs!r}, ["cpu", "cpu"], log=lambda m: print(m, flush=True))
        print(outcome)
        sys.exit(130 if outcome.interrupted else 1)
        """)
    sweep_process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: sweep.run_state(runs[2])[1] >= 10, JOB_WAIT_S, "progress of c", interval_s=0.1)
        os.killpg(sweep_process.pid, signal.SIGINT)
        output, _ = sweep_process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep_process.pid, signal.SIGKILL)
    assert sweep_process.returncode == 130, output
    lines = output.splitlines()
    assert [sweep.run_state(run) for run in runs[:2]] == [(sweep.COMPLETE, 3)] * 2
    assert {"a: done", "b: done", "c: interrupted"} <= set(lines), output
    started = {line.split(":")[0]: index for index, line in enumerate(lines) if ": starting on cpu" in line}
    assert started["c"] > min(lines.index("a: done"), lines.index("b: done"))  # two at a time
    log_path = re.search(r"^c: starting on cpu \(log: (\S+)\)$", output, re.M).group(1)
    with open(log_path) as f:
        log = f.read()
    stopped = re.search(r"stopped by SIGTERM after iteration (\d+); checkpoint saved", log)
    # Saved where it stopped, not at an earlier logged iteration: it was stopped, not killed.
    assert stopped and sweep.run_state(runs[2]) == (sweep.PARTIAL, int(stopped.group(1)) + 1), log
    for run in runs:
        with open(RunFiles(run.out_dir, run.ckpt).args) as f:
            assert '"threads": 1' in f.read()
    with pytest.raises(ProcessLookupError):  # no job process is left
        os.killpg(sweep_process.pid, 0)


def test_runs_of_the_slurm_launcher_compute_where_their_task_is(tmp_path):
    run = dataclasses.replace(tiny_run("relative", "a", num_iter=4), device="auto", options=StepOptions())
    task_run = launcher.slurm_task_run(run, LaunchSettings(launcher="slurm", gpus_per_task=0, cpus_per_task=3))
    assert (task_run.device, task_run.options.threads) == ("cpu", 3) and os.path.isabs(task_run.out_dir)
    gpu_run = launcher.slurm_task_run(run, LaunchSettings(launcher="slurm"))
    assert (gpu_run.device, gpu_run.options.threads) == ("cuda", launcher.DEFAULT_TASK_CPUS)
    with pytest.raises(InputError, match="device"):
        LaunchSettings(launcher="slurm").task_device("mps")
