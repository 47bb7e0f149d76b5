"""A whole folder of images in one command: ``denoising.py --image DIR`` or ``--noisy DIR``.

Every image file of the folder (by its extension, as ``utils.image_io.IMAGE_EXTENSIONS``) is a run
of its own, named after its file (``photo.png`` is the run ``photo``: ``<out_dir>/photo_*``), with
the command's other settings. The runs go through reproduce.py's sweep: complete runs are skipped,
interrupted ones resumed; one after another on one device, one local job per GPU where the device
means several, or one Slurm job array (``--launcher slurm``). A file that cannot be read is reported
with its reason, and the other files go on. At the end ``<out_dir>/summary.csv`` and
``summary.md`` give a row per file: size, iterations, PSNR where a clean image exists, the fraction
of elements taken for impulses, time and outputs.
"""

import dataclasses
import os

from recovery import prepare_observation
from recovery.evaluation import FINAL
from utils.atomic_files import atomic_path, printable_path, write_csv
from utils.errors import INTERRUPTED, InputError
from utils.image_io import IMAGE_EXTENSIONS

from . import sweep, table
from .local_jobs import execute_locally
from .slurm_launch import run_on_slurm

SUMMARY_FIELDS = ("file", "run", "status", "size", "iterations", "psnr_last", "psnr_final", "impulses_found",
                  "seconds", "outputs")
SUMMARY = "summary"
UNREADABLE = "unreadable"


def folder_field(config):
    """``"image"`` or ``"noisy"``: which of the config's images names a folder; None for neither."""
    for field in ("noisy", "image"):
        path = getattr(config, field)
        if path is not None and os.path.isdir(path):
            return field
    return None


def image_files(directory):
    """The image files of ``directory`` (not its subfolders), sorted by name."""
    names = sorted(name for name in os.listdir(directory)
                   if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, name)))
    if not names:
        raise InputError(f"no image file in {printable_path(directory)}/ (extensions {', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(directory, name) for name in names]


def run_names(paths):
    """The run of each file: its name without extension, or with it (``photo_jpg``) where two files
    share a name.

    >>> run_names(["photos/cat.png", "photos/dog.png", "photos/dog.jpg"])
    ['cat', 'dog_png', 'dog_jpg']
    """
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    return [stem if stems.count(stem) == 1 else os.path.basename(path).replace(".", "_")
            for stem, path in zip(stems, paths)]


def folder_runs(spec, field):
    """``[(file, RunSpec)]``: ``spec`` (a RunSpec whose ``config.<field>`` is a folder) for each
    image file of the folder."""
    paths = image_files(getattr(spec.config, field))
    return [(path, dataclasses.replace(spec, ckpt=name, config=dataclasses.replace(spec.config, **{field: path})))
            for path, name in zip(paths, run_names(paths))]


def split_readable(pairs):
    """``(readable, unreadable)``: the pairs whose file makes an observation, and ``{file: why}``
    for the others (a damaged file, an image too small...), read here so that no run starts on one."""
    readable, unreadable = [], {}
    for path, run in pairs:
        try:
            run.validate()
            prepare_observation(run.config)
        except InputError as exc:
            unreadable[path] = str(exc)
        else:
            readable.append((path, run))
    return readable, unreadable


def summary_row(path, run, failures):
    """The summary's row of one file's run, from its checkpoint."""
    row = {"file": os.path.basename(path), "run": run.ckpt, "outputs": os.path.join(run.out_dir, run.ckpt) + "_*"}
    if run.ckpt in failures:
        return {**row, "status": failures[run.ckpt]}  # "failed: why", as the sweep says it
    result = sweep.load_result(run)
    if result is None:
        return {**row, "status": sweep.run_state(run)[0].value}
    last_row = result.history[-1]
    return {**row, "status": "complete" if result.reached(run.config.num_iter) else "partial",
            "size": "x".join(map(str, result.last.shape[1:])), "iterations": result.iteration,
            "psnr_last": last_row.get("psnr"), "psnr_final": last_row.get(f"psnr_{FINAL}"),
            "impulses_found": last_row.get("impulses_found"), "seconds": result.seconds}


def write_summary(out_dir, rows):
    """``<out_dir>/summary.csv`` (every field) and ``summary.md`` (a table); returns the stem."""
    stem = os.path.join(out_dir, SUMMARY)
    write_csv(stem + ".csv", SUMMARY_FIELDS, rows)
    formats = {"psnr_last": ".2f", "psnr_final": ".2f", "impulses_found": ".1%", "seconds": ",.1f"}
    lines = [[("" if row.get(field) is None else format(row[field], formats.get(field, "")))
              for field in SUMMARY_FIELDS] for row in rows]
    with atomic_path(stem + ".md") as tmp, open(tmp, "w") as f:
        f.write("\n".join(["# Summary", ""] + table.markdown_table(SUMMARY_FIELDS, lines)) + "\n")
    return stem


def recover_folder(spec, field, launch, progress=True, log=print):
    """Recover every image file of the folder ``spec.config.<field>``; returns an exit status: 0
    when every file's run is complete (or, on Slurm, submitted or under way), 1 when a file could
    not be read or a run failed, ``utils.errors.INTERRUPTED`` when stopped (the same command resumes).

    :param RunSpec spec: the settings every run shares; its ``ckpt`` is replaced by each file's name.
    :param launch: a ``LaunchSettings``.
    """
    readable, unreadable = split_readable(folder_runs(spec, field))
    for path, why in unreadable.items():
        log(f"{printable_path(path)}: skipped, {why}")
    runs = [run for _, run in readable]
    failures = {}
    if runs and launch.launcher == "slurm":
        complete = run_on_slurm(runs, launch, spec.out_dir, log=log)
        if not complete:
            return 1 if unreadable else 0  # the summary waits for the runs: the same command writes it
    elif runs:
        outcome = execute_locally(runs, spec.device, progress, log)
        if outcome.interrupted:
            log("interrupted: the runs' checkpoints are saved; the same command resumes them")
            return INTERRUPTED
        # The sweep reports a failure as "<ckpt>: failed: why"; a file's name may hold ": " itself.
        failures = {run.ckpt: failure[len(run.ckpt) + 2:] for run in runs for failure in outcome.failures
                    if failure.startswith(f"{run.ckpt}: ")}
    rows = [summary_row(path, run, failures) for path, run in readable]
    rows += [{"file": os.path.basename(path), "status": f"{UNREADABLE}: {why}"} for path, why in unreadable.items()]
    stem = write_summary(spec.out_dir, rows)
    log(f"{len(runs)} of {len(rows)} files recovered into {printable_path(spec.out_dir)}/; summary: {stem}.md, "
        f"{stem}.csv")
    return 1 if unreadable or failures else 0

