"""Both command lines, fuzzed: whatever flags and values they are given, ``denoising.py`` and
``reproduce.py`` keep the contract of docs/command_line.md.

Hypothesis draws a few flags with values at and beyond every bound (NaN, infinities, huge and
malformed numbers, empty strings, names that are not UTF-8 or too long, folders, devices, a pipe,
places that cannot be written, duplicated and contradictory flags) and appends them to a small
command that, accepted, finishes in about a second on a CPU. Every example runs ``main`` in this
process, in a fresh working folder holding those inputs and an earlier run, and must end with
status 0, 1 or 2, no exception but SystemExit, one line on stderr when refused or failed, nothing
changed when refused, and nothing written outside the output folder it named. reproduce.py always
runs with --dry_run, which writes nothing at all.

The quick suite draws a few dozen examples; the full one (``-m slow``) several hundred. The draws
are seeded (derandomized), so a failure recurs; the examples the fuzzing found are kept below as
``@example`` cases. Left out: --compile for denoising.py (on a CPU a minute of compiling) and
--no_memory_check (a refused resize would then fill the memory), and reproduce.py's --sbatch.
"""

import contextlib
import functools
import io
import os
import stat
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import denoising
import reproduce
from cli import ProcessSettings, exit_status
from conftest import REPO
from recovery.settings import MAX_COUNT, MAX_LEARNING_RATE, MAX_SIDE, MAX_WIDTH, max_threads

QUICK = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(QUICK, max_examples=400)
# A folder is a run per file, seconds an example: fewer of them.
FOLDER_QUICK, FOLDER_THOROUGH = settings(QUICK, max_examples=5), settings(QUICK, max_examples=100)

# Values at and beyond each bound, and text that is no number at all.
COUNTS = ["0", "-1", "", "nan", "1e3", "10**3", " 2 ", "1_0", "\u0661", str(MAX_COUNT + 1), str(10**30), "9" * 5000]
REALS = ["0", "-0", "-1", "nan", "inf", "-inf", "1e308", "1e400", "1e-320", "5e-324", "", "half", "0x1p3", "1_0"]
RATES = REALS + ["1", "1e30", "1e39", repr(MAX_LEARNING_RATE), "2.126765e37", "1e-38", "1.2e-38", "Infinity"]
# Paths, relative to the working folder that world() makes, or places no test may write in.
UNREADABLE = ["", "no_such.png", "notes.png", "small.png", "pipe", "folder", "folder/", "good.png/",
              "broken", "/dev/null", "/dev/zero", "x" * 300]
FOLDERS = ["out", "new", "new/deeper", "", ".", "folder", "notes.png", "notes.png/sub", "pipe", "pipe/sub",
           "broken", "/proc/x", "/sys/x", "/dev/null", "/dev/null/x", "x" * 256, "/".join(["x" * 250] * 17),
           "out\udcff", "two\nlines", "images", "images/sub"]
DEVICES = ["cpu", "auto", "cuda", "cuda:99", "cuda:-1", "cuda:" + "9" * 30, "mps", "meta", "tpu", "cpu:0",
           "cpu:1", "", "cpu\nx"]

DENOISING_VALUES = {
    "--image": ["astronaut", "camera", "F16", "lfw_subset", "download_all", "good.png", "caf\udce9.png",
                *UNREADABLE],
    "--noisy": ["good.png", "caf\udce9.png", *UNREADABLE],
    "--data_dir": ["data", "no_such", "notes.png", "pipe", "/dev/null", "folder", ""],
    "--out_dir": FOLDERS,
    "--ckpt": ["kept", "run2", "", ".", "..", "a/b", "x" * 200, "x" * 201, "\u00e9" * 100, "\u00e9" * 101,
               "\udcff", "-", "two\nlines", " ", ".hidden", "kept.lock"],
    # Accepted only where a run stays short: 1 or 2 iterations, width 1 to 3, a side of 64 to 95.
    "--num_iter": ["1", "2", *COUNTS],
    "--show_every": ["1", str(MAX_COUNT), *COUNTS],
    "--width": ["1", "3", "2.5", str(MAX_WIDTH + 1), str(10**11), *COUNTS],
    "--resize": ["64", "95", "63", "-64", "30000", str(MAX_SIDE), str(MAX_SIDE + 1), str(10**8), *COUNTS],
    "--seed": ["0", str(2**63 - 1), str(2**63), *COUNTS],
    "--threads": ["1", "2", str(max_threads()), str(max_threads() + 1), "100000", str(2**63), *COUNTS],
    "--nlevel": ["0.5", "0.999", "1", *REALS],
    "--lr": RATES,
    "--lr_c": RATES,
    "--checkpoint_seconds": ["0", "1e308", *REALS],
    "--alg": ["sgd", "adam", "SGD", "", "lbfgs"],
    "--method": ["ours", "dip", "dip-l1", "", "sparse"],
    "--precision": ["fp32", "tf32", "bf16", "fp16", ""],
    "--step": ["eager", "graph", ""],
    "--device": DEVICES,
    "--gpu": ["0", "", "1", "abc"],
}
DENOISING_SWITCHES = ["--l1", "--resume", "--overwrite", "--channels_last", "--no_progress", "--help"]
# Tokens no flag expects, and flags spelled in ways argparse takes or refuses.
JUNK = [("--",), ("x",), ("--unknown",), ("-",), ("--num",), ("--wid", "3"), ("--lr=nan",), ("--image=",),
        ("--width",), ("-h",)]

REPRODUCE_VALUES = {
    "--figure": [("all",), ("3", "4"), ("5", "teaser", "table"), ("6",), ("",), ()],
    "--width": ["1", "3", str(MAX_WIDTH), str(MAX_WIDTH + 1), *COUNTS],
    "--num_iter": ["1", str(MAX_COUNT), *COUNTS],
    "--show_every": ["1", *COUNTS],
    "--resize": ["64", "63", str(MAX_SIDE + 1), *COUNTS],
    "--data_dir": ["data", "no_such", "notes.png", "/dev/null", "folder", ""],
    "--seed": ["0", str(2**63), *COUNTS],
    "--precision": ["fp32", "bf16", "fp16", ""],
    "--out_dir": FOLDERS,
    "--device": DEVICES,
    "--threads": ["1", str(max_threads() + 1), "100000", *COUNTS],
    "--step": ["eager", "graph", ""],
    "--checkpoint_seconds": ["0", *REALS],
    "--launcher": ["local", "slurm", "", "pbs"],
    "--partition": ["gpu", "", "two\nlines", "-"],
    "--time_min": ["1", "120", *COUNTS],
    "--gpus_per_task": ["0", "1", "8", *COUNTS],
    "--cpus_per_task": ["1", "100000", *COUNTS],
    "--max_running": ["1", *COUNTS],
    "--max_restarts": ["0", "10", *COUNTS],
}
REPRODUCE_SWITCHES = ["--status", "--no_run", "--no_progress", "--channels_last", "--compile", "--help"]

# The warnings that a Python process does not print unless asked; any other is a line on stderr.
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)

PNG = io.BytesIO()
Image.fromarray(np.random.default_rng(0).choice([0, 255], (64, 64, 3)).astype(np.uint8)).save(PNG, format="PNG")


def flags(values, switches):
    """Up to four flags with values from ``values``, switches from ``switches``, or junk tokens,
    as one list of tokens."""
    with_value = st.sampled_from(sorted(values)).flatmap(
        lambda flag: st.sampled_from(values[flag]).map(lambda value: (flag, *_tokens(value))))
    one = st.one_of(with_value, st.sampled_from(switches).map(lambda switch: (switch,)), st.sampled_from(JUNK))
    return st.lists(one, max_size=4).map(lambda options: [token for option in options for token in option])


def _tokens(value):
    return value if isinstance(value, tuple) else (value,)


@contextlib.contextmanager
def world(files, images=()):
    """A fresh folder, made the working folder, holding the inputs a fuzzed command may name, the
    files of an earlier run ``kept`` in ``out/``, and a folder ``images/`` of the file names
    ``images`` (of FOLDER_FILES)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="fuzz") as root:
        for folder in ("out", "folder", "data", "images"):
            os.mkdir(os.path.join(root, folder))
        for name in images:
            path = os.path.join(root, "images", name)
            if name in FOLDER_LINKS:
                os.symlink(os.path.join(root, "images", FOLDER_LINKS[name]), path)
            else:
                with open(path, "wb") as f:
                    f.write(b"not an image" if name == "damaged.png" else PNG.getvalue())
        for name, data in files.items():
            with open(os.path.join(root, "out", name), "wb") as f:
                f.write(data)
        for name in ("good.png", "caf\udce9.png", *(f"data/{n}.png" for n in ("F16", "Peppers", "Baboon", "kodim03"))):
            with open(os.path.join(root, name), "wb") as f:
                f.write(PNG.getvalue())
        with open(os.path.join(root, "notes.png"), "w") as f:
            f.write("not an image")
        Image.new("RGB", (40, 40)).save(os.path.join(root, "small.png"))
        os.mkfifo(os.path.join(root, "pipe"))  # a reader would wait for a writer forever
        os.symlink(os.path.join(root, "nowhere"), os.path.join(root, "broken"))
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(cwd)


def snapshot(root):
    """Every entry under ``root``: a file's bytes, a link's target, or the kind of anything else."""
    entries = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                with open(path, "rb") as f:
                    entries[path] = f.read()
            else:
                entries[path] = os.readlink(path) if stat.S_ISLNK(mode) else stat.S_IFMT(mode)
    return entries


def may_write(path, out_dir):
    """True if a command whose output folder is ``out_dir`` may have made or changed ``path``: an
    entry in that folder, or a folder above it that os.makedirs made."""
    path, out_dir = os.path.realpath(path), os.path.realpath(out_dir)
    return os.path.commonpath([path, out_dir]) in (out_dir, path)


def output_folder(script, argv):
    """The --out_dir that ``argv`` gives, or None where argparse refuses it (or shows --help)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return script.build_parser().parse_args(argv).out_dir
        except SystemExit:
            return None


def check_contract(script, argv, images=()):
    """Run ``script``'s main on ``argv`` in a fresh world (with ``images`` in ``images/``) and
    assert the command-line contract."""
    prog, writes = script.PROG, script is denoising  # reproduce.py runs --dry_run: it writes nothing
    with world(earlier_run(), images) as root:
        before, repository = snapshot(root), sorted(os.listdir(REPO))
        out, err = io.StringIO(), io.StringIO()
        kept = ProcessSettings()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # pytest would take them off stderr
                status = exit_status(script.main, argv)
            out_dir = output_folder(script, argv) if writes else None
        finally:
            kept.restore()
        lines = err.getvalue().splitlines() + [str(w.message) for w in caught if not issubclass(w.category, HIDDEN)]
        changed = snapshot(root).items() ^ before.items()
        assert status in (0, 1, 2), (status, err.getvalue()[-2000:])
        event(f"exit status {status}")  # --hypothesis-show-statistics counts them
        said = len(lines) == 1 and lines[0].startswith(f"{prog}: error: ")
        if status == 2:
            assert said and not changed, (lines, sorted(path for path, _ in changed))
        elif status == 1:  # a resource that ran out, or a run that diverged (said on stdout); in a folder,
            # a line per file not recovered
            assert said or (not lines and "diverged:" in out.getvalue()) or (
                lines and all(line.startswith("images/") for line in lines)), lines
        else:
            assert not lines or "--help" in argv or "-h" in argv, lines
        assert all(may_write(path, out_dir) for path, _ in changed) if out_dir else not changed
        inputs = os.path.join(root, "images")  # a user's images are never written, whatever out_dir says
        assert not [path for path, _ in changed if path in before and path.startswith(inputs)]
        assert sorted(os.listdir(REPO)) == repository


@functools.cache
def earlier_run():
    """The files of a finished run ``kept``, made once with the fuzzed commands' own base settings
    (not a fixture: Hypothesis would print its megabytes with every failing example)."""
    with tempfile.TemporaryDirectory(prefix="earlier") as folder:
        kept = ProcessSettings()
        with contextlib.redirect_stdout(io.StringIO()):
            assert denoising.main(BASES["image"][:-4] + ["--out_dir", folder, "--ckpt", "kept"]) == 0
        kept.restore()
        return {name: open(os.path.join(folder, name), "rb").read() for name in os.listdir(folder)
                if not name.endswith(".lock")}


COMMON = ["--width", "2", "--num_iter", "1", "--device", "cpu", "--no_progress", "--out_dir", "out", "--ckpt", "new"]
BASES = {"image": ["--image", "astronaut", "--resize", "64", *COMMON], "noisy": ["--noisy", "good.png", *COMMON]}
# A folder of images: --noisy images/ with the base settings (a run per file, named after it).
FOLDER_BASE = ["--noisy", "images", *COMMON[:-2]]
# Names of every kind (issue 28): shared stems, a leading dash, |, a newline, bytes that are not
# UTF-8, 240 bytes, .gif, a hidden file, a damaged one, a broken link and a loop of links.
FOLDER_LINKS = {"broken.png": "nowhere.png", "loop.png": "loop.png"}
FOLDER_FILES = ["a.png", "a.jpg", "a_png.tif", "-x.png", "p|q.png", "two\nlines.png", "caf\udcff.png",
                "x" * 236 + ".png", "anim.gif", "._a.png", "damaged.png", *FOLDER_LINKS]
REPRODUCE_BASE = ["--figure", "3", "--dry_run", "--resize", "64", "--width", "2", "--num_iter", "1", "--device", "cpu",
                  "--no_progress", "--out_dir", "figures", "--data_dir", "data"]


@QUICK
@given(base=st.sampled_from(sorted(BASES)), extra=flags(DENOISING_VALUES, DENOISING_SWITCHES))
@example(base="image", extra=[]).via("the base command itself is accepted")
@example(base="image", extra=["--nlevel", "0"]).via("numpy's warning on stderr for an infinite PSNR")
@example(base="image", extra=["--lr", "1e308"]).via("torch's RuntimeError: float overflow")
@example(base="image", extra=["--alg", "adam", "--lr", repr(MAX_LEARNING_RATE)]).via("overflowed; then NaN images")
@example(base="image", extra=["--out_dir", "/proc/x"]).via("FileNotFoundError from os.makedirs")
@example(base="image", extra=["--threads", "100000"]).via("libgomp out of memory, exit 1")
@example(base="noisy", extra=["--noisy", "/dev/zero"]).via("'not found' for a device")
@example(base="image", extra=["--resize", "30000"]).via("the image resized before the memory check")
def test_denoising_keeps_its_command_line_contract(base, extra):
    check_contract(denoising, BASES[base] + extra)


@pytest.mark.slow
@THOROUGH
@given(base=st.sampled_from(sorted(BASES)), extra=flags(DENOISING_VALUES, DENOISING_SWITCHES))
def test_denoising_keeps_its_command_line_contract_at_length(base, extra):
    check_contract(denoising, BASES[base] + extra)


FOLDERS_OF_FILES = st.lists(st.sampled_from(FOLDER_FILES), min_size=1, max_size=4, unique=True)


@FOLDER_QUICK
@given(images=FOLDERS_OF_FILES, extra=flags(DENOISING_VALUES, DENOISING_SWITCHES))
@example(images=["a.png", "a.jpg", "a_png.tif"], extra=[]).via("two runs named a_png: stuck for good")
@example(images=["a.png"], extra=["--out_dir", "images"]).via("outputs written over the inputs")
@example(images=["a.png"], extra=["--width", "0"]).via("a bad setting reported as every file unreadable")
@example(images=["caf\udcff.png", "p|q.png"], extra=[]).via("UnicodeEncodeError writing the summary")
@example(images=["x" * 236 + ".png"], extra=[]).via("refused as --ckpt too long, a flag a folder does not take")
def test_denoising_keeps_its_command_line_contract_on_a_folder(images, extra):
    check_contract(denoising, FOLDER_BASE + extra, images)


@pytest.mark.slow
@FOLDER_THOROUGH
@given(images=FOLDERS_OF_FILES, extra=flags(DENOISING_VALUES, DENOISING_SWITCHES))
def test_denoising_keeps_its_command_line_contract_on_a_folder_at_length(images, extra):
    check_contract(denoising, FOLDER_BASE + extra, images)


@QUICK
@given(extra=flags(REPRODUCE_VALUES, REPRODUCE_SWITCHES))
@example(extra=[]).via("the base command itself is accepted")
@example(extra=["--", "--partition", "two\nlines"]).via("argparse quoted a newline as it was: two lines")
def test_reproduce_keeps_its_command_line_contract(extra):
    check_contract(reproduce, REPRODUCE_BASE + extra)


@pytest.mark.slow
@THOROUGH
@given(extra=flags(REPRODUCE_VALUES, REPRODUCE_SWITCHES))
def test_reproduce_keeps_its_command_line_contract_at_length(extra):
    check_contract(reproduce, REPRODUCE_BASE + extra)
