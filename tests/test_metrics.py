import numpy as np
import pytest

from utils.metrics import psnr, ssim


def test_psnr_is_the_reference_formula_on_the_clipped_estimate():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 16, 16))
    estimate = clean + rng.normal(0, 0.1, clean.shape)
    mse = np.mean((clean - np.clip(estimate, 0, 1)) ** 2)
    assert psnr(clean, estimate) == pytest.approx(10 * np.log10(1 / mse))


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_integer_images_are_refused(metric):
    # 0..255 values measured against a data range of 1 would give a meaningless number.
    image = np.full((3, 16, 16), 200, dtype=np.uint8)
    with pytest.raises(ValueError, match="float in"):
        metric(image, image)
