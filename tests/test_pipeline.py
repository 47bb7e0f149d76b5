"""reproduction.pipeline: ``reproduce.py --figure all`` end to end, once at 64 px, width 4, 2
iterations, on scikit-image samples under the paper's file names (conftest.sample_data_dir): every
figure and every row of the table drawn from real runs, the classical filters and the runs seeing
the same corrupted image, and a second invocation reusing every run and writing the same table."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import recovery
from recovery import RunFiles, RunState, prepare_observation
from reproduce import main
from reproduction import plan
from reproduction.plan import Settings
from sweep_helpers import TINY_SWEEP, forbid_runs, read_rows
from tiny import RESIZE
from utils.metrics import psnr


@pytest.fixture(scope="module")
def tiny_sweep(sample_data_dir, classical_results, tmp_path_factory):
    """``reproduce.py --figure all`` at 64 px, width 4, 2 iterations, on the paper's images'
    stand-ins; the classical filters' results from the session's cache."""
    out_dir = tmp_path_factory.mktemp("reproduce") / "figures"
    classical_results(out_dir)
    assert main(["--figure", "all", "--out_dir", str(out_dir), "--data_dir", sample_data_dir, *TINY_SWEEP]) == 0
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
    # 7 cells x (DIP peak + last + final, DIP-L1 peak + last + final, ours last + final), and the
    # teaser's 3 runs (2 + 3 + 3 rows)
    assert len(learned) == 7 * 8 + 8
    assert all(row["iterations"] == "2" and row["device"] == recovery.describe_device(torch.device("cpu"))
               for row in learned)
    summary = (tiny_sweep / "results.md").read_text()
    assert "| not run |" not in summary and "oracle peak" in summary


def test_baselines_and_runs_see_the_same_corrupted_image(tiny_sweep, sample_data_dir):
    settings = Settings(width=4, num_iter=2, resize=RESIZE, data_dir=sample_data_dir)
    directory = plan.runs_dir(dataclasses.replace(settings, out_dir=str(tiny_sweep)))
    observation = prepare_observation(plan.cell_config("Baboon", 0.5, settings))
    rows = read_rows(tiny_sweep / "results.csv")
    noisy_row = next(row for row in rows if (row["image"], row["nlevel"], row["method"]) == ("Baboon", "0.5", "noisy input"))
    for ckpt in ["Baboon_05_4", "Baboon_05_4_dip", "Baboon_05_4_dip-l1"]:
        fitted = RunState.load(RunFiles(directory, ckpt).checkpoint).problem["y"][0].numpy()
        assert np.array_equal(fitted, observation.noisy), ckpt
        assert float(noisy_row["psnr"]) == pytest.approx(psnr(observation.clean, fitted), abs=1e-4)


def test_a_second_invocation_reuses_every_run(tiny_sweep, sample_data_dir, monkeypatch, capsys):
    forbid_runs(monkeypatch)
    before = (tiny_sweep / "results.csv").read_text()
    assert main(["--figure", "all", "--out_dir", str(tiny_sweep), "--data_dir", sample_data_dir, *TINY_SWEEP]) == 0
    assert capsys.readouterr().out.count("complete, reused") == 24
    assert (tiny_sweep / "results.csv").read_text() == before
