"""Odd sizes and tiles measured: what padding and tiling cost in dB, seconds and memory.

    python benchmarks/tiling.py padding --out_dir tiling   # the image's own pixels in the loss, or a reflected border
    python benchmarks/tiling.py tiles --out_dir tiling     # one image whole and in tiles
    python benchmarks/tiling.py large --out_dir tiling     # an image refused whole, recovered in tiles

Every run is a ``denoising.py`` process with one thread; its wall time is measured here and its
peak resident memory is the kernel's (``os.wait4``). ``padding``: scikit-image's tuning samples
(never the held-out immunohistochemistry or retina) resized to 100 px and cut to 100x90, corrupted
at 50%, recovered by the run as it is (the network on a 128x96 canvas, the loss on the image's
pixels) and by a run on the observation reflected out to the canvas (the loss on every pixel of it,
the outputs cut back). ``tiles``: the whole image against ``--tile`` runs of the same settings.
``large``: a size whose whole run the memory check refuses on this machine, recovered in tiles at a
tiny width and few iterations, to show the path. Writes ``<out_dir>/<mode>.md`` and ``.json``.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from recovery import RecoveryConfig, RunFiles, RunState, prepare_observation  # noqa: E402
from recovery.evaluation import FINAL  # noqa: E402
from recovery.padding import image_window, network_sides  # noqa: E402
from reproduction.table import markdown_table  # noqa: E402
from utils.atomic_files import write_json  # noqa: E402
from utils.image_io import load_image, resize_shorter_side, save_png  # noqa: E402
from utils.metrics import psnr  # noqa: E402

DEVICE = "2-core development CPU, shared with other jobs"
TUNING_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def run_denoising(argv, log_path):
    """Run ``denoising.py argv`` (its output to ``log_path``); ``(exit status, seconds, peak RSS GiB)``."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, os.path.join(REPO, "denoising.py"), *argv], stdout=log,
                                 stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss / 2**20  # KiB


def common_flags(args):
    return ["--width", str(args.width), "--num_iter", str(args.num_iter), "--show_every", str(max(1, args.num_iter // 4)),
            "--device", "cpu", "--threads", "1", "--no_progress", "--overwrite"]


def measure_padding(args):
    """The masked loss (the run as it is) against a reflected border, on each tuning image cut to 100x90."""
    rows, folder = [], os.path.join(args.out_dir, "padding")
    os.makedirs(folder, exist_ok=True)
    for name in args.images:
        observation = prepare_observation(RecoveryConfig(image=name, resize=100, nlevel=0.5))
        noisy, clean = observation.noisy[:, :90, :100], observation.clean[:, :90, :100]
        save_png(os.path.join(folder, f"{name}_clean.png"), clean)
        clean = load_image(os.path.join(folder, f"{name}_clean.png"))[0]  # as written: 8-bit
        rows_, columns = image_window(90, 100)
        canvas = network_sides(90, 100)
        reflected = np.pad(noisy, ((0, 0), (rows_.start, canvas[0] - rows_.stop), (columns.start, canvas[1] - columns.stop)),
                           mode="reflect")
        for key, variant, observed, window in (("masked", "image's pixels", noisy, (slice(None), slice(None))),
                                               ("reflected", "reflected border", reflected, (rows_, columns))):
            ckpt = f"{name}_{key}"
            path = os.path.join(folder, f"{ckpt}_observed.png")
            save_png(path, observed)
            status, seconds, peak = run_denoising(["--noisy", path, "--ckpt", ckpt, "--out_dir", folder,
                                                   *common_flags(args)], os.path.join(folder, f"{ckpt}.log"))
            state = RunState.load(RunFiles(folder, ckpt).checkpoint)
            rows.append({"image": name, "loss on": variant, "status": status,
                         "psnr_last": psnr(clean, state.last[:, window[0], window[1]]),
                         "psnr_final": psnr(clean, state.final[:, window[0], window[1]]), "seconds": seconds,
                         "peak_gib": peak})
            print(rows[-1], flush=True)
    return rows


def measure_tiles(args):
    """Each image whole, then in each ``--tiles`` (N:overlap) setting."""
    rows, folder = [], os.path.join(args.out_dir, "tiles")
    for name in args.images:
        base = ["--image", name, "--resize", str(args.resize), "--out_dir", folder, *common_flags(args)]
        for setting in [None] + args.tiles:
            ckpt = name if setting is None else f"{name}_tile{setting.replace(':', '_')}"
            extra = [] if setting is None else ["--tile", setting.split(":")[0], "--tile_overlap", setting.split(":")[1]]
            os.makedirs(folder, exist_ok=True)
            status, seconds, peak = run_denoising([*base, "--ckpt", ckpt, *extra], os.path.join(folder, f"{ckpt}.log"))
            if setting is None:
                last_row = RunState.load(RunFiles(folder, ckpt).checkpoint).history[-1]
                tiles, psnr_last, psnr_final = 1, last_row["psnr"], last_row[f"psnr_{FINAL}"]
            else:
                with open(os.path.join(folder, f"{ckpt}_tiles.csv"), newline="") as f:
                    summary = list(csv.DictReader(f))
                tiles, whole = len(summary) - 1, summary[-1]
                psnr_last, psnr_final = float(whole["psnr_last"]), float(whole["psnr_final"])
            rows.append({"image": name, "tile:overlap": setting or "whole", "tiles": tiles, "status": status,
                         "psnr_last": psnr_last, "psnr_final": psnr_final, "seconds": seconds, "peak_gib": peak})
            print(rows[-1], flush=True)
    return rows


def measure_large(args):
    """The whole run refused by the memory check, then the same in tiles. The image is resized once,
    into a PNG file of its own: resizing 512 px to 5,120 takes 45 s here, which every tile's run
    would otherwise spend again."""
    rows, folder = [], os.path.join(args.out_dir, "large")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{args.images[0]}_{args.resize}.png")
    if not os.path.exists(path):
        image, _, _, _ = load_image(args.images[0])
        save_png(path, resize_shorter_side(image, args.resize))
    base = ["--image", path, "--out_dir", folder, *common_flags(args)]
    for setting in [None] + args.tiles:
        ckpt = "whole" if setting is None else f"tile{setting.replace(':', '_')}"
        extra = [] if setting is None else ["--tile", setting.split(":")[0], "--tile_overlap", setting.split(":")[1]]
        log = os.path.join(folder, f"{ckpt}.log")
        status, seconds, peak = run_denoising([*base, "--ckpt", ckpt, *extra], log)
        with open(log) as f:
            said = f.read().strip().splitlines()[-1]
        rows.append({"size": f"{args.resize}x{args.resize}", "tile:overlap": setting or "whole", "status": status,
                     "seconds": seconds, "peak_gib": peak, "said": said})
        print(rows[-1], flush=True)
    return rows


MODES = {"padding": measure_padding, "tiles": measure_tiles, "large": measure_large}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=MODES)
    p.add_argument("--images", nargs="+", default=None, help=f"scikit-image tuning samples (default: {TUNING_IMAGES} "
                   "for padding, astronaut and coffee for tiles, astronaut for large)")
    p.add_argument("--resize", type=int, default=256, help="shorter side of the image (tiles, large)")
    p.add_argument("--tiles", nargs="+", default=["128:32"], help="tile settings N:OVERLAP (tiles, large)")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--num_iter", type=int, default=1000)
    p.add_argument("--out_dir", default="tiling")
    args = p.parse_args(argv)
    args.images = args.images or {"padding": list(TUNING_IMAGES), "tiles": ["astronaut", "coffee"],
                                  "large": ["astronaut"]}[args.mode]
    rows = MODES[args.mode](args)
    settings = {key: value for key, value in vars(args).items()}
    write_json(os.path.join(args.out_dir, f"{args.mode}.json"), {"device": DEVICE, "settings": settings, "rows": rows})
    fields = list(rows[0])
    cells = [[f"{row[field]:.2f}" if isinstance(row[field], float) else row[field] for field in fields] for row in rows]
    with open(os.path.join(args.out_dir, f"{args.mode}.md"), "w") as f:
        f.write("\n".join([f"{DEVICE}; {json.dumps(settings)}", ""] + markdown_table(fields, cells)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
