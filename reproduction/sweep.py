"""Bring a list of runs to completion, reusing what is done and resuming what was interrupted.

Every run is ``recovery.run_recovery`` writing ``<runs_dir>/<ckpt>_*``. Its checkpoint says how far
it got: at ``num_iter`` or beyond it is complete and left alone (but resumed, which writes them
again, when an image file of its end was deleted); short of it, it is resumed (on the CPU bit for
bit as if never stopped; on a GPU the same mathematics, not the same bits: docs/running.md);
without one, it is started. A run that fails (a full disk, another process holding it, too large
for the memory) is one failure with its reason, and the other runs go on.

Here runs go one after another in this process; ``local_jobs`` and ``slurm_launch`` give them to
submitit jobs instead (one local job per GPU, or a Slurm job array), each of which runs one through
:func:`run_state` and ``run_recovery`` as well (``run_task``).
"""

import dataclasses
import os
import shlex

from recovery import RunFiles, RunState, run_recovery
from utils.atomic_files import printable_path
from utils.errors import InputError, OutputError, RunFailure

from .states import DONE, STOPPED, Outcome, State


def saved_state(spec):
    """The RunState of the RunSpec ``spec``, or None; InputError if it belongs to another problem."""
    path = RunFiles(spec.out_dir, spec.ckpt).checkpoint
    if not os.path.exists(path):
        return None
    saved = RunState.load(path)
    try:
        spec.config.with_absolute_paths().check_resumable(saved.config)
    except InputError as exc:
        raise InputError(f"{path} was made with other settings ({exc}); use another `out_dir`") from None
    return saved


def run_state(spec):
    """``(state, iterations done)``, state a ``State``: MISSING, PARTIAL or COMPLETE."""
    saved = saved_state(spec)
    if saved is None:
        return State.MISSING, 0
    return (State.COMPLETE if saved.reached(spec.config.num_iter) else State.PARTIAL), saved.iteration


def is_finished(spec, saved):
    """Whether the run ``spec``, whose RunState is ``saved`` (None: not started), has nothing left
    to do: complete, and every image file of its end on disk (resuming a complete run writes a
    deleted one again)."""
    return saved is not None and saved.reached(spec.config.num_iter) and not images_missing(spec, saved)


def images_missing(spec, saved):
    """True when ``saved`` (the RunState of the run ``spec``) has images to show and one of the image files
    its end writes is missing (deleted by hand): resuming the run writes them again."""
    if saved is None or saved.last is None:
        return False
    files = RunFiles(spec.out_dir, spec.ckpt)
    expected = [files.last, files.panel] + [files.final] * (saved.final is not None)
    expected += [files.refined] * (saved.refined is not None)
    expected += [files.impulses, files.mask] * spec.config.has_corruption_term
    return not all(os.path.exists(path) for path in expected)


def describe_progress(done, num_iter):
    """``1,500 of 3,000`` for a run short of its length; just ``3,000`` for one that reached it or
    went beyond (a longer run is reused for a shorter request: "300 of 100" would mislead)."""
    return f"{done:,}" if done >= num_iter else f"{done:,} of {num_iter:,}"


def load_state(spec):
    """The run's RunState, or None if it has nothing to show yet (not started, or stopped before
    its first logged iteration)."""
    saved = saved_state(spec)
    return None if saved is None or saved.last is None else saved


def denoising_command(spec, resume):
    """The ``denoising.py`` command line that does what the sweep does for the run ``spec``."""
    return shlex.join(["python"] + spec.to_argv(resume))


def execute_run(spec, resume, progress=True, log=print, check_memory=True):
    """Start (or, with ``resume``, continue) one run to its ``num_iter``; returns its
    ``states.Outcome``: DONE, STOPPED or a failure with its reason (settings named as flags)."""
    try:
        report = run_recovery(spec, resume=resume, progress=progress, log=log, check_memory=check_memory)
    except OutputError as exc:  # a full disk: reported at the end, and the other runs go on
        return Outcome.failed(str(exc))
    except (InputError, RunFailure) as exc:  # another process holds it, it does not fit in memory...
        return Outcome.failed(exc.for_command_line())
    if report.interrupted:
        return STOPPED
    return Outcome.failed(report.divergence) if report.diverged else DONE


@dataclasses.dataclass
class SweepOutcome:
    executed: list  # ckpt names of the runs started or resumed
    reused: list  # ckpt names of the runs already complete
    interrupted: bool
    failures: dict  # {ckpt: states.Outcome} of the runs that failed


def split_runs(specs):
    """``(todo, reused)``: ``todo`` the ``(spec, resume)`` of every run not complete, or complete
    but short of an image file (resumed, it writes them again), ``reused`` the ckpt names of those
    complete."""
    todo, reused = [], []
    for spec in specs:
        saved = saved_state(spec)
        if is_finished(spec, saved):
            reused.append(spec.ckpt)
        else:
            todo.append((spec, saved is not None))
    return todo, reused


def execute_runs(specs, progress=True, log=print, check_memory=True):
    """Bring every run of ``specs`` to completion in this process, one after another; returns a
    :class:`SweepOutcome`.

    The first Ctrl-C stops the current run after its current iteration (its checkpoint saved)
    and no further run is started.
    """
    todo, reused = split_runs(specs)
    for ckpt in reused:
        log(f"{printable_path(ckpt)}: complete, reused")
    executed, failures = [], {}
    for number, (spec, resume) in enumerate(todo, 1):
        log(f"[{number}/{len(todo)}] {printable_path(spec.ckpt)}: {'resuming' if resume else 'starting'}")
        executed.append(spec.ckpt)
        outcome = execute_run(spec, resume, progress, log, check_memory)
        if outcome == STOPPED:
            return SweepOutcome(executed, reused, interrupted=True, failures=failures)
        if outcome.is_failure:
            failures[spec.ckpt] = outcome
    return SweepOutcome(executed, reused, interrupted=False, failures=failures)
