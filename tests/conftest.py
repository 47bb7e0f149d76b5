import glob
import importlib
import importlib.util
import os
import shutil
import sys

import pytest
import skimage.data
import torch
from PIL import Image

from tiny import REPO, RESIZE

sys.path.insert(0, REPO)

from reproduce import main as reproduce_main  # noqa: E402 (after the checkout is on the path)
from reproduction import plan  # noqa: E402
from cli import ProcessSettings  # noqa: E402
from full_disk import mounted_full_disk  # noqa: E402
from slurm_cluster import session_cluster  # noqa: E402

# The paper's four test images are not ours to redistribute: the reproduction's tests run on
# scikit-image samples written under their file names, so that they run on every machine.
SAMPLE_STAND_INS = {"F16": "astronaut", "Peppers": "coffee", "Baboon": "chelsea", "kodim03": "rocket"}
SAMPLE_SHORTER_SIDE = 96  # px: above the tests' --resize 64, so that resizing happens as on the paper's images
# Every device a device-independent test runs on: the CPU always, and CUDA or MPS where present.
DEVICES = ["cpu"] + ["cuda"] * torch.cuda.is_available() + ["mps"] * torch.backends.mps.is_available()

# .ci/run's first leg installs every optional package (utils/optional.py, the notebook tools): there
# a test that needs one runs whatever happens, so that a missing install fails instead of skipping.
OPTIONAL_PACKAGES_REQUIRED = os.environ.get("REQUIRE_OPTIONAL_PACKAGES") == "1"

torch.set_num_threads(2)


def needs_package(*names):
    """A mark for a test that needs the optional packages ``names``: it skips where one is absent
    (a GPU machine's image has none), the reason naming it, unless OPTIONAL_PACKAGES_REQUIRED."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing) and not OPTIONAL_PACKAGES_REQUIRED,
                              reason=f"needs the optional package {', '.join(missing)}")


def optional_module(name):
    """The optional package ``name`` for a test module that imports it: the whole module skips
    where it is absent, the reason naming it, unless OPTIONAL_PACKAGES_REQUIRED."""
    if OPTIONAL_PACKAGES_REQUIRED:
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"needs the optional package {name}")


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory):
    """A folder holding ``F16.png``, ``Peppers.png``, ``Baboon.png`` and ``kodim03.png``: the
    scikit-image samples of SAMPLE_STAND_INS, resized so that their shorter side is
    SAMPLE_SHORTER_SIDE (aspect ratios kept: square, 3:2 and about 2:3 landscape)."""
    folder = tmp_path_factory.mktemp("paper-images")
    for name, sample in SAMPLE_STAND_INS.items():
        image = Image.fromarray(getattr(skimage.data, sample)())
        scale = SAMPLE_SHORTER_SIDE / min(image.size)
        image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS).save(
            folder / f"{name}.png")
    return str(folder)


@pytest.fixture(scope="session")
def classical_results(sample_data_dir, tmp_path_factory):
    """Put the classical filters' results of every cell of the table (BM3D takes tens of seconds
    on two cores) into a sweep's runs folder: ``classical_results(out_dir)``. They are computed
    once per session, by ``reproduce.py --figure table --no_run`` on ``sample_data_dir`` at the
    tests' size (``sweep_helpers.RESIZE``), and the table reads them as its own cache (keyed on the
    data folder, the size and the seed)."""
    optional_module("bm3d")  # the table's BM3D rows
    out_dir = tmp_path_factory.mktemp("classical") / "figures"
    argv = ["--figure", "table", "--no_run", "--resize", str(RESIZE), "--device", "cpu", "--out_dir",
            str(out_dir), "--data_dir", sample_data_dir]
    assert reproduce_main(argv) == 0
    cached = glob.glob(os.path.join(plan.runs_dir(plan.Settings(resize=RESIZE, out_dir=str(out_dir))),
                                    "*_classical.json"))
    assert len(cached) == len(plan.table_cells())

    def copy_into(sweep_out_dir):
        runs_dir = plan.runs_dir(plan.Settings(resize=RESIZE, out_dir=str(sweep_out_dir)))
        os.makedirs(runs_dir, exist_ok=True)
        for path in cached:
            shutil.copy(path, runs_dir)

    return copy_into


@pytest.fixture(params=DEVICES)
def device(request):
    """A test that should hold on every device runs once per device present."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def slurm_cluster():
    """The tests' private Slurm cluster (tests/slurm_cluster.py), started once for the session."""
    optional_module("submitit")  # the launcher's client
    with session_cluster() as cluster:
        yield cluster


@pytest.fixture
def full_disk(tmp_path):
    """A real full disk: a small tmpfs whose every byte is taken (tests/full_disk.py)."""
    with mounted_full_disk(tmp_path) as mount_point:
        yield mount_point


@pytest.fixture
def process_settings_kept():
    """The test leaves the process settings (threads, working folder, ...) as it found them."""
    kept = ProcessSettings()
    yield
    kept.restore()


@pytest.fixture
def one_thread():
    """One PyTorch thread for the test: on a shared 2-core machine, two threads of tiny runs wait on
    each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
