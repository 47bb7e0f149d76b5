"""reproduction.slurm_launch, with slurm_status and run_task, on the real single-node Slurm of
tests/slurm_cluster.py (slow: the full suite only): a sweep submitted as one job array, its state
shown while it goes (queued, running, complete, failed with its reason), a task requeued mid-run
(SIGTERM) and one warned mid-run (SIGUSR2) resuming bit for bit, a failed run submitted again, the
figures and table drawn once every run is complete, equal to those of one process, and a GPU asked
of a cluster without or an sbatch option sbatch refuses refused in one line. Everything on the CPU, on scikit-image samples under the
paper's file names, at 64 px and width 4, one thread per task. Where a task's run computes is
checked without Slurm.
"""

import contextlib
import csv
import dataclasses
import io
import os
import pathlib
import re
import subprocess

import pytest
import torch
from slurm_cluster import wait_for

from recovery import RunFiles, RunState, StepOptions, describe_device
from reproduce import main
from reproduction import plan
from reproduction.launch_settings import DEFAULT_TASK_CPUS, LaunchSettings
from reproduction.slurm_launch import WARNING_S, slurm_task_run
from reproduction.slurm_status import SlurmSweep, job_record, queued_tasks
from same_run import assert_same_problem_state
from sweep_helpers import tiny_run
from tiny import RESIZE, tiny_flags
from utils.errors import InputError

SWEEP_ITERATIONS = 300  # long enough (seconds) for a signal to reach a run mid-run
# The device is the launcher's; progress is watched in the checkpoints.
SLURM_SWEEP = ["--figure", "3", "--num_iter", str(SWEEP_ITERATIONS), "--show_every", "10",
               *tiny_flags(image=None, device=None), "--threads", "1", "--checkpoint_seconds", "0"]
ON_SLURM = ["--launcher", "slurm", "--gpus_per_task", "0"]
JOB_WAIT_S = 120
STATUS_LINE = re.compile(r"^  (\S+)\s+(complete|running|queued|failed|partial|not started)\b(.*)$")
RUNS = [f"{image}_05_4" for image in plan.FIGURE3_IMAGES]


def command_output(argv):
    """``(exit status, what main printed)`` of ``reproduce.py argv``."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([str(arg) for arg in argv])
    return status, printed.getvalue()


def run_states(status_text):
    """``{ckpt: (state, rest of its line)}`` from a status display."""
    return {match.group(1): (match.group(2), match.group(3))
            for match in map(STATUS_LINE.match, status_text.splitlines()) if match}


def table_without_times(path):
    """results.csv without its wall-time column."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    seconds = rows[0].index("seconds")
    return [row[:seconds] + row[seconds + 1:] for row in rows]


def iterations_done(runs_dir, ckpt):
    path = RunFiles(runs_dir, ckpt).checkpoint
    return RunState.load(path).iteration if os.path.exists(path) else 0


def task_log(runs_dir, job_id):
    return pathlib.Path(runs_dir, "slurm", "submitit", job_id, f"{job_id}_0_log.out")


@pytest.fixture(scope="module")
def one_process_sweep(sample_data_dir, classical_results, tmp_path_factory):
    """``reproduce.py --figure 3`` at SLURM_SWEEP in this process: what the Slurm sweep must equal."""
    threads = torch.get_num_threads()  # --threads 1 sets this process's
    out_dir = tmp_path_factory.mktemp("one-process") / "figures"
    classical_results(out_dir)
    try:
        status, _ = command_output([*SLURM_SWEEP, "--device", "cpu", "--out_dir", out_dir, "--data_dir", sample_data_dir])
    finally:
        torch.set_num_threads(threads)
    assert status == 0
    return out_dir


@pytest.fixture(scope="module")
def slurm_sweep(slurm_cluster, sample_data_dir, classical_results, one_process_sweep,
                tmp_path_factory):
    """The same sweep through the Slurm launcher, with what can happen on the way.

    Submitted held, so that it is queued for sure. Baboon's image is garbage while the array
    runs, then repaired. F16 is requeued mid-run (``scontrol requeue``: SIGTERM, as an
    administrator or a preemption does) and Peppers warned mid-run (SIGUSR2, as before a time
    limit). Once the array is over, the same command resubmits Baboon alone and then, all four
    runs complete, draws. Returns what each step printed, the status displays seen meanwhile,
    and the job of each run.
    """
    out_dir = tmp_path_factory.mktemp("slurm") / "figures"
    classical_results(out_dir)
    argv = [*SLURM_SWEEP, *ON_SLURM, "--out_dir", out_dir, "--data_dir", sample_data_dir]
    runs_dir = plan.runs_dir(plan.Settings(resize=RESIZE, out_dir=str(out_dir)))
    steps, displays = {}, []

    steps["first"] = command_output([*argv, "--sbatch", "hold"])
    steps["held"] = command_output([*argv, "--status"])
    displays.append(steps["held"][1])
    jobs = {ckpt: ids[-1] for ckpt, ids in SlurmSweep(runs_dir).submitted().items()}
    baboon = pathlib.Path(sample_data_dir, "Baboon.png")
    image = baboon.read_bytes()
    try:
        baboon.write_bytes(b"garbage, not an image")
        slurm_cluster.command("scontrol", "release", jobs["F16_05_4"].split("_")[0])
        warned, requeued = "Peppers_05_4", "F16_05_4"  # tasks 1 and 0: the first two to start
        wait_for(lambda: iterations_done(runs_dir, warned) >= 20, JOB_WAIT_S, "progress", interval_s=0.1)
        displays.append(command_output([*argv, "--status"])[1])
        # scancel retries while the job is in transition, which it is once it requeues itself, and
        # would signal the restarted task again: it is stopped once its signal is in.
        warning = subprocess.Popen([slurm_cluster.programs["scancel"], "--signal=USR2", jobs[warned]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # At once, not after the warned run has stopped: the other run is as short and must be
            # mid-run when its signal comes.
            wait_for(lambda: iterations_done(runs_dir, requeued) >= 20, JOB_WAIT_S, "progress", interval_s=0.1)
            slurm_cluster.command("scontrol", "requeue", jobs[requeued])
            wait_for(lambda: "stopped by SIGUSR2" in task_log(runs_dir, jobs[warned]).read_text(), JOB_WAIT_S,
                     "stop of the warned run", interval_s=0.1)
        finally:
            warning.terminate()
            warning.wait()

        def array_done():
            displays.append(command_output([*argv, "--status"])[1])
            return not queued_tasks()

        wait_for(array_done, JOB_WAIT_S, "end of the array", interval_s=0.3)
        steps["failed"] = command_output([*argv, "--status"])
        displays.append(steps["failed"][1])  # the runs that ended since the last display
    finally:
        baboon.write_bytes(image)  # the session's image, which other tests read
    steps["again"] = command_output(argv)
    slurm_cluster.wait_until_no_jobs(JOB_WAIT_S)
    steps["drawn"] = command_output(argv)
    records = {ckpt: job_record(job_id) for ckpt, job_id in jobs.items()}
    return {"steps": steps, "displays": displays, "out_dir": out_dir, "runs_dir": runs_dir, "jobs": jobs,
            "records": records}


@pytest.mark.slow
def test_a_sweep_as_an_array_draws_what_one_process_draws(slurm_sweep, one_process_sweep):
    status, printed = slurm_sweep["steps"]["drawn"]
    assert status == 0 and "wrote " in printed
    assert [state for state, _ in run_states(printed).values()] == ["complete"] * 4
    out_dir = slurm_sweep["out_dir"]
    assert (out_dir / "figure3.png").read_bytes() == (one_process_sweep / "figure3.png").read_bytes()
    assert table_without_times(out_dir / "results.csv") == table_without_times(one_process_sweep / "results.csv")
    for ckpt in RUNS:
        saved = RunState.load(RunFiles(slurm_sweep["runs_dir"], ckpt).checkpoint)
        assert saved.devices == [describe_device(torch.device("cpu"))] and saved.iteration == SWEEP_ITERATIONS


@pytest.mark.slow
def test_submission_is_one_array_warned_before_its_time_limit(slurm_sweep):
    status, printed = slurm_sweep["steps"]["first"]
    assert status == 0
    submitted = SlurmSweep(slurm_sweep["runs_dir"]).submitted()
    array_id = submitted["F16_05_4"][0].split("_")[0]
    assert f"as job array {array_id} (4 tasks)" in printed
    log_folder = os.path.join(slurm_sweep["runs_dir"], "slurm", "submitit", f"{array_id}_0")
    assert f"logs: {log_folder}" in printed
    assert sorted(jobs[0] for jobs in submitted.values()) == [f"{array_id}_{task}" for task in range(4)]
    script = pathlib.Path(slurm_sweep["runs_dir"], "slurm", "submitit", array_id, f"{array_id}_submission.sh")
    lines = script.read_text().splitlines()
    assert {"#SBATCH --array=0-3%4", f"#SBATCH --signal=USR2@{WARNING_S}", "#SBATCH --hold",
            "#SBATCH --cpus-per-task=1", "#SBATCH --time=120"} <= set(lines)


@pytest.mark.slow
def test_status_shows_queued_running_and_complete_runs(slurm_sweep):
    held = run_states(slurm_sweep["steps"]["held"][1])
    assert sorted(held) == sorted(RUNS)
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


@pytest.mark.slow
def test_a_failed_task_is_shown_with_its_reason_and_submitted_again(slurm_sweep):
    states = run_states(slurm_sweep["steps"]["failed"][1])
    state, reason = states.pop("Baboon_05_4")
    assert state == "failed" and "Baboon.png" in reason and "as an image" in reason, reason
    assert [state for state, _ in states.values()] == ["complete"] * 3, slurm_sweep["steps"]["failed"][1]
    status, printed = slurm_sweep["steps"]["again"]
    assert status == 0 and re.search(r"submitted 1 run to Slurm as job \d+: Baboon_05_4 \d+$", printed, re.M)
    assert len(SlurmSweep(slurm_sweep["runs_dir"]).submitted()["Baboon_05_4"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("ckpt,signal_name", [("F16_05_4", "SIGTERM"), ("Peppers_05_4", "SIGUSR2")])
def test_a_task_requeued_or_warned_mid_run_resumes_bit_for_bit(slurm_sweep, one_process_sweep, ckpt, signal_name):
    job_id = slurm_sweep["jobs"][ckpt]
    assert slurm_sweep["records"][ckpt]["Restarts"] == "1"
    log = task_log(slurm_sweep["runs_dir"], job_id).read_text()
    stopped = int(re.search(rf"stopped by {signal_name} after iteration (\d+); checkpoint saved", log).group(1))
    assert 20 <= stopped + 1 < SWEEP_ITERATIONS and f"resuming at iteration {stopped + 1} " in log
    assert "Caught signal" not in log  # the run's own handler took the signal, not submitit's
    resumed = RunState.load(RunFiles(slurm_sweep["runs_dir"], ckpt).checkpoint)
    uninterrupted_dir = plan.runs_dir(plan.Settings(resize=RESIZE, out_dir=str(one_process_sweep)))
    uninterrupted = RunState.load(RunFiles(uninterrupted_dir, ckpt).checkpoint)
    assert resumed.iteration == uninterrupted.iteration == SWEEP_ITERATIONS
    assert_same_problem_state(resumed, uninterrupted)


@pytest.mark.slow
def test_a_gpu_asked_of_a_cluster_without_is_one_line_and_exit_2(slurm_cluster, tmp_path, capsys,
                                                                   sample_data_dir):
    argv = [*SLURM_SWEEP, "--launcher", "slurm", "--out_dir", tmp_path, "--data_dir", sample_data_dir]
    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpus_per_task 0" in err and "gres" in err
    submitit_folder = tmp_path / "runs" / f"resize{RESIZE}" / "slurm" / "submitit"
    assert os.listdir(submitit_folder) == [] and not (submitit_folder.parent / "jobs.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("entry,reason", [
    ("acount=me", "sbatch: unrecognized option '--acount=me'"),
    ("hold=yes", "sbatch: option '--hold' doesn't allow an argument"),
    ("mem-per=1G", "sbatch: option '--mem-per=1G' is ambiguous; possibilities: '--mem-per-cpu' '--mem-per-gpu'"),
])
def test_an_sbatch_option_sbatch_refuses_is_its_one_line_and_exit_2(slurm_cluster, tmp_path, capsys,
                                                                   sample_data_dir, entry, reason):
    argv = [*SLURM_SWEEP, *ON_SLURM, "--sbatch", entry, "--out_dir", tmp_path, "--data_dir", sample_data_dir]
    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err == f"reproduce.py: error: sbatch refused the job array: {reason}\n", err
    submitit_folder = tmp_path / "runs" / f"resize{RESIZE}" / "slurm" / "submitit"
    assert os.listdir(submitit_folder) == [] and not (submitit_folder.parent / "jobs.json").exists()


def test_runs_of_the_slurm_launcher_compute_where_their_task_is():
    spec = dataclasses.replace(tiny_run("relative", "a", num_iter=4), device="auto", options=StepOptions())
    task_spec = slurm_task_run(spec, LaunchSettings(launcher="slurm", gpus_per_task=0, cpus_per_task=3))
    assert (task_spec.device, task_spec.options.threads) == ("cpu", 3) and os.path.isabs(task_spec.out_dir)
    gpu_spec = slurm_task_run(spec, LaunchSettings(launcher="slurm"))
    assert (gpu_spec.device, gpu_spec.options.threads) == ("cuda", DEFAULT_TASK_CPUS)
    with pytest.raises(InputError, match="device"):
        LaunchSettings(launcher="slurm").task_device("mps")
