import numpy as np
import pytest
from layouts import LAYOUTS, in_layout

from utils.errors import InputError
from utils.metrics import psnr, ssim


def test_psnr_is_the_reference_formula_on_the_clipped_estimate():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 16, 16))
    estimate = clean + rng.normal(0, 0.1, clean.shape)
    mse = np.mean((clean - np.clip(estimate, 0, 1)) ** 2)
    assert psnr(clean, estimate) == pytest.approx(10 * np.log10(1 / mse))


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize("integer", ["clean image", "estimate"])
def test_integer_images_are_refused(metric, integer):
    # 0..255 values measured against a data range of 1 would give a meaningless number.
    image, integers = np.full((3, 16, 16), 0.5, np.float32), np.full((3, 16, 16), 200, dtype=np.uint8)
    arguments = (integers, image) if integer == "clean image" else (image, integers)
    with pytest.raises(InputError, match=rf"^{integer} must be a float array in \[0, 1\], got a uint8 array"):
        metric(*arguments)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_a_clean_image_outside_0_1_is_refused(metric):
    # A clean image of 0..255 floats: the estimate is clipped to [0, 1], the clean image must be in it.
    clean = np.full((3, 16, 16), 200.0, np.float32)
    with pytest.raises(InputError, match=r"^clean image must be a float array in \[0, 1\], got values from 200"):
        metric(clean, clean / 255)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("metric", [psnr, ssim])
def test_metrics_answer_the_same_for_any_memory_layout(metric, layout):
    rng = np.random.default_rng(3)
    clean = rng.random((3, 16, 20)).astype(np.float32)
    estimate = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    expected = metric(clean, estimate)
    assert metric(in_layout(clean, layout), in_layout(estimate, layout)) == expected
    assert metric(clean, in_layout(estimate, layout)) == expected
