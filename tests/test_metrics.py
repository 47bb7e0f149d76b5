import numpy as np
import pytest

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
