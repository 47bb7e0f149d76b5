"""Where each run given to Slurm stands: the record of the jobs submitted
(``<runs_dir>/slurm/jobs.json``), read beside the runs' checkpoints and what Slurm says of each job.

States come from ``squeue`` and ``scontrol show job`` and from submitit's result files: submitit's
own job states need Slurm accounting (``sacct``), which clusters may not have.
"""

import dataclasses
import json
import os
import subprocess
import typing

from utils.atomic_files import printable_path, write_json
from utils.errors import InputError

from . import sweep
from .states import State

SLURM_COMMAND_TIMEOUT_S = 60
QUEUED_SLURM_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD")
FAILED_SLURM_STATES = ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")


@dataclasses.dataclass
class RunStatus:
    """Where one run stands: ``state`` a ``State``; ``done`` its iterations (from its checkpoint);
    ``job_id`` its last Slurm job (``<array>_<task>``) or None; ``detail`` Slurm's reason for a
    queued task, the error of a failed one, what ended a job that left no result; ``log`` the log
    to read, or None."""

    ckpt: str
    state: State
    done: int
    num_iter: int
    job_id: typing.Optional[str] = None
    detail: str = ""
    log: typing.Optional[str] = None

    @property
    def needs_job(self):
        """Neither complete nor queued nor running: the next submission includes it."""
        return self.state not in (State.COMPLETE, State.QUEUED, State.RUNNING)

    def describe(self):
        progress = sweep.describe_progress(self.done, self.num_iter) + " it."
        if self.state is State.COMPLETE:
            return f"complete, {progress}"
        if self.state is State.RUNNING:
            return "running" + (f" ({self.detail})" if self.detail != "RUNNING" else "") + f", {progress}"
        if self.state is State.QUEUED:
            reason = f" ({self.detail})" if self.detail not in ("", "None") else ""
            return f"queued{reason}" + (f", {progress} done" if self.done else "")
        if self.state is State.FAILED:
            return f"failed: {self.detail}"
        text = f"partial, {progress}" if self.state is State.PARTIAL else self.state.value
        return text + (f" ({self.detail})" if self.detail else "")


class SlurmSweep:
    """The Slurm jobs of the runs in one runs folder: what was submitted (``jobs.json``), where
    submitit keeps its files, and the state of each run."""

    def __init__(self, runs_dir):
        self.runs_dir = runs_dir
        self.folder = os.path.join(os.path.abspath(runs_dir), "slurm")
        self.jobs_path = os.path.join(self.folder, "jobs.json")
        self.submitit_folder = os.path.join(self.folder, "submitit")

    def submitted(self):
        """``{ckpt: [Slurm job ids, the last one current]}``, {} before the first submission."""
        try:
            with open(self.jobs_path) as f:
                return json.load(f)["jobs"]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read {printable_path(self.jobs_path)} ({exc}); move it away to start the "
                             f"record of submitted jobs again") from None

    def record(self, ckpts, job_ids):
        """Add the job ``job_ids[i]`` of run ``ckpts[i]`` to ``jobs.json``, each now its run's current job."""
        submitted = self.submitted()
        for ckpt, job_id in zip(ckpts, job_ids):
            submitted.setdefault(ckpt, []).append(job_id)
        write_json(self.jobs_path, {"jobs": submitted})

    def statuses(self, specs):
        """A :class:`RunStatus` per run, from the checkpoints and from Slurm."""
        submitted = self.submitted()
        queue = queued_tasks() if submitted else {}
        return [self._status(spec, (submitted.get(spec.ckpt) or [None])[-1], queue) for spec in specs]

    def _status(self, spec, job_id, queue):
        state, done = sweep.run_state(spec)
        status = RunStatus(spec.ckpt, state, done, spec.config.num_iter, job_id)
        if job_id is None:
            return status
        import submitit  # optional: LaunchSettings.validate has made sure of it

        from .run_task import error_line

        job = submitit.SlurmJob(os.path.join(self.submitit_folder, "%j"), job_id)
        status.log = str(job.paths.stdout)
        if job_id in queue:
            slurm_state, reason = queue[job_id]
            status.state = State.QUEUED if slurm_state in QUEUED_SLURM_STATES else State.RUNNING
            status.detail = reason if status.state is State.QUEUED else slurm_state
            return status
        if state is State.COMPLETE:
            return status
        if job.paths.result_pickle.exists():
            error = job.exception()
            if error is not None:
                status.state, status.detail, status.log = State.FAILED, error_line(str(error)), str(job.paths.stderr)
            return status
        # No result: the job died, was cancelled, or Slurm has forgotten it (MinJobAge).
        record = job_record(job_id)
        slurm_state = record.get("JobState", "")
        if slurm_state in FAILED_SLURM_STATES:
            last = _last_line(job.paths.stderr)
            status.state, status.log = State.FAILED, str(job.paths.stderr)
            status.detail = f"Slurm {slurm_state}, exit code {record.get('ExitCode', '?')}"
            status.detail += f": {last}" if last else ""
        else:
            status.detail = f"job {job_id} ended without a result" + (f": Slurm {slurm_state}" if slurm_state else "")
        return status

    def show(self, statuses, log=print):
        """Log a line per run (its state, its job; the log of a failed one) and the count of each state."""
        log(f"{len(statuses)} runs in {self.runs_dir}/, Slurm jobs in {self.submitit_folder}/:")
        for status in statuses:
            job = f"job {status.job_id}" if status.job_id else ""
            log(f"  {status.ckpt:<24} {status.describe():<40} {job}".rstrip())
            if status.state is State.FAILED and status.log:
                log(f"  {'':<24} log: {status.log}")
        counts = {}
        for status in statuses:
            counts[status.state] = counts.get(status.state, 0) + 1
        log(", ".join(f"{count} {state.value}" for state, count in counts.items()))


def slurm_command(*args):
    """Run a Slurm client command; its ``subprocess.CompletedProcess``. InputError if Slurm's
    commands are missing or the controller does not answer."""
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=SLURM_COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise InputError(f"`launcher` slurm needs Slurm's commands; {args[0]} is not found") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{args[0]} did not answer in {SLURM_COMMAND_TIMEOUT_S} s (is Slurm's controller "
                         f"up?)") from None


def queued_tasks():
    """``{job id: (state, reason)}`` of this user's jobs that Slurm has not finished (pending,
    running, completing...), array tasks as ``<array>_<task>``."""
    done = slurm_command("squeue", "--me", "--noheader", "--array", "--format=%i|%T|%r")
    if done.returncode:
        raise InputError(f"squeue failed: {_last_of(done.stderr) or f'exit status {done.returncode}'}")
    tasks = {}
    for line in done.stdout.splitlines():
        if line.count("|") == 2:
            job_id, state, reason = line.strip().split("|")
            tasks[job_id] = (state, reason)
    return tasks


def job_record(job_id):
    """The fields of ``scontrol show job`` (``{"JobState": "FAILED", "ExitCode": "1:0", ...}``);
    {} for a job Slurm no longer knows (it forgets finished jobs after MinJobAge, 300 s)."""
    done = slurm_command("scontrol", "--oneliner", "show", "job", job_id)
    fields = {}
    if done.returncode == 0:
        for token in done.stdout.split():
            key, _, value = token.partition("=")
            fields.setdefault(key, value)
    return fields


def _last_of(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            return _last_of(f.read()[-4096:])
    except OSError:
        return ""
