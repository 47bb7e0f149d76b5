"""The results table: PSNR and SSIM of every method on every (image, noise level) cell.

Every number comes from something that actually ran: the classical filters are applied here (and
their results kept in ``<runs_dir>/<cell>_classical.json`` so they are not recomputed), the learned
methods are read from their runs' checkpoints. A run not made yet is a row that says "not run".
All methods of a cell see the very same corrupted image (the cell's seed).
"""

import json
import os
import time

from recovery.evaluation import FINAL_LABEL
from recovery.refinement import REFINED_LABEL
from utils.atomic_files import atomic_path, write_csv, write_json
from utils.baselines import (BM3D_SIGMA_PER_DENSITY, TV_L1_WEIGHT, adaptive_median_filter, adaptive_median_then_bm3d,
                             median_filter, tv_l1_restoration)
from utils.metrics import psnr, ssim
from utils.road import ROAD_BM3D_SIGMA_PER_DENSITY, ROAD_THRESHOLD, road_fill, road_fill_then_bm3d

from .plan import METHOD_NAMES
from .sweep import describe_progress

CLASSICAL_FILTERS = (
    ("noisy input", lambda noisy: noisy),
    ("median 3x3", lambda noisy: median_filter(noisy, 3)),
    ("median 5x5", lambda noisy: median_filter(noisy, 5)),
    ("median 7x7", lambda noisy: median_filter(noisy, 7)),
    ("adaptive median (max 19x19)", lambda noisy: adaptive_median_filter(noisy, 19)),
    # The tuned constants are in the names, so that a cached cell made with other constants is not reused.
    (f"TV-L1 (lambda {TV_L1_WEIGHT:g})", tv_l1_restoration),
    (f"adaptive median + BM3D (sigma {BM3D_SIGMA_PER_DENSITY * 255:g}/255 x density)",
     lambda noisy: adaptive_median_then_bm3d(noisy, max_window=19)),
)
# Made for impulses of any value (docs/impulse_noise.md): in the table of every other noise than the
# paper's salt-and-pepper, whose table is left as it was.
RANDOM_VALUED_FILTERS = (
    (f"ROAD + inpainting (threshold {ROAD_THRESHOLD:g})", road_fill),
    (f"ROAD + inpainting + BM3D (sigma {ROAD_BM3D_SIGMA_PER_DENSITY * 255:g}/255 x detected)", road_fill_then_bm3d),
)
METHOD_ORDER = ("dip", "dip-l1", "ours")
LAST, PEAK = "last", "oracle peak"
FIELDS = ("image", "nlevel", "method", "width", "iterate", "at_iteration", "psnr", "ssim", "iterations",
          "num_iter", "device", "seconds", "status")
NOT_RUN = "not run"
FORMATS = (".md", ".csv")
DIGITS = {"psnr": 4, "ssim": 5, "seconds": 4}  # decimals kept in the CSV


def classical_filters(noise):
    """``(name, function)`` of every classical filter in the table of the impulse model ``noise``."""
    return CLASSICAL_FILTERS if noise == "salt_pepper" else CLASSICAL_FILTERS + RANDOM_VALUED_FILTERS


def classical_rows(image, nlevel, observation, settings, path, device_name):
    """One row per classical filter on the cell's observation, computed once and then cached in
    the JSON file ``path``.

    :param observation: the cell's ``recovery.Observation`` (``3 x H x W`` clean and noisy).
    :param settings: what made the observation (``seed``, ``resize``, ``data_dir``, ``noise``).
    :param str device_name: how to describe where the filters run (they run on the CPU).
    """
    filters = classical_filters(settings.noise)
    # The filters' names are part of the key: a file cached before a filter was added (or renamed)
    # lacks its row, so the cell is computed again.
    key = {"image": image, "nlevel": nlevel, "seed": settings.seed, "resize": settings.resize,
           "data_dir": os.path.realpath(settings.data_dir), "filters": [method for method, _ in filters]}
    if settings.noise != "salt_pepper":  # a cache of the paper's noise stays valid
        key["noise"] = settings.noise
    if os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached["key"] == key:
            return cached["rows"]
    rows = []
    for method, apply in filters:
        start = time.perf_counter()
        estimate = apply(observation.noisy)
        seconds = time.perf_counter() - start
        row = {"image": image, "nlevel": nlevel, "method": method, "psnr": psnr(observation.clean, estimate),
               "ssim": ssim(observation.clean, estimate), "status": "done"}
        if estimate is not observation.noisy:  # the noisy input itself took no computing
            row.update(device=device_name, seconds=seconds)
        rows.append(row)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json(path, {"key": key, "rows": rows})
    return rows


def run_rows(spec, state, clean):
    """The rows of one learned run: its last iterate, its final answer (``FINAL_LABEL``, at the
    same iteration; left out for a run that has none), for ours its refined answer
    (``REFINED_LABEL``; left out for a run made without one) and, for DIP and DIP-L1 (which need early
    stopping), also its PSNR-best logged iterate, an oracle since it is chosen with ``clean``."""
    config = spec.config
    iterates = [PEAK, LAST, FINAL_LABEL] if config.method != "ours" else [LAST, FINAL_LABEL, REFINED_LABEL]
    common = {"image": config.image, "nlevel": config.nlevel, "method": METHOD_NAMES[config.method],
              "width": config.width, "num_iter": config.num_iter}
    if state is None:
        return [{**common, "iterate": iterate, "status": NOT_RUN} for iterate in iterates]
    common.update(iterations=state.iteration, device=", ".join(state.devices), seconds=state.seconds,
                  status="done" if state.reached(config.num_iter) else "partial")
    logged = [row for row in state.history if row["psnr"] is not None]
    images = {PEAK: state.best, LAST: state.last, FINAL_LABEL: state.final, REFINED_LABEL: state.refined}
    rows = []
    for iterate in (iterate for iterate in iterates if images[iterate] is not None):
        image = images[iterate]
        at = int(max(logged, key=lambda row: row["psnr"])["iteration"]) if iterate == PEAK else state.last_iteration
        rows.append({**common, "iterate": iterate, "at_iteration": at,
                     "psnr": psnr(clean, image), "ssim": ssim(clean, image)})
    return rows


def cell_rows(image, nlevel, classical, specs, states, clean, main_width):
    """All rows of one cell: classical filters, then the runs at ``main_width`` (DIP, DIP-L1,
    ours), then runs at other widths (the teaser's)."""
    order = sorted(range(len(specs)), key=lambda i: (specs[i].config.width != main_width,
                                                     -specs[i].config.width,
                                                     METHOD_ORDER.index(specs[i].config.method)))
    rows = [dict(row) for row in classical]
    for i in order:
        rows += run_rows(specs[i], states[i], clean)
    return rows


def summary_column(row):
    """The column of a row in the PSNR summary: the method, and for learned ones the iterate."""
    return row["method"] if not row.get("iterate") else f"{row['method']}, {row['iterate']}"


def _format(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


def _format_seconds(seconds):
    if seconds is None:
        return ""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:,.1f} s"


def markdown_table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]
    return out


def results_markdown(rows, main_width, description):
    """The table as Markdown: a PSNR summary at ``main_width``, then every number."""
    summary_rows = [row for row in rows if row.get("width") in (None, main_width)]
    columns = list(dict.fromkeys(summary_column(row) for row in summary_rows))
    cells = list(dict.fromkeys((row["image"], row["nlevel"]) for row in rows))
    summary = []
    for image, nlevel in cells:
        by_column = {summary_column(row): row for row in summary_rows if (row["image"], row["nlevel"]) == (image, nlevel)}
        summary.append([image, f"{nlevel:.0%}"] + [_summary_cell(by_column.get(column)) for column in columns])
    every = []
    for row in rows:
        iterate = row.get("iterate") or ""
        if row.get("at_iteration") is not None:
            iterate += f" (it. {row['at_iteration']:,})"
        iterations = "" if row.get("iterations") is None else describe_progress(row["iterations"], row["num_iter"])
        if row["status"] == NOT_RUN:
            iterations = NOT_RUN
        every.append([row["image"], f"{row['nlevel']:.0%}", row["method"], row.get("width") or "", iterate,
                      _format(row.get("psnr"), 2), _format(row.get("ssim"), 4), iterations, row.get("device", ""),
                      _format_seconds(row.get("seconds"))])
    lines = ["# Results", "", *description, "",
             f"## PSNR (dB), learned methods at width {main_width}", ""]
    lines += markdown_table(["image", "noise"] + columns, summary)
    lines += ["", "## Every number", ""]
    lines += markdown_table(["image", "noise", "method", "width", "iterate", "PSNR (dB)", "SSIM",
                              "iterations", "device", "wall time"], every)
    return "\n".join(lines) + "\n"


def _summary_cell(row):
    if row is None:
        return ""
    if row["status"] == NOT_RUN:
        return NOT_RUN
    text = f"{row['psnr']:.2f}"
    return text if row["status"] == "done" else f"{text} (partial)"


def write_results(stem, rows, main_width, description):
    """Write ``<stem>.md`` and ``<stem>.csv`` (one row per method and cell, empty where not run)."""
    with atomic_path(stem + FORMATS[0]) as tmp, open(tmp, "w") as f:
        f.write(results_markdown(rows, main_width, description))
    rounded = [{key: round(value, DIGITS[key]) if key in DIGITS and value is not None else value
                for key, value in row.items()} for row in rows]
    write_csv(stem + FORMATS[1], FIELDS, rounded)
