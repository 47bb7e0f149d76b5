"""denoising.py on a user's own images: a grayscale image is recovered as one channel and written as
grayscale files, a 16-bit image's outputs are 16-bit PNGs; colour and 8-bit runs as they always were."""

import cv2
import numpy as np
import pytest
from PIL import Image

from denoising import main
from recovery import RunState
from tiny import RESIZE, tiny_flags
from utils.image_io import read_image_file

# main() changes the process's threads and CUDA_VISIBLE_DEVICES: each test puts them back.
pytestmark = pytest.mark.usefixtures("process_settings_kept")

# A tiny run on an image of the test's own, at the image's own size unless the test resizes it.
TINY_OWN_IMAGE = [*tiny_flags(image=None, resize=None), "--num_iter", "3", "--show_every", "2"]
IMAGES = ("last", "final", "best", "noisy", "clean", "impulses")  # at the image's depth; the mask 8-bit


def smooth_image(channels, depth, shape=(64, 96), seed=0):
    """An ``H x W [x C]`` image as a file stores it: smooth, with fine levels that 8 bits lose."""
    rows, columns = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    planes = [(rows + columns * (c + 1)) / (c + 2) for c in range(channels)]
    image = np.stack(planes, axis=-1) * 0.8 + 0.1 * np.random.default_rng(seed).random(shape + (channels,))
    levels = 2**depth - 1
    pixels = np.round(image * levels).astype(np.uint16 if depth == 16 else np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels


def write_image(path, pixels):
    """Write ``pixels`` (uint8 or uint16, ``H x W`` or ``H x W x 3`` RGB) as a PNG, not through the
    program's own writer: OpenCV, colour in BGR order."""
    assert cv2.imwrite(str(path), pixels[:, :, ::-1] if pixels.ndim == 3 else pixels)


@pytest.mark.parametrize("channels,depth", [(1, 16), (3, 16), (1, 8)])
def test_a_file_is_recovered_in_its_channels_and_written_at_its_depth(tmp_path, capsys, channels, depth):
    pixels = smooth_image(channels, depth)
    write_image(tmp_path / "own.png", pixels)
    argv = TINY_OWN_IMAGE + ["--image", str(tmp_path / "own.png"), "--out_dir", str(tmp_path), "--ckpt", "run"]
    assert main(argv) == 0
    assert ("grayscale image recovered as one channel" in capsys.readouterr().out) == (channels == 1)
    saved = RunState.load(tmp_path / "run_checkpoint.pt")
    assert saved.last.shape == saved.best.shape == (channels, 64, 96)
    assert saved.problem["corruption"]["g"].shape == (1, channels, 64, 96)
    dtype, levels = (np.uint16, 65535) if depth == 16 else (np.uint8, 255)
    written = {name: read_image_file(str(tmp_path / f"run_{name}.png")) for name in IMAGES + ("mask",)}
    for name in IMAGES:
        assert written[name].dtype == dtype and written[name].shape == pixels.shape, name  # grayscale: 2-D
    # The clean image is the file itself, every level kept; the others are the run's floats, rounded.
    assert np.array_equal(written["clean"], pixels)
    as_read = lambda image: np.round(image * levels).astype(dtype).transpose(1, 2, 0).reshape(pixels.shape)  # noqa: E731
    assert np.array_equal(written["last"], as_read(saved.last))
    assert np.array_equal(written["final"], as_read(saved.final))
    if depth == 16:
        assert (written["last"] % 257 != 0).any() and (written["noisy"] % 257 != 0).any()  # more than 8 bits
    assert written["mask"].dtype == np.uint8 and written["mask"].shape == pixels.shape
    assert set(np.unique(written["mask"])) <= {0, 255}


def test_a_grayscale_sample_is_recovered_as_one_channel(tmp_path):
    argv = TINY_OWN_IMAGE + ["--image", "camera", "--resize", str(RESIZE), "--out_dir", str(tmp_path), "--ckpt", "run"]
    assert main(argv) == 0
    for name in IMAGES:
        with Image.open(tmp_path / f"run_{name}.png") as image:
            assert image.mode == "L" and image.size == (64, 64), name
    assert RunState.load(tmp_path / "run_checkpoint.pt").last.shape == (1, 64, 64)


@pytest.mark.parametrize("made,now,message", [
    (1, 3, "made on a grayscale 96x64 image, and the image is now 3-channel 96x64"),
    (3, 1, "made on a 3-channel 96x64 image, and the image is now grayscale 96x64"),
])
def test_resuming_with_an_image_of_other_channels_is_refused(tmp_path, capsys, made, now, message):
    argv = TINY_OWN_IMAGE + ["--image", str(tmp_path / "own.png"), "--out_dir", str(tmp_path), "--ckpt", "run"]
    write_image(tmp_path / "own.png", smooth_image(made, 8))
    assert main(argv) == 0
    write_image(tmp_path / "own.png", smooth_image(now, 8))  # the file replaced
    capsys.readouterr()
    assert main(argv + ["--resume", "--num_iter", "5"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
