"""utils.errors: one line for every expected failure, naming settings as the reader calls them."""

import pytest

from utils.errors import InputError, OneLineErrorParser, OutputError, report_failure


def test_settings_are_named_plainly_for_python_and_as_flags_for_the_command_line():
    error = InputError("`resize` cannot be used with `noisy`; `data_dir` /a`b` stays")
    assert str(error) == "resize cannot be used with noisy; data_dir /a`b` stays"
    assert error.for_command_line() == "--resize cannot be used with --noisy; --data_dir /a`b` stays"


@pytest.mark.parametrize("exc,status,line", [
    (InputError("`width` must be at least 1"), 2, "prog: error: --width must be at least 1\n"),
    (OutputError("cannot write x.png (No space left on device)"), 1,
     "prog: error: cannot write x.png (No space left on device); the rest is kept\n"),
    (KeyboardInterrupt(), 130, "prog: interrupted; the rest is kept\n"),
])
def test_each_failure_is_one_line_and_its_status(capsys, exc, status, line):
    assert report_failure("prog", exc, "the rest is kept") == status
    assert capsys.readouterr().err == line


def test_the_parser_reports_an_input_error_as_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        OneLineErrorParser(prog="prog").error(InputError("`seed` is bad"))
    assert exit_info.value.code == 2 and capsys.readouterr().err == "prog: error: --seed is bad\n"
