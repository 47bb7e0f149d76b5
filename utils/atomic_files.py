"""Atomic, durable file writes: a crash, Ctrl-C or power loss never leaves a half-written output."""

import contextlib
import csv
import errno
import json
import os
import stat
import tempfile

from utils.errors import InputError, OutputError, one_line

TEMPORARY_NAME_TRIES = 100  # random names tried before giving up (a clash is already unlikely)


def printable_path(path):
    """``path`` (str, bytes or path-like) as one line of text that any UTF-8 terminal prints.

    Bytes of a file name that are not UTF-8 (Linux hands them to ``sys.argv`` as surrogate
    escapes, which cannot be encoded) come out as ``\\xff``; control characters such as a newline
    as ``\\n``, so that a message naming the file stays one line.
    """
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: no file name of this OS
        raw = os.fspath(path).encode("utf-8", "backslashreplace")
    return one_line(raw.decode("utf-8", "backslashreplace"))


def _create_temporary(directory, prefix, suffix):
    """Create a new empty file in ``directory`` and return its path.

    Its permissions are those of any new file (0o666 less the process's umask), unlike
    ``tempfile.mkstemp``'s owner-only 0o600, and the umask is never read or changed.
    """
    for _ in range(TEMPORARY_NAME_TRIES):
        path = os.path.join(directory, f"{prefix}{os.urandom(4).hex()}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name in {directory}")


def _fsync_file(path):
    """Force ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(directory):
    """Force ``directory``'s entries (a rename in it) to the disk, where the file system allows it
    (some refuse fsync on a folder, or opening it: then it is skipped)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _temporary_affixes(path):
    """The folder, prefix and suffix of the temporaries :func:`atomic_path` makes for ``path``."""
    directory, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return directory, f".{stem}.", f".tmp{ext}"


def remove_temporaries(path):
    """Remove the temporaries that writes of ``path`` left behind when their process was killed
    (SIGKILL, power loss). Only for a caller that knows no other process writes ``path`` now."""
    directory, prefix, suffix = _temporary_affixes(path)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            middle = entry.name[len(prefix):-len(suffix)]
            if entry.name.startswith(prefix) and entry.name.endswith(suffix) and len(middle) == 8 and "." not in middle:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The caller writes the temporary file and closes it before the block ends. Then its data is
    flushed to the disk (fsync), it takes the permission bits of the file it replaces (a new file
    keeps those of any new file: 0o666 less the umask), it is renamed onto ``path``, and the folder
    is flushed too, so that after a power loss ``path`` is either the old file or the whole new
    one. The temporary file keeps ``path``'s extension so that writers which choose a format from
    the file name (Pillow, matplotlib) still do the right thing. On an exception it is removed and
    ``path`` is left as it was; an ``OSError`` (a full disk) comes out as an ``OutputError`` naming
    ``path``.
    """
    directory, prefix, suffix = _temporary_affixes(path)
    tmp = None
    try:
        tmp = _create_temporary(directory, prefix, suffix)
        yield tmp
        _fsync_file(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) & 0o777)
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(directory)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {printable_path(path)} ({exc.strerror or exc})") from exc
        raise


def make_folder(path):
    """``os.makedirs(path, exist_ok=True)``; a folder that cannot be made (a full disk) is an
    OutputError naming it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make {printable_path(path)} ({exc.strerror or exc})") from None


def check_writable_folder(path, flag):
    """InputError unless ``path`` is a folder this process can write in, or one it can make: the
    nearest existing folder above it is writable and every name to make is a valid one (it is made
    later, once all input is valid). ``flag`` names it in the message: ``--out_dir``.

    Leaves nothing behind: the probe is an anonymous temporary file.
    """
    shown = printable_path(path)
    if not path:
        raise InputError(f"{flag} is empty (the working folder is .)")
    # The nearest entry that exists; a broken symbolic link counts, as os.makedirs stops at it too.
    existing, missing = os.path.abspath(path), []
    while not os.path.lexists(existing):
        existing, name = os.path.split(existing)
        missing.append(name)
    if not os.path.isdir(existing):
        inside = f": {printable_path(existing)}" if missing else ""
        raise InputError(f"{flag} {shown}{inside} exists and is not a folder")
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    if any(len(os.fsencode(name)) > name_max for name in missing):
        raise InputError(f"{flag} {shown} has a folder name longer than {name_max} bytes")
    # Every file in the folder must be nameable: the folder's path, a separator and a name.
    longest = _path_limit(existing, "PC_PATH_MAX", 4096) - 1 - name_max
    if len(os.fsencode(path)) > longest:
        raise InputError(f"{flag} is {len(os.fsencode(path))} bytes long; at most {longest}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        if not missing:
            raise InputError(f"cannot write in {flag} {shown} ({exc.strerror})") from None
        raise InputError(f"cannot make {flag} {shown}: cannot write in {printable_path(existing)} "
                         f"({exc.strerror})") from None


def _path_limit(folder, name, default):
    """A limit of the file system holding ``folder`` (``os.pathconf``), or ``default`` where it has none."""
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


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
