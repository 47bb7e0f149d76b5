"""notebooks/first_look.ipynb, executed as a user runs it (a Jupyter kernel, its working folder
an empty one) with tiny settings, so that the notebook cannot drift from the API it shows."""

import os
import pathlib
import subprocess
import sys

from conftest import optional_module

nbformat = optional_module("nbformat")
write_kernel_spec = optional_module("ipykernel.kernelspec").write_kernel_spec
NotebookClient = optional_module("nbclient").NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "first_look.ipynb"
KERNEL = "first-look-test"
# 64x64 (the network's least side), width 4, 20 iterations: a few seconds of recovery.
TINY = {"FIRST_LOOK_RESIZE": "64", "FIRST_LOOK_WIDTH": "4", "FIRST_LOOK_NUM_ITER": "20"}


def _installed_from_here(folder):
    """Whether a Python started in ``folder`` imports this checkout's ``recovery`` (the project
    installed with ``pip install -e .``, as CI's requirements-test.txt does), without importing it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    origin = subprocess.run([sys.executable, "-c", "import importlib.util as u; s = u.find_spec('recovery'); "
                             "print(s.origin if s else '')"], cwd=folder, env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    return origin == str(ROOT / "recovery" / "__init__.py")


def test_first_look_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_first_look_notebook_runs_and_draws(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    for name, value in TINY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a shared CPU: threads waiting for each other slow a run down
    if not _installed_from_here(work):  # a developer's venv without the install: this checkout, not another
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # A kernel of this very interpreter, whatever kernels the user has installed under the name python3.
    write_kernel_spec(tmp_path / "jupyter" / "kernels" / KERNEL)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(work)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 2  # the images side by side, the learning curve
    text = "".join(output.get("text", "") for output in outputs)
    assert "python3 denoising.py --ckpt first_look --out_dir runs" in text and "--num_iter 20" in text
    assert "Iteration 00019" in text and "20 iterations in" in text
    runs = work / "runs"
    for name in ("noisy.png", "last.png", "final.png", "mask.png", "history.csv", "checkpoint.pt",
                 "pictures.png", "curve.png"):
        assert (runs / f"first_look_{name}").stat().st_size > 0, name
    history = (runs / "first_look_history.csv").read_text().splitlines()
    assert len(history) == 1 + 20  # a header, then iterations 0 to 19 (show_every 1)
