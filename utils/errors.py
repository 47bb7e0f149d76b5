"""The failures a script reports in one line: bad user input (and the argument parser that reports
it), and an output that could not be written."""

import argparse
import re
import signal
import sys

# A setting named in an InputError's message, written `name` as a word of its own: a Python caller
# reads ``name``, the command line ``--name``. Backquotes inside a word (a file name) stay.
_SETTING_NAME = re.compile(r"(?:(?<=^)|(?<=[\s(]))`([a-z][a-z0-9_]*)`(?=$|[\s,;:.)])")


def one_line(text):
    """``text`` with every character that is not printable escaped (a newline as ``\\n``, a byte
    of a file name that is not UTF-8 as ``\\udcff``), so that a message quoting any value stays
    one line that any terminal prints."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class NamesSettings:
    """An exception whose message marks the settings it names with backquotes
    (```width` must be at least 1``): ``str()`` gives them as the Python names (``width must be
    at least 1``), :meth:`for_command_line` as flags (``--width must be at least 1``)."""

    def __str__(self):
        return _SETTING_NAME.sub(r"\1", super().__str__())

    def for_command_line(self):
        return _SETTING_NAME.sub(r"--\1", super().__str__())


class InputError(NamesSettings, ValueError):
    """Bad user input (a missing file, a value out of range). The CLI prints it as one line and
    exits with status 2; library callers can catch it like any ValueError."""


class OutputError(OSError):
    """An output file could not be written (a full disk, a quota): the message names the file. The
    file of that name, if there was one, is as it was. The CLI prints it as one line and exits
    with status 1."""


class RunFailure(NamesSettings, RuntimeError):
    """A run could not go on (its device ran out of memory); its last checkpoint is intact. The
    CLI prints it as one line and exits with status 1."""


EXPECTED_FAILURES = (InputError, OutputError, RunFailure, KeyboardInterrupt)


def signal_exit_status(signum):
    """The exit status of a process stopped by signal ``signum`` (1 to 64): 128 + its number, as
    the shell reports a process that a signal ended, so that a caller's ``$?`` reads the same
    whether the process died of the signal or stopped cleanly on it (130 for Ctrl-C)."""
    return 128 + signum


INTERRUPTED = signal_exit_status(signal.SIGINT)  # 130: Ctrl-C


def report_failure(prog, exc, kept):
    """Write the one line a script gives for ``exc``, one of ``EXPECTED_FAILURES``, and return the
    exit status: 2 for bad input (nothing was touched), 1 for an output that could not be written
    or a run that could not go on, ``INTERRUPTED`` (130) for Ctrl-C. ``kept`` says, for the last
    three, what survives: ``the last checkpoint ...``."""
    if isinstance(exc, InputError):
        line, status = f"error: {exc.for_command_line()}", 2
    elif isinstance(exc, RunFailure):
        line, status = f"error: {exc.for_command_line()}; {kept}", 1
    elif isinstance(exc, OutputError):
        line, status = f"error: {exc}; {kept}", 1
    else:
        line, status = f"interrupted; {kept}", INTERRUPTED
    sys.stderr.write(f"{prog}: {one_line(line)}\n")
    return status


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other bad input; scripts report
    an ``InputError`` of their own through :meth:`error` too (its settings named as flags)."""

    def error(self, message):
        if isinstance(message, InputError):
            message = message.for_command_line()
        # argparse quotes some values as they were given ("unrecognized arguments: ..."), newlines too.
        sys.stderr.write(f"{self.prog}: error: {one_line(message)}\n")
        sys.exit(2)
