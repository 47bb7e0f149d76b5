"""A sweep on Slurm: the runs not complete go to one job array through submitit, a
``run_task.RunTask`` per run; the same command later shows where they stand and submits again
those neither complete nor queued nor running.

Files: ``<runs_dir>/slurm/jobs.json`` (``slurm_status.SlurmSweep``), submitit's pickles and the
tasks' logs in ``<runs_dir>/slurm/submitit/``.
"""

import contextlib
import dataclasses
import io
import os
import shlex

from recovery.lock import RunInUse, RunLock
from utils.errors import InputError

from .slurm_status import SlurmSweep
from .states import State

# SIGUSR2 this long before a task's time limit. One iteration and a checkpoint take well under a
# second on a GPU, and slurmctld looks at time limits every 30 s, so the warning comes in time.
WARNING_S = 90


def slurm_task_run(spec, launch):
    """The RunSpec ``spec`` as its Slurm task makes it: paths absolute (a task may start in
    another folder), the task's device and its CPUs as PyTorch threads."""
    config = spec.config.with_absolute_paths()
    options = dataclasses.replace(spec.options, threads=launch.task_cpus(spec.options.threads))
    return dataclasses.replace(spec, out_dir=os.path.abspath(spec.out_dir), device=launch.task_device(spec.device),
                               config=config, options=options)


def submit(jobs, specs, launch, log=print):
    """Submit the runs ``specs`` as one job array (a single job for one run) and record their jobs in
    ``jobs`` (a ``SlurmSweep``); returns the job ids.

    :raises InputError: Slurm is missing, or sbatch refused the array (a GPU asked of a cluster
        without, an unknown partition or account...); nothing was submitted then.
    """
    from submitit.core.utils import FailedJobError

    from .run_task import RunTask

    os.makedirs(jobs.submitit_folder, exist_ok=True)
    tasks = [RunTask(slurm_task_run(spec, launch), launch.max_restarts) for spec in specs]
    executor = _slurm_executor(jobs.submitit_folder, launch, len(specs), tasks[0].spec.options.threads)
    before = set(os.listdir(jobs.submitit_folder))
    # submitit writes sbatch's error to stderr, then raises it: the one line is ours.
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            submitted = executor.submit_array(tasks)
        except FailedJobError as exc:
            _remove_new_files(jobs.submitit_folder, before)  # the pickles of tasks never submitted
            raise InputError(_sbatch_refusal(str(exc), launch)) from None
    job_ids = [job.job_id for job in submitted]
    jobs.record([spec.ckpt for spec in specs], job_ids)
    array_id = job_ids[0].split("_")[0]
    what = f"job array {array_id} ({len(job_ids)} tasks)" if len(job_ids) > 1 else f"job {array_id}"
    log(f"submitted {len(job_ids)} run{'s' * (len(job_ids) > 1)} to Slurm as {what}: "
        f"{', '.join(f'{spec.ckpt} {job_id}' for spec, job_id in zip(specs, job_ids))}")
    log(f"logs: {submitted[0].paths.stdout} (and .err), one folder per task in {jobs.submitit_folder}/")
    log("the same command shows their state and, once every run is complete, draws the figures and the table")
    return job_ids


def run_on_slurm(specs, launch, runs_dir, submit_runs=True, log=print):
    """Show where every run stands and, with ``submit_runs``, submit those that are neither
    complete nor queued nor running as one job array. Returns True when every run is complete.

    A submission holds a lock on ``<runs_dir>/slurm/submit.lock`` from the state it reads to the
    record it writes, so that two commands never submit a run twice.
    """
    jobs = SlurmSweep(runs_dir)
    if not submit_runs:
        statuses = jobs.statuses(specs)
        jobs.show(statuses, log)
        return all(status.state is State.COMPLETE for status in statuses)
    os.makedirs(jobs.folder, exist_ok=True)
    try:
        with RunLock(os.path.join(jobs.folder, "submit.lock"), "submission"):
            statuses = jobs.statuses(specs)
            jobs.show(statuses, log)
            if waiting := [spec for spec, status in zip(specs, statuses) if status.needs_job]:
                submit(jobs, waiting, launch, log)
    except RunInUse as exc:
        raise InputError(f"another process is submitting the runs of {runs_dir} to Slurm ({exc})") from None
    return all(status.state is State.COMPLETE for status in statuses)


def _slurm_executor(folder, launch, count, cpus):
    import submitit  # optional: LaunchSettings.validate has made sure of it

    from .run_task import REPOSITORY

    try:
        executor = submitit.SlurmExecutor(folder=os.path.join(folder, "%j"), max_num_timeout=launch.max_restarts)
    except RuntimeError:  # submitit's check that srun is on the PATH
        raise InputError("`launcher` slurm needs Slurm's commands (sbatch, srun, squeue, scontrol); srun is "
                         "not found") from None
    executor.update_parameters(
        job_name="reproduce",
        partition=launch.partition,
        time=launch.time_min,
        cpus_per_task=cpus,
        gpus_per_node=launch.gpus_per_task or None,  # a task is a one-node job: per node is per task
        array_parallelism=launch.max_running or count,
        signal_delay_s=WARNING_S,
        setup=[f"export PYTHONPATH={shlex.quote(REPOSITORY)}${{PYTHONPATH:+:$PYTHONPATH}}"],
        additional_parameters=launch.sbatch_options(),
    )
    return executor


def _sbatch_refusal(error, launch):
    """One line for sbatch's refusal ``error`` (its stderr): its error lines, else all its lines
    but its advice to read its help."""
    lines = [line.strip() for line in error.splitlines() if line.strip() and not line.startswith("Try ")]
    reasons = [line for line in lines if "error" in line.lower()] or lines or ["no reason given"]
    if "Invalid generic resource (gres) specification" in error and launch.gpus_per_task:
        return (f"the cluster has no GPU for `gpus_per_task` {launch.gpus_per_task} (sbatch: Invalid generic "
                f"resource (gres) specification); on a cluster without GPUs pass `gpus_per_task` 0")
    return f"sbatch refused the job array: {'; '.join(reasons)}"


def _remove_new_files(folder, before):
    for name in set(os.listdir(folder)) - before:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)
