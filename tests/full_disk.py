"""A real full disk for the tests that need one (the fixture ``full_disk`` of conftest.py): a small
tmpfs mounted for the test and filled to its last byte with one file, so that every write in it
fails with ENOSPC as on a full disk. Mounting needs root (or the capability): the test is skipped
where the sandbox refuses it."""

import contextlib
import errno
import os
import subprocess

import pytest

TMPFS_SIZE = "256k"
FILLER = "filler"


@contextlib.contextmanager
def mounted_full_disk(tmp_path):
    """The path of a tmpfs mounted in ``tmp_path`` for the context, whose every byte is taken (by
    the file ``filler`` in it); the test is skipped where it cannot be mounted."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        _fill(mount_point / FILLER)
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def _fill(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0")
    finally:
        os.close(fd)
    try:
        with open(path, "ab") as f:
            f.write(b"\0")
            f.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    else:
        raise AssertionError("the tmpfs is not full")
