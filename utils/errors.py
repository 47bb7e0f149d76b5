"""The one exception type for bad user input."""


class InputError(ValueError):
    """Bad user input (a missing file, a value out of range). The CLI prints it as one line and
    exits with status 2; library callers can catch it like any ValueError."""
