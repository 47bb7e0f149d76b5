import errno
import os

import pytest

from utils.atomic_files import atomic_path
from utils.errors import OutputError


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


def test_a_successful_write_replaces_the_file(tmp_path):
    path = tmp_path / "result.txt"
    path.write_text("old")
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["result.txt"]
