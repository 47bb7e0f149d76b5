"""recovery.refinement: the detector takes nothing but extreme elements for impulses under a 0/1
model, reads its threshold from the fit's own residual, fills from the surroundings, and the
refined answer is written and resumed like the run's other outputs."""

import dataclasses

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import skimage.transform
import torch
from PIL import Image

from conftest import needs_package
from recovery import RecoveryConfig, RunSpec, StepOptions, run_recovery
from recovery.evaluation import FILL_THRESHOLD
from recovery.refinement import (MAD_TO_SIGMA, RESIDUAL_SIGMAS, ImpulseDetector, detect_impulses,
                                 extreme_elements, fill_from_surroundings, refine, residual_scale)
from recovery.state import RunState
from same_run import assert_same_problem_state
from tiny import TINY_PROBLEM

pytestmark = pytest.mark.usefixtures("one_thread")


def noisy_case(seed, shape=(3, 16, 16), density=0.3):
    """A clean image in [0.05, 0.95] (no extreme element), its 0/1 impulses, and an estimate near it."""
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0.05, 0.95, shape).astype(np.float32)
    corrupted = rng.random(shape) < density
    observed = np.where(corrupted, rng.integers(0, 2, shape), clean).astype(np.float32)
    estimate = np.clip(clean + rng.normal(0, 0.05, shape), 0, 1).astype(np.float32)
    return clean, observed, estimate, corrupted


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_under_a_0_1_model_no_element_that_is_not_extreme_is_an_impulse(seed, bit_depth):
    rng = np.random.default_rng(seed)
    observed = torch.from_numpy(rng.random((3, 24, 24)).astype(np.float32))  # every value, extremes rare
    observed[:, ::5] = torch.from_numpy(rng.integers(0, 2, (3, 5, 24)).astype(np.float32))
    impulses = torch.from_numpy(rng.normal(0, 0.5, observed.shape).astype(np.float32))  # s found everywhere
    estimate = torch.from_numpy(rng.random(observed.shape).astype(np.float32))
    found = detect_impulses(observed, estimate, impulses, extreme_values=True, bit_depth=bit_depth)
    assert found.any() and not found[~extreme_elements(observed, bit_depth)].any()


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_an_extreme_element_is_one_within_half_a_level_of_0_or_1(bit_depth):
    level = 1 / (2**bit_depth - 1)
    values = torch.tensor([0.0, 0.49 * level, 0.51 * level, 1 - 0.51 * level, 1 - 0.49 * level, 1.0],
                          dtype=torch.float64)
    assert extreme_elements(values, bit_depth).tolist() == [True, True, False, False, True, True]


@pytest.mark.parametrize("scale", [0.01, 0.05, 0.2])
def test_the_threshold_is_a_multiple_of_the_fit_s_residual_scale_on_the_clean_elements(scale):
    # Clean elements with residuals of a known median size; extreme elements just inside and just
    # outside RESIDUAL_SIGMAS scales from the estimate.
    residuals = np.array([-1, 1, -2, 2, 3], dtype=np.float32) * scale / 2  # median |r| = scale
    sigma = MAD_TO_SIGMA * scale
    estimate = torch.full((9,), 0.5)
    observed = torch.cat([estimate[:5] + torch.from_numpy(residuals), torch.tensor([0.0, 0.0, 1.0, 1.0])])
    estimate[5:] = torch.tensor([RESIDUAL_SIGMAS * sigma * 0.99, RESIDUAL_SIGMAS * sigma * 1.01,
                                 1 - RESIDUAL_SIGMAS * sigma * 0.99, 1 - RESIDUAL_SIGMAS * sigma * 1.01])
    assert residual_scale(observed - estimate, ~extreme_elements(observed)).item() == pytest.approx(sigma, rel=1e-5)
    found = detect_impulses(observed, estimate, observed - estimate, extreme_values=True)
    assert found.tolist() == [False] * 5 + [False, True, False, True]


def test_the_scale_is_read_from_the_clean_elements_only():
    observed = torch.tensor([0.5, 0.52, 0.48, 0.0, 1.0])
    estimate = torch.tensor([0.5, 0.5, 0.5, 0.2, 0.9])
    base = detect_impulses(observed, estimate, observed - estimate, extreme_values=True)
    farther = estimate.clone()
    farther[3] = 0.9  # an impulse's residual grows: the clean elements' scale, and so the threshold, stay
    assert base.tolist() == detect_impulses(observed, farther, observed - farther, extreme_values=True).tolist()
    assert base.tolist() == [False, False, False, True, True]


def test_where_every_element_is_extreme_no_scale_is_read_and_none_is_found():
    observed = torch.tensor([0.0, 1.0, 1.0, 0.0])
    found = detect_impulses(observed, torch.full((4,), 0.5), torch.ones(4), extreme_values=True)
    assert not found.any()


def test_without_a_0_1_model_an_impulse_needs_both_s_and_the_residual():
    observed = torch.tensor([0.5, 0.51, 0.49, 0.5, 0.9, 0.9, 0.1])
    estimate = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    impulses = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.4, FILL_THRESHOLD, -0.4])  # the last two: s small, s large
    found = detect_impulses(observed, estimate, impulses, extreme_values=False)
    assert found.tolist() == [False, False, False, False, True, False, True]


@pytest.mark.parametrize("sign,expected", [("both", [True, True]), ("salt", [True, False]), ("pepper", [False, True])])
def test_a_sign_keeps_the_impulses_brighter_or_darker_than_the_estimate(sign, expected):
    observed = torch.tensor([1.0, 0.0, 0.5, 0.52, 0.48])
    estimate = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])
    found = detect_impulses(observed, estimate, observed - estimate, extreme_values=True, sign=sign)
    assert found.tolist() == expected + [False] * 3


@pytest.mark.parametrize("impulse_values", ["extreme", "any"])
def test_a_file_s_impulses_are_taken_for_0_and_1_where_most_strong_ones_found_are(impulse_values):
    clean, observed, estimate, corrupted = noisy_case(0)
    if impulse_values == "any":
        observed = np.where(corrupted, np.random.default_rng(1).random(clean.shape), clean).astype(np.float32)
    observed, estimate = torch.from_numpy(observed), torch.from_numpy(estimate)
    impulses = observed - torch.from_numpy(clean)  # s as a run that has found the impulses has it
    detector = ImpulseDetector.for_run(RecoveryConfig(noisy="photo.png"), bit_depth=8)
    expected = detect_impulses(observed, estimate, impulses, extreme_values=impulse_values == "extreme")
    assert detector.extreme_values is None and torch.equal(detector(observed, estimate, impulses), expected)


@pytest.mark.parametrize("noise,extreme", [("salt_pepper", True), ("salt_pepper_pixel", True), ("random_valued", False)])
def test_a_run_s_detector_knows_its_impulse_model(noise, extreme):
    detector = ImpulseDetector.for_run(RecoveryConfig(noise=noise), bit_depth=16)
    assert (detector.extreme_values, detector.bit_depth) == (extreme, 16)


@pytest.mark.parametrize("seed", range(3))
def test_the_fill_keeps_every_element_not_found_and_follows_a_smooth_residual(seed):
    clean, observed, _, corrupted = noisy_case(seed)
    ramp = np.linspace(0, 0.1, 16, dtype=np.float32)[None, None, :]  # texture the estimate lacks: a ramp
    estimate = np.clip(clean - ramp, 0, 1)
    filled = fill_from_surroundings(observed, estimate, corrupted)
    assert np.array_equal(filled[~corrupted], observed[~corrupted])
    # Where clean - estimate is the ramp, biharmonic inpainting continues it: the fill is the clean value.
    assert np.abs(filled - clean)[corrupted].mean() < np.abs(estimate - clean)[corrupted].mean() / 10


def test_the_fill_answers_the_same_for_any_memory_layout():
    _, observed, estimate, corrupted = noisy_case(0)
    expected = fill_from_surroundings(observed, estimate, corrupted)
    fortran = [np.asfortranarray(array) for array in (observed, estimate, corrupted)]
    views = [np.ascontiguousarray(array.transpose(0, 2, 1)).transpose(0, 2, 1) for array in (observed, estimate, corrupted)]
    for arrays in (fortran, views):
        assert np.array_equal(fill_from_surroundings(*arrays), expected)


def test_a_channel_found_whole_takes_the_estimate():
    _, observed, estimate, corrupted = noisy_case(1)
    corrupted[1] = True
    filled = fill_from_surroundings(observed, estimate, corrupted)
    assert np.array_equal(filled[1], estimate[1])


@needs_package("bm3d")
@pytest.mark.parametrize("seed", range(2))
def test_the_refined_answer_keeps_the_elements_not_found_and_improves_on_the_estimate(seed):
    # A natural image and a blurred estimate of it, as a network that has not fitted the texture gives.
    clean = skimage.transform.resize(skimage.data.astronaut()[100:260, 150:310], (48, 48)).transpose(2, 0, 1)
    clean = clean.astype(np.float32)
    estimate = scipy.ndimage.gaussian_filter(clean, (0, 1.5, 1.5))
    rng = np.random.default_rng(seed)
    corrupted = rng.random(clean.shape) < 0.2
    observed = np.where(corrupted, rng.integers(0, 2, clean.shape), clean).astype(np.float32)
    refined = refine(observed, estimate, corrupted)
    assert refined.dtype == np.float32 and np.array_equal(refined[~corrupted], observed[~corrupted])
    error = lambda image: float(np.mean((image - clean) ** 2))  # noqa: E731
    assert error(refined) < error(np.where(corrupted, estimate, observed)) / 2


def tiny_spec(folder, num_iter=60, **options):
    config = RecoveryConfig(**TINY_PROBLEM, num_iter=num_iter, show_every=20, noise="salt_pepper", nlevel=0.3)
    return RunSpec("run", str(folder), "cpu", config, StepOptions(checkpoint_seconds=0, **options))


@needs_package("bm3d")
def test_a_run_writes_its_refined_answer_and_says_its_psnr(tmp_path):
    lines = []
    report = run_recovery(tiny_spec(tmp_path), progress=False, log=lines.append)
    refined = report.state.refined
    saved = np.asarray(Image.open(tmp_path / "run_refined.png")).transpose(2, 0, 1)
    assert np.array_equal(saved, np.rint(refined * 255).astype(np.uint8))
    assert np.array_equal(RunState.load(report.files.checkpoint).refined, refined)
    mask = np.asarray(Image.open(tmp_path / "run_mask.png")).transpose(2, 0, 1) == 255
    observed = report.observation.noisy
    assert np.array_equal(refined[~mask], observed[~mask])  # what the detector kept, as observed
    assert "refined (impulses detected by value" in lines[-2] and lines[-2].startswith("done: ")


@needs_package("bm3d")
def test_a_run_stopped_and_resumed_refines_as_one_made_at_once(tmp_path):
    straight = run_recovery(tiny_spec(tmp_path / "straight"), progress=False, log=lambda m: None)
    first = run_recovery(tiny_spec(tmp_path / "split", num_iter=41), progress=False, log=lambda m: None)
    assert first.state.refined is not None  # a run that reached its end has its answer ...
    resumed = run_recovery(tiny_spec(tmp_path / "split"), resume=True, progress=False, log=lambda m: None)
    assert_same_problem_state(straight.state, resumed.state)  # ... and one continued has the longer run's
    assert (tmp_path / "split" / "run_refined.png").read_bytes() == (tmp_path / "straight" / "run_refined.png").read_bytes()


def test_no_refined_makes_none(tmp_path):
    report = run_recovery(tiny_spec(tmp_path, num_iter=3, no_refined=True), progress=False, log=lambda m: None)
    assert report.state.refined is None and not (tmp_path / "run_refined.png").exists()
    assert (tmp_path / "run_final.png").exists()


def test_without_bm3d_a_note_says_there_is_no_refined_answer(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "bm3d", None)  # how Python knows a package is absent
    lines = []
    report = run_recovery(tiny_spec(tmp_path, num_iter=3), progress=False, log=lines.append)
    assert report.state.refined is None and not (tmp_path / "run_refined.png").exists()
    assert any(line.startswith("note: the refined answer needs the package bm3d, which is not installed: "
                               "python3 -m pip install 'bm3d") and line.endswith("; no run_refined.png")
               for line in lines)


def test_dip_has_no_refined_answer(tmp_path):
    spec = tiny_spec(tmp_path, num_iter=3)
    spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, method="dip"))
    report = run_recovery(spec, progress=False, log=lambda m: None)
    assert report.state.refined is None and not (tmp_path / "run_refined.png").exists()
