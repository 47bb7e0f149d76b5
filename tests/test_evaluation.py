"""recovery.evaluation: the candidate answers beside the last iterate change nothing of the run,
are the documented averages, resume bit for bit, and reach the history, the files, the table and
Figures 3 and 4."""

import copy
import importlib.util
import math

import numpy as np
import pytest
import torch
from PIL import Image

import reproduction.figures
from denoising import main
from recovery import Recovery, RecoveryConfig, RunSpec, RunState, prepare_observation, run_recovery
from recovery.evaluation import (CANDIDATES, FILL_THRESHOLD, FINAL, FINAL_LABEL, OUTPUT_EMA_WEIGHT, WEIGHT_EMA_WEIGHT,
                                 DETECTION_FIELDS, describe_detection, detection, detection_row, fill_impulses, impulse_mask,
                                 Evaluation, batch_statistics_untracked)
from recovery.refinement import REFINED_LABEL, extreme_elements
from recovery.state import HISTORY_FIELDS
from reproduction import sweep, table
from reproduction.plan import METHOD_NAMES
from same_run import comparable_history
from tiny import TINY
from utils.atomic_files import read_csv
from utils.errors import InputError
from utils.metrics import psnr



pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**settings):
    return RecoveryConfig(**{"image": "astronaut", "resize": 64, "width": 4, "num_iter": 7, "show_every": 3,
                             "seed": 0, **settings})


def training_state(problem):
    """Everything the training trajectory is made of: parameters, BatchNorm buffers (the batch
    counter too), g and h, the noise generator."""
    state = {f"network.{k}": v.clone() for k, v in problem.network.state_dict().items()}
    if problem.corruption is not None:
        state.update({f"corruption.{k}": v.clone() for k, v in problem.corruption.state_dict().items()})
    state["generator"] = problem.generator.get_state()
    return state


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("method,seed", [("ours", 0), ("dip-l1", 3)])
def test_a_run_with_the_candidates_is_the_plain_loop_bit_for_bit(tmp_path, method, seed):
    config = tiny_config(method=method, seed=seed)
    report = run_recovery(RunSpec("run", str(tmp_path), "cpu", config), progress=False, log=lambda m: None)
    observation = prepare_observation(config)
    plain = Recovery(config, observation.noisy, "cpu")
    losses, lasts = [], []
    for iteration in range(config.num_iter):
        loss, phi = plain.step()
        if iteration % config.show_every == 0 or iteration == config.num_iter - 1:
            losses.append(loss.item())
            lasts.append(phi[0].numpy())
    assert [row["loss"] for row in report.state.history] == losses
    # On the device in torch (float32), scikit-image's number to the 1e-4 dB the history promises.
    assert [row["psnr"] for row in report.state.history] == pytest.approx([psnr(observation.clean, last) for last in lasts],
                                                                           abs=1e-4)
    assert np.array_equal(report.state.last, lasts[-1])
    saved = RunState.load(str(tmp_path / "run_checkpoint.pt"))
    engine = Recovery(config, observation.noisy, "cpu")
    engine.load_state_dict(saved.problem)
    assert_same_tensors(training_state(engine), training_state(plain))


@pytest.mark.parametrize("method,steps", [("ours", 4), ("dip", 3)])
def test_the_averages_are_the_documented_moving_averages(method, steps):
    config = tiny_config(method=method)
    problem = Recovery(config, prepare_observation(config).noisy, "cpu")
    evaluation = Evaluation(problem)
    weights = [p.detach().clone() for p in problem.network.parameters()]  # the average starts at the initial weights
    outputs = None
    for _ in range(steps):
        _, phi = problem.step()
        evaluation.update(phi)
        # average <- weight * average + (1 - weight) * new, the outputs' starting at the first output
        outputs = phi.clone() if outputs is None else OUTPUT_EMA_WEIGHT * outputs + (1 - OUTPUT_EMA_WEIGHT) * phi
        weights = [WEIGHT_EMA_WEIGHT * w + (1 - WEIGHT_EMA_WEIGHT) * p.detach()
                   for w, p in zip(weights, problem.network.parameters())]
    before = training_state(problem)
    candidates = evaluation.outputs()
    assert_same_tensors(training_state(problem), before)  # the passes on z changed no training state
    has_s = problem.corruption is not None
    assert list(candidates) == [name for name in CANDIDATES if name != "y_minus_s" or has_s]
    for average, weight in zip(evaluation.averaged_network.parameters(), weights, strict=True):
        torch.testing.assert_close(average, weight, rtol=1e-6, atol=1e-9)
    # Each pass on z is a plain training-mode pass (on copies: it moves their running statistics),
    # the average's with the evaluation's own averaged weights.
    with torch.no_grad():
        expected = {"on_z": copy.deepcopy(problem.network)(problem.z), "output_ema": outputs,
                    "weight_ema": copy.deepcopy(evaluation.averaged_network)(problem.z)}
        expected["filled"] = expected["weight_ema"]  # no element is known to be clean
        if has_s:
            g, h = problem.corruption.g, problem.corruption.h
            s = g * g - h * h
            expected["y_minus_s"] = torch.clamp(problem.y - s, 0, 1)
            found = s.abs() > FILL_THRESHOLD
            expected["filled"] = expected["weight_ema"] * found + expected["y_minus_s"] * ~found
    for name in candidates:
        np.testing.assert_allclose(candidates[name].numpy(), expected[name][0].numpy(), rtol=0, atol=1e-6, err_msg=name)
    assert not torch.equal(candidates["on_z"], phi[0])  # z, not the last perturbed input


def test_batch_statistics_untracked_normalises_with_the_batch_and_keeps_the_running_ones():
    layer = torch.nn.BatchNorm2d(3).train()
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 + 1
    with batch_statistics_untracked(layer):
        out = layer(x)
    assert torch.equal(layer.running_mean, torch.zeros(3)) and torch.equal(layer.running_var, torch.ones(3))
    assert layer.num_batches_tracked.item() == 0 and layer.track_running_stats
    torch.testing.assert_close(out, layer(x))  # the very normalisation a training pass makes
    assert layer.num_batches_tracked.item() == 1


@pytest.mark.parametrize("first_session", [4, 5])  # stopped at a logged iteration, or one past it
def test_resume_carries_the_averages_bit_for_bit(tmp_path, first_session):
    common = TINY + ["--out_dir", str(tmp_path), "--show_every", "3", "--threads", "1"]
    assert main(common + ["--ckpt", "whole", "--num_iter", "8"]) == 0
    assert main(common + ["--ckpt", "split", "--num_iter", str(first_session)]) == 0
    assert main(["--out_dir", str(tmp_path), "--ckpt", "split", "--resume", "--num_iter", "8", "--no_progress"]) == 0
    whole, split = (RunState.load(str(tmp_path / f"{name}_checkpoint.pt")) for name in ("whole", "split"))
    for a, b in zip(whole.evaluation["weight_ema"], split.evaluation["weight_ema"], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(whole.evaluation["output_ema"], split.evaluation["output_ema"])
    assert np.array_equal(whole.final, split.final) and np.array_equal(whole.last, split.last)
    logged = {row["iteration"] for row in whole.history}  # a session of 5 also logs its own last, iteration 4
    assert comparable_history(whole.history) == comparable_history([r for r in split.history if r["iteration"] in logged])
    assert (tmp_path / "whole_final.png").read_bytes() == (tmp_path / "split_final.png").read_bytes()


def test_a_version_1_checkpoint_resumes_with_the_averages_started_there(tmp_path, capsys):
    common = TINY + ["--out_dir", str(tmp_path), "--show_every", "3", "--threads", "1"]
    assert main(common + ["--ckpt", "whole", "--num_iter", "8"]) == 0
    assert main(common + ["--ckpt", "old", "--num_iter", "4"]) == 0
    path = tmp_path / "old_checkpoint.pt"
    saved = torch.load(path, weights_only=True)
    for key in ("final", "evaluation"):  # what format version 1 has not
        del saved[key]
    saved.update(version=1, history=[{key: row[key] for key in HISTORY_FIELDS[:5]} for row in saved["history"]])
    torch.save(saved, path)
    capsys.readouterr()
    assert main(["--out_dir", str(tmp_path), "--ckpt", "old", "--resume", "--num_iter", "8", "--no_progress"]) == 0
    assert "no evaluation averages (format version 1); they start at iteration 4" in capsys.readouterr().out
    whole, old = (RunState.load(str(tmp_path / f"{name}_checkpoint.pt")) for name in ("whole", "old"))
    assert np.array_equal(whole.last, old.last)  # the training is the uninterrupted run's
    assert old.final is not None and old.evaluation is not None
    history = read_csv(tmp_path / "old_history.csv")
    assert history[0]["psnr_on_z"] is None and history[-1]["psnr_on_z"] is not None


def test_the_history_the_final_image_and_the_panel(tmp_path):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "7", "--show_every", "3"]) == 0
    history = read_csv(tmp_path / "run_history.csv")
    assert tuple(history[0]) == HISTORY_FIELDS
    assert HISTORY_FIELDS[:5] == ("iteration", "loss", "psnr", "ssim", "seconds")  # the reference's, as they were
    # Every logged iteration: the final answer's columns; the last one: every candidate's.
    assert all(row[f"psnr_{FINAL}"] > 0 and 0 < row[f"ssim_{FINAL}"] <= 1 for row in history)
    assert all(history[-1][f"psnr_{name}"] > 0 and 0 < history[-1][f"ssim_{name}"] <= 1 for name in CANDIDATES)
    assert all(row[f"psnr_{name}"] is None for row in history[:-1] for name in CANDIDATES if name != FINAL)
    saved = RunState.load(tmp_path / "run_checkpoint.pt")
    final = np.asarray(Image.open(tmp_path / "run_final.png"))
    assert np.array_equal(final, np.round(saved.final.transpose(1, 2, 0) * 255).astype(np.uint8))
    clean = prepare_observation(saved.config).clean
    assert history[-1][f"psnr_{FINAL}"] == pytest.approx(psnr(clean, saved.final), abs=1e-4)
    assert not np.array_equal(saved.final, saved.last)
    # noisy, last, final, clean: four tiles side by side
    assert Image.open(tmp_path / "run_panel.png").size[0] > 4 * Image.open(tmp_path / "run_last.png").size[0]


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_log_candidates_logs_every_candidate_at_every_logged_iteration(tmp_path, method):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "7", "--show_every", "3",
                        "--method", method, "--log_candidates"]) == 0
    history = read_csv(tmp_path / "run_history.csv")
    present = [name for name in CANDIDATES if name != "y_minus_s" or method == "ours"]  # DIP has no s
    assert len(history) == 3 and all(row[f"psnr_{name}"] > 0 and 0 < row[f"ssim_{name}"] <= 1
                                     for row in history for name in present)
    assert all(row["psnr_y_minus_s"] is None for row in history) == (method == "dip")


def test_without_a_clean_image_the_candidate_columns_are_empty_and_final_is_written(tmp_path):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "first", "--num_iter", "1"]) == 0
    argv = ["--noisy", str(tmp_path / "first_noisy.png"), "--width", "4", "--num_iter", "3", "--device", "cpu",
            "--no_progress", "--out_dir", str(tmp_path), "--ckpt", "run"]
    assert main(argv) == 0
    history = read_csv(tmp_path / "run_history.csv")
    # The metrics and the detection's precision and recall need the clean image; the fraction found does not.
    assert all(row[field] is None for row in history for field in HISTORY_FIELDS[5:] if field != "impulses_found")
    assert all(0 <= row["impulses_found"] <= 1 for row in history)
    assert (tmp_path / "run_final.png").is_file() and (tmp_path / "run_mask.png").is_file()


def tiny_run(folder, ckpt, method):
    return RunSpec(ckpt, str(folder), "cpu", tiny_config(method=method, num_iter=4, show_every=2))


def test_the_table_and_figures_carry_the_final_answer(tmp_path, monkeypatch):
    specs = [tiny_run(tmp_path, "ours", "ours"), tiny_run(tmp_path, "dip", "dip")]
    sweep.execute_runs(specs, progress=False, log=lambda m: None)
    states = [sweep.load_state(spec) for spec in specs]
    clean = prepare_observation(specs[0].config).clean
    rows = [row for spec, state in zip(specs, states) for row in table.run_rows(spec, state, clean)]
    ours, dip = METHOD_NAMES["ours"], METHOD_NAMES["dip"]
    refined = importlib.util.find_spec("bm3d") is not None  # its BM3D is an optional package
    assert [(row["method"], row["iterate"]) for row in rows] == [(ours, table.LAST), (ours, FINAL_LABEL)] + [
        (ours, REFINED_LABEL)] * refined + [(dip, table.PEAK), (dip, table.LAST), (dip, FINAL_LABEL)]
    images = [states[0].last, states[0].final] + [states[0].refined] * refined + [states[1].best, states[1].last,
                                                                                  states[1].final]
    for row, image in zip(rows, images, strict=True):
        assert row["psnr"] == psnr(clean, image)
    assert rows[1]["at_iteration"] == rows[0]["at_iteration"] == 3
    summary = table.results_markdown(rows, 4, []).splitlines()
    columns = [f"{ours}, {table.LAST}", f"{ours}, {FINAL_LABEL}"] + [f"{ours}, {REFINED_LABEL}"] * refined
    assert f"| {' | '.join(columns)} |" in summary[5]  # each a column of its own
    not_run = table.run_rows(specs[0], None, clean)
    assert [row["iterate"] for row in not_run] == [table.LAST, FINAL_LABEL, REFINED_LABEL]

    drawn, real_save_grid = {}, reproduction.figures.save_grid

    def save_grid(paths, grid, labels, titles):  # the real drawing, its tiles kept to be checked
        drawn.update(grid=grid, labels=labels)
        real_save_grid(paths, grid, labels, titles)

    monkeypatch.setattr(reproduction.figures, "save_grid", save_grid)
    observations = [prepare_observation(spec.config) for spec in specs]
    reproduction.figures.draw_recovery_grid(str(tmp_path / "figure3"), specs, [states[0], None], observations)
    assert len(drawn["grid"]) == 4 and "final" in drawn["labels"][3] and "last" in drawn["labels"][2]
    (image, caption), (missing, why) = drawn["grid"][3]
    assert image is states[0].final and caption == f"{psnr(clean, states[0].final):.2f} dB"
    assert missing is None and why == "not run"
    assert (tmp_path / "figure3.pdf").read_bytes().startswith(b"%PDF") and (tmp_path / "figure3.png").is_file()



@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_the_detection_is_the_fill_threshold_either_sign(kind):
    impulses = np.array([0.0, FILL_THRESHOLD, -0.5, 0.9, -FILL_THRESHOLD], dtype=np.float32)
    found = impulse_mask(impulses if kind == "numpy" else torch.from_numpy(impulses))
    assert found.tolist() == [False, False, True, True, False]


@pytest.mark.parametrize("found,corrupted,expected", [
    ([1, 1, 0, 0], [1, 0, 1, 0], [0.5, 0.5, 0.5]),
    ([1, 1, 1, 0], [1, 1, 0, 0], [0.75, 2 / 3, 1.0]),
    ([0, 0, 0, 0], [1, 0, 0, 0], [0.0, math.nan, 0.0]),  # nothing found: no precision (0 / 0)
    ([1, 0, 0, 0], [0, 0, 0, 0], [0.25, 0.0, math.nan]),  # nothing corrupted: no recall
    ([0, 0, 0, 0], [0, 0, 0, 0], [0.0, math.nan, math.nan]),
])
def test_the_detection_s_fraction_precision_and_recall(found, corrupted, expected):
    found, corrupted = (torch.tensor(values, dtype=torch.bool) for values in (found, corrupted))
    assert [value.item() for value in detection(found, corrupted)] == pytest.approx(expected, nan_ok=True)
    assert [value.item() for value in detection(found)] == pytest.approx(expected[:1])


@pytest.mark.parametrize("found, corrupted, says", [
    ([1, 1, 0, 0], [1, 0, 1, 1], "precision 0.500, recall 0.333"),
    ([0, 0, 0, 0], [1, 0, 0, 0], "precision n/a (nothing found), recall 0.000"),
    ([1, 0, 0, 0], [0, 0, 0, 0], "precision 0.000, recall n/a (nothing corrupted)"),
    ([0, 0, 0, 0], [0, 0, 0, 0], "precision n/a (nothing found), recall n/a (nothing corrupted)"),
])
def test_a_ratio_of_0_over_0_is_an_empty_cell_and_said_as_n_a(found, corrupted, says):
    found, corrupted = (torch.tensor(values, dtype=torch.bool) for values in (found, corrupted))
    row = detection_row([value.item() for value in detection(found, corrupted)])
    assert (row["precision"] is None) == ("precision n/a" in says) and (row["recall"] is None) == ("recall n/a" in says)
    assert describe_detection(row, corruption_known=True).endswith(f"against the truly corrupted: {says}")
    assert describe_detection(row, corruption_known=False) == f"impulses found: {row['impulses_found']:.1%} of the elements"


@pytest.mark.parametrize("noise", ["salt_pepper_pixel", "random_valued"])
def test_a_run_logs_its_detection_and_writes_its_impulse_map(tmp_path, noise):
    config = tiny_config(noise=noise, num_iter=100, show_every=50)  # s has grown where it is large
    lines = []
    report = run_recovery(RunSpec("run", str(tmp_path), "cpu", config), progress=False, log=lines.append)
    found = np.asarray(Image.open(tmp_path / "run_mask.png")).transpose(2, 0, 1) == 255
    observation = prepare_observation(config)
    corrupted = observation.noisy != observation.clean
    if noise == "salt_pepper_pixel":  # impulses of 0 and 1: nothing else is taken for one
        assert not found[~extreme_elements(torch.from_numpy(observation.noisy)).numpy()].any()
    elif importlib.util.find_spec("bm3d") is None:  # no refined answer, no classical estimate: the final answer's
        assert np.array_equal(found, impulse_mask(report.impulses))
    else:  # any value: most impulses that changed an element by more than a third are found (0.89 measured)
        assert found[np.abs(observation.noisy - observation.clean) > 1 / 3].mean() > 0.8
    row = read_csv(tmp_path / "run_history.csv")[-1]
    hits = (found & corrupted).sum()
    assert 0 < hits < found.sum()
    assert [row[name] for name in DETECTION_FIELDS] == pytest.approx(
        [found.mean(), hits / found.sum(), hits / corrupted.sum()], abs=1e-6)
    assert lines[-1] == describe_detection(row, corruption_known=True) and lines[-1].startswith("impulses found: ")
    assert f"at nlevel {config.nlevel}, {noise}" in "\n".join(lines)


def test_dip_has_no_detection_and_no_impulse_map(tmp_path):
    run_recovery(RunSpec("run", str(tmp_path), "cpu", tiny_config(method="dip")), progress=False, log=lambda m: None)
    assert all(row[name] is None for row in read_csv(tmp_path / "run_history.csv") for name in DETECTION_FIELDS)
    assert not (tmp_path / "run_mask.png").exists()


@pytest.mark.parametrize("remove", ["both", "salt", "pepper"])
def test_remove_fills_the_impulses_of_its_sign_and_keeps_the_others_as_observed(remove):
    observed = torch.tensor([1.0, 0.0, 0.5, 0.3])
    impulses = torch.tensor([0.6, -0.4, 0.001, 0.0])  # salt found, pepper found, none, none
    estimate = torch.full((4,), 0.45)
    observed_less_s = (observed - impulses).clamp(0, 1)
    filled = fill_impulses(observed, observed_less_s, impulses, estimate, FILL_THRESHOLD, remove)
    salt = 0.45 if remove in ("both", "salt") else 1.0
    pepper = 0.45 if remove in ("both", "pepper") else 0.0
    assert filled.tolist() == pytest.approx([salt, pepper, 0.499, 0.3])


def test_remove_is_refused_without_impulses_to_remove():
    with pytest.raises(InputError, match="remove salt needs the impulses s of method ours; dip has none"):
        tiny_config(method="dip", remove="salt").validate()


def test_a_salt_only_run_keeps_the_pepper_it_found(tmp_path):
    config = tiny_config(remove="salt", num_iter=100, show_every=50)
    report = run_recovery(RunSpec("run", str(tmp_path), "cpu", config), progress=False, log=lambda m: None)
    pepper = impulse_mask(report.impulses, sign="pepper")
    assert pepper.any() and np.array_equal(report.state.final[pepper], prepare_observation(config).noisy[pepper])
