"""utils.metrics: PSNR and SSIM on the host (scikit-image) and on a device (torch), the same numbers."""

import numpy as np
import pytest
import torch

from utils.metrics import psnr, psnr_tensor, ssim, ssim_tensor


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


def views_of(array):
    """The same ``C x H x W`` values in other memory layouts: transposed storage and a strided view."""
    transposed = np.ascontiguousarray(array.transpose(2, 1, 0)).transpose(2, 1, 0)
    strided = np.repeat(array, 2, axis=2)[:, :, ::2]
    return [array, transposed, strided]


@pytest.mark.parametrize("height,width,count", [(7, 7, 1), (64, 96, 3), (128, 128, 6)])
def test_the_tensor_metrics_are_scikit_images_numbers(device, height, width, count):
    rng = np.random.default_rng(height + count)
    clean = rng.random((3, height, width), dtype=np.float32)
    estimates = np.clip(clean + rng.normal(0, 0.2, (count, 3, height, width)), -0.1, 1.1).astype(np.float32)
    estimates[0] = rng.random((3, height, width))  # far from the clean image: SSIM near 0
    for layout in views_of(clean):
        got_psnr = psnr_tensor(torch.from_numpy(layout).to(device), torch.from_numpy(estimates).to(device)).cpu()
        got_ssim = ssim_tensor(torch.from_numpy(layout).to(device), torch.from_numpy(estimates).to(device)).cpu()
        assert got_psnr.tolist() == pytest.approx([psnr(clean, e) for e in estimates], abs=1e-4)
        assert got_ssim.tolist() == pytest.approx([ssim(clean, e) for e in estimates], abs=1e-5)


def test_identical_images_have_infinite_psnr_and_unit_ssim(device):
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)).to(device)
    assert psnr_tensor(image, image[None]).item() == float("inf")
    assert ssim_tensor(image, image[None]).item() == pytest.approx(1.0, abs=1e-12)
