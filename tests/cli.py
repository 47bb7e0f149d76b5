"""Helpers of the command-line tests (tests/test_denoising.py, tests/test_cli_fuzz.py): a script's
main() run in this process as a shell runs the script, and the process-wide settings it changes
put back afterwards."""

import os
import subprocess
import sys

import torch

from tiny import REPO


def exit_status(main, argv):
    """The exit status of the script whose ``main`` is given, run with ``argv``: what main returns,
    or the code of the SystemExit that argparse raises (for a bad flag, or --help)."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    return 0 if status is None else status


class ProcessSettings:
    """What a main() changes for the whole process, kept to be put back: CUDA_VISIBLE_DEVICES
    (denoising.py sets it) and PyTorch's thread count (--threads)."""

    def __init__(self):
        self.cuda_visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.threads = torch.get_num_threads()

    def restore(self):
        if self.cuda_visible_devices is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices
        torch.set_num_threads(self.threads)


def run_cli(tmp_path, *args, cwd=None, preexec_fn=None):
    """Run denoising.py in a process of its own (in ``cwd``, default ``tmp_path``); returns the
    CompletedProcess."""
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "denoising.py"), "--out_dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        cwd=cwd or tmp_path,
        timeout=300,
        preexec_fn=preexec_fn,
    )
