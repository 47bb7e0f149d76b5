"""The tests' one checkout path and their one tiny recovery: a run of a fraction of a second on the
CPU, on an image resized to RESIZE pixels by a network of width WIDTH. Every test's own settings
are these and what it adds (its iterations, its image, its threads), so that "tiny" means one
thing everywhere."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESIZE = 64  # px: the shorter side of every image the tests resize, the network's least side
WIDTH = 4
# The tiny problem as RecoveryConfig's fields (each test gives its iterations).
TINY_PROBLEM = {"image": "astronaut", "resize": RESIZE, "width": WIDTH}


def tiny_flags(image=TINY_PROBLEM["image"], resize=RESIZE, device="cpu", progress_bar=False, refined=False):
    """The command-line flags of a tiny run: denoising.py's, or with ``image`` None reproduce.py's
    and the benchmarks'. ``resize`` None keeps an image's own size, ``device`` None leaves the
    device to the command. Without ``refined`` the runs make no refined answer (``--no_refined``,
    which the benchmarks do not take): its BM3D costs seconds, more than a tiny run itself."""
    flags = [] if image is None else ["--image", image]
    flags += [] if resize is None else ["--resize", str(resize)]
    flags += ["--width", str(WIDTH)]
    flags += [] if device is None else ["--device", device]
    flags += [] if refined else ["--no_refined"]
    return flags + ([] if progress_bar else ["--no_progress"])


# A denoising.py run of the astronaut at 64x64, width 4, on the CPU (its iterations the default's
# unless a test gives them).
TINY = tiny_flags()
