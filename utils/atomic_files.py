"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output behind."""

import contextlib
import csv
import json
import os
import tempfile

from utils.errors import InputError, OutputError

# mkstemp creates files readable by their owner alone; outputs get the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)

@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file keeps ``path``'s extension so that writers which choose a format from the
    file name (Pillow, matplotlib) still do the right thing. On an exception it is removed and
    ``path`` is left as it was; an ``OSError`` (a full disk) comes out as an ``OutputError`` naming
    ``path``.
    """
    directory, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=directory)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {path} ({exc.strerror or exc})") from exc
        raise


def check_writable_folder(path, flag):
    """InputError unless ``path`` is a folder this process can write in, or does not exist yet (it
    is made later, once all input is valid). ``flag`` names it in the message: ``--out_dir``.

    Leaves nothing behind: the probe is an anonymous temporary file.
    """
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise InputError(f"{flag} {path} exists and is not a folder")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise InputError(f"cannot write in {flag} {path} ({exc.strerror})") from None


def write_json(path, obj):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_csv(path, fieldnames, rows):
    """Write a list of dicts as CSV; a value of None is written as an empty cell."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fieldnames})


def read_csv(path):
    """Read a CSV written by :func:`write_csv`; numbers come back as floats, empty cells as None."""
    with open(path, newline="") as f:
        return [
            {k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)
        ]
