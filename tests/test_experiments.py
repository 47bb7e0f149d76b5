"""lowrank.experiments: every bad setting is an InputError naming it (as a flag on the command
line), and the plans are the quick or full ones asked for, with the trials given."""

import dataclasses

import pytest

from lowrank import implicit_bias, learning_curves, phase_transition
from lowrank.experiments import EXPERIMENTS, MatrixSettings
from utils.errors import InputError


@pytest.mark.parametrize("changes,message", [
    ({"seed": -1}, "--seed must be in [0, 2**63 - 1], got -1"),
    ({"seed": 2**63}, "--seed must be in [0, 2**63 - 1]"),
    ({"threshold": 0.0}, "--threshold must be in (0, 1), got 0.0"),
    ({"threshold": 1.0}, "--threshold must be in (0, 1), got 1.0"),
    ({"threshold": float("nan")}, "--threshold must be in (0, 1), got nan"),
    ({"trials": 0}, "--trials must be at least 1, got 0"),
    ({"experiments": ("implicit_bias", "pictures")}, "--experiment must be some of"),
    ({"experiments": ()}, "--experiment must be some of"),
])
def test_bad_settings_are_named(changes, message):
    with pytest.raises(InputError) as error:
        dataclasses.replace(MatrixSettings(), **changes).validate()
    assert message in error.value.for_command_line()


def test_an_out_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(InputError, match="out_dir .*taken exists and is not a folder"):
        MatrixSettings(out_dir=str(tmp_path / "taken")).validate()
    MatrixSettings(out_dir=str(tmp_path / "not yet")).validate()  # made when the experiments start


def test_the_plans_are_those_asked_for():
    assert MatrixSettings().plans() == {"implicit_bias": implicit_bias.FULL, "phase_transition": phase_transition.FULL,
                                        "learning_curves": learning_curves.FULL}
    quick = MatrixSettings(quick=True, trials=7, experiments=("learning_curves", "phase_transition"))
    plans = quick.plans()
    assert list(plans) == ["phase_transition", "learning_curves"]  # always in EXPERIMENTS' order
    assert plans["phase_transition"] == dataclasses.replace(phase_transition.QUICK, trials=7)
    assert plans["learning_curves"] == learning_curves.QUICK
    assert MatrixSettings(trials=3, experiments=("implicit_bias",)).plans() == {"implicit_bias": implicit_bias.FULL}
    assert EXPERIMENTS == ("implicit_bias", "phase_transition", "learning_curves")
