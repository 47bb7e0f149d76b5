"""Tests of the private Slurm cluster (slurm_cluster.py), and of the behaviours of submitit 1.5 on
it that the Slurm launcher relies on: job arrays and where their files go, how a failure or a
death is reported without accounting, what a GPU request gives on a CPU cluster, and the
preemption-safe task (PreemptibleCounter below) resuming after a warning signal, an
`scontrol requeue` and the scheduler's own signal before a time limit. The last tests cover
submitit's LocalExecutor, which needs no Slurm.
"""

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import (
    processes_with_environ,
    require_module,
    slurm_cluster,  # noqa: F401 (the fixture)
    start_cluster,
    wait_for,
    wait_for_done,
)

UNIT_S = 0.2


def _save_count(path, count):
    # Written whole and renamed: a reader (the resumed task) never sees half a number.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(str(count))
    os.replace(partial, path)


class PreemptibleCounter:
    """A preemption-safe task: counts from the count saved in `count_path` (0 when there is none)
    up to `total`, one unit of work (unit_s seconds) at a time, saving the count after each unit.

    On SIGUSR2 (the warning before a time limit, or of a preemption) it ends its current unit,
    saves, requeues itself and exits; on SIGTERM (Slurm cancelling, requeueing or timing it out)
    it ends its current unit, saves and exits. Its log gets 'start <count> restart <n>' and
    'stop <count> <signal name>' lines. Returns `total`.
    """

    def __init__(self, count_path, total, unit_s=UNIT_S):
        self.count_path = Path(count_path)
        self.total = total
        self.unit_s = unit_s

    def __call__(self):
        import submitit

        # Installed over submitit's own handlers, which would run in the middle of a unit.
        received = []
        for signum in (signal.SIGUSR2, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: received.append(signum))
        count = int(self.count_path.read_text()) if self.count_path.exists() else 0
        print(f"start {count} restart {os.environ.get('SLURM_RESTART_COUNT', 0)}", flush=True)
        while count < self.total and not received:
            time.sleep(self.unit_s)
            count += 1
            _save_count(self.count_path, count)
        if received:
            print(f"stop {count} {signal.Signals(received[0]).name}", flush=True)
            if signal.SIGUSR2 in received:
                # scontrol requeue on Slurm; exit status 144 (rerun) under the LocalExecutor.
                submitit.JobEnvironment()._requeue(0)
            # No result file: the job is not over.
            raise SystemExit(128 + received[0])
        return count

    def checkpoint(self, *args, **kwargs):
        """What submitit's own SIGUSR2 handler resubmits when the warning comes before __call__
        installs ours: the same call, which resumes from the saved count."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def square(value):
    return value * value


def square_or_fail(value):
    """value squared for 0; raises ValueError for 1; kills its own process (exit status 3, no
    result file) for 2."""
    if value == 1:
        raise ValueError(f"bad item {value}")
    if value == 2:
        os._exit(3)
    return value * value


def process_facts(unused_item):
    """{'pid', 'cuda_visible_devices', 'start', 'end'} of a job that sleeps 1 s (times from
    time.time())."""
    start = time.time()
    time.sleep(1)
    return {
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "start": start,
        "end": time.time(),
    }


@pytest.fixture(scope="module")
def submitit():
    """submitit, with this module's functions pickled by value: a job's Python cannot import
    this test module by name."""
    module = require_module("submitit")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield module
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _slurm_executor(submitit, cluster, name, **parameters):
    executor = submitit.AutoExecutor(folder=cluster.job_folder(name) / "%j")
    executor.update_parameters(slurm_partition=cluster.partition, **parameters)
    return executor


def _alive(pid):
    """Whether process `pid` exists and is not a zombie waiting for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _log_lines(job, marker):
    return [line for line in job.stdout().splitlines() if line.startswith(marker)]


# --- the cluster itself


@pytest.mark.parametrize(
    "ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_a_missing_prerequisite_skips_except_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no such module"):
        require_module("no such module")


def test_node_offers_every_cpu_and_no_gpu(slurm_cluster):
    record = slurm_cluster.command("scontrol", "-o", "show", "node", slurm_cluster.node_name)
    fields = dict(token.partition("=")[::2] for token in record.split())
    assert int(fields["CPUTot"]) == os.cpu_count()
    assert fields["Gres"] == "(null)"
    assert slurm_cluster.command("sinfo", "-h", "-o", "%P").strip() == slurm_cluster.partition + "*"


def test_jobs_asking_for_no_memory_run_side_by_side(slurm_cluster):
    folder = slurm_cluster.job_folder("side-by-side")
    # Each job prints when it starts and ends (seconds since the epoch).
    script = "date +%s.%N; sleep 3; date +%s.%N"
    job_ids = [
        slurm_cluster.command(
            "sbatch", "--parsable", f"--output={folder}/%j.out", "--wrap", script
        ).strip()
        for _ in range(slurm_cluster.cpus)
    ]
    slurm_cluster.wait_until_no_jobs(timeout_s=30)
    spans = [[float(t) for t in (folder / f"{name}.out").read_text().split()] for name in job_ids]
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, f"the jobs ran one after the other: {spans}"


def test_a_second_cluster_runs_beside_the_first_and_stop_ends_all_of_it(slurm_cluster):
    second, processes = start_cluster()
    marker = f"SLURM_CONF={second.conf_path}"
    try:
        assert second.conf_path != slurm_cluster.conf_path
        output = second.job_folder("sleep") / "%j.out"
        job_id = second.command("sbatch", "--parsable", f"--output={output}", "--wrap", "sleep 300")
        job_id = job_id.strip()
        wait_for(lambda: second.queued_jobs().get(job_id) == "RUNNING", 30, f"running job {job_id}")
        # The daemons, slurmstepd and the job's own processes.
        started = processes_with_environ(marker)
        assert set(processes.pids.values()) < set(started)
        assert slurm_cluster.node_state() == "idle"
    finally:
        processes.stop()
    assert not processes_with_environ(marker)
    wait_for(lambda: not any(map(_alive, started)), 10, "end of the second cluster's processes")
    assert not second.root.exists()
    assert slurm_cluster.node_state() == "idle"


# --- submitit on the cluster: arrays, files, outcomes


def test_map_array_runs_every_task_and_a_job_rebuilt_from_its_id_reads_the_result(
    submitit, slurm_cluster
):
    executor = _slurm_executor(
        submitit,
        slurm_cluster,
        "map-array",
        timeout_min=5,
        cpus_per_task=1,
        gpus_per_node=0,
        slurm_array_parallelism=3,
        # Without accounting Slurm accepts and ignores an account and a QOS.
        slurm_additional_parameters={"account": "any", "qos": "any"},
    )
    jobs = executor.map_array(square, [1, 2, 3])
    wait_for_done(jobs, timeout_s=60)
    array_id = jobs[0].job_id.split("_")[0]
    assert [job.job_id for job in jobs] == [f"{array_id}_{task}" for task in range(3)]
    folder = executor.folder.parent
    script = (folder / array_id / f"{array_id}_submission.sh").read_text()
    assert "#SBATCH --array=0-2%3" in script
    assert "#SBATCH --signal=USR2@90" in script
    for task, job in enumerate(jobs):
        task_folder = folder / f"{array_id}_{task}"
        assert job.paths.stdout == task_folder / f"{array_id}_{task}_0_log.out"
        assert job.paths.stderr == task_folder / f"{array_id}_{task}_0_log.err"
        assert job.paths.result_pickle == task_folder / f"{array_id}_{task}_0_result.pkl"
        assert job.result() == (task + 1) ** 2
        assert job.exception() is None
        # submitit reads states from sacct only; with no accounting it never knows one.
        assert job.state == "UNKNOWN"
        rebuilt = submitit.SlurmJob(folder / "%j", job.job_id)
        assert rebuilt.done()
        assert rebuilt.result() == (task + 1) ** 2


@pytest.fixture(scope="module")
def outcome_jobs(submitit, slurm_cluster):
    """The three tasks of square_or_fail([0, 1, 2]) as one array, once they have left the queue."""
    executor = _slurm_executor(submitit, slurm_cluster, "outcomes", timeout_min=5)
    jobs = executor.map_array(square_or_fail, [0, 1, 2])
    array_id = jobs[0].job_id.split("_")[0]
    wait_for(
        lambda: not any(name.startswith(array_id + "_") for name in slurm_cluster.queued_jobs()),
        60,
        f"end of array {array_id}",
    )
    return jobs


def test_a_task_that_raises_is_failed_with_its_traceback(outcome_jobs, submitit, slurm_cluster):
    succeeded, raised, _ = outcome_jobs
    assert succeeded.result() == 0
    assert slurm_cluster.job_record(succeeded.job_id)["JobState"] == "COMPLETED"
    error = raised.exception()
    assert isinstance(error, submitit.core.utils.FailedJobError)
    assert "ValueError: bad item 1" in str(error)
    with pytest.raises(submitit.core.utils.FailedJobError, match="bad item 1"):
        raised.result()
    record = slurm_cluster.job_record(raised.job_id)
    assert (record["JobState"], record["ExitCode"]) == ("FAILED", "1:0")
    assert raised.stderr().splitlines()[-1].endswith("task 0: Exited with exit code 1")


def test_a_task_that_dies_is_never_done_for_submitit_without_accounting(
    outcome_jobs, slurm_cluster
):
    died = outcome_jobs[2]
    record = slurm_cluster.job_record(died.job_id)
    assert (record["JobState"], record["ExitCode"]) == ("FAILED", "3:0")
    # No result file and no sacct: the launcher must ask squeue/scontrol itself.
    assert not died.done(force_check=True)
    assert died.state == "UNKNOWN"


@pytest.mark.parametrize("gpu_request", [{"gpus_per_node": 1}, {"slurm_gpus_per_task": 1}])
def test_a_gpu_request_fails_at_submission_on_a_cpu_cluster(submitit, slurm_cluster, gpu_request):
    executor = _slurm_executor(submitit, slurm_cluster, "gpu", timeout_min=1, **gpu_request)
    with pytest.raises(
        submitit.core.utils.FailedJobError, match=r"Invalid generic resource \(gres\) specification"
    ):
        executor.submit(square, 2)


# --- the preemption-safe task


def test_preemptible_tasks_resume_after_a_warning_signal_and_after_scontrol_requeue(
    submitit, slurm_cluster
):
    total = 40
    executor = _slurm_executor(submitit, slurm_cluster, "requeue", timeout_min=5)
    count_paths = [executor.folder.parent / f"count-{task}" for task in range(2)]
    with executor.batch():
        jobs = [executor.submit(PreemptibleCounter(path, total)) for path in count_paths]
    for path in count_paths:
        wait_for(lambda: path.exists() and int(path.read_text()) >= 5, 30, f"5 units in {path}")
    # What a preemption warning does; what an administrator's or a preemption's requeue does.
    slurm_cluster.command("scancel", "--signal=USR2", jobs[0].job_id)
    slurm_cluster.command("scontrol", "requeue", jobs[1].job_id)
    wait_for_done(jobs, timeout_s=60)
    for job, signal_name in zip(jobs, ["SIGUSR2", "SIGTERM"]):
        assert job.result() == total
        assert slurm_cluster.job_record(job.job_id)["Restarts"] == "1"
        (stop,) = _log_lines(job, "stop ")
        stopped_at = int(stop.split()[1])
        assert 5 <= stopped_at < total
        assert stop.split()[2] == signal_name
        assert _log_lines(job, "start ") == ["start 0 restart 0", f"start {stopped_at} restart 1"]
        # Our handler, not submitit's, took the warning.
        assert "Caught signal SIGUSR2" not in job.stdout()


def test_scheduler_signals_before_the_time_limit_and_the_task_resumes(submitit, slurm_cluster):
    # With --time=1 and USR2@55 the warning comes at slurmctld's first 30 s time-limit check, so
    # within 30 s of the start: more units than that make sure the first run gets it.
    total = int(31 / UNIT_S)
    executor = _slurm_executor(
        submitit, slurm_cluster, "time-limit", timeout_min=1, slurm_signal_delay_s=55
    )
    count_path = executor.folder.parent / "count"
    job = executor.submit(PreemptibleCounter(count_path, total))
    script = job.paths.submission_file.read_text()
    assert "#SBATCH --time=1" in script and "#SBATCH --signal=USR2@55" in script
    wait_for(
        lambda: slurm_cluster.job_record(job.job_id).get("Restarts") == "1",
        45,
        f"requeue of job {job.job_id}",
    )
    # The resumed run gets more time, so that the next check does not warn it again.
    slurm_cluster.command("scontrol", "update", f"JobId={job.job_id}", "TimeLimit=5")
    wait_for_done([job], timeout_s=60)
    assert job.result() == total
    (stop,) = _log_lines(job, "stop ")
    stopped_at = int(stop.split()[1])
    assert stop.split()[2] == "SIGUSR2"
    assert _log_lines(job, "start ") == ["start 0 restart 0", f"start {stopped_at} restart 1"]


# --- submitit's LocalExecutor (no Slurm)


def test_local_executor_runs_each_job_in_its_own_process_with_the_gpu_it_is_given(
    submitit, tmp_path
):
    executor = submitit.LocalExecutor(folder=tmp_path / "%j")
    jobs = []
    for gpu in range(3):
        executor.update_parameters(timeout_min=1, gpus_per_node=1, visible_gpus=[gpu])
        jobs.append(executor.submit(process_facts, gpu))
    facts = [job.result() for job in jobs]
    assert max(fact["start"] for fact in facts) < min(fact["end"] for fact in facts)
    assert len({fact["pid"] for fact in facts} | {os.getpid()}) == 4
    assert [fact["cuda_visible_devices"] for fact in facts] == ["0", "1", "2"]


def test_local_executor_map_array_gives_every_job_the_same_gpus(submitit, tmp_path):
    executor = submitit.LocalExecutor(folder=tmp_path / "%j")
    executor.update_parameters(timeout_min=1, gpus_per_node=1, visible_gpus=[0, 1, 2])
    jobs = executor.map_array(process_facts, range(3))
    assert [job.result()["cuda_visible_devices"] for job in jobs] == ["0", "0", "0"]


def test_local_executor_warns_before_its_timeout_and_reruns_a_requeued_task(submitit, tmp_path):
    total = 30
    executor = submitit.LocalExecutor(folder=tmp_path / "%j")
    # SIGUSR2 3 s after each start, 3 s before the 6 s timeout: 6 s of work takes 3 runs.
    executor.update_parameters(timeout_min=0.1, signal_delay_s=3)
    job = executor.submit(PreemptibleCounter(tmp_path / "count", total))
    wait_for_done([job], timeout_s=40)
    assert job.result() == total
    stops = _log_lines(job, "stop ")
    starts = _log_lines(job, "start ")
    assert len(stops) >= 1 and len(starts) == len(stops) + 1
    assert all(line.split()[2] == "SIGUSR2" for line in stops)
    # Each run starts where the one before stopped.
    stopped_at = [int(line.split()[1]) for line in stops]
    assert [int(line.split()[1]) for line in starts] == [0] + stopped_at
