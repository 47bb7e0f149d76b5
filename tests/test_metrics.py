"""utils.metrics: PSNR and SSIM on the host (scikit-image) and on a device (torch), the same numbers."""

import numpy as np
import pytest
import skimage.metrics
import torch
from layouts import LAYOUTS, in_layout

from utils.errors import InputError
from utils.metrics import psnr, psnr_tensor, ssim, ssim_tensor


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


@pytest.mark.parametrize("height,width,count", [(7, 7, 1), (64, 96, 3), (128, 128, 6), (512, 512, 2)])
def test_the_tensor_metrics_are_scikit_images_numbers(device, height, width, count):
    rng = np.random.default_rng(height + count)
    clean = rng.random((3, height, width), dtype=np.float32)
    estimates = np.clip(clean + rng.normal(0, 0.2, (count, 3, height, width)), -0.1, 1.1).astype(np.float32)
    estimates[0] = rng.random((3, height, width))  # far from the clean image: SSIM near 0
    contiguous = torch.from_numpy(clean).to(device)
    layouts = [contiguous, contiguous.transpose(1, 2).contiguous().transpose(1, 2),  # torch has no negative strides
               contiguous.repeat_interleave(2, dim=2)[:, :, ::2], contiguous.permute(1, 2, 0).contiguous().permute(2, 0, 1)]
    for on_device in layouts:
        got_psnr = psnr_tensor(on_device, torch.from_numpy(estimates).to(device)).cpu()
        got_ssim = ssim_tensor(on_device, torch.from_numpy(estimates).to(device)).cpu()
        assert got_psnr.tolist() == pytest.approx([psnr(clean, e) for e in estimates], abs=1e-4)
        assert got_ssim.tolist() == pytest.approx([ssim(clean, e) for e in estimates], abs=1e-5)


@pytest.mark.parametrize("height,width,count", [(7, 7, 1), (64, 96, 3)])
def test_one_channel_metrics_are_those_of_the_plane(device, height, width, count):
    """A grayscale image, ``1 x H x W``: its PSNR and SSIM are scikit-image's of the 2-D plane, on
    the host and on the device."""
    rng = np.random.default_rng(height + count)
    clean = rng.random((1, height, width), dtype=np.float32)
    estimates = np.clip(clean + rng.normal(0, 0.2, (count, 1, height, width)), -0.1, 1.1).astype(np.float32)
    for estimate in estimates:
        plane = np.clip(estimate[0], 0, 1)
        assert ssim(clean, estimate) == pytest.approx(
            skimage.metrics.structural_similarity(clean[0], plane, data_range=1), abs=1e-7)
        assert psnr(clean, estimate) == pytest.approx(
            skimage.metrics.peak_signal_noise_ratio(clean[0], plane, data_range=1))
    on_device = torch.from_numpy(clean).to(device), torch.from_numpy(estimates).to(device)
    assert psnr_tensor(*on_device).cpu().tolist() == pytest.approx([psnr(clean, e) for e in estimates], abs=1e-4)
    assert ssim_tensor(*on_device).cpu().tolist() == pytest.approx([ssim(clean, e) for e in estimates], abs=1e-5)


def test_identical_images_have_infinite_psnr_and_unit_ssim(device):
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)).to(device)
    assert psnr_tensor(image, image[None]).item() == float("inf")
    assert ssim_tensor(image, image[None]).item() == pytest.approx(1.0, abs=1e-6)
