"""denoising.py: the command line over recovery.run_recovery, as a user runs it.

In this process (``main(argv)``, its exit status and output caught) unless a process is the point:
a real exit status, Ctrl-C, a file-size limit, the working folder of a new process.
"""

import json
import os
import resource
import shlex
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import recovery.run
from cli import exit_status, run_cli
from conftest import REPO
from denoising import build_parser, main, resume_command, spec_from_args
from recovery import RecoveryConfig, RunState
from recovery.settings import MAX_LEARNING_RATE
from recovery.state import HISTORY_FIELDS
from reproduction.plan import Settings
from same_run import assert_same_problem_state
from tiny import TINY
from utils.atomic_files import read_csv

# main() changes the process's threads and CUDA_VISIBLE_DEVICES: each test puts them back.
pytestmark = pytest.mark.usefixtures("process_settings_kept")

@pytest.mark.parametrize("num_iter,show_every,rows", [(7, 3, [0, 3, 6]), (8, 3, [0, 3, 6, 7])])
def test_end_to_end_writes_every_output(tmp_path, num_iter, show_every, rows):
    argv = TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", str(num_iter), "--show_every", str(show_every)]
    assert main(argv) == 0
    for name in ["last.png", "final.png", "best.png", "noisy.png", "clean.png", "impulses.png", "panel.png",
                 "history.csv", "args.json", "checkpoint.pt"]:
        assert (tmp_path / f"run_{name}").is_file(), name
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporaries left
    history = read_csv(tmp_path / "run_history.csv")
    assert [int(r["iteration"]) for r in history] == rows
    assert list(history[0]) == list(HISTORY_FIELDS)
    assert list(history[0])[:5] == ["iteration", "loss", "psnr", "ssim", "seconds"]  # the reference's columns first
    assert all(r["psnr"] > 0 and 0 < r["ssim"] <= 1 for r in history)
    # the image files are the pixels themselves, at the cropped size
    assert Image.open(tmp_path / "run_last.png").size == (64, 64)
    last = np.asarray(Image.open(tmp_path / "run_last.png"))
    saved = RunState.load(tmp_path / "run_checkpoint.pt")
    assert saved.iteration == num_iter
    assert np.array_equal(last, np.round(saved.last.transpose(1, 2, 0) * 255).astype(np.uint8))


def test_resume_is_bitwise(tmp_path, monkeypatch):
    common = TINY + ["--out_dir", str(tmp_path), "--show_every", "3"]
    assert main(common + ["--ckpt", "full", "--num_iter", "8"]) == 0
    assert main(common + ["--ckpt", "split", "--num_iter", "4"]) == 0
    monkeypatch.setattr(recovery.run, "describe_device", lambda device: "another CPU")  # as if resumed elsewhere
    assert main(["--out_dir", str(tmp_path), "--ckpt", "split", "--resume", "--num_iter", "8", "--no_progress",
                 "--no_refined"]) == 0
    full = RunState.load(tmp_path / "full_checkpoint.pt")
    split = RunState.load(tmp_path / "split_checkpoint.pt")
    # The results table names every device a run computed on.
    assert full.devices == [f"{os.cpu_count()}-core CPU"] and split.devices == full.devices + ["another CPU"]
    assert full.iteration == split.iteration == 8
    assert_same_problem_state(full, split)
    assert (tmp_path / "full_last.png").read_bytes() == (tmp_path / "split_last.png").read_bytes()
    args = json.loads((tmp_path / "split_args.json").read_text())
    assert args["num_iter"] == 8 and args["width"] == 4 and args["ckpt"] == "split"


@pytest.mark.parametrize("change,named", [
    (["--width", "8"], "--width 8 differs"),
    # The run has --resize, which --noisy refuses: the change is still what gets named.
    (["--noisy", "observed.png"], "observed.png differs"),
])
def test_resume_refuses_changed_problem(tmp_path, monkeypatch, capsys, change, named):
    common = TINY + ["--out_dir", str(tmp_path), "--ckpt", "run"]
    assert main(common + ["--num_iter", "2"]) == 0
    monkeypatch.chdir(tmp_path)  # where observed.png would be
    capsys.readouterr()
    assert main(["--out_dir", str(tmp_path), "--ckpt", "run", "--resume", *change, "--num_iter", "4"]) == 2
    assert named in capsys.readouterr().err


def test_resume_refuses_what_cannot_continue(tmp_path, capsys):
    resume = ["--out_dir", str(tmp_path), "--ckpt", "run", "--resume"]
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "4"]) == 0
    checkpoint = tmp_path / "run_checkpoint.pt"
    capsys.readouterr()
    assert main(resume + ["--num_iter", "2"]) == 2 and "cannot be less" in capsys.readouterr().err
    saved = RunState.load(checkpoint)
    saved.problem["generator_device"] = "cuda"  # as if made on a GPU
    saved.save(checkpoint)
    assert main(resume + ["--num_iter", "6", "--device", "cpu"]) == 2 and "--device cuda" in capsys.readouterr().err
    torch.save({"config": {}}, checkpoint)
    assert main(resume) == 2
    assert capsys.readouterr().err == f"denoising.py: error: {checkpoint}: not a checkpoint written by this program\n"


@pytest.mark.parametrize("threads", [1, 3])
def test_threads_are_set_logged_and_recorded(tmp_path, capsys, threads):
    # The thread count is the process's: process_settings_kept puts it back.
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2", "--threads", str(threads)]) == 0
    assert f"device: cpu, threads: {threads};" in capsys.readouterr().out
    assert json.loads((tmp_path / "run_args.json").read_text())["threads"] == threads


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this process cannot write in: read-only, or immutable where we are root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):  # root ignores permissions, not the immutable attribute
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("no way to make a folder unwritable here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("inside", ["", "new"])
def test_an_unwritable_out_dir_is_one_line_exit_2(unwritable_folder, capsys, inside):
    out_dir = unwritable_folder / inside
    assert main(TINY + ["--out_dir", str(out_dir), "--num_iter", "2"]) == 2
    err = capsys.readouterr().err
    made = (f"cannot make --out_dir {out_dir}: cannot write in {unwritable_folder} (" if inside
            else "cannot write in --out_dir")
    assert err.count("\n") == 1 and err.startswith(f"denoising.py: error: {made}"), err
    assert os.listdir(unwritable_folder) == []


def test_a_diverging_run_stops_at_its_first_non_finite_loss(tmp_path):
    # Rates at which the outputs stay finite through the first step (at --lr 1e30 they do not: below).
    argv = TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "40", "--show_every", "10", "--lr", "1e6",
                   "--lr_c", "1e6"]
    assert main(argv) == 1
    history = read_csv(tmp_path / "run_history.csv")
    assert [r["iteration"] for r in history] == [0, 10] and np.isnan(history[1]["loss"])
    assert RunState.load(tmp_path / "run_checkpoint.pt").iteration == 1  # the last finite state
    assert not (tmp_path / "run_last.png").exists()


@pytest.mark.parametrize("rates,seen,kept", [
    # Adam's first step blows up the weights: seen at once, nothing of it kept.
    (["--alg", "adam", "--lr", repr(MAX_LEARNING_RATE)], "the weights or the network's outputs are inf or nan at iteration 0",
     []),
    # SGD's leaves them finite (about 1e28) and the outputs made from their average too: the next
    # logged loss is nan, and the checkpoint kept is that finite state.
    (["--lr", "1e30"], "the loss is nan at iteration 10", ["run_best.png", "run_checkpoint.pt"]),
])
def test_outputs_blown_up_by_a_step_are_a_divergence_too(tmp_path, capsys, rates, seen, kept):
    # The logged loss is that of the weights before the step, the weights and the final answer are
    # those after it: such a step's images were written as black images (with numpy's warning on
    # stderr), or kept as the "last finite" checkpoint.
    argv = TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "20", "--show_every", "10", *rates]
    assert main(argv) == 1
    assert f"diverged: {seen}" in capsys.readouterr().out
    written = sorted(name for name in os.listdir(tmp_path) if name.endswith((".png", ".pt")))
    assert written == sorted(["run_clean.png", "run_noisy.png"] + kept)  # no last or final image
    if kept:
        saved = RunState.load(tmp_path / "run_checkpoint.pt")
        assert all(torch.isfinite(value).all() for value in saved.problem["network"].values())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="limits the file size in the child (POSIX)")
def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2"]) == 0
    checkpoint = tmp_path / "run_checkpoint.pt"
    before = checkpoint.read_bytes()
    limit = len(before) // 2  # larger than the small files, too small for the next checkpoint

    def limit_file_size():  # the operating system refuses the write, as a full disk would
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = run_cli(tmp_path, "--ckpt", "run", "--resume", "--num_iter", "4", "--no_progress", preexec_fn=limit_file_size)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("denoising.py: error: cannot write ") and str(checkpoint) in lines[0]
    assert checkpoint.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary left


def test_overwrite_leaves_no_file_of_the_old_run(tmp_path):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2"]) == 0
    old = {p.name for p in tmp_path.iterdir()}
    noisy = tmp_path / "observed.png"
    os.rename(tmp_path / "run_noisy.png", noisy)
    argv = ["--noisy", str(noisy), "--width", "4", "--num_iter", "2", "--method", "dip", "--device", "cpu",
            "--no_progress", "--out_dir", str(tmp_path), "--ckpt", "run", "--overwrite"]
    assert main(argv) == 0
    new = {p.name for p in tmp_path.iterdir()} - {"observed.png"}
    assert {"run_best.png", "run_clean.png", "run_impulses.png"} <= old and not new & {"run_best.png", "run_clean.png", "run_impulses.png"}


def test_a_run_resumes_from_any_working_directory(tmp_path, monkeypatch):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir(), elsewhere.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(start / "grey.png")
    common = ["--out_dir", str(tmp_path), "--width", "4", "--device", "cpu", "--no_progress", "--ckpt", "run"]
    monkeypatch.chdir(start)  # the image named relative to where the run starts
    assert main(["--image", "grey.png", "--num_iter", "2", *common]) == 0
    monkeypatch.chdir(elsewhere)
    assert main(["--resume", "--num_iter", "4", *common]) == 0
    assert RunState.load(tmp_path / "run_checkpoint.pt").iteration == 4


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2"]) == 0
    before = (tmp_path / "run_checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (tmp_path / "run_checkpoint.pt").read_bytes() == before
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "run", "--num_iter", "2", "--overwrite"]) == 0


def test_noisy_mode(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pixels = (rng.random((64, 64, 3)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(pixels).save(tmp_path / "observed.png")
    argv = ["--noisy", str(tmp_path / "observed.png"), "--width", "4", "--num_iter", "3", "--device", "cpu",
            "--no_progress", "--out_dir", str(tmp_path), "--ckpt", "real"]
    assert main(argv) == 0
    assert "done: 3 iterations in " in capsys.readouterr().out  # no PSNR to give, but the run's summary
    saved = json.loads((tmp_path / "real_args.json").read_text())
    assert saved["noisy"] == str(tmp_path / "observed.png") and saved["image"] is None and saved["nlevel"] is None
    for name in ["last.png", "impulses.png", "noisy.png", "panel.png", "history.csv"]:
        assert (tmp_path / f"real_{name}").is_file(), name
    assert not (tmp_path / "real_best.png").exists() and not (tmp_path / "real_clean.png").exists()
    history = read_csv(tmp_path / "real_history.csv")
    assert [r["psnr"] for r in history] == [None, None]
    # the observation is used as it is: no corruption added
    assert np.array_equal(np.asarray(Image.open(tmp_path / "real_noisy.png")), pixels)


@pytest.fixture
def precious(tmp_path):
    """An output folder holding an earlier run's file, and a few bad inputs."""
    (tmp_path / "test_last.png").write_bytes(b"earlier result")
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("RGB", (40, 40)).save(tmp_path / "small.png")
    os.mkfifo(tmp_path / "pipe")  # reading it would wait for a writer forever
    return tmp_path


def contents(folder):
    """Every entry of ``folder`` by name: a file's bytes, or what else it is (a pipe is not read)."""
    return {p.name: p.read_bytes() if p.is_file() else stat.S_IFMT(p.stat().st_mode) for p in folder.iterdir()}


RATES = "learning rates must be in [1.175494e-38, 2.126765e+37] (positive and finite for the float32 optimisers)"
needs = lambda folder: pytest.mark.skipif(not os.path.isdir(folder), reason=f"no {folder} here")  # noqa: E731


@pytest.mark.parametrize(
    "args,message",
    [
        (["--image", "no_such_image"], "image 'no_such_image' not found: not a file, not in "),
        (["--image", "notes.png"], "cannot read '{folder}/notes.png' as an image"),
        (["--nlevel", "1.0"], "--nlevel must be in [0, 1), got 1.0"),
        (["--nlevel", "-0.1"], "--nlevel must be in [0, 1), got -0.1"),
        (["--nlevel", "nan"], "--nlevel must be in [0, 1), got nan"),
        (["--width", "0"], "--width must be at least 1, got 0"),
        (["--width", str(10**11)], "--width must be at most 65536, got 100000000000"),  # overflowed torch's sizes
        (["--num_iter", "0"], "--num_iter must be at least 1, got 0"),
        (["--num_iter", str(10**20)], "--num_iter must be at most 9007199254740992, got 100000000000000000000"),
        (["--num_iter", "10**12"], "argument --num_iter: invalid int value: '10**12'"),
        (["--tile", "0"], "--tile must be at least 64, got 0"),
        (["--tile", "-128"], "--tile must be at least 64, got -128"),
        (["--tile", "48"], "--tile must be at least 64, got 48"),  # less than the network's least side
        (["--tile", "128", "--tile_overlap", "64"], "--tile_overlap 64 leaves --tile 128 no interior that is its own"),
        (["--tile", "128", "--tile_overlap", "-1"], "--tile_overlap must be at least 0, got -1"),
        (["--tile_index", "0"], "--tile_index is a tile of the --tile grid: give --tile too"),
        (["--image", "astronaut", "--resize", "64", "--tile", "64", "--tile_overlap", "16"], "--tile 64 covers the whole 64x64 image in one "
                                                                      "tile"),
        (["--image", "astronaut", "--resize", "64", "--tile", "100"], "--tile 100 covers the whole 64x64 image"),
        (["--image", "astronaut", "--resize", str(10**8)], "--resize must be at most 65536, got 100000000"),
        # Refused by the memory check before the 21 GB resized image is made.
        (["--image", "astronaut", "--resize", "30000"], "the run needs about "),
        (["--device", "tpu"], "unknown --device 'tpu' (use auto, cpu, cuda, cuda:N or mps)"),
        (["--device", "cpu\nx"], "unknown --device 'cpu\\nx' (use auto"),  # one line, whatever is quoted
        (["two\nlines"], "unrecognized arguments: two\\nlines"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"],
         "--device cuda asked for, but CUDA is not available here" if not torch.cuda.is_available()
         else "--device cuda:99 asked for, but only"),
        (["--resume"], "no checkpoint to resume: {folder}/test_checkpoint.pt does not exist"),
        (["--nlevel", "half"], "argument --nlevel: invalid float value: 'half'"),
        (["--method", "sparse"], "argument --method: invalid choice: 'sparse' (choose from "),
        (["--noisy", "no_such_file.png"], "--noisy image '{folder}/no_such_file.png' not found"),
        (["--noisy", "/dev/zero"], "--noisy image '/dev/zero' is a device, not an image file"),  # not "not found"
        (["--noisy", "/dev/null"], "--noisy image '/dev/null' is a device, not an image file"),
        (["--noisy", "pipe"], "--noisy image '{folder}/pipe' is a pipe, not an image file"),
        (["--image", "/dev/zero"], "image '/dev/zero' is a device, not an image file"),
        (["--image", "pipe"], "image 'pipe' is a pipe, not an image file"),
        (["--image", ""], "--image is empty"),
        (["--image", "astronaut", "--out_dir", "notes.png"], "--out_dir notes.png exists and is not a folder"),
        (["--image", "astronaut", "--out_dir", "notes.png/runs"], "--out_dir notes.png/runs: {folder}/notes.png "
                                                                 "exists and is not a folder"),
        (["--image", "astronaut", "--out_dir", ""], "--out_dir is empty (the working folder is .)"),
        pytest.param(["--image", "astronaut", "--out_dir", "/proc/x"], "cannot make --out_dir /proc/x: cannot write "
                     "in /proc (", marks=needs("/proc")),  # was a FileNotFoundError's traceback
        pytest.param(["--image", "astronaut", "--out_dir", "/sys/x"], "cannot make --out_dir /sys/x: cannot write "
                     "in /sys (", marks=needs("/sys")),  # was a PermissionError's traceback
        (["--lr", "inf"], f"{RATES}, got --lr inf, --lr_c 500.0"),
        (["--lr", "nan"], f"{RATES}, got --lr nan, --lr_c 500.0"),
        (["--lr", "1e308"], f"{RATES}, got --lr 1e+308, --lr_c 500.0"),  # was torch's RuntimeError: float overflow
        (["--lr_c", "1e39"], f"{RATES}, got --lr 1.0, --lr_c 1e+39"),
        (["--noisy", "small.png", "--resize", "64"], "--resize cannot be used with --noisy: resizing would smear "
                                                     "the impulses into their neighbours"),
        (["--image", "astronaut", "--ckpt", "sub/run"], "--ckpt must be a plain name, not 'sub/run' (choose the "
                                                        "folder with --out_dir)"),
        (["--image", "astronaut", "--threads", "0"], "--threads must be at least 1, got 0"),
        # Was libgomp's "Out of memory allocating 800008 bytes" and exit 1, naming no setting.
        (["--image", "astronaut", "--threads", "100000"], "--threads must be at most "),
        (["--image", "astronaut", "--seed", "-1"], "--seed must be in [0, 2**63 - 1], got -1"),
        (["--image", "astronaut", "--seed", str(2**64)], f"--seed must be in [0, 2**63 - 1], got {2**64}"),
        (["--noisy", "small.png", "--nlevel", "0.3"], "--nlevel adds noise, and --noisy images have theirs "
                                                      "already: give one of them"),
        (["--noisy", "small.png", "--noise", "random_valued"], "--noise adds noise, and --noisy images have theirs "),
        (["--image", "astronaut", "--noise", "gaussian"], "argument --noise: invalid choice: 'gaussian'"),
        (["--noisy", "small.png", "--image", "astronaut"], "give either --image or --noisy, not both"),
        (["--image", "astronaut", "--ckpt", "x" * 300], "--ckpt is 300 bytes long; at most 200"),
        (["--image", "astronaut", "--ckpt", "é" * 150], "--ckpt is 300 bytes long; at most 200"),
        pytest.param(["--image", "astronaut", "--gpu", "0"], "--gpu 0 asks for a GPU, but CUDA is not available "
                     "here: no NVIDIA driver is loaded (no /proc/driver/nvidia/version, no answer from nvidia-smi); "
                     "leave --gpu out to run on the CPU", marks=pytest.mark.skipif(
                         torch.cuda.is_available() or os.path.exists("/proc/driver/nvidia/version"),
                         reason="this message where there is no NVIDIA driver")),
        (["--image", "astronaut", "--gpu", "0", "--device", "cuda:1"], "--gpu 0 makes GPU 0 the only one CUDA sees, "
         "as cuda; it contradicts --device cuda:1: give --gpu with --device auto or cuda, or --device alone"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(precious, monkeypatch, capsys, args, message):
    monkeypatch.chdir(precious)
    before = contents(precious)
    assert exit_status(main, ["--out_dir", str(precious), "--num_iter", "2", *args]) == 2
    err = capsys.readouterr().err
    expected = "denoising.py: error: " + message.format(folder=precious)
    assert err.count("\n") == 1 and err.startswith(expected), err
    assert contents(precious) == before


def test_a_real_process_exits_2_and_says_why_in_one_line(precious):
    """main's status is the process's exit status, and the one line is all it prints."""
    before = contents(precious)
    result = run_cli(precious, "--num_iter", "2", "--nlevel", "1.0")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "denoising.py: error: --nlevel must be in [0, 1), got 1.0\n"
    assert contents(precious) == before


def test_ctrl_c_saves_and_resumes(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "denoising.py"), *TINY, "--out_dir", str(tmp_path), "--ckpt", "run",
         "--num_iter", "100000", "--show_every", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    checkpoint = tmp_path / "run_checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped by Ctrl-C after iteration " in out
    saved = RunState.load(checkpoint)
    assert 0 < saved.iteration < 100000
    hint = out.strip().splitlines()[-1]
    assert hint == f"continue with: python denoising.py --ckpt run --out_dir {tmp_path} --device cpu --resume"
    assert main(shlex.split(hint)[4:] + ["--num_iter", str(saved.iteration + 2)]) == 0
    assert RunState.load(checkpoint).iteration == saved.iteration + 2


def test_images_are_looked_up_in_this_checkout_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = os.path.join(REPO, "data", "denoising")
    spec, _ = spec_from_args(build_parser().parse_args([]))
    assert spec.config.data_dir == expected
    assert RecoveryConfig().data_dir == expected and Settings().data_dir == expected


def test_cuda_visible_devices_is_set_only_by_gpu(tmp_path, monkeypatch):
    # Set whenever unset, it made every --device cuda:N but cuda:0 unreachable.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert main(TINY + ["--out_dir", str(tmp_path), "--num_iter", "1"]) == 0
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert main(TINY + ["--out_dir", str(tmp_path), "--ckpt", "other", "--gpu", "1"]) == 2  # contradicts cpu
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"  # as the reference sets it


@pytest.mark.parametrize("gpu,tail", [(None, []), ("1", ["--gpu", "1"])])
def test_the_command_that_continues_a_run_keeps_its_gpu(gpu, tail):
    spec, _ = spec_from_args(build_parser().parse_args(["--ckpt", "run", "--out_dir", "out"]))
    assert resume_command(spec, gpu) == ["denoising.py", "--ckpt", "run", "--out_dir", "out", "--device", "auto",
                                         "--resume"] + tail
