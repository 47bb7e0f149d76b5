"""The examples in the docstrings of the pure functions, run as deepinv runs its own: the run names
of a folder, the impulse models' corruption, the detection and the fill of the final answer, the
command line of a run's settings, what a GPU's capability cannot run and PyTorch's release table, the
network's canvas of an image and the tiles along an axis. A module whose examples are gone fails too."""

import doctest
import io

import pytest

import recovery.devices
import recovery.evaluation
import recovery.nvidia
import recovery.padding
import recovery.refinement
import recovery.settings
import recovery.tiling
import reproduction.folder_files
import utils.corruption

MODULES = [reproduction.folder_files, utils.corruption, recovery.evaluation, recovery.settings, recovery.devices,
           recovery.nvidia, recovery.padding, recovery.refinement, recovery.tiling]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_the_examples_of_a_module_s_docstrings_give_what_they_show(module):
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for example in doctest.DocTestFinder().find(module):
        runner.run(example, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0, report.getvalue()
