"""reproduction.sweep: complete runs reused and not recomputed, interrupted ones resumed bit for
bit, shorter ones continued, a run of another problem refused, a failing run reported while the
sweep goes on, progress as said, and the speed options and devices carried through the runs."""

import dataclasses
import os
import signal

import pytest
import torch

import recovery.run
import reproduction.sweep
from recovery import RunState, StepOptions
from reproduce import main
from reproduction import plan, sweep
from reproduction.plan import Settings
from reproduction.states import State
from utils.errors import InputError, OutputError
from sweep_helpers import TINY_SWEEP, forbid_runs, tiny_run
from same_run import assert_same_problem_state


def spy_on_runs(monkeypatch):
    """Record the (ckpt, resume) of every run_recovery call, and let it run."""
    calls = []

    def spy(spec, resume, **kwargs):
        calls.append((spec.ckpt, resume))
        return recovery.run_recovery(spec, resume=resume, **kwargs)

    monkeypatch.setattr(reproduction.sweep, "run_recovery", spy)
    return calls


def test_complete_runs_are_reused_not_recomputed(tmp_path, monkeypatch):
    specs = [tiny_run(tmp_path, "a"), tiny_run(tmp_path, "b", method="dip-l1")]
    first = sweep.execute_runs(specs, progress=False, log=lambda m: None)
    assert first.executed == ["a", "b"] and first.reused == [] and not first.interrupted
    before = {spec.ckpt: (tmp_path / f"{spec.ckpt}_checkpoint.pt").read_bytes() for spec in specs}
    forbid_runs(monkeypatch)
    second = sweep.execute_runs(specs, progress=False, log=lambda m: None)
    assert second.executed == [] and second.reused == ["a", "b"]
    assert {spec.ckpt: (tmp_path / f"{spec.ckpt}_checkpoint.pt").read_bytes() for spec in specs} == before
    assert [sweep.run_state(spec) for spec in specs] == [(State.COMPLETE, 6)] * 2


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    specs = [tiny_run(tmp_path, "first"), tiny_run(tmp_path, "second")]

    def ctrl_c_at_iteration_2(message):
        if message.startswith("Iteration 00002"):
            os.kill(os.getpid(), signal.SIGINT)  # what a user's Ctrl-C does

    stopped = sweep.execute_runs(specs, progress=False, log=ctrl_c_at_iteration_2)
    assert stopped.interrupted and stopped.executed == ["first"]
    assert sweep.run_state(specs[0]) == (State.PARTIAL, 3)
    assert sweep.run_state(specs[1]) == (State.MISSING, 0)

    calls = spy_on_runs(monkeypatch)
    resumed = sweep.execute_runs(specs, progress=False, log=lambda m: None)
    assert not resumed.interrupted and calls == [("first", True), ("second", False)]

    # The resumed run is the run that was never stopped.
    straight = tmp_path / "straight"
    sweep.execute_runs([tiny_run(straight, "first")], progress=False, log=lambda m: None)
    split, whole = RunState.load(tmp_path / "first_checkpoint.pt"), RunState.load(straight / "first_checkpoint.pt")
    assert split.iteration == whole.iteration == 6
    assert_same_problem_state(split, whole)


def test_a_longer_run_continues_a_complete_shorter_one(tmp_path, monkeypatch):
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=4)], progress=False, log=lambda m: None)
    calls = spy_on_runs(monkeypatch)
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=6)], progress=False, log=lambda m: None)
    assert calls == [("a", True)] and sweep.run_state(tiny_run(tmp_path, "a")) == (State.COMPLETE, 6)


@pytest.mark.parametrize("done,num_iter,expected", [(3, 6, "3 of 6"), (6, 6, "6"), (300, 100, "300"),
                                                    (1500, 3000, "1,500 of 3,000")])
def test_progress_says_of_only_for_a_run_short_of_its_length(done, num_iter, expected):
    assert sweep.describe_progress(done, num_iter) == expected


def test_a_run_of_another_problem_under_the_same_name_is_refused(tmp_path):
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=2)], progress=False, log=lambda m: None)
    other = tiny_run(tmp_path, "a")
    other = dataclasses.replace(other, config=dataclasses.replace(other.config, width=8))
    with pytest.raises(InputError, match="other settings"):
        sweep.execute_runs([other], progress=False, log=lambda m: None)


@pytest.mark.parametrize("failure", ["diverged", "cannot write"])
def test_a_failing_run_is_reported_and_the_sweep_goes_on(tmp_path, monkeypatch, failure):
    bad = tiny_run(tmp_path, "bad", num_iter=2)
    if failure == "diverged":
        bad = dataclasses.replace(bad, config=dataclasses.replace(bad.config, lr=1e30, num_iter=4, show_every=2))
    else:  # as a full disk would, in this process (a local job reports any exception as a failure)
        def run_recovery(spec, **kwargs):
            if spec.ckpt == "bad":
                raise OutputError(f"cannot write {spec.ckpt}_checkpoint.pt (No space left on device)")
            return recovery.run_recovery(spec, **kwargs)

        monkeypatch.setattr(sweep, "run_recovery", run_recovery)
    outcome = sweep.execute_runs([bad, tiny_run(tmp_path, "good", num_iter=2)], progress=False,
                                 log=lambda m: None)
    assert outcome.executed == ["bad", "good"] and not outcome.interrupted
    assert list(outcome.failures) == ["bad"] and str(outcome.failures["bad"]).startswith(f"failed: {failure}")
    assert sweep.run_state(tiny_run(tmp_path, "good", num_iter=2)) == (State.COMPLETE, 2)


def test_devices_come_from_the_checkpoint(tmp_path, monkeypatch):
    spec = tiny_run(tmp_path, "a", num_iter=2)
    sweep.execute_runs([spec], progress=False, log=lambda m: None)
    cpu = recovery.describe_device(torch.device("cpu"))
    assert sweep.load_state(spec).devices == [cpu]
    monkeypatch.setattr(recovery.run, "describe_device", lambda device: "NVIDIA H200")  # as if resumed on a GPU
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=3)], progress=False, log=lambda m: None)
    assert sweep.load_state(spec).devices == [cpu, "NVIDIA H200"]


def test_speed_options_reach_every_run(tmp_path, monkeypatch, capsys):
    calls = []

    def record(spec, **kwargs):
        calls.append(spec)
        return recovery.RunReport(spec, None, None, None, None, stop_signal=None, divergence=None)

    monkeypatch.setattr(reproduction.sweep, "run_recovery", record)
    options = StepOptions(channels_last=True, compile=True, threads=1)
    spec = plan.runs_for(("3",), Settings(width=4, num_iter=2, resize=64, precision="bf16", options=options))[0]
    assert spec.config.precision == "bf16" and spec.options == options
    command = sweep.denoising_command(spec, resume=False)
    assert command.endswith("--precision bf16 --channels_last --compile --threads 1")
    sweep.execute_run(spec, resume=False)
    assert calls[0].options == options
    if not torch.cuda.is_available():
        assert main(["--figure", "3", "--step", "graph", "--out_dir", str(tmp_path / "out"), *TINY_SWEEP]) == 2
        assert "CUDA" in capsys.readouterr().err
