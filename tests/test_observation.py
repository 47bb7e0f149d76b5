"""recovery.observation: the image as the network sees it, and its seeded corruption."""

import os

import numpy as np
import pytest
from PIL import Image

from recovery import RecoveryConfig, prepare_observation
from utils.errors import InputError


@pytest.mark.parametrize("resize,shape,notes", [
    (None, (3, 512, 512), []),
    (100, (3, 100, 100), ["resized to 100x100", "the network computes on a 128x128 canvas (sides multiples of 32, "
                          "at least 64) with the image at its centre; the loss counts the image's pixels only, and "
                          "every output is the image's 100x100"]),
])
def test_the_image_is_resized_and_kept_at_its_size(resize, shape, notes):
    observation = prepare_observation(RecoveryConfig(image="astronaut", resize=resize))
    assert observation.clean.shape == observation.noisy.shape == shape
    assert observation.notes == notes and observation.description == "scikit-image sample 'astronaut'"


@pytest.mark.parametrize("nlevel", [0.1, 0.5])
def test_the_corruption_is_seeded_and_of_the_level_asked(nlevel):
    config = RecoveryConfig(image="astronaut", resize=64, nlevel=nlevel, seed=4)
    a, b = prepare_observation(config), prepare_observation(config)
    assert np.array_equal(a.noisy, b.noisy)
    changed = (a.noisy != a.clean).mean()
    assert abs(changed - nlevel) < 0.02  # an impulse equal to the clean value leaves it unchanged
    assert a.noisy_psnr < 20


def test_a_noisy_image_is_taken_as_it_is(tmp_path):
    pixels = (np.random.default_rng(0).random((64, 64, 3)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(pixels).save(tmp_path / "observed.png")
    observation = prepare_observation(RecoveryConfig(noisy=str(tmp_path / "observed.png")))
    assert observation.clean is None and observation.noisy_psnr is None
    assert np.array_equal(observation.noisy, pixels.transpose(2, 0, 1) / 255.0)


@pytest.mark.parametrize("what,message", [("missing", "not found"), ("folder", "is a folder, not an image file"),
                                          ("pipe", "is a pipe, not an image file"),
                                          ("/dev/null", "is a device, not an image file")])
def test_a_noisy_path_that_is_no_file_is_named(tmp_path, what, message):
    path = tmp_path / "observed" if what[0] != "/" else what
    if what == "folder":
        path.mkdir()
    if what == "pipe":
        os.mkfifo(path)  # reading it would wait for a writer forever
    with pytest.raises(InputError) as caught:
        prepare_observation(RecoveryConfig(noisy=str(path)))
    assert str(caught.value) == f"noisy image '{path}' {message}"


@pytest.mark.parametrize("resize,sides", [(None, (512, 512)), (96, (96, 96)), (40000, (40000, 40000))])
def test_the_size_is_checked_before_the_image_is_made(resize, sides):
    """A caller refuses a size before its image exists: a 40000-pixel resize would take 19 GB."""
    asked = []

    def refuse(channels, height, width):
        asked.append((channels, height, width))
        raise InputError("too large")

    with pytest.raises(InputError, match="too large"):
        prepare_observation(RecoveryConfig(image="astronaut", resize=resize), check_size=refuse)
    assert asked == [(3, *sides)]


@pytest.mark.parametrize("kind,warned", [("PNG", None), ("JPEG", "JPEG compression"),
                                         ("transparent PNG", "transparent pixels")])
def test_noisy_files_that_cannot_hold_exact_impulses_are_noted(tmp_path, kind, warned):
    pixels = np.full((64, 64, 4), 255, dtype=np.uint8)
    pixels[:32, :, 3] = 0 if kind == "transparent PNG" else 255
    path = tmp_path / ("observed.jpg" if kind == "JPEG" else "observed.png")
    image = Image.fromarray(pixels)
    (image.convert("RGB") if kind == "JPEG" else image).save(path)
    notes = prepare_observation(RecoveryConfig(noisy=str(path))).notes
    warnings = [note for note in notes if "impulses" in note]
    assert len(warnings) == (warned is not None) and all(warned in note for note in warnings), notes
