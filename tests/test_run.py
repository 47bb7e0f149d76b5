"""recovery.run: a run's life in real processes: one process per run, signals that save, and
crash safety under SIGKILL at random moments.

Children are forked from this process (``denoising.main`` in a child of its own, one thread), so
that each starts in milliseconds rather than the seconds a fresh interpreter takes to import torch.
"""

import glob
import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from denoising import main
import recovery.run
from recovery import Recovery, RecoveryConfig, RunSpec, RunState, run_recovery
from recovery.lock import RunLock
from recovery.memory import estimate_peak_bytes
from recovery.state import HISTORY_FIELDS
from reproduction import sweep
from reproduction.states import Outcome, State
from cli import run_cli
from same_run import assert_same_problem_state
import tiny
from utils.atomic_files import read_csv
from utils.errors import InputError

# One thread, and a checkpoint at every logged iteration: the tests watch them.
TINY = tiny.TINY + ["--threads", "1", "--checkpoint_seconds", "0"]
TINY_CONFIG = RecoveryConfig(**tiny.TINY_PROBLEM, num_iter=2, show_every=1)


def start_child(argv):
    """``denoising.py ARGV`` in a forked child process; returns the multiprocessing.Process."""
    child = multiprocessing.get_context("fork").Process(target=lambda: sys.exit(main(argv)))
    child.start()
    return child


def run_child(argv, timeout=120):
    child = start_child(argv)
    child.join(timeout)
    return child.exitcode


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def checkpoint_iteration(path):
    try:
        return RunState.load(str(path)).iteration
    except Exception:  # not there yet
        return 0


def test_a_second_process_on_a_running_run_is_refused_until_the_first_is_killed(tmp_path):
    argv = TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "100000", "--show_every", "5"]
    first = start_child(argv)
    try:
        wait_for(lambda: checkpoint_iteration(tmp_path / "run_checkpoint.pt") > 0)
        lock = tmp_path / "run.lock"
        for extra in (["--resume"], ["--overwrite"]):  # resumed, or started again: both refused
            result = run_cli(tmp_path, "--ckpt", "run", *extra, *TINY)
            assert result.returncode == 2 and result.stdout == ""
            assert result.stderr == f"denoising.py: error: run 'run' is in use by process {first.pid} (it holds {lock})\n"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.join()
    done = RunState.load(str(tmp_path / "run_checkpoint.pt")).iteration
    assert run_child(["--out_dir", str(tmp_path), "--ckpt", "run", "--resume", "--num_iter", str(done + 2),
                      "--no_progress", "--threads", "1"]) == 0  # at once: the kernel released the killed holder's lock


def test_a_sweep_reports_a_run_in_use_and_goes_on(tmp_path):
    specs = [RunSpec(name, str(tmp_path), "cpu", TINY_CONFIG) for name in ("busy", "free")]
    with RunLock(str(tmp_path / "busy.lock"), "busy"):
        outcome = sweep.execute_runs(specs, progress=False, log=lambda m: None)
    assert outcome.failures == {"busy": Outcome.failed(f"run 'busy' is in use by process {os.getpid()} "
                                                       f"(it holds {tmp_path / 'busy.lock'})")}
    assert sweep.run_state(specs[1]) == (State.COMPLETE, 2)


def test_a_termination_signal_saves_and_the_resumed_run_is_bitwise_the_whole_one(tmp_path, capfd):
    # One signal: the handler treats every stop signal alike (tests/test_stopping.py).
    signum = signal.SIGTERM
    # With the refined answer: the resumed session makes it as the whole run does (where bm3d is installed).
    common = tiny.tiny_flags(refined=True) + TINY[len(tiny.TINY):] + ["--out_dir", str(tmp_path), "--show_every", "5"]
    assert run_child(common + ["--ckpt", "whole", "--num_iter", "150"]) == 0
    stopped = start_child(common + ["--ckpt", "split", "--num_iter", "150"])
    wait_for(lambda: checkpoint_iteration(tmp_path / "split_checkpoint.pt") > 0)
    os.kill(stopped.pid, signum)
    stopped.join(60)
    assert stopped.exitcode == 128 + signum
    out = capfd.readouterr().out.strip().splitlines()
    saved = RunState.load(str(tmp_path / "split_checkpoint.pt"))
    assert 0 < saved.iteration < 150  # the iteration it reached, not only the last logged one
    assert out[-2] == f"stopped by {signal.Signals(signum).name} after iteration {saved.iteration - 1}; checkpoint saved"
    assert out[-1].startswith("continue with: python denoising.py --ckpt split ")
    assert run_child(["--out_dir", str(tmp_path), "--ckpt", "split", "--resume", "--no_progress", "--threads", "1"]) == 0
    whole, split = (RunState.load(str(tmp_path / f"{name}_checkpoint.pt")) for name in ("whole", "split"))
    assert_same_problem_state(whole, split)


def test_a_second_signal_stops_at_once(tmp_path):
    # A real interpreter: the second SIGTERM ends it by the signal itself, as the shell sees it.
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "denoising.py"), *TINY, "--out_dir", str(tmp_path),
                             "--ckpt", "run", "--num_iter", "100000", "--show_every", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: checkpoint_iteration(tmp_path / "run_checkpoint.pt") > 0, timeout=120)
        # Both at once: the second lands before the loop has seen the first.
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        proc.kill()
    assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)


def files_are_whole(folder, ckpt):
    """Every file of the run in ``folder`` reads back in full (temporaries aside)."""
    for path in glob.glob(os.path.join(folder, f"{ckpt}_*")):
        if path.endswith(".pt"):
            RunState.load(path)
        elif path.endswith(".png"):
            with Image.open(path) as image:
                image.load()
        elif path.endswith(".csv"):
            rows = read_csv(path)
            assert all(len(row) == len(HISTORY_FIELDS) and None not in row for row in rows)
        elif path.endswith(".json"):
            with open(path) as f:
                json.load(f)


def file_stamp(path):
    """What changes whenever ``path`` is replaced (a new inode) or rewritten; None if absent."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


@pytest.mark.slow  # the kill loop: 20 real children killed by SIGKILL
def test_sigkill_at_random_moments_never_breaks_a_run(tmp_path):
    """Killed with SIGKILL 20 times, each at a random moment just after a checkpoint was written
    (checkpoints at every iteration, so kills land in writes too), resumed after each: every file
    left is whole, and the run ends bit for bit where the uninterrupted run ends."""
    common = TINY + ["--out_dir", str(tmp_path), "--show_every", "1", "--num_iter", "300"]
    assert run_child(common + ["--ckpt", "whole"]) == 0
    rng = random.Random(0)
    checkpoint = tmp_path / "split_checkpoint.pt"
    reached, temporaries_seen, finished = [], 0, False
    while not finished:
        before = file_stamp(checkpoint)
        child = start_child(common + ["--ckpt", "split", "--resume" if before else "--overwrite"])
        if len(reached) < 20:
            wait_for(lambda: file_stamp(checkpoint) != before or not child.is_alive())
            time.sleep(rng.uniform(0, 0.05))
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
                child.join()
                temporaries_seen += len(glob.glob(str(tmp_path / ".split_*")))
                files_are_whole(str(tmp_path), "split")
                reached.append(RunState.load(str(checkpoint)).iteration)
        child.join(120)
        finished = child.exitcode == 0
    assert len(reached) == 20 and reached == sorted(reached) and 0 < reached[0] and reached[-1] < 300
    assert glob.glob(str(tmp_path / ".split_*")) == []  # the last start cleared what kills left
    whole, split = (RunState.load(str(tmp_path / f"{name}_checkpoint.pt")) for name in ("whole", "split"))
    assert split.iteration == whole.iteration == 300
    assert_same_problem_state(whole, split)
    assert (tmp_path / "whole_last.png").read_bytes() == (tmp_path / "split_last.png").read_bytes()
    print(f"killed at iterations {reached}; {temporaries_seen} temporaries left by the kills")


def test_run_recovery_returns_its_report(tmp_path):
    report = run_recovery(RunSpec("r", str(tmp_path), "cpu", TINY_CONFIG), progress=False, log=lambda m: None)
    assert not report.interrupted and not report.diverged and report.state.iteration == 2
    assert report.last.shape == (3, 64, 64) and report.last.dtype == np.float32
    assert report.impulses.shape == (3, 64, 64) and report.files.last == str(tmp_path / "r_last.png")


def test_a_run_that_cannot_fit_is_refused_before_it_allocates(tmp_path):
    # A real estimate against the memory this machine really has: 1536x1536 at width 256 needs
    # over 40 GiB, more than any machine this suite runs on.
    result = run_cli(tmp_path, "--image", "astronaut", "--resize", "1536", "--width", "256", "--num_iter", "1",
                     "--device", "cpu", "--out_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert re.match(r"denoising.py: error: the run needs about 4[0-9]\.[0-9] GiB, [0-9.]+ GiB available", result.stderr)
    named = re.search(r" GiB available: use --resize, a smaller --width, or another --device \(--tile (\d+) "
                      r"recovers it in tiles that fit; --no_memory_check starts it anyway\)\n$", result.stderr)
    assert named, result.stderr


@pytest.mark.parametrize("width,available_gib,tile", [(256, 8, 608), (128, 2, 320), (4, 0.5, None)])
def test_the_tile_a_memory_refusal_names_is_the_largest_that_fits(monkeypatch, width, available_gib, tile):
    monkeypatch.setattr(recovery.run, "available_bytes", lambda device: available_gib * 2**30)
    spec = RunSpec("r", "out", "cpu", RecoveryConfig(width=width))
    with pytest.raises(InputError) as caught:
        recovery.run._check_memory(spec, torch.device("cpu"), 3, 4096, 4096)
    named = re.search(r"`tile` (\d+) recovers it", str(caught.value.args[0]))
    if tile is None:  # the process alone is more than half a GiB
        assert named is None and "not even the smallest `tile` fits" in caught.value.args[0]
        return
    assert int(named.group(1)) == tile
    assert estimate_peak_bytes(spec.config, tile, tile, 3, "cpu") <= available_gib * 2**30
    assert estimate_peak_bytes(spec.config, tile + 32, tile + 32, 3, "cpu") > available_gib * 2**30


@pytest.mark.parametrize("check_memory", [True, False])
def test_the_memory_check_uses_what_the_device_has(tmp_path, monkeypatch, check_memory):
    monkeypatch.setattr(recovery.run, "available_bytes", lambda device: 2**20)  # as on a machine with 1 MiB free
    built = []
    monkeypatch.setattr(recovery.run, "Recovery", lambda *args: built.append(args) or Recovery(*args))
    spec = RunSpec("r", str(tmp_path), "cpu", TINY_CONFIG)
    if check_memory:
        with pytest.raises(InputError, match=r"^the run needs about 0\.9 GiB, 0\.0 GiB available"):
            run_recovery(spec, progress=False, log=lambda m: None)
        assert built == [] and list(tmp_path.iterdir()) == []
    else:
        assert run_recovery(spec, progress=False, log=lambda m: None, check_memory=False).state.iteration == 2
