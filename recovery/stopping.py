"""Stopping a run cleanly: Ctrl-C and the termination signals ask the loop to stop after its
current iteration, so that the saved state is never half an update."""

import os
import signal

# SIGINT: Ctrl-C. SIGTERM: what kill, timeout, systemd, Docker and Slurm send first. SIGUSR1 and
# SIGUSR2: what batch schedulers send ahead of a time limit or a preemption.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class StopRequest:
    """``with StopRequest() as stop:`` turns the first stop signal into ``stop.requested`` (and
    ``stop.signal``, its number); a second one stops at once: Ctrl-C by KeyboardInterrupt, the
    others by the signal's own default action (the process ends with it).

    Outside the main thread signals cannot be caught, and this does nothing.
    """

    def __init__(self):
        self.signal = None
        self._previous = {}

    @property
    def requested(self):
        return self.signal is not None

    def describe(self):
        return "Ctrl-C" if self.signal == signal.SIGINT else signal.Signals(self.signal).name

    def __enter__(self):
        try:
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            self._previous = {}
        return self

    def _handle(self, signum, frame):
        if self.signal is None:
            self.signal = signum
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
