"""Where a run of a sweep stands, and what became of a run the sweep executed.

A run's :class:`State` comes from its checkpoint (MISSING, PARTIAL, COMPLETE) and, for a run given
to Slurm, from its job (QUEUED, RUNNING, FAILED). An :class:`Outcome` is what one execution of a
run ended in: DONE, STOPPED (by a stop signal, its checkpoint saved: the same command resumes it)
or FAILED, with the reason beside it; its lines are worded here alone.
"""

import dataclasses
import enum

from utils.atomic_files import printable_path


class State(enum.Enum):
    """Where a run stands; the value is how the state displays write it."""

    MISSING = "not started"
    PARTIAL = "partial"
    COMPLETE = "complete"
    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"


class Ending(enum.Enum):
    """How one execution of a run ended; the value is how its line writes it."""

    DONE = "done"
    STOPPED = "interrupted"  # the word of the sweep's own closing line when a stop signal ends it
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one execution of a run ended in: ``ending``, and for FAILED the ``reason`` (one line:
    ``diverged: the loss is nan at iteration 3 (learning rates too large?)``). ``str()`` says it:
    ``done``, ``interrupted``, ``failed: <reason>``; :meth:`line` says it of a run."""

    ending: Ending
    reason: str = ""

    @classmethod
    def failed(cls, reason):
        return cls(Ending.FAILED, reason)

    @property
    def is_failure(self):
        return self.ending is Ending.FAILED

    def __str__(self):
        return f"failed: {self.reason}" if self.is_failure else self.ending.value

    def line(self, ckpt):
        """The line logged for the run named ``ckpt``: ``<ckpt>: done``, ``<ckpt>: failed: <reason>``..."""
        return f"{printable_path(ckpt)}: {self}"


DONE = Outcome(Ending.DONE)
STOPPED = Outcome(Ending.STOPPED)
