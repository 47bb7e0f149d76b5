"""recovery.lock: one process per run, released however the holder ends; a full disk (a real one:
a filled tmpfs) is one OutputError, and one line through either mode of the command line."""

import contextlib
import os

import pytest
import skimage.data
from PIL import Image

from tiny import TINY
from denoising import main
from full_disk import FILLER
from recovery.lock import RunInUse, RunLock
from utils.errors import OutputError

pytestmark = pytest.mark.usefixtures("process_settings_kept")


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


def test_a_full_disk_is_an_output_error_and_leaves_no_lock_file(full_disk):
    path = full_disk / "run.lock"
    with pytest.raises(OutputError) as caught, RunLock(str(path), "run"):
        pass
    assert str(caught.value) == f"cannot write {path} (No space left on device)"
    assert sorted(os.listdir(full_disk)) == [FILLER]


@pytest.mark.parametrize("mode", ["one image", "a folder"])
def test_a_full_disk_is_one_line_in_either_mode(full_disk, tmp_path, capsys, mode):
    """The command line on a full disk (the issue's traceback from the lock file): one line, exit
    status 1, no empty lock file or temporary left."""
    argv = ["--image", "astronaut", "--ckpt", "run"]
    if mode == "a folder":
        (tmp_path / "in").mkdir()
        Image.fromarray(skimage.data.coffee()).resize((64, 64)).save(tmp_path / "in" / "cup.png")
        argv = ["--image", str(tmp_path / "in")]
    with contextlib.chdir(tmp_path):
        status = main(argv + ["--out_dir", str(full_disk), *TINY[2:], "--num_iter", "2"])
    err = capsys.readouterr().err
    assert status == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    written = f"{full_disk}/run.lock" if mode == "one image" else f"{full_disk}/cup_input.json"  # the first write
    assert err.startswith(f"denoising.py: error: cannot write {written} (No space left on device); ")
    assert err.endswith("(--resume)\n" if mode == "one image" else "the same command resumes the runs\n")
    assert sorted(os.listdir(full_disk)) == [FILLER]
