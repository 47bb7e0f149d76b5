"""recovery.lock: one process per run, released however the holder ends."""

import os

import pytest

from recovery.lock import RunInUse, RunLock


def test_a_second_holder_is_refused_with_the_first_one_s_pid(tmp_path):
    path = str(tmp_path / "run.lock")
    with RunLock(path, "run"):
        with pytest.raises(RunInUse) as caught, RunLock(path, "run"):
            pass
        assert str(caught.value) == f"run 'run' is in use by process {os.getpid()} (it holds {path})"
    assert not os.path.exists(path)  # removed by its holder on leaving
    with RunLock(path, "run"):  # and free again
        assert open(path).read() == f"{os.getpid()}\n"


def test_a_lock_file_left_behind_does_not_block(tmp_path):
    path = tmp_path / "run.lock"
    path.write_text("12345\n")  # as a process killed with SIGKILL leaves it
    with RunLock(str(path), "run"):
        assert path.read_text() == f"{os.getpid()}\n"


def test_the_lock_is_the_kernel_s_and_dies_with_its_process(tmp_path):
    path = str(tmp_path / "run.lock")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the holder: takes the lock, says so, waits to be killed
        os.close(reader)
        RunLock(path, "run").__enter__()
        os.write(writer, b"x")
        os.pause()
    os.close(writer)
    try:
        assert os.read(reader, 1) == b"x"
        with pytest.raises(RunInUse, match=f"in use by process {child} "):
            RunLock(path, "run").__enter__()
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
    with RunLock(path, "run"):  # at once: the kernel released it
        pass
