"""Runs as submitit jobs: a sweep as one Slurm job array (a task per run), or, on one machine with
several GPUs, one local job per GPU at a time.

Every job is a :class:`RunTask`: one run, resumed from its checkpoint if it has one, stopped
cleanly by the scheduler's signals (its checkpoint saved), requeued when warned. What was
submitted to Slurm is kept in ``<runs_dir>/slurm/jobs.json``, submitit's files and the tasks' logs
in ``<runs_dir>/slurm/submitit/``; the state of a run comes from its checkpoint and from Slurm's
``squeue`` and ``scontrol`` (submitit's own job states need Slurm accounting, which clusters may
not have).
"""

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
import signal
import subprocess
import time
import typing

import submitit
import torch
from submitit.core.utils import FailedJobError

from recovery import run_recovery
from recovery.lock import RunInUse, RunLock
from recovery.settings import check_at_least, check_choices, setting
from recovery.stopping import STOP_SIGNALS, StopRequest
from utils.atomic_files import printable_path, write_json
from utils.errors import InputError, RunFailure

from . import sweep

LAUNCHERS = ("local", "slurm")
# The checkout holding this package: a job unpickles its task by reference to these modules.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TASK_CPUS = 2
# SIGUSR2 this long before a task's time limit. One iteration and a checkpoint take well under a
# second on a GPU, and slurmctld looks at time limits every 30 s, so the warning comes in time.
WARNING_S = 90
SLURM_COMMAND_TIMEOUT_S = 60
# sbatch options the launcher sets itself (from its flags, or for submitit's files and signals).
RESERVED_SBATCH_OPTIONS = {
    "array": "max_running", "partition": "partition", "time": "time_min", "cpus-per-task": "cpus_per_task",
    "gpus-per-node": "gpus_per_task", "nodes": None, "output": None, "error": None, "open-mode": None,
    "signal": None,
}
QUEUED_SLURM_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD")
FAILED_SLURM_STATES = ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")
QUEUED, RUNNING, FAILED = "queued", "running", "failed"  # with sweep's MISSING, PARTIAL, COMPLETE
# submitit's LocalExecutor ends a job at its timeout (2 min unless told): a run may take hours.
LOCAL_TIMEOUT_MIN = 60 * 24 * 365
LOCAL_POLL_S = 0.2


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
    """Where the runs of a sweep compute: ``local`` (in this process, or one local job per visible
    GPU) or ``slurm`` (one Slurm job array, a task per run). Every other field is for ``slurm``."""

    launcher: str = setting("local", "local: runs in this process (one local job per GPU with several GPUs); "
                            "slurm: the runs not complete go to one Slurm job array, a task per run, and "
                            "the same command shows their state, then draws once all are complete", LAUNCHERS)
    partition: typing.Optional[str] = setting(None, "Slurm partition of the tasks (default: the cluster's default "
                                              "partition)")
    time_min: int = setting(120, "time limit of each Slurm task in minutes; a task warned of it saves its run, "
                            "requeues itself and resumes")
    gpus_per_task: int = setting(1, "GPUs of each Slurm task (its run computes on one); 0 on a cluster without "
                                 "GPUs (the run computes on the task's CPUs)")
    cpus_per_task: typing.Optional[int] = setting(None, "CPUs of each Slurm task, which are also its PyTorch "
                                                  f"threads (default: --threads if given, else {DEFAULT_TASK_CPUS})")
    max_running: typing.Optional[int] = setting(None, "at most N tasks of the array run at once (default: no "
                                                "limit but the cluster's)")
    max_restarts: int = setting(10, "a Slurm task requeued more than N times (time limits, preemptions) fails")
    sbatch: typing.Tuple[str, ...] = setting((), "an extra sbatch option KEY=VALUE (account=NAME, qos=NAME, "
                                             "constraint=a100, mem=32G) or KEY alone for a flag (hold); "
                                             "may be repeated")

    def validate(self, settings):
        """InputError naming the first bad value, or one that disagrees with the sweep's
        ``settings`` (a ``plan.Settings``): its device and threads."""
        check_choices(self)
        check_at_least(self, 1, "time_min")
        check_at_least(self, 0, "gpus_per_task", "max_restarts")
        for name in ("cpus_per_task", "max_running"):
            if getattr(self, name) is not None:
                check_at_least(self, 1, name)
        self.sbatch_options()
        if self.launcher == "slurm":
            self.task_device(settings.device)
            self.task_cpus(settings.options.threads)

    def task_device(self, device):
        """The device of a Slurm task's run: its GPU, or its CPUs without one. InputError if the
        sweep's ``device`` setting asks for another."""
        wanted = "cuda" if self.gpus_per_task else "cpu"
        if device not in ("auto", wanted) and not (wanted == "cuda" and device == "cuda:0"):
            where = "its GPU" if self.gpus_per_task else "its CPUs"
            raise InputError(f"`device` {device} cannot be used with `launcher` slurm and `gpus_per_task` "
                             f"{self.gpus_per_task}: each task computes on {where} (`device` auto or {wanted})")
        return wanted

    def task_cpus(self, threads):
        """The CPUs (and PyTorch threads) of each task; ``threads`` is the sweep's setting."""
        if self.cpus_per_task is not None and threads is not None and threads != self.cpus_per_task:
            raise InputError(f"`threads` {threads} differs from `cpus_per_task` {self.cpus_per_task}: a Slurm "
                             f"task's PyTorch threads are its CPUs (give one of them)")
        return self.cpus_per_task or threads or DEFAULT_TASK_CPUS

    def sbatch_options(self):
        """``{option: value}`` of the ``sbatch`` entries (``True`` for a bare KEY), option names
        as sbatch spells them (``cpus-per-task``); InputError for a malformed or reserved one."""
        options = {}
        for entry in self.sbatch:
            key, has_value, value = entry.partition("=")
            key = key.strip().lstrip("-").replace("_", "-")
            if not re.fullmatch(r"[a-z][a-z0-9-]*", key) or (has_value and not value):
                raise InputError(f"`sbatch` takes KEY=VALUE or KEY (an sbatch option without its dashes), "
                                 f"not '{entry}'")
            if key in RESERVED_SBATCH_OPTIONS:
                flag = RESERVED_SBATCH_OPTIONS[key]
                raise InputError(f"`sbatch` {key} is set by " + (f"`{flag}`" if flag else "the launcher itself"))
            options[key] = value if has_value else True
        return options


class RunTask(submitit.helpers.Checkpointable):
    """One run as a submitit job (a Slurm task or a local job): started, or resumed from its
    checkpoint, up to its ``num_iter``.

    A stop signal (``recovery.stopping.STOP_SIGNALS``) makes the run save its checkpoint and the
    job end without a result, so that it is not over for submitit: on SIGUSR2, the scheduler's
    warning of a time limit or a preemption, the job first requeues itself; on SIGTERM
    (``scontrol requeue``, a cancel, a preemption) Slurm requeues it if that was the reason. A
    stop signal while the task prepares its run ends it at once (nothing is written then); a
    warning that comes before the task is called reaches submitit's handler, which calls
    :meth:`checkpoint` (this very task, which resumes) and requeues. A failed run (a bad image,
    divergence, a run in use, more than ``max_restarts`` requeues) raises, and submitit records
    the error. Returns ``{"ckpt", "iterations", "seconds", "devices"}`` of the complete run.
    """

    def __init__(self, run, max_restarts):
        self.run = run
        self.max_restarts = max_restarts

    def __call__(self):
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        # Until run_recovery catches them itself (after its checks), and submitit's handlers
        # would let the run go on to its end (SIGTERM is only logged).
        handlers = {signum: signal.signal(signum, _stop_at_once) for signum in STOP_SIGNALS}
        try:
            stop_signal = self._run(restarts)
        except _StoppedBeforeRun as stopped:
            stop_signal = stopped.signum
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if stop_signal is not None:  # the run's checkpoint, if it has one, is saved
            if stop_signal == signal.SIGUSR2:
                # scontrol requeue of this array task on Slurm, a rerun under the LocalExecutor:
                # submitit's own requeue for each of them (private, but fixed by the pin <1.6).
                submitit.JobEnvironment()._requeue(self.max_restarts - restarts)
            raise SystemExit(128 + stop_signal)
        saved = sweep.load_result(self.run)
        return {"ckpt": self.run.ckpt, "iterations": saved.iteration, "seconds": saved.seconds,
                "devices": saved.devices}

    def _run(self, restarts):
        """Bring the run to its end; the signal that stopped it first, or None."""
        run = self.run
        state, done = sweep.run_state(run)
        if state == sweep.COMPLETE:
            return None
        if restarts > self.max_restarts:
            raise RunFailure(f"requeued {restarts} times, more than `max_restarts` {self.max_restarts} (its "
                             f"checkpoint is kept, and the same command submits it again: best with a larger "
                             f"`time_min`)")
        start = f"resuming at iteration {done:,}" if state == sweep.PARTIAL else "starting"
        _print(f"{run.ckpt}: {start} on {run.device}" + (f" (restart {restarts})" if restarts else ""))
        report = run_recovery(run, resume=state == sweep.PARTIAL, progress=False, log=_print)
        if report.diverged:
            raise RunFailure("diverged: the loss became inf or nan (learning rates too large?)")
        return None if report.state.reached(run.config.num_iter) else report.stop_signal


class _StoppedBeforeRun(BaseException):
    """A stop signal that came while the task was preparing its run."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _stop_at_once(signum, frame):
    raise _StoppedBeforeRun(signum)


def _print(message):
    print(message, flush=True)


# --- Slurm ---------------------------------------------------------------------------------------


def slurm_task_run(run, launch):
    """The RunSpec ``run`` as its Slurm task makes it: paths absolute (a task may start in
    another folder), the task's device and its CPUs as PyTorch threads."""
    config = run.config.with_absolute_paths()
    options = dataclasses.replace(run.options, threads=launch.task_cpus(run.options.threads))
    return dataclasses.replace(run, out_dir=os.path.abspath(run.out_dir), device=launch.task_device(run.device),
                               config=config, options=options)


@dataclasses.dataclass
class RunStatus:
    """Where one run stands: ``state`` is QUEUED, RUNNING, FAILED or one of sweep's MISSING,
    PARTIAL and COMPLETE; ``done`` its iterations (from its checkpoint); ``job_id`` its last
    Slurm job (``<array>_<task>``) or None; ``detail`` Slurm's reason for a queued task, the error
    of a failed one, what ended a job that left no result; ``log`` the log to read, or None."""

    ckpt: str
    state: str
    done: int
    num_iter: int
    job_id: typing.Optional[str] = None
    detail: str = ""
    log: typing.Optional[str] = None

    @property
    def needs_job(self):
        """Neither complete nor queued nor running: the next submission includes it."""
        return self.state not in (sweep.COMPLETE, QUEUED, RUNNING)

    def describe(self):
        progress = sweep.describe_progress(self.done, self.num_iter) + " it."
        if self.state == sweep.COMPLETE:
            return f"complete, {progress}"
        if self.state == RUNNING:
            return "running" + (f" ({self.detail})" if self.detail != "RUNNING" else "") + f", {progress}"
        if self.state == QUEUED:
            reason = f" ({self.detail})" if self.detail not in ("", "None") else ""
            return f"queued{reason}" + (f", {progress} done" if self.done else "")
        if self.state == FAILED:
            return f"failed: {self.detail}"
        text = f"partial, {progress}" if self.state == sweep.PARTIAL else sweep.MISSING
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

    def statuses(self, runs):
        """A :class:`RunStatus` per run, from the checkpoints and from Slurm."""
        submitted = self.submitted()
        queue = queued_tasks() if submitted else {}
        return [self._status(run, (submitted.get(run.ckpt) or [None])[-1], queue) for run in runs]

    def _status(self, run, job_id, queue):
        state, done = sweep.run_state(run)
        status = RunStatus(run.ckpt, state, done, run.config.num_iter, job_id)
        if job_id is None:
            return status
        job = submitit.SlurmJob(os.path.join(self.submitit_folder, "%j"), job_id)
        status.log = str(job.paths.stdout)
        if job_id in queue:
            slurm_state, reason = queue[job_id]
            status.state = QUEUED if slurm_state in QUEUED_SLURM_STATES else RUNNING
            status.detail = reason if status.state == QUEUED else slurm_state
            return status
        if state == sweep.COMPLETE:
            return status
        if job.paths.result_pickle.exists():
            error = job.exception()
            if error is not None:
                status.state, status.detail, status.log = FAILED, error_line(str(error)), str(job.paths.stderr)
            return status
        # No result: the job died, was cancelled, or Slurm has forgotten it (MinJobAge).
        record = job_record(job_id)
        slurm_state = record.get("JobState", "")
        if slurm_state in FAILED_SLURM_STATES:
            last = _last_line(job.paths.stderr)
            status.state, status.log = FAILED, str(job.paths.stderr)
            status.detail = f"Slurm {slurm_state}, exit code {record.get('ExitCode', '?')}"
            status.detail += f": {last}" if last else ""
        else:
            status.detail = f"job {job_id} ended without a result" + (f": Slurm {slurm_state}" if slurm_state else "")
        return status

    def show(self, statuses, log=print):
        log(f"{len(statuses)} runs in {self.runs_dir}/, Slurm jobs in {self.submitit_folder}/:")
        for status in statuses:
            job = f"job {status.job_id}" if status.job_id else ""
            log(f"  {status.ckpt:<24} {status.describe():<40} {job}".rstrip())
            if status.state == FAILED and status.log:
                log(f"  {'':<24} log: {status.log}")
        counts = {}
        for status in statuses:
            counts[status.state] = counts.get(status.state, 0) + 1
        log(", ".join(f"{count} {state}" for state, count in counts.items()))

    def submit(self, runs, launch, log=print):
        """Submit ``runs`` as one job array (a single job for one run); returns the job ids.

        :raises InputError: Slurm is missing, or sbatch refused the array (a GPU asked of a
            cluster without, an unknown partition or account...); nothing was submitted then.
        """
        os.makedirs(self.submitit_folder, exist_ok=True)
        tasks = [RunTask(slurm_task_run(run, launch), launch.max_restarts) for run in runs]
        executor = _slurm_executor(self.submitit_folder, launch, len(runs), tasks[0].run.options.threads)
        before = set(os.listdir(self.submitit_folder))
        # submitit writes sbatch's error to stderr, then raises it: the one line is ours.
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                jobs = executor.submit_array(tasks)
            except FailedJobError as exc:
                _remove_new_files(self.submitit_folder, before)  # the pickles of tasks never submitted
                raise InputError(_sbatch_refusal(str(exc), launch)) from None
        submitted = self.submitted()
        for run, job in zip(runs, jobs):
            submitted.setdefault(run.ckpt, []).append(job.job_id)
        write_json(self.jobs_path, {"jobs": submitted})
        array_id = jobs[0].job_id.split("_")[0]
        what = f"job array {array_id} ({len(jobs)} tasks)" if len(jobs) > 1 else f"job {array_id}"
        log(f"submitted {len(jobs)} run{'s' * (len(jobs) > 1)} to Slurm as {what}: "
            f"{', '.join(f'{run.ckpt} {job.job_id}' for run, job in zip(runs, jobs))}")
        log(f"logs: {jobs[0].paths.stdout} (and .err), one folder per task in {self.submitit_folder}/")
        log("the same command shows their state and, once every run is complete, draws the figures and the table")
        return [job.job_id for job in jobs]


def run_on_slurm(runs, launch, runs_dir, submit=True, log=print):
    """Show where every run stands and, with ``submit``, submit those that are neither complete
    nor queued nor running as one job array. Returns True when every run is complete.

    A submission holds a lock on ``<runs_dir>/slurm/submit.lock`` from the state it reads to the
    record it writes, so that two commands never submit a run twice.
    """
    jobs = SlurmSweep(runs_dir)
    if not submit:
        statuses = jobs.statuses(runs)
        jobs.show(statuses, log)
        return all(status.state == sweep.COMPLETE for status in statuses)
    os.makedirs(jobs.folder, exist_ok=True)
    try:
        with RunLock(os.path.join(jobs.folder, "submit.lock"), "submission"):
            statuses = jobs.statuses(runs)
            jobs.show(statuses, log)
            if waiting := [run for run, status in zip(runs, statuses) if status.needs_job]:
                jobs.submit(waiting, launch, log)
    except RunInUse as exc:
        raise InputError(f"another process is submitting the runs of {runs_dir} to Slurm ({exc})") from None
    return all(status.state == sweep.COMPLETE for status in statuses)


def _slurm_executor(folder, launch, count, cpus):
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
    """One line for sbatch's refusal ``error`` (its stderr)."""
    reasons = [line.strip() for line in error.splitlines() if "error" in line.lower()] or [error.strip()]
    if "Invalid generic resource (gres) specification" in error and launch.gpus_per_task:
        return (f"the cluster has no GPU for `gpus_per_task` {launch.gpus_per_task} (sbatch: Invalid generic "
                f"resource (gres) specification); on a cluster without GPUs pass `gpus_per_task` 0")
    return f"sbatch refused the job array: {'; '.join(reasons)}"


def _remove_new_files(folder, before):
    for name in set(os.listdir(folder)) - before:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)


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


def error_line(text):
    """The last line of the traceback in a submitit error (``InputError: image ... not found``),
    without the exception's module."""
    lines = [line for line in text.splitlines() if line.strip()]
    rules = [index for index, line in enumerate(lines) if set(line.strip()) == {"-"}]
    if len(rules) >= 2:  # submitit's message frames the traceback between two rules
        lines = lines[rules[0] + 1:rules[1]]
    last = lines[-1].strip() if lines else "unknown error"
    return re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=\w+:)", "", last)


def _last_of(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            return _last_of(f.read()[-4096:])
    except OSError:
        return ""


# --- local jobs, one per GPU -------------------------------------------------------------------


def local_job_devices(device):
    """One device per local job at a time: every visible GPU for ``auto``/``cuda`` when there are
    several, else just ``device`` (and runs stay in this process)."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device]


def _physical_gpu(device):
    """The index CUDA_VISIBLE_DEVICES gives a job to make it see the GPU ``device`` (``cuda:K``,
    numbered among this process's visible GPUs) as its only one; None for a CPU."""
    if not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return index
    entries = [entry.strip() for entry in visible.split(",")]
    if not all(entry.isdigit() for entry in entries):
        raise InputError("CUDA_VISIBLE_DEVICES names GPUs by UUID: give them by index to share the runs among "
                         "them, or run on one (`device` cuda:N)")
    return int(entries[index])


@contextlib.contextmanager
def _starting_local_job():
    """What a local job inherits while it starts: this checkout on its PYTHONPATH (its task is
    unpickled by reference to this package), and SIGINT blocked. A Ctrl-C in the terminal then
    reaches this process alone, which stops every job with one SIGTERM; reaching submitit's
    controller of a job, it would SIGINT and then SIGKILL the job's run a second later."""
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = REPOSITORY + ("" if path is None else os.pathsep + path)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = path


def _start_local_job(executor, run, gpu):
    """Submit ``run`` as a local job that sees the GPU ``gpu`` (CUDA_VISIBLE_DEVICES's index), or
    none and computes on the CPU when ``gpu`` is None."""
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, gpus_per_node=0 if gpu is None else 1,
                               visible_gpus=[] if gpu is None else [gpu])
    task = RunTask(dataclasses.replace(run, device="cpu" if gpu is None else "cuda"), LaunchSettings().max_restarts)
    with _starting_local_job():
        return executor.submit(task)


def _local_outcome(job, stopped):
    """DONE, INTERRUPTED or ``failed: why`` of a local job that has ended."""
    if job.paths.result_pickle.exists():
        error = job.exception()
        return sweep.DONE if error is None else f"failed: {error_line(str(error))}"
    if stopped:
        return sweep.INTERRUPTED
    return f"failed: the job ended without a result (log: {job.paths.stderr})"


def execute_in_local_jobs(runs, devices, progress=True, log=print):
    """Bring every run to completion as local jobs (submitit's LocalExecutor), at most one per
    device of ``devices`` (``cuda:K``, or ``cpu`` for a CPU standing in for a GPU) at a time;
    returns a ``sweep.SweepOutcome``. With at most one run to make, it runs in this process.

    The first stop signal (Ctrl-C, SIGTERM...) starts no further job and stops the running ones,
    which save their checkpoints; a second one stops this process at once.
    """
    todo, reused = sweep.split_runs(runs)
    if len(todo) <= 1:
        return sweep.execute_runs(runs, progress, log)
    gpus = [_physical_gpu(device) for device in devices]  # a device that cannot be given fails before any job
    for ckpt in reused:
        log(f"{ckpt}: complete, reused")
    folder = os.path.join(os.path.abspath(todo[0][0].out_dir), "local")
    executor = submitit.LocalExecutor(folder=os.path.join(folder, "%j"))
    log(f"{len(todo)} runs as local jobs, one at a time on each of {', '.join(devices)}; logs in {folder}/")
    waiting, free, running, outcomes = list(todo), list(zip(devices, gpus)), {}, {}
    stopped = False
    with StopRequest() as stop:
        while running or (waiting and not stop.requested):
            while waiting and free and not stop.requested:
                (run, resume), (device, gpu) = waiting.pop(0), free.pop(0)
                job = _start_local_job(executor, run, gpu)
                running[job] = run, (device, gpu)
                log(f"{run.ckpt}: {'resuming' if resume else 'starting'} on {device} (log: {job.paths.stdout})")
            if stop.requested and not stopped:
                stopped = True
                for job in running:
                    if not job.done():  # alive, so its id (the controller's pid) is still its own
                        os.kill(int(job.job_id), signal.SIGTERM)  # which the controller passes on to the run
            for job in [job for job in running if job.done()]:
                run, slot = running.pop(job)
                free.append(slot)
                outcomes[run.ckpt] = _local_outcome(job, stopped)
                log(f"{run.ckpt}: {outcomes[run.ckpt]}")
            time.sleep(LOCAL_POLL_S)
    failures = [f"{ckpt}: {outcome}" for ckpt, outcome in outcomes.items() if outcome.startswith("failed")]
    return sweep.SweepOutcome([ckpt for ckpt in outcomes], reused, stopped, failures)

