"""Bring a list of runs to completion, reusing what is done and resuming what was interrupted.

Every run is ``recovery.run_recovery`` writing ``<runs_dir>/<ckpt>_*``. Its checkpoint says how far
it got: at ``num_iter`` or beyond it is complete and left alone; short of it, it is resumed (bitwise
as if never stopped); without one, it is started.

With several visible GPUs and device ``auto`` or ``cuda``, one worker process per GPU takes runs
from a shared queue; otherwise runs go one after another in this process.
"""

import dataclasses
import multiprocessing
import os
import queue
import shlex

import torch

from recovery import RunFiles, RunState, run_recovery
from recovery.lock import RunInUse
from utils.errors import InputError, OutputError

MISSING, PARTIAL, COMPLETE = "not started", "partial", "complete"
DONE, INTERRUPTED = "done", "interrupted"  # what became of a run this sweep executed (or "failed: why")


def _saved_state(run):
    """The RunState of the RunSpec ``run``, or None; InputError if it belongs to another problem."""
    path = RunFiles(run.out_dir, run.ckpt).checkpoint
    if not os.path.exists(path):
        return None
    saved = RunState.load(path)
    try:
        run.config.with_absolute_paths().check_resumable(saved.config)
    except InputError as exc:
        raise InputError(f"{path} was made with other settings ({exc}); use another `out_dir`") from None
    return saved


def run_state(run):
    """``(state, iterations done)``, state one of MISSING, PARTIAL, COMPLETE."""
    saved = _saved_state(run)
    if saved is None:
        return MISSING, 0
    return (COMPLETE if saved.reached(run.config.num_iter) else PARTIAL), saved.iteration


def describe_progress(done, num_iter):
    """``1,500 of 3,000`` for a run short of its length; just ``3,000`` for one that reached it or
    went beyond (a longer run is reused for a shorter request: "300 of 100" would mislead)."""
    return f"{done:,}" if done >= num_iter else f"{done:,} of {num_iter:,}"


def load_result(run):
    """The run's RunState, or None if it has nothing to show yet (not started, or stopped before
    its first logged iteration)."""
    saved = _saved_state(run)
    return None if saved is None or saved.last is None else saved


def denoising_command(run, resume):
    """The ``denoising.py`` command line that does what the sweep does for ``run``."""
    return shlex.join(["python"] + run.to_argv(resume))


def worker_devices(device):
    """One device per worker: every visible GPU for ``auto``/``cuda`` when there are several, else
    just ``device``."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device]


def execute_run(run, resume, progress=True, log=print):
    """Start (or, with ``resume``, continue) one run to its ``num_iter``; returns ``INTERRUPTED``,
    ``DONE``, or a string starting with ``failed``."""
    try:
        report = run_recovery(run, resume=resume, progress=progress, log=log)
    except (OutputError, RunInUse) as exc:  # a full disk, another process: reported at the end, as in a worker
        return f"failed: {exc}"
    if report.interrupted:
        return INTERRUPTED
    return "failed: diverged (the loss became inf or nan)" if report.diverged else DONE


@dataclasses.dataclass
class SweepOutcome:
    executed: list  # ckpt names of the runs started or resumed
    reused: list  # ckpt names of the runs already complete
    interrupted: bool
    failures: list  # "ckpt: why" for runs that failed


def execute_runs(runs, progress=True, log=print):
    """Bring every run in ``runs`` to completion; returns a :class:`SweepOutcome`.

    In this process, the first Ctrl-C stops the current run after its current iteration (its
    checkpoint saved) and no further run is started.
    """
    todo, reused = [], []
    for run in runs:
        state, _ = run_state(run)
        if state == COMPLETE:
            reused.append(run.ckpt)
        else:
            todo.append((run, state == PARTIAL))
    for ckpt in reused:
        log(f"{ckpt}: complete, reused")
    devices = worker_devices(runs[0].device) if runs else []
    if len(devices) > 1 and len(todo) > 1:
        return _execute_in_workers(todo, devices, reused, log)
    executed, failures = [], []
    for number, (run, resume) in enumerate(todo, 1):
        log(f"[{number}/{len(todo)}] {run.ckpt}: {'resuming' if resume else 'starting'}")
        executed.append(run.ckpt)
        outcome = execute_run(run, resume, progress, log)
        if outcome == INTERRUPTED:
            return SweepOutcome(executed, reused, interrupted=True, failures=failures)
        if outcome != DONE:
            failures.append(f"{run.ckpt}: {outcome}")
    return SweepOutcome(executed, reused, interrupted=False, failures=failures)


def _worker(device, tasks, outcomes):
    """A worker process: runs tasks ``(run, resume)`` on ``device`` until the queue says stop."""
    try:
        while (task := tasks.get()) is not None:
            run, resume = task
            log = lambda message, ckpt=run.ckpt: print(f"[{device}] {ckpt}: {message}", flush=True)  # noqa: E731
            try:
                outcome = execute_run(dataclasses.replace(run, device=device), resume, progress=False, log=log)
            except Exception as exc:  # reported to the parent, which goes on with the other runs
                outcomes.put((run.ckpt, f"failed: {exc}"))
                continue
            outcomes.put((run.ckpt, outcome))
            if outcome == INTERRUPTED:
                return
    except KeyboardInterrupt:  # Ctrl-C between two runs: nothing to save
        return


def _execute_in_workers(todo, devices, reused, log):
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    tasks, outcomes = context.Queue(), context.Queue()
    for task in todo:
        tasks.put(task)
    for _ in devices:
        tasks.put(None)
    log(f"{len(todo)} runs on {len(devices)} workers: {', '.join(devices)}")
    workers = [context.Process(target=_worker, args=(device, tasks, outcomes)) for device in devices]
    for worker in workers:
        worker.start()
    reported, interrupted = {}, False
    try:
        while len(reported) < len(todo) and any(worker.is_alive() for worker in workers):
            try:
                ckpt, outcome = outcomes.get(timeout=1.0)
            except queue.Empty:
                continue
            reported[ckpt] = outcome
            log(f"{ckpt}: {outcome}")
    except KeyboardInterrupt:  # the workers got it too and are saving their runs
        interrupted = True
    for worker in workers:
        worker.join()
    while True:  # outcomes that arrived while joining
        try:
            ckpt, outcome = outcomes.get(timeout=0.1)
        except queue.Empty:
            break
        reported[ckpt] = outcome
    interrupted |= any(outcome == INTERRUPTED for outcome in reported.values())
    failures = [f"{ckpt}: {outcome}" for ckpt, outcome in reported.items() if outcome.startswith("failed")]
    if not interrupted:
        failures += [f"{run.ckpt}: worker exited before finishing it" for run, _ in todo if run.ckpt not in reported]
    return SweepOutcome([run.ckpt for run, _ in todo], reused, interrupted, failures)
