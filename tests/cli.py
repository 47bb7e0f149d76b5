"""Helpers of the command-line tests (tests/test_denoising.py, tests/test_cli_fuzz.py): a script's
main() run in this process as a shell runs the script, and the process-wide settings it changes
put back afterwards; a command stopped by a real SIGTERM."""

import os
import signal
import subprocess
import sys

import torch

from slurm_cluster import wait_for
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


def stopped_by_sigterm(argv, ready, what, timeout_s=120):
    """Run the command ``argv`` in the checkout and send it a real SIGTERM as soon as ``ready()`` is
    true (``what`` names that moment in the timeout's error); ``(exit status, what it printed)``."""
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(ready, timeout_s, what, interval_s=0.05)
        child.send_signal(signal.SIGTERM)
        printed, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    return child.returncode, printed
