"""reproduction/folder.py through denoising.py: a folder of three small images and a damaged file,
each image a run named after its file; complete runs skipped, an interrupted one (a real SIGTERM)
resumed; the summary; the refusals; the same folder as a Slurm job array (slow)."""

import contextlib
import csv
import json
import os
import subprocess
import sys
import time

import pytest
import skimage.data
from PIL import Image

from cli import stopped_by_sigterm
from conftest import REPO
from tiny import RESIZE, tiny_flags
from denoising import main
from recovery.lock import RunLock
from utils.errors import INTERRUPTED

IMAGES = ("astronaut", "coffee", "chelsea")
# Each file a tiny run of 6 iterations, one thread; AT_OWN_SIZE without --resize (a file's own size).
AT_OWN_SIZE = tiny_flags(image=None, resize=None) + ["--threads", "1"]
TINY_FOLDER = ["--resize", str(RESIZE), "--num_iter", "6", "--show_every", "3"] + AT_OWN_SIZE
pytestmark = pytest.mark.usefixtures("process_settings_kept")


def make_folder(folder, damaged=True):
    folder.mkdir()
    for name in IMAGES:
        Image.fromarray(getattr(skimage.data, name)()).resize((80, 64)).save(folder / f"{name}.png")
    if damaged:
        (folder / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing of an image")
    (folder / "notes.txt").write_text("not an image: left alone")
    return folder


def summary(out_dir):
    with open(out_dir / "summary.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    """A folder recovered once (``--image DIR``): its exit status and what it printed."""
    root = tmp_path_factory.mktemp("folder")
    folder, out_dir = make_folder(root / "in"), root / "out"
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER]
    return argv, out_dir, main(argv)


def test_every_image_is_a_run_named_after_its_file_and_the_damaged_one_is_reported(recovered, capsys):
    _, out_dir, status = recovered
    assert status == 1  # a file could not be read
    rows = summary(out_dir)
    assert sorted(rows) == sorted([f"{name}.png" for name in IMAGES] + ["damaged.png"])
    for name in IMAGES:
        row = rows[f"{name}.png"]
        assert row["run"] == name and row["status"] == "complete" and row["size"] == "80x64"  # the file's own size
        assert row["iterations"] == "6" and float(row["psnr_last"]) > 0 and float(row["psnr_final"]) > 0
        assert 0 <= float(row["impulses_found"]) <= 1
        assert (out_dir / f"{name}_last.png").exists() and (out_dir / f"{name}_mask.png").exists()
    assert rows["damaged.png"]["status"].startswith("unreadable: cannot read")
    assert "| damaged.png |" in (out_dir / "summary.md").read_text()
    assert not list(out_dir.glob("damaged_*")) and not list(out_dir.glob("notes*"))


def test_the_same_command_again_skips_the_complete_runs(recovered, capsys):
    argv, out_dir, _ = recovered
    written = {path: path.stat().st_mtime_ns for path in out_dir.glob("*_last.png")}
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert all(f"{name}: complete, reused" in printed for name in IMAGES)
    assert {path: path.stat().st_mtime_ns for path in written} == written


def test_a_folder_of_corrupted_images_has_no_psnr_but_the_impulses_found(tmp_path):
    folder = make_folder(tmp_path / "noisy", damaged=False)
    assert main(["--noisy", str(folder), "--out_dir", str(tmp_path / "out"), "--num_iter", "6", "--show_every", "3", *AT_OWN_SIZE]) == 0
    rows = summary(tmp_path / "out")
    assert sorted(rows) == [f"{name}.png" for name in sorted(IMAGES)]
    assert all(row["psnr_last"] == "" and row["impulses_found"] != "" for row in rows.values())


@pytest.mark.parametrize("bad, says", [
    (["--ckpt", "mine"], "--ckpt is for one image"),
    (["--resume"], "--resume is for one image"),
    (["--launcher", "slurm", "--gpus_per_task", "0", "--device", "cuda"], "--device cuda cannot be used"),
])
def test_what_a_folder_cannot_take_is_one_line_and_exit_2(tmp_path, capsys, bad, says):
    folder = make_folder(tmp_path / "in", damaged=False)
    assert main(["--image", str(folder), "--out_dir", str(tmp_path / "out"), *TINY_FOLDER, *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and says in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, says", [
    (["--image", "astronaut", "--partition", "gpu"], "--partition is for --launcher slurm only"),
    (["--image", "astronaut", "--launcher", "slurm"], "--launcher is for a folder of images"),
])
def test_launcher_flags_without_a_folder_are_one_line_and_exit_2(tmp_path, capsys, bad, says):
    assert main(["--out_dir", str(tmp_path / "out"), *TINY_FOLDER, *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and says in error


def test_a_folder_without_images_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--image", str(tmp_path / "empty"), "--out_dir", str(tmp_path / "out"), *TINY_FOLDER]) == 2
    assert "no image file in" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sigterm_stops_the_folder_and_the_same_command_resumes_it(tmp_path):
    folder = make_folder(tmp_path / "in", damaged=False)
    out_dir = tmp_path / "out"
    argv = [sys.executable, "denoising.py", "--image", str(folder), "--out_dir", str(out_dir), "--resize", str(RESIZE),
            "--num_iter", "400", "--show_every", "20", "--checkpoint_seconds", "0", *AT_OWN_SIZE]
    status, printed = stopped_by_sigterm(argv, lambda: (out_dir / "chelsea_checkpoint.pt").exists(),
                                         "the second run's first checkpoint")
    assert status == INTERRUPTED, printed
    assert "the same command resumes them" in printed
    assert not (out_dir / "summary.csv").exists() and not (out_dir / "coffee_checkpoint.pt").exists()
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "astronaut: complete, reused" in again.stdout and "chelsea: resuming" in again.stdout
    assert [row["status"] for row in summary(out_dir).values()] == ["complete"] * 3


@pytest.mark.slow
def test_a_folder_as_a_slurm_job_array(slurm_cluster, tmp_path):
    folder = make_folder(tmp_path / "in")
    out_dir = tmp_path / "out"
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER, "--launcher", "slurm", "--gpus_per_task", "0"]
    assert main(argv) == 1  # submitted; the damaged file reported
    assert not (out_dir / "summary.csv").exists()  # written once every run is complete
    slurm_cluster.wait_until_no_jobs(120)
    start = time.monotonic()
    assert main(argv) == 1
    assert time.monotonic() - start < 60
    rows = summary(out_dir)
    assert [rows[f"{name}.png"]["status"] for name in IMAGES] == ["complete"] * 3
    assert rows["damaged.png"]["status"].startswith("unreadable")
    assert os.path.isdir(out_dir / "slurm")


@pytest.mark.parametrize("failure", ["diverged", "in use"])
def test_a_run_that_fails_is_a_line_on_stderr_and_in_the_summary_with_its_reason(tmp_path, capsys, failure):
    folder, out_dir = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(skimage.data.coffee()).resize((80, 64)).save(folder / "cup: coffee.png")  # ": " in its name
    Image.fromarray(skimage.data.chelsea()).resize((80, 64)).save(folder / "cat.png")
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER]
    out_dir.mkdir()
    with contextlib.ExitStack() as stack:
        if failure == "diverged":
            argv += ["--lr", "1e12"]
            reason = "failed: diverged: the loss is nan at iteration 3 (learning rates too large?)"  # the run's line
            failing = ["cat.png", "cup: coffee.png"]
        else:  # another process holds the run: here this one, through the run's own lock
            stack.enter_context(RunLock(str(out_dir / "cup: coffee.lock"), "cup: coffee"))
            reason = (f"failed: run 'cup: coffee' is in use by process {os.getpid()} "
                      f"(it holds {out_dir}/cup: coffee.lock)")
            failing = ["cup: coffee.png"]
        assert main(argv) == 1
    row = summary(out_dir)["cup: coffee.png"]
    assert row["run"] == "cup: coffee" and row["status"] == reason
    assert capsys.readouterr().err.splitlines() == [f"{folder}/{name}: {reason}" for name in failing]


def contents(folder):
    """``{name: bytes}`` of the files in ``folder`` (a link as its target)."""
    return {path.name: os.readlink(path) if path.is_symlink() else path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("out_dir, says", [
    ("in", "--out_dir {root}/in is the folder of images"),
    ("in/out", "--out_dir {root}/in/out lies inside the folder of images"),
    (".", "--out_dir {root} holds the folder of images"),
    ("link", "--out_dir {root}/link is the folder of images"),  # a link to it
])
def test_an_out_dir_not_apart_from_the_images_is_refused_before_anything_runs(tmp_path, capsys, out_dir, says):
    folder = make_folder(tmp_path / "in", damaged=False)
    Image.open(folder / "coffee.png").save(folder / "coffee_last.png")  # the image written over
    os.symlink(folder, tmp_path / "link")
    before = contents(folder)
    assert main(["--image", str(folder), "--out_dir", str(tmp_path / out_dir), *TINY_FOLDER]) == 2
    error = capsys.readouterr().err
    assert error.startswith("denoising.py: error: " + says.format(root=tmp_path)) and len(error.splitlines()) == 1
    assert contents(folder) == before and sorted(os.listdir(tmp_path)) == ["in", "link"]


@pytest.mark.parametrize("bad, says", [
    (["--width", "0"], "--width must be at least 1, got 0"),
    (["--seed", "-1"], "--seed must be in [0, 2**63 - 1], got -1"),
    (["--nlevel", "1"], "--nlevel must be in [0, 1), got 1.0"),
    (["--lr", "nan"], "learning rates must be in"),
    (["--resize", "10"], "--resize must be at least 64, got 10"),
])
@pytest.mark.parametrize("out_dir_exists", [True, False])
def test_a_bad_setting_is_one_line_before_any_image_and_touches_nothing(tmp_path, capsys, bad, says, out_dir_exists):
    folder, out_dir = make_folder(tmp_path / "in"), tmp_path / "out"
    if out_dir_exists:  # an earlier run's summary, which the issue saw written over
        out_dir.mkdir()
        (out_dir / "summary.csv").write_text("file,run,status\nx.png,x,complete\n")
    before = contents(out_dir) if out_dir_exists else None
    assert main(["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER, *bad]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"denoising.py: error: {captured.err[21:]}" and says in captured.err
    assert len(captured.err.splitlines()) == 1 and "skipped" not in captured.out + captured.err
    assert (contents(out_dir) == before) if out_dir_exists else not out_dir.exists()


def test_a_changed_image_is_refused_its_run_kept_and_the_advised_way_forward_works(tmp_path, capsys):
    folder, out_dir = make_folder(tmp_path / "in", damaged=False), tmp_path / "out"
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER]
    assert main(argv) == 0
    kept = {name: data for name, data in contents(out_dir).items() if name.startswith("coffee_")}
    Image.fromarray(skimage.data.rocket()).resize((128, 96)).save(folder / "coffee.png")  # another image, size
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"{folder}/coffee.png: changed since its run was made (from ") and "...; now " in line
    assert line.endswith(f"move or delete {out_dir}/coffee_* to make it again, or give another --out_dir")
    assert {name: data for name, data in contents(out_dir).items() if name.startswith("coffee_")} == kept
    assert summary(out_dir)["coffee.png"]["status"].startswith("changed since its run was made")
    for name in kept:  # the way forward it advises
        os.remove(out_dir / name)
    assert main(argv) == 0
    assert summary(out_dir)["coffee.png"]["status"] == "complete"


def test_a_deleted_image_of_a_complete_run_is_written_again_from_its_checkpoint(tmp_path, capsys):
    folder, out_dir = make_folder(tmp_path / "in", damaged=False), tmp_path / "out"
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY_FOLDER]
    assert main(argv) == 0
    written = {name: (out_dir / name).read_bytes() for name in ("coffee_last.png", "coffee_mask.png")}
    checkpoint = (out_dir / "coffee_checkpoint.pt").stat().st_mtime_ns
    for name in written:
        os.remove(out_dir / name)
    assert main(argv) == 0
    assert {name: (out_dir / name).read_bytes() for name in written} == written
    assert "astronaut: complete, reused" in capsys.readouterr().out
    assert summary(out_dir)["coffee.png"]["iterations"] == "6"
    assert (out_dir / "coffee_checkpoint.pt").stat().st_mtime_ns >= checkpoint


ODD_NAMES = ["a.png", "a.jpg", "a_png.tif", "-x.png", "p|q.png", "two\nlines.png", "caf\udcff.png", "x" * 236 + ".png",
             "anim.gif"]


def test_every_file_name_is_a_run_of_its_own_and_the_folder_never_gets_stuck(tmp_path, capsys):
    folder, out_dir = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    image = Image.fromarray(skimage.data.coffee()).resize((96, 64))  # width 96, height 64
    for name in ODD_NAMES:
        image.save(os.fsencode(folder) + b"/" + os.fsencode(name))
    image.save(folder / "._a.png")  # macOS's attributes of a.png: hidden, left out
    os.symlink(folder / "nowhere.png", folder / "broken.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    argv = ["--noisy", str(folder), "--out_dir", str(out_dir), "--num_iter", "6", "--show_every", "3", *AT_OWN_SIZE, "--no_memory_check"]
    printed = []
    for attempt in range(2):  # the second: every run reused, the same two files reported
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [f"{folder}/broken.png: not read: a broken link",
                                             f"{folder}/loop.png: not read: a loop of links"]
        assert "._a.png: left out, hidden" in captured.out
        assert f"{len(ODD_NAMES)} of {len(ODD_NAMES) + 2} files recovered" in captured.out
        printed.append(captured.out)
    assert "] two\\nlines: starting\n" in printed[0] and "two\\nlines: complete, reused\n" in printed[1]
    assert ", 96x64\n" in printed[0]  # width x height, as the summary's size
    rows = summary(out_dir)
    assert sorted(rows) == sorted(["broken.png", "loop.png", "caf\\xff.png", "two\\nlines.png"] +
                                  [name for name in ODD_NAMES if name.isprintable()])
    runs = [row["run"] for row in rows.values() if row["run"]]
    assert len(set(runs)) == len(ODD_NAMES) and {"a_png", "a_jpg", "a_png_tif", "-x", "p|q", "anim"} <= set(runs)
    assert all(row["status"] == "complete" and row["size"] == "96x64" for row in rows.values() if row["run"])
    table = (out_dir / "summary.md").read_text().splitlines()[2:]
    assert len(table) == len(rows) + 2 and all(line.replace("\\|", "").count("|") == 11 for line in table)


def test_a_folder_of_nothing_readable_into_a_fresh_out_dir_writes_its_summary(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing of an image")
    assert main(["--image", str(folder), "--out_dir", str(tmp_path / "new" / "out"), *TINY_FOLDER]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{folder}/damaged.png: unreadable: cannot read ")
    assert summary(tmp_path / "new" / "out")["damaged.png"]["status"] == line[len(f"{folder}/damaged.png: "):]


@pytest.mark.parametrize("replaced", [False, True])
def test_a_run_without_a_record_is_taken_for_its_file_when_the_sizes_agree(tmp_path, capsys, replaced):
    """A run made before records existed (its record deleted here): reused and recorded when its
    image has the file's shape; refused when the file now gives another."""
    folder, out_dir = make_folder(tmp_path / "in", damaged=False), tmp_path / "out"
    argv = ["--image", str(folder), "--out_dir", str(out_dir), "--num_iter", "6", "--show_every", "3", *AT_OWN_SIZE]  # no --resize: the size is the file's
    assert main(argv) == 0
    os.remove(out_dir / "coffee_input.json")
    if replaced:
        Image.fromarray(skimage.data.coffee()).resize((96, 64)).save(folder / "coffee.png")
    capsys.readouterr()
    assert main(argv) == replaced
    err = capsys.readouterr().err
    if replaced:
        assert err.startswith(f"{folder}/coffee.png: changed since its run was made (from a 3-channel 80x64 image; "
                              f"now a 3-channel 96x64 image): its run is kept; ")
        assert not (out_dir / "coffee_input.json").exists()
    else:
        assert err == "" and json.loads((out_dir / "coffee_input.json").read_text())["bytes"] > 0
