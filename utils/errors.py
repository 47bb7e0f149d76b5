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


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2, like every other bad input; scripts report
    an ``InputError`` of their own through :meth:`error` too."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
