"""reproduction/folder.py through denoising.py: a folder of three small images and a damaged file,
each image a run named after its file; complete runs skipped, an interrupted one (a real SIGTERM)
resumed; the summary; the refusals; the same folder as a Slurm job array (slow)."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import skimage.data
from PIL import Image
from slurm_cluster import wait_for

from conftest import REPO
from denoising import main
from reproduction.folder import run_names
from utils.errors import INTERRUPTED

IMAGES = ("astronaut", "coffee", "chelsea")
TINY = ["--resize", "64", "--width", "4", "--num_iter", "6", "--show_every", "3", "--device", "cpu", "--threads", "1",
        "--no_progress"]
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
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY]
    return argv, out_dir, main(argv)


def test_every_image_is_a_run_named_after_its_file_and_the_damaged_one_is_reported(recovered, capsys):
    _, out_dir, status = recovered
    assert status == 1  # a file could not be read
    rows = summary(out_dir)
    assert sorted(rows) == sorted([f"{name}.png" for name in IMAGES] + ["damaged.png"])
    for name in IMAGES:
        row = rows[f"{name}.png"]
        assert row["run"] == name and row["status"] == "complete" and row["size"] == "64x64"
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
    assert main(["--noisy", str(folder), "--out_dir", str(tmp_path / "out"), *TINY[2:]]) == 0
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
    assert main(["--image", str(folder), "--out_dir", str(tmp_path / "out"), *TINY, *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and says in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, says", [
    (["--image", "astronaut", "--partition", "gpu"], "--partition is for --launcher slurm only"),
    (["--image", "astronaut", "--launcher", "slurm"], "--launcher is for a folder of images"),
])
def test_launcher_flags_without_a_folder_are_one_line_and_exit_2(tmp_path, capsys, bad, says):
    assert main(["--out_dir", str(tmp_path / "out"), *TINY, *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and says in error


def test_a_folder_without_images_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--image", str(tmp_path / "empty"), "--out_dir", str(tmp_path / "out"), *TINY]) == 2
    assert "no image file in" in capsys.readouterr().err


@pytest.mark.parametrize("files, names", [
    (["a/x.png", "a/y.jpg"], ["x", "y"]),
    (["a/x.png", "a/x.jpg", "a/z.tif"], ["x_png", "x_jpg", "z"]),
])
def test_runs_are_named_after_their_files_and_a_shared_name_keeps_the_extension(files, names):
    assert run_names(files) == names


@pytest.mark.slow
def test_a_sigterm_stops_the_folder_and_the_same_command_resumes_it(tmp_path):
    folder = make_folder(tmp_path / "in", damaged=False)
    out_dir = tmp_path / "out"
    argv = [sys.executable, "denoising.py", "--image", str(folder), "--out_dir", str(out_dir), *TINY[:4],
            "--num_iter", "400", "--show_every", "20", "--checkpoint_seconds", "0", *TINY[8:]]
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (out_dir / "chelsea_checkpoint.pt").exists(), 120, "the second run's first checkpoint",
                 interval_s=0.05)
        child.send_signal(signal.SIGTERM)
        printed, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == INTERRUPTED, printed
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
    argv = ["--image", str(folder), "--out_dir", str(out_dir), *TINY, "--launcher", "slurm", "--gpus_per_task", "0"]
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


def test_a_run_that_fails_is_in_the_summary_with_its_reason(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(skimage.data.coffee()).resize((80, 64)).save(folder / "cup: coffee.png")  # ": " in its name
    assert main(["--image", str(folder), "--out_dir", str(tmp_path / "out"), *TINY, "--lr", "1e12"]) == 1
    row = summary(tmp_path / "out")["cup: coffee.png"]
    assert row["run"] == "cup: coffee" and row["status"] == "failed: diverged (the loss became inf or nan)"
