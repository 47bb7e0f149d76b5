import errno
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO
from utils.atomic_files import atomic_path, check_writable_folder, printable_path, write_csv, write_json
from utils.errors import InputError, OutputError


@pytest.mark.parametrize("failure,expected", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), OutputError),  # a full disk: named as an output failure
    (ValueError("a bug in the writer"), ValueError),  # anything else passes through unchanged
    (KeyboardInterrupt(), KeyboardInterrupt),
])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, failure, expected):
    path = tmp_path / "result.png"
    path.write_bytes(b"earlier result")
    with pytest.raises(expected) as info:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half a new res")
            raise failure
    if expected is OutputError:
        assert str(info.value) == f"cannot write {path} ({os.strerror(errno.ENOSPC)})"
    assert path.read_bytes() == b"earlier result"
    assert os.listdir(tmp_path) == ["result.png"]


@pytest.mark.parametrize("writer,content", [
    (lambda path: write_json(path, {"b": 1, "a": [2]}), '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'),
    (lambda path: write_csv(path, ["x", "y"], [{"x": 1, "y": None}]), "x,y\r\n1,\r\n"),
])
def test_a_successful_write_replaces_the_file(tmp_path, writer, content):
    path = tmp_path / "result.txt"
    path.write_text("old")
    writer(path)
    assert path.read_bytes().decode() == content and os.listdir(tmp_path) == ["result.txt"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name what is flushed")
def test_the_data_is_flushed_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """What power loss needs: the file's data on disk before it takes the name, the rename itself
    on disk before the writer goes on. Each real fsync is recorded with what it flushed."""
    path = tmp_path / "checkpoint.pt"
    flushed = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        flushed.append((target, path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(b"weights")
    assert flushed == [(tmp, False), (str(tmp_path), True)]
    assert path.read_bytes() == b"weights"


PERMISSIONS_SCRIPT = """
import os, sys
from utils.atomic_files import atomic_path
os.umask(int(sys.argv[1], 8))  # set after the import: the module must not have read it at import
with atomic_path(sys.argv[2]) as tmp, open(tmp, "w") as f:
    f.write("x")
print(oct(os.umask(0)))
"""


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_permissions_of_any_new_file(tmp_path, umask, mode):
    path = tmp_path / "out.json"
    result = subprocess.run([sys.executable, "-c", PERMISSIONS_SCRIPT, oct(umask), str(path)], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert result.stdout.strip() == oct(umask)  # the process's umask is as the caller set it


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_a_replaced_file_keeps_its_permissions(tmp_path, mode):
    path = tmp_path / "results.csv"
    path.write_text("old")
    os.chmod(path, mode)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.parametrize("path,printed", [
    ("plain/image.png", "plain/image.png"),
    (b"caf\xc3\xa9.png", "café.png"),
    ("caf\udce9.png", "caf\\xe9.png"),  # a byte that is not UTF-8, as sys.argv holds it on Linux
    (b"caf\xe9.png", "caf\\xe9.png"),
    ("two\nlines.png", "two\\nlines.png"),
    ("\ud800.png", "\\ud800.png"),  # a lone surrogate no file name can hold
])
def test_printable_path_is_one_line_of_utf8(path, printed):
    assert printable_path(path) == printed
    printed.encode("utf-8")


@pytest.mark.parametrize("out_dir,message", [
    ("", "--out_dir is empty (the working folder is .)"),
    ("notes.txt", "--out_dir notes.txt exists and is not a folder"),
    ("notes.txt/runs", "--out_dir notes.txt/runs: {tmp}/notes.txt exists and is not a folder"),
    ("broken/runs", "--out_dir broken/runs: {tmp}/broken exists and is not a folder"),  # a link to nothing
    ("new/" + "x" * 256, "--out_dir new/" + "x" * 256 + " has a folder name longer than 255 bytes"),
    ("/".join(["x" * 250] * 16), "--out_dir is 4015 bytes long; at most 3840"),
    pytest.param("/proc/runs", "cannot make --out_dir /proc/runs: cannot write in /proc (",
                 marks=pytest.mark.skipif(not os.path.isdir("/proc"), reason="no /proc here")),
    pytest.param("/sys/runs", "cannot make --out_dir /sys/runs: cannot write in /sys (",
                 marks=pytest.mark.skipif(not os.path.isdir("/sys"), reason="no /sys here")),
])
def test_an_output_folder_that_cannot_be_made_is_refused_before_anything_is_written(tmp_path, monkeypatch,
                                                                                    out_dir, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("")
    os.symlink(tmp_path / "nowhere", tmp_path / "broken")
    with pytest.raises(InputError) as caught:
        check_writable_folder(out_dir, "--out_dir")
    assert str(caught.value).startswith(message.format(tmp=tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["broken", "notes.txt"]


@pytest.mark.parametrize("out_dir", ["new", "new/and/deeper", ".", "caf\udce9"])
def test_an_output_folder_that_can_be_made_passes_and_is_not_made_yet(tmp_path, monkeypatch, out_dir):
    monkeypatch.chdir(tmp_path)
    check_writable_folder(out_dir, "--out_dir")
    assert os.listdir(tmp_path) == []
