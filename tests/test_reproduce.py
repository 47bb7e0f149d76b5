"""reproduce.py: which runs it plans, how it reuses and resumes them, and what it writes."""

import csv
import dataclasses
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import recovery.run
import reproduction.figures
import reproduction.pipeline
import reproduction.sweep
import reproduction.table
from recovery import RecoveryConfig, RunFiles, RunSpec, RunState, StepOptions, prepare_observation
from reproduce import main
from reproduction import plan, sweep
from reproduction.plan import Settings
from utils.errors import InputError, OutputError
from test_denoising import assert_same_problem_state
from utils.metrics import psnr

TINY = ["--num_iter", "2", "--resize", "64", "--width", "4", "--device", "cpu", "--no_progress"]


def tiny_run(folder, ckpt, num_iter=6, method="ours"):
    """A run on a scikit-image sample, so that the sweep's logic is tested without the paper's images."""
    config = RecoveryConfig(image="astronaut", resize=64, width=4, num_iter=num_iter, show_every=2, method=method)
    return RunSpec(ckpt, str(folder), "cpu", config)


def forbid_runs(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("run_recovery called although every run is complete")

    monkeypatch.setattr(reproduction.sweep, "run_recovery", refuse)


def spy_on_runs(monkeypatch):
    """Record the (ckpt, resume) of every run_recovery call, and let it run."""
    calls = []

    def spy(run, resume, **kwargs):
        calls.append((run.ckpt, resume))
        return recovery.run_recovery(run, resume=resume, **kwargs)

    monkeypatch.setattr(reproduction.sweep, "run_recovery", spy)
    return calls


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- which runs -------------------------------------------------------------------------------


def test_figures_3_and_4_are_seven_distinct_runs_as_in_the_paper():
    runs = plan.runs_for(("3", "4"), Settings())
    assert [run.ckpt for run in runs] == ["F16_05_128", "Peppers_05_128", "Baboon_05_128", "kodim03_05_128",
                                          "F16_01_128", "F16_03_128", "F16_07_128"]
    assert all(run.config.num_iter == 150000 and run.config.show_every == 500 and run.config.seed == 0
               for run in runs)
    assert [run.ckpt for run in plan.runs_for(("5",), Settings())] == [run.ckpt for run in runs]


@pytest.mark.parametrize("width,expected", [(128, ["F16_05_192", "F16_05_192_dip-l1", "F16_05_64_dip-l1"]),
                                            (8, ["F16_05_12", "F16_05_12_dip-l1", "F16_05_4_dip-l1"])])
def test_teaser_widths_scale_with_width(width, expected):
    runs = plan.runs_for(("teaser",), Settings(width=width))
    assert [run.ckpt for run in runs] == expected
    assert [run.config.method for run in runs] == ["ours", "dip-l1", "dip-l1"]
    assert all(run.config.num_iter == 200000 for run in runs)


def test_every_run_once_and_overrides_reach_every_run():
    settings = Settings(width=8, num_iter=40, resize=64, data_dir="somewhere")
    runs = plan.runs_for(plan.TARGETS, settings)
    names = [run.ckpt for run in runs]
    assert len(names) == len(set(names)) == 7 + 3 + 14  # Figures 3 and 4, teaser, DIP and DIP-L1 per cell
    for run in runs:
        config = run.config
        assert (config.num_iter, config.resize, config.data_dir, config.show_every) == (40, 64, "somewhere", 2)
        assert plan.cell_config(config.image, config.nlevel, settings) == RecoveryConfig(
            image=config.image, nlevel=config.nlevel, seed=0, resize=64, data_dir="somewhere")


def test_different_image_sizes_use_different_run_folders():
    full, small = plan.runs_dir(Settings()), plan.runs_dir(Settings(resize=64))
    assert full != small and os.path.dirname(full) == os.path.dirname(small) == os.path.join("figures", "runs")


# --- running, reusing, resuming ----------------------------------------------------------------


def test_complete_runs_are_reused_not_recomputed(tmp_path, monkeypatch):
    runs = [tiny_run(tmp_path, "a"), tiny_run(tmp_path, "b", method="dip-l1")]
    first = sweep.execute_runs(runs, progress=False, log=lambda m: None)
    assert first.executed == ["a", "b"] and first.reused == [] and not first.interrupted
    before = {run.ckpt: (tmp_path / f"{run.ckpt}_checkpoint.pt").read_bytes() for run in runs}
    forbid_runs(monkeypatch)
    second = sweep.execute_runs(runs, progress=False, log=lambda m: None)
    assert second.executed == [] and second.reused == ["a", "b"]
    assert {run.ckpt: (tmp_path / f"{run.ckpt}_checkpoint.pt").read_bytes() for run in runs} == before
    assert [sweep.run_state(run) for run in runs] == [(sweep.COMPLETE, 6)] * 2


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    runs = [tiny_run(tmp_path, "first"), tiny_run(tmp_path, "second")]

    def ctrl_c_at_iteration_2(message):
        if message.startswith("Iteration 00002"):
            os.kill(os.getpid(), signal.SIGINT)  # what a user's Ctrl-C does

    stopped = sweep.execute_runs(runs, progress=False, log=ctrl_c_at_iteration_2)
    assert stopped.interrupted and stopped.executed == ["first"]
    assert sweep.run_state(runs[0]) == (sweep.PARTIAL, 3)
    assert sweep.run_state(runs[1]) == (sweep.MISSING, 0)

    calls = spy_on_runs(monkeypatch)
    resumed = sweep.execute_runs(runs, progress=False, log=lambda m: None)
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
    assert calls == [("a", True)] and sweep.run_state(tiny_run(tmp_path, "a")) == (sweep.COMPLETE, 6)


def recovered_row(monkeypatch, runs, results):
    """The recovered row of Figure 3 drawn from ``runs``: its label and its tiles' captions."""
    drawn = {}
    monkeypatch.setattr(reproduction.figures, "save_grid", lambda paths, rows, labels, titles: drawn.update(
        label=labels[-1], captions=[caption for _, caption in rows[-1]]))
    observations = [prepare_observation(run.config) for run in runs]
    reproduction.figures.draw_recovery_grid("unused", runs, results, observations)
    return drawn["label"], drawn["captions"]


def test_figures_and_table_say_how_far_a_reused_longer_run_went(tmp_path, monkeypatch):
    # "a" ran 4 iterations, "b" 2; both are then asked for 2: "a" is reused as it is.
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=4), tiny_run(tmp_path, "b", num_iter=2)], progress=False, log=lambda m: None)
    runs = [tiny_run(tmp_path, "a", num_iter=2), tiny_run(tmp_path, "b", num_iter=2)]
    results = [sweep.load_result(run) for run in runs]
    assert [sweep.run_state(run)[0] for run in runs] == [sweep.COMPLETE] * 2
    assert [result.last_iteration for result in results] == [3, 1]

    label, captions = recovered_row(monkeypatch, runs[:1], results[:1])
    assert label.endswith("last of 4 it.") and captions[0].endswith(" dB")
    label, captions = recovered_row(monkeypatch, runs, results)  # mixed lengths: each tile says its own
    assert label.endswith("last iterate") and [c.split(" dB ")[1] for c in captions] == ["(4 it.)", "(2 it.)"]

    clean = prepare_observation(runs[0].config).clean
    row = reproduction.table.run_rows(runs[0], results[0], clean)[0]
    assert (row["at_iteration"], row["iterations"], row["status"]) == (3, 4, "done")
    line = reproduction.table.results_markdown([row], 4, []).splitlines()[-1]  # the row in "Every number"
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert (cells[4], cells[7]) == ("last (it. 3)", "4")  # the iterate, and the iterations (not "4 of 2")


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
        def run_recovery(run, **kwargs):
            if run.ckpt == "bad":
                raise OutputError(f"cannot write {run.ckpt}_checkpoint.pt (No space left on device)")
            return recovery.run_recovery(run, **kwargs)

        monkeypatch.setattr(sweep, "run_recovery", run_recovery)
    outcome = sweep.execute_runs([bad, tiny_run(tmp_path, "good", num_iter=2)], progress=False,
                                 log=lambda m: None)
    assert outcome.executed == ["bad", "good"] and not outcome.interrupted
    assert len(outcome.failures) == 1 and outcome.failures[0].startswith(f"bad: failed: {failure}")
    assert sweep.run_state(tiny_run(tmp_path, "good", num_iter=2)) == (sweep.COMPLETE, 2)


def test_devices_come_from_the_checkpoint(tmp_path, monkeypatch):
    run = tiny_run(tmp_path, "a", num_iter=2)
    sweep.execute_runs([run], progress=False, log=lambda m: None)
    cpu = recovery.describe_device(torch.device("cpu"))
    assert sweep.load_result(run).devices == [cpu]
    monkeypatch.setattr(recovery.run, "describe_device", lambda device: "NVIDIA H200")  # as if resumed on a GPU
    sweep.execute_runs([tiny_run(tmp_path, "a", num_iter=3)], progress=False, log=lambda m: None)
    assert sweep.load_result(run).devices == [cpu, "NVIDIA H200"]


# --- the command line ----------------------------------------------------------------------------


def test_dry_run_lists_runs_and_commands_and_writes_nothing(tmp_path, capsys, paper_data_dir):
    out_dir = tmp_path / "figures"
    assert main(["--figure", "all", "--dry_run", "--out_dir", str(out_dir), "--data_dir", paper_data_dir, *TINY]) == 0
    listing = capsys.readouterr().out
    for run in plan.runs_for(plan.TARGETS, Settings(width=4, num_iter=2, resize=64)):
        line = next(line for line in listing.splitlines() if line.split()[:1] == [run.ckpt])
        assert "not started" in line and f"python denoising.py --ckpt {run.ckpt} " in line
    assert "figure3.pdf" in listing and "results.csv" in listing
    assert not out_dir.exists()


def test_speed_options_reach_every_run(tmp_path, monkeypatch, capsys):
    calls = []

    def record(run, **kwargs):
        calls.append(run)
        return recovery.RunReport(run, None, None, None, None, stop_signal=None, diverged=False)

    monkeypatch.setattr(reproduction.sweep, "run_recovery", record)
    options = StepOptions(channels_last=True, compile=True, threads=1)
    run = plan.runs_for(("3",), Settings(width=4, num_iter=2, resize=64, precision="bf16", options=options))[0]
    assert run.config.precision == "bf16" and run.options == options
    command = sweep.denoising_command(run, resume=False)
    assert command.endswith("--precision bf16 --channels_last --compile --threads 1")
    sweep.execute_run(run, resume=False)
    assert calls[0].options == options
    if not torch.cuda.is_available():
        assert main(["--figure", "3", "--step", "graph", "--out_dir", str(tmp_path / "out"), *TINY]) == 2
        assert "CUDA" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--width", "0"], ["--width", "-3"], ["--num_iter", "0"], ["--out_dir", "a_file"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, paper_data_dir, monkeypatch, bad):
    # With the paper's images present, so that only the bad value can stop the command.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    forbid_runs(monkeypatch)
    argv = ["--figure", "3", "--data_dir", paper_data_dir, "--resize", "64", "--out_dir", str(tmp_path / "out"), *bad]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["--figure", "6"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()


def test_dry_run_reports_a_missing_image_as_the_real_run_does(tmp_path, capsys, monkeypatch):
    forbid_runs(monkeypatch)
    argv = ["--figure", "all", "--data_dir", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path / "out"), *TINY]
    errors = []
    for extra in (["--dry_run"], []):
        assert main(argv + extra) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        errors.append(captured.err)
    assert errors[0] == errors[1] and errors[0].count("\n") == 1 and "image 'F16' not found" in errors[0]
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch, paper_data_dir):
    def ctrl_c(config):
        raise KeyboardInterrupt  # while the images are loaded, before any run's own clean stop

    monkeypatch.setattr(reproduction.pipeline, "prepare_observation", ctrl_c)
    forbid_runs(monkeypatch)
    argv = ["--figure", "3", "--data_dir", paper_data_dir, "--out_dir", str(tmp_path / "out"), *TINY]
    try:
        status = main(argv)
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main()")
    err = capsys.readouterr().err
    assert status == 130 and err.count("\n") == 1 and err.startswith("reproduce.py: interrupted")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny_sweep(paper_data_dir, tmp_path_factory):
    """``reproduce.py --figure all`` at 64x64, width 4, 2 iterations."""
    out_dir = tmp_path_factory.mktemp("reproduce") / "figures"
    assert main(["--figure", "all", "--out_dir", str(out_dir), "--data_dir", paper_data_dir, *TINY]) == 0
    return out_dir


def test_everything_is_drawn_from_real_runs(tiny_sweep):
    for name in ["figure3", "figure4", "figure5", "teaser"]:
        assert Image.open(tiny_sweep / f"{name}.png").size[0] > 300
        assert (tiny_sweep / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    rows = read_rows(tiny_sweep / "results.csv")
    assert not [row for row in rows if row["status"] != "done"]
    cells = {(row["image"], float(row["nlevel"])) for row in rows}
    assert cells == set(plan.table_cells())
    learned = [row for row in rows if row["width"]]
    # 7 cells x (DIP peak + last, DIP-L1 peak + last, ours last), and the teaser's 3 runs (2 + 1 + 2 rows)
    assert len(learned) == 7 * 5 + 5
    assert all(row["iterations"] == "2" and row["device"] == recovery.describe_device(torch.device("cpu"))
               for row in learned)
    summary = (tiny_sweep / "results.md").read_text()
    assert "| not run |" not in summary and "oracle peak" in summary


def test_baselines_and_runs_see_the_same_corrupted_image(tiny_sweep, paper_data_dir):
    settings = Settings(width=4, num_iter=2, resize=64, data_dir=paper_data_dir)
    directory = plan.runs_dir(dataclasses.replace(settings, out_dir=str(tiny_sweep)))
    observation = prepare_observation(plan.cell_config("Baboon", 0.5, settings))
    rows = read_rows(tiny_sweep / "results.csv")
    noisy_row = next(row for row in rows if (row["image"], row["nlevel"], row["method"]) == ("Baboon", "0.5", "noisy input"))
    for ckpt in ["Baboon_05_4", "Baboon_05_4_dip", "Baboon_05_4_dip-l1"]:
        fitted = RunState.load(RunFiles(directory, ckpt).checkpoint).problem["y"][0].numpy()
        assert np.array_equal(fitted, observation.noisy), ckpt
        assert float(noisy_row["psnr"]) == pytest.approx(psnr(observation.clean, fitted), abs=1e-4)


def test_a_second_invocation_reuses_every_run(tiny_sweep, paper_data_dir, monkeypatch, capsys):
    forbid_runs(monkeypatch)
    before = (tiny_sweep / "results.csv").read_text()
    assert main(["--figure", "all", "--out_dir", str(tiny_sweep), "--data_dir", paper_data_dir, *TINY]) == 0
    assert capsys.readouterr().out.count("complete, reused") == 24
    assert (tiny_sweep / "results.csv").read_text() == before


def test_runs_not_made_say_not_run(paper_data_dir, tmp_path):
    assert main(["--figure", "teaser", "--out_dir", str(tmp_path), "--data_dir", paper_data_dir, *TINY]) == 0
    rows = read_rows(tmp_path / "results.csv")
    made = [row for row in rows if row["width"] in ("6", "2")]  # the teaser's widths 192 and 64, scaled
    assert len(made) == 5 and all(row["status"] == "done" and row["psnr"] for row in made)
    missing = [row for row in rows if row["width"] == "4"]
    assert len(missing) == 7 * 5 and all(row["status"] == "not run" and not row["psnr"] for row in missing)
    assert all(row["psnr"] for row in rows if not row["width"])  # the classical filters always run
    assert "| not run |" in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "figure3.png").exists()
