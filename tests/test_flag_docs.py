"""The flags a user reads about against the parsers that take them: every flag of denoising.py (the
README's tables, and docs/reproducing.md's for the launcher's) and of reproduce.py
(docs/reproducing.md) is documented, no documented flag is gone, a default the docs state is the
settings' own, and each bound of docs/command_line.md is where the settings' checks put it."""

import argparse
import dataclasses
import os
import re

import pytest

import denoising
import reproduce
from conftest import REPO
from recovery.settings import RecoveryConfig, RunSpec, StepOptions
from reproduction.launch_settings import LaunchSettings
from reproduction.plan import Settings
from utils.errors import InputError

README, REPRODUCING, COMMAND_LINE = (os.path.join(REPO, *path) for path in
                                     [("README.md",), ("docs", "reproducing.md"), ("docs", "command_line.md")])
# The settings classes whose fields make each command's flags: the first holding a flag's field
# gives its default.
SETTINGS = {denoising: (RunSpec, RecoveryConfig, StepOptions, LaunchSettings),
            reproduce: (Settings, StepOptions, LaunchSettings)}
DOCS = {denoising: (README, REPRODUCING), reproduce: (REPRODUCING,)}  # the command's own first
NOT_GIVEN = object()  # a flag whose default says nothing (None: the docs say what happens without it)


def table_rows(path):
    """``{flag: cells}`` of the rows of a file's Markdown tables whose first cell names flags
    (`` `--resize N` ``, `` `--step`, `--precision` ``), each cell without its outer spaces."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("| `--"):
                cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                rows.update((flag, cells) for flag in re.findall(r"`(--\w+)", cells[0]))
    return rows


def flag_defaults(command):
    """``{flag: default}`` of a command's parser: its settings field's default for a flag made
    from one, False for a switch, NOT_GIVEN where the default is None (or the flag is required)."""
    fields = {}
    for cls in reversed(SETTINGS[command]):
        fields.update((field.name, field.default) for field in dataclasses.fields(cls))
    defaults = {}
    for action in command.build_parser()._actions:
        flags = [option for option in action.option_strings if option.startswith("--")]
        if not flags or isinstance(action, argparse._HelpAction):
            continue
        default = fields.get(action.dest, NOT_GIVEN) if action.default is argparse.SUPPRESS else action.default
        defaults[flags[0]] = NOT_GIVEN if default is None else default
    return defaults


def stated_default(cells):
    """The default a row states: its default column in a table of three (flag, default, meaning),
    else its meaning's "(default X" (None where it states none)."""
    if len(cells) == 3:
        return cells[1]
    found = re.search(r"\(default:? `?([^`;),]+)", cells[-1])
    return found and found.group(1)


def same_default(stated, default):
    text = stated.strip("`").replace(",", "")
    if isinstance(default, bool):
        return text == ("on" if default else "off")
    if isinstance(default, (int, float)):
        try:
            return float(text) == default
        except ValueError:
            return False
    if default == RecoveryConfig.data_dir:  # this checkout's data/denoising, shown as such
        return text.startswith(os.path.relpath(default, REPO))
    return text == default


@pytest.mark.parametrize("command", [denoising, reproduce], ids=lambda command: command.PROG)
def test_every_flag_is_documented_and_every_documented_flag_is_taken(command):
    documented = set().union(*(table_rows(path) for path in DOCS[command]))
    flags = set(flag_defaults(command))
    assert sorted(flags - documented) == [], "flags without a row in the docs' tables"
    own = table_rows(DOCS[command][0])  # the README's flags are denoising.py's; docs/reproducing.md's reproduce.py's
    assert sorted(set(own) - flags) == [], "rows of flags the parser does not take"


@pytest.mark.parametrize("command", [denoising, reproduce], ids=lambda command: command.PROG)
def test_a_default_the_docs_state_is_the_settings_own(command):
    rows = {flag: cells for path in reversed(DOCS[command]) for flag, cells in table_rows(path).items()}
    checked = 0
    for flag, default in flag_defaults(command).items():
        stated = stated_default(rows[flag]) if flag in rows else None  # a missing row: the test above
        if stated is None or default is NOT_GIVEN:
            continue
        assert same_default(stated, default), f"{flag}: the docs say {stated}, the settings {default!r}"
        checked += 1
    assert checked >= 8


def settings_with(flag, value):
    """The settings object holding ``flag`` (a RunSpec for the run's and the problem's), set to ``value``."""
    name = flag.removeprefix("--")
    if name in {field.name for field in dataclasses.fields(StepOptions)}:
        return RunSpec(options=StepOptions(**{name: value}))
    if name in {field.name for field in dataclasses.fields(RecoveryConfig)}:
        return RunSpec(config=RecoveryConfig(**{name: value}))
    return RunSpec(**{name: value})


def accepted(flag, value):
    try:
        settings_with(flag, value).validate()
    except InputError:
        return False
    return True


def bound(text):
    """A bound as written in docs/command_line.md: ``65536``, ``2**53``, ``2**63 - 1``, ``inf``,
    ``1.175494e-38``."""
    if power := re.fullmatch(r"(\d+)\*\*(\d+)( - 1)?", text):
        return int(power.group(1)) ** int(power.group(2)) - (1 if power.group(3) else 0)
    return float(text) if re.search(r"[.e]|inf", text) else int(text)


def bounds_rows():
    """``(flag, accepted)`` of docs/command_line.md's table of bounds, one per flag of a row."""
    rows = table_rows(COMMAND_LINE)
    return [pytest.param(flag, cells[1], id=flag) for flag, cells in rows.items()]


@pytest.mark.parametrize("flag,stated", bounds_rows())
def test_each_bound_in_the_docs_is_where_the_settings_checks_put_it(flag, stated):
    if interval := re.fullmatch(r"([\[(])(\S+), (\S+)([\])])", stated):  # [0, 1), [1.175494e-38, 2.126765e+37]
        low, high = bound(interval.group(2)), bound(interval.group(3))
        # The docs round to 7 digits: just inside and just outside each end (and an open end itself).
        assert accepted(flag, low + abs(low) * 1e-6) and not accepted(flag, low - abs(low) * 1e-6 - 1e-9)
        if high < float("inf"):
            assert accepted(flag, high - abs(high) * 1e-6) and not accepted(flag, high + abs(high) * 1e-6)
        assert interval.group(4) == "]" or not accepted(flag, high)
    elif per_core := re.fullmatch(r"1 to (\d+) per core of `os.cpu_count\(\)`", stated):
        most = int(per_core.group(1)) * os.cpu_count()
        assert accepted(flag, 1) and accepted(flag, most) and not accepted(flag, 0) and not accepted(flag, most + 1)
    elif ints := re.fullmatch(r"([\d*]+(?: - 1)?) to ([\d*]+(?: - 1)?)", stated):  # 1 to 65536, 0 to 2**63 - 1
        low, high = bound(ints.group(1)), bound(ints.group(2))
        assert accepted(flag, low) and accepted(flag, high)
        assert not accepted(flag, low - 1) and not accepted(flag, high + 1)
    elif longest := re.search(r"of at most (\d+) bytes", stated):
        most = int(longest.group(1))
        assert accepted(flag, "r" * most) and not accepted(flag, "r" * (most + 1))
        assert not accepted(flag, "a/b") and not accepted(flag, "..")
    else:
        assert flag in ("--out_dir", "--image", "--noisy"), f"{flag}: a bound this test does not read: {stated}"
        assert flag in flag_defaults(denoising)
