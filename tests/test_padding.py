"""recovery.padding through a run: an image of any size comes back at its own size (colour and
grayscale, 8- and 16-bit files), its loss counts its own pixels only, and an image whose sides the
network takes runs bit for bit as before padding existed."""

import hashlib

import numpy as np
import pytest
import skimage.data
import torch

from denoising import main
from recovery import RecoveryConfig, RunSpec, StepOptions, prepare_observation, run_recovery
from recovery.padding import image_window, network_sides
from recovery.problem import Recovery
from tiny import WIDTH, tiny_flags
from utils.image_io import load_image, save_png

pytestmark = pytest.mark.usefixtures("process_settings_kept")

# Digests of a 6-iteration tiny run (last, final, s and the network's state) made by the code before
# padding existed (commit f51d289, PyTorch 2.14.1, CPU, one thread): sides that are multiples of 32
# must give these bits still.
BEFORE_PADDING = {
    "astronaut": "c62f177d5dae43dbf1b96d8a01597e5e8a244810bf5b0d347519addbfa98cfb9",
    "camera": "85358edac61de8f7a2bfb9b5228dc1dfac8b6c17f90af65450c84763fb42d6e9",
}


@pytest.mark.parametrize("sides,canvas,window", [
    ((64, 64), (64, 64), None),
    ((300, 450), (320, 480), (slice(10, 310), slice(15, 465))),
    ((40, 97), (64, 128), (slice(12, 52), slice(15, 112))),
    ((1, 1), (64, 64), (slice(31, 32), slice(31, 32))),
])
def test_the_canvas_is_the_least_the_network_takes_and_holds_the_image_centred(sides, canvas, window):
    assert network_sides(*sides) == canvas and image_window(*sides) == window


@pytest.mark.parametrize("image", sorted(BEFORE_PADDING))
def test_sides_the_network_takes_run_bit_for_bit_as_before_padding(tmp_path, image):
    spec = RunSpec("run", str(tmp_path), "cpu", RecoveryConfig(image=image, resize=64, width=WIDTH, num_iter=6,
                                                              show_every=3), StepOptions(threads=1))
    report = run_recovery(spec, progress=False, log=lambda line: None)
    digest = hashlib.sha256()
    for array in (report.state.last, report.state.final, report.impulses):
        digest.update(array.tobytes())
    for value in report.state.problem["network"].values():
        digest.update(value.numpy().tobytes())
    assert digest.hexdigest() == BEFORE_PADDING[image]


def odd_image(path, channels, depth):
    """A 450x300 file (not multiples of 32) cut from scikit-image's coffee, of ``channels`` and ``depth`` bits."""
    pixels = skimage.data.coffee()[:300, :450].transpose(2, 0, 1) / 255.0
    save_png(path, pixels[:1] if channels == 1 else pixels, depth)
    return path


@pytest.mark.parametrize("channels,depth", [(3, 8), (1, 8), (3, 16), (1, 16)])
def test_an_image_of_any_size_gives_every_output_at_its_own_size(tmp_path, capsys, channels, depth):
    path = odd_image(tmp_path / "coffee.png", channels, depth)
    out_dir = tmp_path / "out"
    argv = ["--ckpt", "odd", "--out_dir", str(out_dir), *tiny_flags(image=str(path), resize=None),
            "--num_iter", "2", "--show_every", "1", "--threads", "1"]
    assert main(argv) == 0
    assert "the network computes on a 480x320 canvas" in capsys.readouterr().out
    for name in ("noisy", "clean", "last", "final", "best", "impulses"):
        image, _, _, read_depth = load_image(str(out_dir / f"odd_{name}.png"))
        assert image.shape == (channels, 300, 450) and read_depth == depth, name
    mask, _, _, _ = load_image(str(out_dir / "odd_mask.png"))
    assert mask.shape[1:] == (300, 450)


def test_the_loss_counts_the_images_pixels_only_and_the_network_is_the_same():
    config = RecoveryConfig(image="coffee", resize=70, width=WIDTH)  # 70x105: a 96x128 canvas
    noisy = prepare_observation(config).noisy
    odd, square = Recovery(config, noisy, "cpu"), Recovery(config, noisy[:, :64, :64].copy(), "cpu")
    assert odd.num_parameters == square.num_parameters
    assert odd.z.shape[2:] == (96, 128) and odd.corruption.g.shape[2:] == noisy.shape[1:]
    loss, phi = odd.forward(odd.draw_input_noise())
    assert phi.shape[2:] == noisy.shape[1:]
    # The loss is y's against phi + s on the image's pixels: the canvas's border is in neither.
    prediction = phi + odd.corruption()
    assert torch.equal(loss, torch.nn.functional.mse_loss(prediction, torch.from_numpy(noisy)[None]))
    assert image_window(*noisy.shape[1:]) == (slice(13, 83), slice(11, 116))


def test_a_tiny_image_is_padded_up_to_the_networks_least_side(tmp_path):
    path = tmp_path / "small.png"
    save_png(path, np.random.default_rng(0).random((3, 40, 40)), 8)
    spec = RunSpec("small", str(tmp_path / "out"), "cpu", RecoveryConfig(image=str(path), width=WIDTH, num_iter=2,
                                                                        show_every=1), StepOptions(threads=1))
    report = run_recovery(spec, progress=False, log=lambda line: None)
    assert report.last.shape == (3, 40, 40) and report.impulses.shape == (3, 40, 40)
