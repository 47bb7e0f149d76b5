import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The paper's test images are not ours to redistribute: they are read from the shared folder
# beside the checkout (or from DOP_DATA_DIR).
PAPER_DATA_DIR = os.environ.get(
    "DOP_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data", "denoising")
)
# Every device a device-independent test runs on: the CPU always, and CUDA or MPS where present.
DEVICES = ["cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * torch.backends.mps.is_available()

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def paper_data_dir():
    if not os.path.isfile(os.path.join(PAPER_DATA_DIR, "F16.png")):
        pytest.skip(f"paper images not found in {PAPER_DATA_DIR}")
    return PAPER_DATA_DIR


@pytest.fixture(params=DEVICES)
def device(request):
    """A test that should hold on every device runs once per device present."""
    return torch.device(request.param)


@pytest.fixture
def one_thread():
    """One PyTorch thread for the test: on a shared 2-core machine, two threads of tiny runs wait on
    each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
