"""benchmarks/preflight.py: the GPU session's first stage reads the environment as it is and says
whether the project can run, in process on this machine and on requirement files it writes."""

import pytest
import torch

from benchmarks.preflight import describe_requirement, main, requirements


@pytest.fixture
def requirement_files(tmp_path):
    (tmp_path / "requirements.txt").write_text("# the ranges\ntorch>=2.11.0,<3\n-r other.txt\nnumpy  # any\n")
    (tmp_path / "constraints.txt").write_text("torch==2.14.1\n")
    return tmp_path


def test_requirement_files_are_read_by_name(requirement_files):
    accepted = requirements(requirement_files / "requirements.txt")
    assert sorted(accepted) == ["numpy", "torch"] and str(accepted["torch"].specifier) == "<3,>=2.11.0"
    assert str(requirements(requirement_files / "constraints.txt")["torch"].specifier) == "==2.14.1"


@pytest.mark.parametrize("version,expected", [
    ("2.14.1", "torch 2.14.1: constraints.txt pins ==2.14.1 (this one); requirements.txt accepts <3,>=2.11.0 (within)"),
    ("2.11.0+cu130", "torch 2.11.0+cu130: constraints.txt pins ==2.14.1 (another); requirements.txt accepts "
                     "<3,>=2.11.0 (within)"),
    ("2.10.0", "torch 2.10.0: constraints.txt pins ==2.14.1 (another); requirements.txt accepts <3,>=2.11.0 (OUTSIDE)"),
])
def test_a_version_is_set_against_the_pin_and_the_range(requirement_files, version, expected):
    accepted = requirements(requirement_files / "requirements.txt")["torch"]
    pinned = requirements(requirement_files / "constraints.txt")["torch"]
    assert describe_requirement("torch", version, pinned, accepted) == expected


def test_this_machine_is_ready_on_the_cpu(capsys):
    assert main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "ready: the project runs on cpu"
    assert f"torch {torch.__version__}: constraints.txt pins " in out
    for module in ("denoising", "reproduce", "benchmarks.step_time"):
        assert f"import {module}: ok" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_a_gpu_asked_for_where_none_computes_is_one_last_line_and_exit_2(capsys):
    assert main(["--device", "cuda"]) == 2
    assert capsys.readouterr().out.splitlines()[-1].startswith("cannot run on cuda: ")
