import re

import numpy as np
import pytest
from layouts import LAYOUTS, in_layout

from utils.corruption import corrupt_salt_pepper
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
