import re

import numpy as np
import pytest
from layouts import LAYOUTS, in_layout

from utils.corruption import NOISE_MODELS, corrupt, corrupt_salt_pepper
from utils.errors import InputError


@pytest.mark.parametrize("nlevel", [0.1, 0.3, 0.5, 0.7])
def test_fraction_and_salt_pepper_split(nlevel):
    # Mid-grey never equals 0 or 1, so every changed element is visible.
    clean = np.full((3, 128, 128), 0.5, dtype=np.float32)
    noisy = corrupt_salt_pepper(clean, nlevel, seed=0)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    changed = noisy != clean
    assert set(np.unique(noisy[changed])) <= {0.0, 1.0}
    assert abs(changed.mean() - nlevel) < 0.01
    salt = (noisy == 1).sum() / changed.sum()
    assert abs(salt - 0.5) < 0.02
    # per channel: each channel is corrupted independently, at the same rate
    for c in range(3):
        assert abs(changed[c].mean() - nlevel) < 0.015
    both = (changed[0] & changed[1]).mean()
    assert abs(both - nlevel**2) < 0.015


def test_seeded():
    clean = np.full((3, 64, 64), 0.5, dtype=np.float32)
    a = corrupt_salt_pepper(clean, 0.5, seed=3)
    b = corrupt_salt_pepper(clean, 0.5, seed=3)
    c = corrupt_salt_pepper(clean, 0.5, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_zero_level_is_identity():
    clean = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    assert np.array_equal(corrupt_salt_pepper(clean, 0.0, seed=0), clean)


@pytest.mark.parametrize("image,nlevel,named", [
    (np.full((3, 8, 8), 128, dtype=np.uint8), 0.5, "float array in [0, 1], got a uint8"),  # scikit-image: rescaled
    (np.full((3, 8, 8), 1.5, dtype=np.float32), 0.5, "[0, 1], got values from 1.5 to 1.5"),  # ... or clipped
    (np.full((3, 8, 8), np.nan, dtype=np.float32), 0.5, "[0, 1], got NaN"),
    (np.full((3, 8, 8), 0.5, dtype=np.float32), 1.5, "nlevel must be in [0, 1), got 1.5"),
    (np.full((3, 8, 8), 0.5, dtype=np.float32), -0.1, "nlevel"),
    (np.full((3, 8, 8), 0.5, dtype=np.float32), float("nan"), "nlevel"),
])
def test_what_would_be_changed_silently_is_refused(image, nlevel, named):
    with pytest.raises(InputError, match=re.escape(named)):
        corrupt_salt_pepper(image, nlevel, seed=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_corruption_is_the_same_for_any_memory_layout(layout):
    clean = np.random.default_rng(2).random((3, 12, 10)).astype(np.float32)
    assert np.array_equal(corrupt_salt_pepper(in_layout(clean, layout), 0.5, 7), corrupt_salt_pepper(clean, 0.5, 7))


def test_the_paper_s_model_is_the_default_one_unchanged():
    clean = np.random.default_rng(5).random((3, 20, 24)).astype(np.float32)
    assert np.array_equal(corrupt(clean, "salt_pepper", 0.5, 9), corrupt_salt_pepper(clean, 0.5, 9))


@pytest.mark.parametrize("nlevel", [0.1, 0.5])
def test_whole_pixels_are_set_to_0_or_1_in_every_channel(nlevel):
    clean = np.full((3, 128, 128), 0.5, dtype=np.float32)
    noisy = corrupt(clean, "salt_pepper_pixel", nlevel, seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    changed = noisy != clean
    assert (changed == changed[0]).all()  # all channels of a pixel, or none
    assert (noisy[:, changed[0]] == noisy[0, changed[0]]).all()  # one value in all of them
    assert set(np.unique(noisy[changed])) == {0.0, 1.0}
    assert abs(changed[0].mean() - nlevel) < 0.01 and abs((noisy[0][changed[0]] == 1).mean() - 0.5) < 0.03


@pytest.mark.parametrize("nlevel", [0.1, 0.5])
def test_random_valued_impulses_are_uniform_in_0_1_per_element(nlevel):
    clean = np.full((3, 128, 128), 2.0, dtype=np.float32) / 3  # no draw equals it
    noisy = corrupt(clean, "random_valued", nlevel, seed=2)
    changed = noisy != clean
    assert abs(changed.mean() - nlevel) < 0.01
    assert abs((changed[0] & changed[1]).mean() - nlevel**2) < 0.01  # channels independently
    values = noisy[changed]
    assert values.min() >= 0 and values.max() < 1
    assert np.histogram(values, bins=4, range=(0, 1))[0] / values.size == pytest.approx([0.25] * 4, abs=0.02)


@pytest.mark.parametrize("noise", NOISE_MODELS)
def test_every_model_is_seeded_and_the_same_for_any_memory_layout(noise):
    clean = np.random.default_rng(2).random((3, 12, 10)).astype(np.float32)
    once = corrupt(clean, noise, 0.5, 7)
    assert np.array_equal(once, corrupt(clean, noise, 0.5, 7)) and not np.array_equal(once, corrupt(clean, noise, 0.5, 8))
    for layout in LAYOUTS:
        assert np.array_equal(corrupt(in_layout(clean, layout), noise, 0.5, 7), once)
    assert np.array_equal(corrupt(clean, noise, 0.0, 7), clean)


@pytest.mark.parametrize("noise,nlevel,named", [
    ("gaussian", 0.5, "noise must be one of salt_pepper, salt_pepper_pixel, random_valued, got 'gaussian'"),
    ("random_valued", 1.0, "nlevel must be in [0, 1), got 1.0"),
])
def test_an_unknown_model_or_density_is_refused(noise, nlevel, named):
    with pytest.raises(InputError, match=re.escape(named)):
        corrupt(np.full((3, 8, 8), 0.5, dtype=np.float32), noise, nlevel, seed=0)
