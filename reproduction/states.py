"""Where a run of a sweep stands, and what became of a run the sweep executed.

A run's :class:`State` comes from its checkpoint (MISSING, PARTIAL, COMPLETE) and, for a run given
to Slurm, from its job (QUEUED, RUNNING, FAILED). An :class:`Outcome` is what one execution of a
run ended in: DONE, INTERRUPTED (its checkpoint saved, the same command resumes it) or FAILED, with
the reason beside it.
"""

import dataclasses
import enum


class State(enum.Enum):
    """Where a run stands; the value is how the state displays write it."""

    MISSING = "not started"
    PARTIAL = "partial"
    COMPLETE = "complete"
    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"


class Ending(enum.Enum):
    """How one execution of a run ended."""

    DONE = "done"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one execution of a run ended in: ``ending``, and for FAILED the ``reason`` (one line:
    ``diverged (the loss became inf or nan)``). ``str()`` is the line logged for it: ``done``,
    ``interrupted``, ``failed: <reason>``."""

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


DONE = Outcome(Ending.DONE)
INTERRUPTED = Outcome(Ending.INTERRUPTED)
