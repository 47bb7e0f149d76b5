"""recovery.state: the checkpoint's one format, read by the run and by the sweep."""

import dataclasses

import numpy as np
import pytest
import torch

from recovery import RecoveryConfig, RunState
from recovery.state import FORMAT_VERSION, HISTORY_FIELDS
from test_problem import make_recovery
from utils.errors import InputError


def a_state():
    problem = make_recovery()
    problem.step()
    image = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    return RunState(config=RecoveryConfig(width=8), problem=problem.state_dict(), iteration=1,
                    history=[{**dict.fromkeys(HISTORY_FIELDS), "iteration": 0, "loss": 0.2, "psnr": 10.0,
                              "ssim": 0.1, "seconds": 0.01, "psnr_on_z": 11.0}],
                    best_psnr=10.0, best=image, last=image.copy(), seconds=0.01, devices=["2-core CPU"])


def test_a_saved_state_reads_back_as_it_was(tmp_path):
    state = a_state()
    state.save(str(tmp_path / "c.pt"))
    loaded = RunState.load(str(tmp_path / "c.pt"))
    for field in dataclasses.fields(RunState):
        if field.name not in ("problem", "best", "last", "read_from"):  # read_from: the file, not the state
            assert getattr(loaded, field.name) == getattr(state, field.name), field.name
    assert np.array_equal(loaded.best, state.best) and np.array_equal(loaded.last, state.last)
    for key, value in state.problem["network"].items():
        assert torch.equal(loaded.problem["network"][key], value)
    assert loaded.last_iteration == 0 and loaded.reached(1) and not loaded.reached(2)


def version_1(saved):
    """``saved`` as format version 1 writes it: no final image, no averages, the reference's five
    history columns."""
    for key in ("final", "evaluation"):
        del saved[key]
    saved.update(version=1, history=[{key: row[key] for key in HISTORY_FIELDS[:5]} for row in saved["history"]])
    return saved


def test_a_version_1_checkpoint_reads_with_no_evaluation_outputs(tmp_path):
    state = a_state()
    torch.save(version_1(state.to_checkpoint()), tmp_path / "c.pt")
    loaded = RunState.load(str(tmp_path / "c.pt"))
    assert loaded.final is None and loaded.evaluation is None
    assert list(loaded.history[0]) == list(HISTORY_FIELDS)
    assert loaded.history[0] == {**state.history[0], "psnr_on_z": None}
    assert np.array_equal(loaded.last, state.last) and loaded.iteration == state.iteration


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(version=FORMAT_VERSION + 1), f"format version {FORMAT_VERSION + 1}; this program reads "
                                                     f"versions 1, 2, {FORMAT_VERSION}"),
    (lambda c: c.update(version=0), f"format version 0; this program reads versions 1, 2, {FORMAT_VERSION}"),
    (lambda c: c.pop("format"), "not a checkpoint written by this program"),
    (lambda c: c["config"].update(colour="blue"), "its settings are not those of this program"),
])
def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path, change, message):
    saved = a_state().to_checkpoint()
    change(saved)
    path = tmp_path / "c.pt"
    torch.save(saved, path)
    with pytest.raises(InputError) as caught:
        RunState.load(str(path))
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize("content,message", [(None, "no checkpoint to resume: {path} does not exist"),
                                             (b"", "cannot read checkpoint {path} (EOFError)"),
                                             (b"not a checkpoint", "cannot read checkpoint {path} (UnpicklingError)")])
def test_a_missing_or_damaged_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "c.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        RunState.load(str(path))
    assert str(caught.value) == message.format(path=path)


def test_a_state_read_before_is_not_read_again_while_its_file_is_the_same(tmp_path):
    path = str(tmp_path / "c.pt")
    a_state().save(path)
    first = RunState.load(path)
    assert RunState.load(path, earlier=first) is first
    assert RunState.load(path, earlier=RunState(config=RecoveryConfig())) is not first  # not read from a file


@pytest.mark.parametrize("later_iteration", [1, 2])
def test_a_checkpoint_saved_since_it_was_read_is_read_again(tmp_path, later_iteration):
    path = str(tmp_path / "c.pt")
    state = a_state()
    state.save(path)
    first = RunState.load(path)
    state.iteration = later_iteration  # another process saved the run meanwhile (1: with no progress)
    state.save(path)
    again = RunState.load(path, earlier=first)
    assert again is not first and again.iteration == later_iteration


def test_a_checkpoint_removed_since_it_was_read_is_missing(tmp_path):
    path = tmp_path / "c.pt"
    a_state().save(str(path))
    first = RunState.load(str(path))
    path.unlink()
    with pytest.raises(InputError, match="no checkpoint to resume"):
        RunState.load(str(path), earlier=first)
