"""utils/optional.py: submitit, cvxpy and bm3d are imported where their features run. Asked for
without its package, a feature stops in one line naming it and how to install it (exit status 2),
before anything is written; everything else runs without them (as on the GPU machine's image). A
package is made absent here as Python knows absence: None in sys.modules."""

import os
import sys

import pytest
from packaging.requirements import Requirement

import denoising
from benchmarks.preflight import requirements
import matrix_recovery
import reproduce
from cli import exit_status
from tiny import REPO, RESIZE
from utils.errors import InputError
from utils.optional import OPTIONAL_PACKAGES, import_optional


def test_each_optional_package_is_installed_as_requirements_txt_asks():
    listed = requirements(os.path.join(REPO, "requirements.txt"))
    for name, (requirement, _) in OPTIONAL_PACKAGES.items():
        assert Requirement(requirement).specifier == listed[name].specifier, name


@pytest.mark.parametrize("name", sorted(OPTIONAL_PACKAGES))
def test_an_absent_package_is_named_with_its_install_command(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(InputError) as raised:
        import_optional(name, "`feature`")
    assert raised.value.for_command_line() == (f"--feature needs the package {name}, which is not installed: "
                                               f"python3 -m pip install '{OPTIONAL_PACKAGES[name][0]}'")


@pytest.mark.parametrize("script,absent,argv,needs", [
    (matrix_recovery, "cvxpy", ["--quick", "--experiment", "learning_curves"], "every matrix experiment"),
    (reproduce, "submitit", ["--figure", "3", "--launcher", "slurm", "--gpus_per_task", "0", "--resize", str(RESIZE)],
     "--launcher slurm"),
    (reproduce, "bm3d", ["--figure", "table", "--no_run", "--resize", str(RESIZE)], "reproduce.py's results table"),
    (denoising, "submitit", ["--image", "{folder}", "--launcher", "slurm"], "--launcher slurm"),
], ids=["matrix_recovery without cvxpy", "slurm without submitit", "table without bm3d", "folder on slurm"])
def test_a_feature_without_its_package_is_one_line_exit_2_and_nothing_written(
        tmp_path, monkeypatch, capsys, sample_data_dir, script, absent, argv, needs):
    monkeypatch.setitem(sys.modules, absent, None)
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    argv = [arg.format(folder=sample_data_dir) for arg in argv] + ["--out_dir", str(out_dir)]
    if script is reproduce:
        argv += ["--data_dir", sample_data_dir, "--device", "cpu"]
    assert exit_status(script.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needs in err
    assert f"needs the package {absent}, which is not installed: python3 -m pip install '" in err
    assert not out_dir.exists() or not os.listdir(out_dir)
