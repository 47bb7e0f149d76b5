"""reproduction/tiles.py through denoising.py --tile: a 450x300 image recovered in tiles comes back
450x300 with a summary per tile and whole; each tile is the run its own command makes; the same
command with --resume reuses complete tiles, a real SIGTERM stops it with the interrupted status
and --resume goes on; refusals; the tiles as a job array on the real test Slurm (slow)."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import skimage.data

from cli import stopped_by_sigterm
from conftest import REPO, needs_package
import recovery.run
from denoising import main
from recovery import RunFiles, RunState
from reproduction import local_jobs
from tiny import tiny_flags
from utils.errors import INTERRUPTED
from utils.image_io import load_image, save_png

pytestmark = pytest.mark.usefixtures("process_settings_kept")
TILES = ["tile_r0_c0", "tile_r0_c1", "tile_r0_c2", "tile_r1_c0", "tile_r1_c1", "tile_r1_c2"]  # --tile 192 on 450x300


def odd_image(folder, channels=3):
    """scikit-image's coffee cut to 450x300 (neither side a multiple of 32)."""
    pixels = skimage.data.coffee()[:300, :450].transpose(2, 0, 1) / 255.0
    save_png(folder / "coffee.png", pixels[:channels], 8)
    return str(folder / "coffee.png")


def tiled_flags(tmp_path, num_iter=2, tile=192, channels=3):
    image = odd_image(tmp_path, channels)
    return ["--ckpt", "t", "--out_dir", str(tmp_path / "out"), *tiny_flags(image=image, resize=None),
            "--num_iter", str(num_iter), "--show_every", "1", "--threads", "1", "--tile", str(tile)]


def summary(out_dir):
    with open(out_dir / "t_tiles.csv", newline="") as f:
        return {row["tile"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("channels", [3, 1])
def test_a_tiled_run_gives_the_images_size_and_a_summary_per_tile_and_whole(tmp_path, capsys, channels):
    argv = tiled_flags(tmp_path, channels=channels)
    assert main(argv) == 0
    out_dir = tmp_path / "out"
    for name in ("noisy", "clean", "last", "final", "impulses", "mask", "panel"):
        assert (out_dir / f"t_{name}.png").exists(), name
    for name in ("noisy", "clean", "last", "final", "impulses"):
        assert load_image(str(out_dir / f"t_{name}.png"))[0].shape == (channels, 300, 450), name
    rows = summary(out_dir)
    assert list(rows) == TILES + ["whole"] and all(row["status"] == "complete" for row in rows.values())
    assert rows["whole"]["region"] == "450x300" and float(rows["whole"]["psnr_last"]) > 5
    assert "done: 6 tiles blended into 450x300" in capsys.readouterr().out
    # Again: refused without --resume, every tile reused with it, and the blend the same.
    last = (out_dir / "t_last.png").read_bytes()
    assert main(argv) == 2
    assert "pass --resume to continue them" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    assert capsys.readouterr().out.count("complete, reused") == 6
    assert (out_dir / "t_last.png").read_bytes() == last


@pytest.mark.slow  # BM3D over the whole 450x300 image
@needs_package("bm3d")
def test_a_tiled_run_blends_its_tiles_refined_answers_and_masks(tmp_path, capsys):
    image = odd_image(tmp_path)
    argv = ["--ckpt", "t", "--out_dir", str(tmp_path / "out"), *tiny_flags(image=image, resize=None, refined=True),
            "--num_iter", "30", "--show_every", "10", "--threads", "1", "--tile", "256", "--nlevel", "0.3"]
    assert main(argv) == 0
    out_dir = tmp_path / "out"
    refined = load_image(str(out_dir / "t_refined.png"))[0]
    found = load_image(str(out_dir / "t_mask.png"))[0] > 0.5
    noisy = load_image(str(out_dir / "t_noisy.png"))[0]
    assert refined.shape == found.shape == (3, 300, 450) and found.any()
    assert np.array_equal(refined[~found], noisy[~found])  # every element no tile found, as observed
    whole = summary(out_dir)["whole"]
    assert float(whole["impulses_found"]) == pytest.approx(found.mean())
    assert ", refined " in capsys.readouterr().out


def test_each_tile_is_the_run_its_own_command_makes(tmp_path, capsys):
    argv = tiled_flags(tmp_path)
    assert main(argv) == 0
    tiled = RunState.load(RunFiles(str(tmp_path / "out" / "t_tiles"), "t_tile_r0_c1").checkpoint)
    assert main(["--ckpt", "alone", *argv[2:], "--tile_index", "1"]) == 0
    alone = RunState.load(RunFiles(str(tmp_path / "out"), "alone").checkpoint)
    assert alone.last.shape == (3, 192, 192) and np.array_equal(alone.last, tiled.last)
    tile_0 = RunState.load(RunFiles(str(tmp_path / "out" / "t_tiles"), "t_tile_r0_c0").checkpoint)
    assert tile_0.problem["z_digest"] != tiled.problem["z_digest"]  # a seed of its own


@pytest.mark.parametrize("extra,says", [
    (["--tile", "450"], "--tile 450 covers the whole 450x300 image in one tile"),
    (["--tile", "128", "--resume", "--overwrite"], "give --resume (continue the tiles) or --overwrite"),
    (["--tile", "128", "--launcher", "slurm", "--device", "cpu"], "--device cpu cannot be used with --launcher slurm"),
])
def test_bad_tiled_settings_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, extra, says):
    assert main(tiled_flags(tmp_path) + extra) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and says in error, error
    assert not (tmp_path / "out").exists()


def test_tiles_too_large_for_the_memory_are_refused_before_any_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(recovery.run, "available_bytes", lambda device: 2**20)  # as on a machine with 1 MiB free
    assert main(tiled_flags(tmp_path)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the run needs about 0.9 GiB, 0.0 GiB available" in error, error
    assert "--tile " not in error and not (tmp_path / "out").exists()  # a tile names no tile


def test_a_folder_of_images_takes_no_tile(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    odd_image(tmp_path / "in")
    assert main(["--image", str(tmp_path / "in"), "--out_dir", str(tmp_path / "out"), "--tile", "128"]) == 2
    assert "--tile is for one image, not a folder of images" in capsys.readouterr().err


def test_a_tiled_run_beside_a_whole_run_of_the_same_name_is_refused(tmp_path, capsys):
    argv = tiled_flags(tmp_path)
    whole = [flag for flag in argv if flag not in ("--tile", "192")]
    assert main(whole) == 0
    assert main(argv) == 2
    assert "is a run of the whole image: give the tiled run another --ckpt" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sigterm_stops_the_tiles_and_resume_goes_on(tmp_path):
    argv = [sys.executable, "denoising.py", *tiled_flags(tmp_path, num_iter=100), "--checkpoint_seconds", "0"]
    tiles = tmp_path / "out" / "t_tiles"
    status, printed = stopped_by_sigterm(argv, lambda: (tiles / "t_tile_r0_c1_checkpoint.pt").exists(),
                                         "the second tile's first checkpoint", timeout_s=180)
    assert status == INTERRUPTED, printed
    assert "stopped by SIGTERM" in printed and "continue with: python denoising.py" in printed
    assert "--resume" in printed.splitlines()[-1] and not (tmp_path / "out" / "t_last.png").exists()
    assert not (tiles / "t_tile_r0_c2_checkpoint.pt").exists()
    again = subprocess.run(argv + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "t_tile_r0_c0: complete, reused" in again.stdout and "t_tile_r0_c1: resuming" in again.stdout
    assert list(summary(tmp_path / "out")) == TILES + ["whole"]


@pytest.mark.slow  # real submitit jobs in real processes
@needs_package("submitit")
def test_the_tiles_as_local_jobs_one_per_device(tmp_path, capsys, monkeypatch):
    # Two CPU jobs standing in for two GPUs, as tests/test_local_jobs.py has them.
    monkeypatch.setattr(local_jobs, "local_job_devices", lambda device: ["cpu", "cpu"])
    assert main(tiled_flags(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "6 runs as local jobs, one at a time on each of cpu, cpu" in printed
    assert printed.count(": done") == 6 and "done: 6 tiles blended into 450x300" in printed
    assert [row["status"] for row in summary(tmp_path / "out").values()] == ["complete"] * 7


@pytest.mark.slow
def test_the_tiles_as_a_slurm_job_array(slurm_cluster, tmp_path, capsys):
    argv = tiled_flags(tmp_path) + ["--launcher", "slurm", "--gpus_per_task", "0"]
    assert main(argv) == 0  # submitted
    assert "submitted 6 runs to Slurm as job array" in capsys.readouterr().out
    assert not (tmp_path / "out" / "t_last.png").exists()  # blended once every tile is complete
    slurm_cluster.wait_until_no_jobs(300)
    assert main(argv + ["--resume"]) == 0
    assert "done: 6 tiles blended into 450x300" in capsys.readouterr().out
    assert [row["status"] for row in summary(tmp_path / "out").values()] == ["complete"] * 7
    assert load_image(str(tmp_path / "out" / "t_final.png"))[0].shape == (3, 300, 450)
