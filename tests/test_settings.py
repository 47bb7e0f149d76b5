"""recovery.settings: every setting written once; flags and command lines made from it."""

import dataclasses
import fractions
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import REPO
from denoising import build_parser, spec_from_args
from recovery import Recovery, RecoveryConfig, RunSpec, RunState, StepOptions
from recovery.settings import ALGORITHMS, MAX_LEARNING_RATE, add_arguments, given_settings, max_threads
from reproduction import sweep
from utils.errors import InputError, OneLineErrorParser


RATES = "learning rates must be in [1.175494e-38, 2.126765e+37] (positive and finite for the float32 optimisers)"


def parsed(*argv):
    spec, _ = spec_from_args(build_parser().parse_args(list(argv)))
    return spec


def test_the_defaults_are_the_paper_s():
    config = RecoveryConfig()
    assert (config.image, config.nlevel, config.width, config.alg, config.lr, config.lr_c, config.num_iter,
            config.method, config.show_every) == ("F16", 0.5, 128, "sgd", 1.0, 500.0, 150000, "ours", 500)
    assert parsed() == RunSpec()


@pytest.mark.parametrize("cls", [RecoveryConfig, StepOptions, RunSpec])
def test_every_flag_is_a_field_with_its_default_and_help(cls):
    parser = OneLineErrorParser(prog="test")
    add_arguments(parser, cls)
    flags = {action.dest: action for action in parser._get_optional_actions() if action.dest != "help"}
    fields = [f for f in dataclasses.fields(cls) if "help" in f.metadata]
    assert sorted(flags) == sorted(f.name for f in fields)
    for field in fields:
        assert flags[field.name].help.startswith(field.metadata["help"])
    assert given_settings(cls, parser.parse_args([])) == {}  # nothing given, nothing taken


@pytest.mark.parametrize("argv", [
    [],
    ["--alg", "adam", "--l1", "--lr", "0.01", "--lr_c", "5", "--seed", "3", "--method", "dip-l1"],
    ["--image", "astronaut", "--resize", "96", "--nlevel", "0.3", "--width", "16", "--num_iter", "7",
     "--show_every", "2", "--precision", "bf16", "--channels_last", "--threads", "1", "--device", "cpu"],
    ["--noisy", "photo.png", "--ckpt", "photo", "--out_dir", "runs", "--lr", "0.1"],
    ["--ckpt=-x", "--out_dir=-runs", "--image=-photo.png"],  # a run named -x: its resume command must work
])
def test_to_argv_gives_back_the_same_run(argv):
    spec = parsed(*argv)
    assert parsed(*spec.to_argv()[1:]) == spec
    assert parsed(*shlex.split(sweep.denoising_command(spec, resume=False))[2:]) == spec  # as printed


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-3, 3), st.floats(), st.text(max_size=4),
                      st.sampled_from(["cpu", "astronaut", "sgd", "adam", "ours", "dip", "fp32", "bf16", "eager"]))


def any_settings(cls):
    """Some fields of ``cls`` given any value, the rest left at their defaults."""
    fields = [field.name for field in dataclasses.fields(cls) if "help" in field.metadata]
    return st.fixed_dictionaries({}, optional=dict.fromkeys(fields, ANY_VALUE))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(config=any_settings(RecoveryConfig), options=any_settings(StepOptions), spec=any_settings(RunSpec))
@example(config={"image": "", "noisy": ""}, options={}, spec={}).via("validated, but its command was refused")
def test_any_values_are_refused_in_an_input_error_or_make_a_run_its_command_line_makes(config, options, spec):
    try:
        run = RunSpec(**spec, config=RecoveryConfig(**config), options=StepOptions(**options))
        run.validate()
    except InputError:
        return
    assert parsed(*run.to_argv()[1:]) == run


def test_given_settings_are_those_on_the_command_line():
    args = build_parser().parse_args(["--width", "128", "--l1"])  # a default given explicitly still counts
    assert given_settings(RecoveryConfig, args) == {"width": 128, "l1": True}


@pytest.mark.parametrize("settings,message", [
    (RecoveryConfig(method="sparse"), "method must be one of ours, dip, dip-l1, got 'sparse'"),
    (RecoveryConfig(alg="lbfgs"), "alg must be one of sgd, adam, got 'lbfgs'"),
    (RecoveryConfig(precision="fp16"), "precision must be one of fp32, tf32, bf16, got 'fp16'"),
    (RecoveryConfig(nlevel=float("nan")), "nlevel must be in [0, 1), got nan"),
    (RecoveryConfig(lr=float("nan")), f"{RATES}, got lr nan, lr_c 500.0"),
    (RecoveryConfig(lr=1e308), f"{RATES}, got lr 1e+308, lr_c 500.0"),  # finite for Python, inf as float32
    (RecoveryConfig(lr_c=1e39), f"{RATES}, got lr 1.0, lr_c 1e+39"),
    (RecoveryConfig(lr=1e-40), f"{RATES}, got lr 1e-40, lr_c 500.0"),  # 0 where denormals are flushed
    (RecoveryConfig(width=2**16 + 1), "width must be at most 65536, got 65537"),  # overflowed torch's sizes
    (RecoveryConfig(num_iter=2**53 + 1), "num_iter must be at most 9007199254740992, got 9007199254740993"),
    (RecoveryConfig(resize=10**8), "resize must be at most 65536, got 100000000"),
    (StepOptions(threads=max_threads() + 1), f"threads must be at most {max_threads()} (4 per core of the "
                                             f"{os.cpu_count()} here), got {max_threads() + 1}"),
    (RunSpec(ckpt="é" * 101), "ckpt is 202 bytes long; at most 200"),  # a file name's limit is in bytes
    (RunSpec(ckpt="a/two\nlines"), "ckpt must be a plain name, not 'a/two\\nlines' (choose the folder with out_dir)"),
    (RecoveryConfig(resize=32), "resize must be at least 64, got 32"),
    # A run that the command line would refuse to make from the command its to_argv prints.
    (RecoveryConfig(noisy="x.png", image="astronaut"), "give either image or noisy, not both"),
    (RecoveryConfig(noisy="x.png", nlevel=0.3), "nlevel adds noise, and noisy images have theirs already: give one "
                                                "of them"),
    (RecoveryConfig(noisy="x.png", noise="random_valued"), "noise adds noise, and noisy images have theirs already: "
                                                           "give one of them"),
    (RecoveryConfig(noise="gaussian"), "noise must be one of salt_pepper, salt_pepper_pixel, random_valued, got "
                                       "'gaussian'"),
    (RecoveryConfig(show_every=0), "show_every must be at least 1, got 0"),
    (StepOptions(step="fused"), "step must be one of eager, graph, got 'fused'"),
    (StepOptions(threads=0), "threads must be at least 1, got 0"),
    (RunSpec(ckpt=".."), "ckpt must be a plain name, not '..' (choose the folder with out_dir)"),
])
def test_a_python_caller_reads_the_setting_s_own_name(settings, message):
    with pytest.raises(InputError) as caught:
        settings.validate()
    assert str(caught.value) == message


@pytest.mark.parametrize("cls,values,message", [
    (RecoveryConfig, {"width": "8"}, "width must be an integer, got str"),
    (RecoveryConfig, {"width": 8.0}, "width must be an integer, got float"),
    (RecoveryConfig, {"nlevel": True}, "nlevel must be a number, got bool"),
    (RecoveryConfig, {"lr": 10**400}, "lr is beyond the range of a float, got 1" + "0" * 400),
    (RecoveryConfig, {"image": None}, "image must be a string, got NoneType"),
    (RecoveryConfig, {"image": "a\0b.png"}, "image 'a\\x00b.png' holds a character no file name can"),
    (RecoveryConfig, {"noisy": "\ud800.png"}, "noisy '\\ud800.png' holds a character no file name can"),
    (StepOptions, {"compile": 1}, "compile must be True or False, got int"),
    (StepOptions, {"checkpoint_seconds": "nan"}, "checkpoint_seconds must be a number, got str"),
    (RunSpec, {"config": {}}, "config must be a RecoveryConfig, got dict"),
])
def test_a_value_of_another_type_is_refused_when_the_settings_are_made(cls, values, message):
    with pytest.raises(InputError) as caught:
        cls(**values)
    assert str(caught.value) == message


def test_numbers_of_other_types_are_kept_as_python_s_own():
    config = RecoveryConfig(width=np.int64(4), lr=np.float32(0.5), nlevel=fractions.Fraction(1, 4))
    assert [type(value) for value in (config.width, config.lr, config.nlevel)] == [int, float, float]
    assert parsed(*config.to_argv()).config == config  # "--lr 0.5", not "--lr np.float32(0.5)"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_the_largest_learning_rates_start_the_optimisers(alg):
    config = RecoveryConfig(alg=alg, lr=MAX_LEARNING_RATE, lr_c=MAX_LEARNING_RATE, width=1)
    config.validate()
    Recovery(config, np.zeros((3, 64, 64), np.float32), "cpu").stepper()()  # no overflow in the first step
    with pytest.raises(InputError):
        dataclasses.replace(config, lr=np.nextafter(MAX_LEARNING_RATE, np.inf)).validate()


def test_resume_may_change_only_the_length_and_the_logging():
    saved = RecoveryConfig(width=8)
    RecoveryConfig(width=8, num_iter=10, show_every=3).check_resumable(saved)
    with pytest.raises(InputError, match="width 16 differs from the checkpoint's 8"):
        RecoveryConfig(width=16).check_resumable(saved)


def test_on_resume_what_is_not_given_comes_from_the_checkpoint(tmp_path):
    config = RecoveryConfig(image="astronaut", resize=64, width=4, num_iter=2, lr=0.5)
    RunState(config=config).save(str(tmp_path / "run_checkpoint.pt"))
    spec = parsed("--out_dir", str(tmp_path), "--ckpt", "run", "--resume", "--num_iter", "9")
    assert spec.config == dataclasses.replace(config, num_iter=9)


def test_the_dry_run_command_makes_the_sweep_s_run(tmp_path):
    """What ``reproduce.py --dry_run`` prints for a run, run as printed, is the run the sweep makes."""
    config = RecoveryConfig(image="astronaut", resize=64, width=4, num_iter=5, show_every=2, alg="adam", l1=True,
                            lr=0.01, lr_c=5.0, seed=3, method="dip-l1")
    options = StepOptions(threads=1)  # the thread count changes the rounding: the same in both processes
    by_hand, by_sweep = (RunSpec(ckpt, str(tmp_path / ckpt), "cpu", config, options) for ckpt in ("hand", "sweep"))
    command = sweep.denoising_command(by_hand, resume=False)
    assert command.startswith("python denoising.py ") and "--alg adam --l1 --lr 0.01 --lr_c 5.0 " in command
    subprocess.run([sys.executable, *shlex.split(command)[1:], "--no_progress"], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    # In a process of its own too: the thread count is the process's.
    code = ("import sys; sys.path.insert(0, %r); from reproduction import sweep; from recovery import *; "
            "print(sweep.execute_run(RunSpec('sweep', %r, 'cpu', %r, %r), resume=False, progress=False))"
            % (REPO, by_sweep.out_dir, config, options))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().endswith("done"), result.stderr
    hand, machine = (RunState.load(os.path.join(spec.out_dir, f"{spec.ckpt}_checkpoint.pt")) for spec in (by_hand, by_sweep))
    strip = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert strip(hand.history) == strip(machine.history) and len(hand.history) == 3
    assert hand.config == machine.config == config
