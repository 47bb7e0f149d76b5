"""One run as a submitit job, the same on a Slurm node and in a local job: started, or resumed
from its checkpoint, stopped cleanly by the scheduler's signals, requeued when warned."""

import os
import re
import signal

import submitit

from recovery import run_recovery
from recovery.stopping import STOP_SIGNALS
from utils.errors import RunFailure, signal_exit_status

from . import sweep

# The checkout holding this package: a job unpickles its task by reference to these modules, so a
# job's Python is given this folder on its PYTHONPATH.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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

    def __init__(self, spec, max_restarts):
        self.spec = spec
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
            raise SystemExit(signal_exit_status(stop_signal))
        state = sweep.load_state(self.spec)
        return {"ckpt": self.spec.ckpt, "iterations": state.iteration, "seconds": state.seconds,
                "devices": state.devices}

    def _run(self, restarts):
        """Bring the run to its end; the signal that stopped it first, or None."""
        spec = self.spec
        saved = sweep.saved_state(spec)  # read once: the run takes it as the state it resumes
        if sweep.is_finished(spec, saved):
            return None
        if restarts > self.max_restarts:
            raise RunFailure(f"requeued {restarts} times, more than `max_restarts` {self.max_restarts} (its "
                             f"checkpoint is kept, and the same command submits it again: best with a larger "
                             f"`time_min`)")
        start = "starting" if saved is None else f"resuming at iteration {saved.iteration:,}"
        _print(f"{spec.ckpt}: {start} on {spec.device}" + (f" (restart {restarts})" if restarts else ""))
        report = run_recovery(spec, resume=saved is not None, progress=False, log=_print, state=saved)
        if report.diverged:
            raise RunFailure(report.divergence)
        return None if report.state.reached(spec.config.num_iter) else report.stop_signal


class _StoppedBeforeRun(BaseException):
    """A stop signal that came while the task was preparing its run."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _stop_at_once(signum, frame):
    raise _StoppedBeforeRun(signum)


def _print(message):
    print(message, flush=True)


def error_line(text):
    """The last line of the traceback in the error of a failed task (submitit's message:
    ``InputError: image ... not found``), without the exception's module."""
    lines = [line for line in text.splitlines() if line.strip()]
    rules = [index for index, line in enumerate(lines) if set(line.strip()) == {"-"}]
    if len(rules) >= 2:  # submitit's message frames the traceback between two rules
        lines = lines[rules[0] + 1:rules[1]]
    last = lines[-1].strip() if lines else "unknown error"
    return re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=\w+:)", "", last)
