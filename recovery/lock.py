"""One process per run: an exclusive lock on ``<out_dir>/<ckpt>.lock`` for the run's whole life.

A lock file that cannot be made or written (a full disk) is an ``OutputError`` naming it, and
leaves no file behind.

The lock is the kernel's (``fcntl.flock``): it is released however the process ends, ``kill -9``
included, so a lock file left behind by a killed run never blocks the next one. The file holds the
holder's process id, for the message a second process gets. On file systems where ``flock`` does
not exclude processes of other machines (some NFS set-ups), two machines can still run one run
at once: keep the runs folder of a multi-machine sweep on a file system with working locks.
"""

import contextlib
import errno
import fcntl
import os

from utils.atomic_files import printable_path
from utils.errors import InputError, OutputError


class RunInUse(InputError):
    """Another process holds the run's lock."""


class RunLock:
    """``with RunLock(path):`` holds the exclusive lock on ``path`` or raises RunInUse at once
    (never waits). On leaving, the lock file is removed while still held, so that no process can
    lock a file that is about to disappear."""

    def __init__(self, path, run_name):
        self.path = path
        self.run_name = run_name
        self._fd = None

    def __enter__(self):
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:  # a full disk, a quota: nothing was made
                raise self._cannot_write(exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise RunInUse(f"run '{self.run_name}' is in use by process {self._holder()} "
                               f"(it holds {self.path})") from None
            # The holder before us may have removed the file between our open and our lock: then
            # we hold a lock on a file nobody else can see, so try again on the file there now.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: the file made is removed while still held, as on leaving
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            os.close(fd)
            raise self._cannot_write(exc) from None
        self._fd = fd
        return self

    def _cannot_write(self, exc):
        return OutputError(f"cannot write {printable_path(self.path)} ({exc.strerror or exc})")

    def _holder(self):
        with contextlib.suppress(OSError, ValueError), open(self.path) as f:
            return int(f.read().strip())
        return "unknown"

    def __exit__(self, *exc):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(self._fd)
        self._fd = None


def _same_file(fd, path):
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
