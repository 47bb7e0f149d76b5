"""reproduce.py: the command line over reproduction.pipeline: --dry_run lists the runs, their
state and commands and writes nothing, bad input and a missing image are one line and exit 2 (with
or without --dry_run), and Ctrl-C during start-up is one line and exit 130. The paper's images are
scikit-image samples under their names (conftest.sample_data_dir)."""

import pytest

import reproduction.pipeline
from reproduce import main
from reproduction import plan
from reproduction.plan import Settings
from sweep_helpers import TINY_SWEEP, forbid_runs
from tiny import RESIZE
from utils.errors import INTERRUPTED


def test_dry_run_lists_runs_and_commands_and_writes_nothing(tmp_path, capsys, sample_data_dir):
    out_dir = tmp_path / "figures"
    assert main(["--figure", "all", "--dry_run", "--out_dir", str(out_dir), "--data_dir", sample_data_dir, *TINY_SWEEP]) == 0
    listing = capsys.readouterr().out
    for spec in plan.runs_for(plan.TARGETS, Settings(width=4, num_iter=2, resize=RESIZE)):
        line = next(line for line in listing.splitlines() if line.split()[:1] == [spec.ckpt])
        assert "not started" in line and f"python denoising.py --ckpt {spec.ckpt} " in line
    assert "figure3.pdf" in listing and "results.csv" in listing
    assert not out_dir.exists()


@pytest.mark.parametrize("bad", [["--width", "0"], ["--width", "-3"], ["--num_iter", "0"], ["--out_dir", "a_file"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, sample_data_dir, monkeypatch, bad):
    # With the images present, so that only the bad value can stop the command.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    forbid_runs(monkeypatch)
    argv = ["--figure", "3", "--data_dir", sample_data_dir, "--resize", str(RESIZE), "--out_dir", str(tmp_path / "out"),
            *bad]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["--figure", "6"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()


def test_dry_run_reports_a_missing_image_as_the_real_run_does(tmp_path, capsys, monkeypatch):
    forbid_runs(monkeypatch)
    argv = ["--figure", "all", "--data_dir", str(tmp_path / "nowhere"), "--out_dir", str(tmp_path / "out"), *TINY_SWEEP]
    errors = []
    for extra in (["--dry_run"], []):
        assert main(argv + extra) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        errors.append(captured.err)
    assert errors[0] == errors[1] and errors[0].count("\n") == 1 and "image 'F16' not found" in errors[0]
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch, sample_data_dir):
    def ctrl_c(config):
        raise KeyboardInterrupt  # while the images are loaded, before any run's own clean stop

    monkeypatch.setattr(reproduction.pipeline, "prepare_observation", ctrl_c)
    forbid_runs(monkeypatch)
    argv = ["--figure", "3", "--data_dir", sample_data_dir, "--out_dir", str(tmp_path / "out"), *TINY_SWEEP]
    try:
        status = main(argv)
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main()")
    err = capsys.readouterr().err
    assert status == INTERRUPTED == 130 and err.count("\n") == 1 and err.startswith("reproduce.py: interrupted")
    assert not (tmp_path / "out").exists()
