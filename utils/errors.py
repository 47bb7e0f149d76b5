"""The failures a script reports in one line: bad user input (and the argument parser that reports
it), and an output that could not be written."""

import argparse
import sys


class InputError(ValueError):
    """Bad user input (a missing file, a value out of range). The CLI prints it as one line and
    exits with status 2; library callers can catch it like any ValueError."""


class OutputError(OSError):
    """An output file could not be written (a full disk, a quota): the message names the file. The
    file of that name, if there was one, is as it was. The CLI prints it as one line and exits
    with status 1."""


EXPECTED_FAILURES = (InputError, OutputError, KeyboardInterrupt)


def report_failure(prog, exc, kept):
    """Write the one line a script gives for ``exc``, one of ``EXPECTED_FAILURES``, and return the
    exit status: 2 for bad input (nothing was touched), 1 for an output that could not be written,
    130 for Ctrl-C. ``kept`` says, for the last two, what survives: ``the last checkpoint ...``."""
    if isinstance(exc, InputError):
        line, status = f"error: {exc}", 2
    elif isinstance(exc, OutputError):
        line, status = f"error: {exc}; {kept}", 1
    else:
        line, status = f"interrupted; {kept}", 130
    sys.stderr.write(f"{prog}: {line}\n")
    return status


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other bad input; scripts report
    an ``InputError`` of their own through :meth:`error` too."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
