"""A whole folder of images in one command: ``denoising.py --image DIR`` or ``--noisy DIR``.

Every image file of the folder (``folder_files`` says which files are, and the run each becomes:
``photo.png`` is the run ``photo``, ``<out_dir>/photo_*``) is a run of its own, with the command's
other settings, checked once before any file is read. The runs go through reproduce.py's sweep:
complete runs are skipped, interrupted ones resumed, a complete one missing an image file made to
write it again; one after another on one device, one local job per GPU where the device means
several, or one Slurm job array (``--launcher slurm``). A run records what its file was
(``<run>_input.json``): a file changed since is refused, its run kept. A file that cannot be read,
is refused or whose run fails is one line on stderr with its reason, and the other files go on. At
the end ``<out_dir>/summary.csv`` and ``summary.md`` give a row per file: size, iterations, PSNR
where a clean image exists, the fraction of elements taken for impulses, time and outputs.
The folder of images is never written: ``--out_dir`` must lie apart from it.
"""

import dataclasses
import os
import sys

from recovery import prepare_observation
from recovery.devices import resolve_device
from recovery.evaluation import FINAL
from recovery.run import check_run, describe_shape
from utils.atomic_files import atomic_path, check_writable_folder, make_folder, printable_path, write_csv
from utils.errors import INTERRUPTED, InputError, RunFailure, one_line

from . import sweep, table
from .folder_files import check_apart, describe_record, input_record, list_folder, read_record, run_names, write_record
from .local_jobs import execute_locally
from .slurm_launch import run_on_slurm

SUMMARY_FIELDS = ("file", "run", "status", "size", "iterations", "psnr_last", "psnr_final", "impulses_found",
                  "seconds", "outputs")
SUMMARY = "summary"
UNREADABLE = "unreadable"
CHANGED = "changed"


def check_folder_settings(spec, field, launch):
    """InputError for the first bad setting of the folder's runs (``spec``, whose ``config.<field>``
    is the folder), checked once, before any file is read or anything written."""
    spec.validate()
    if launch.launcher != "slurm":  # a Slurm task's device is its node's, checked there
        resolve_device(spec.device)
    check_writable_folder(spec.out_dir, "`out_dir`")
    check_apart(spec.out_dir, getattr(spec.config, field))


def folder_runs(spec, field, paths):
    """``[(file, RunSpec)]``: ``spec`` (a RunSpec whose ``config.<field>`` is a folder) for each
    file of ``paths``, named by ``folder_files.run_names``."""
    return [(path, dataclasses.replace(spec, ckpt=name, config=dataclasses.replace(spec.config, **{field: path})))
            for path, name in zip(paths, run_names(paths))]


def split_readable(pairs, launch, check_memory=True):
    """``(readable, unreadable)``: ``[(file, run, shape)]`` of the pairs whose file makes an
    observation (of that ``C x H x W`` shape) and whose run fits in memory (unless not
    ``check_memory``; on Slurm the task checks on its node), and ``{file: why}`` for the others (a
    damaged file, an image too small...), read here so that no run starts on one."""
    readable, unreadable = [], {}
    for path, spec in pairs:
        try:
            if launch.launcher == "slurm":
                observation = prepare_observation(spec.config)
            else:
                observation = check_run(spec, resume=False, overwrite=True, check_memory=check_memory).observation
        except (InputError, RunFailure) as exc:  # RunFailure: resizing it ran out of memory
            unreadable[path] = f"{UNREADABLE}: {exc.for_command_line()}"
        else:
            readable.append((path, spec, tuple(observation.noisy.shape)))
    return readable, unreadable


def _describe_shape(shape):
    return "an image of unknown size" if shape is None else f"a {describe_shape(shape)} image"


def follow_inputs(readable):
    """``(current, changed, records)``: the ``(file, run)`` whose run (if any) was made from the
    file as it is now, ``{file: why}`` for those changed since (their runs kept, never written
    over), and the ``(run, file, record)`` to write. A run made without a record (by an earlier
    version, or a one-image command) is taken for the file's when its image has the file's shape.
    InputError for a run made with other settings (the folder's way forward: another ``out_dir``)."""
    current, changed, records = [], {}, []
    for path, spec, shape in readable:
        saved = sweep.saved_state(spec)
        try:
            now = input_record(path)
        except OSError as exc:
            changed[path] = f"{UNREADABLE}: cannot read it ({exc.strerror})"
            continue
        recorded = None if saved is None else read_record(spec)
        made = None if saved is None or not saved.problem else tuple(saved.problem["y"].shape[1:])
        if saved is None or (recorded is None and made == shape):
            records.append((spec, path, now))
        elif recorded != now:
            was, is_now = ((describe_record(recorded), describe_record(now)) if recorded else
                           (_describe_shape(made), _describe_shape(shape)))
            where = printable_path(os.path.join(spec.out_dir, spec.ckpt))
            changed[path] = InputError(
                f"{CHANGED} since its run was made (from {was}; now {is_now}): "
                f"its run is kept; move or delete {where}_* to make it again, or give another `out_dir`"
            ).for_command_line()
            continue
        current.append((path, spec))
    return current, changed, records


def summary_row(path, spec, failures):
    """The summary's row of one file's run, from its checkpoint."""
    row = {"file": printable_path(os.path.basename(path)), "run": printable_path(spec.ckpt),
           "outputs": printable_path(os.path.join(spec.out_dir, spec.ckpt)) + "_*"}
    if spec.ckpt in failures:
        return {**row, "status": str(failures[spec.ckpt])}  # "failed: why", as the sweep says it
    state = sweep.load_state(spec)
    if state is None:
        return {**row, "status": sweep.run_state(spec)[0].value}
    last_row = state.history[-1]
    height, width = state.last.shape[1:]
    return {**row, "status": "complete" if state.reached(spec.config.num_iter) else "partial",
            "size": f"{width}x{height}", "iterations": state.iteration,  # width x height, as the run's log
            "psnr_last": last_row.get("psnr"), "psnr_final": last_row.get(f"psnr_{FINAL}"),
            "impulses_found": last_row.get("impulses_found"), "seconds": state.seconds}


def _markdown_cell(value, form):
    """A table cell: one line, its ``|`` escaped (a file's name may hold either)."""
    return "" if value is None else one_line(format(value, form)).replace("|", "\\|")


def write_table(stem, fields, rows, title="Summary"):
    """``<stem>.csv`` (every field of ``rows``, dicts) and ``<stem>.md`` (a table under ``title``),
    PSNR, fractions and seconds rounded in the latter."""
    write_csv(stem + ".csv", fields, rows)
    formats = {"psnr_last": ".2f", "psnr_final": ".2f", "impulses_found": ".1%", "seconds": ",.1f"}
    lines = [[_markdown_cell(row.get(field), formats.get(field, "")) for field in fields] for row in rows]
    with atomic_path(stem + ".md") as tmp, open(tmp, "w") as f:
        f.write("\n".join([f"# {title}", ""] + table.markdown_table(fields, lines)) + "\n")


def write_summary(out_dir, rows):
    """``<out_dir>/summary.csv`` (every field) and ``summary.md`` (a table); returns the stem."""
    stem = os.path.join(out_dir, SUMMARY)
    write_table(stem, SUMMARY_FIELDS, rows)
    return stem


def say_on_stderr(line):
    sys.stderr.write(one_line(line) + "\n")


def recover_folder(spec, field, launch, progress=True, log=print, warn=say_on_stderr, check_memory=True):
    """Recover every image file of the folder ``spec.config.<field>``; returns an exit status: 0
    when every file's run is complete (or, on Slurm, submitted or under way), 1 when a file could
    not be read, was refused or its run failed (each one ``warn`` line: ``file: why``),
    ``utils.errors.INTERRUPTED`` when stopped (the same command resumes).

    :param RunSpec spec: the settings every run shares; its ``ckpt`` is replaced by each file's name.
    :param launch: a ``LaunchSettings``.
    :param check_memory: False starts runs (in this process) that the memory check would refuse.
    :raises InputError: a bad setting, an ``out_dir`` not apart from the folder, a run of the same
        name made with other settings; nothing was written then.
    """
    check_folder_settings(spec, field, launch)
    listing = list_folder(getattr(spec.config, field))
    for path in listing.hidden:
        log(f"{printable_path(path)}: left out, hidden (its name starts with a dot)")
    readable, problems = split_readable(folder_runs(spec, field, listing.images), launch, check_memory)
    current, changed, records = follow_inputs(readable)
    problems.update(listing.not_files)
    problems.update(changed)
    make_folder(spec.out_dir)
    for file_spec, path, record in records:
        write_record(file_spec, path, record)
    file_specs = [file_spec for _, file_spec in current]  # spec's, one per file
    failures = {}
    if file_specs and launch.launcher == "slurm":
        if not run_on_slurm(file_specs, launch, spec.out_dir, log=log):
            _warn_each(problems, {}, current, warn)
            return 1 if problems else 0  # the summary waits for the runs: the same command writes it
    elif file_specs:
        outcome = execute_locally(file_specs, spec.device, progress, log, check_memory)
        if outcome.interrupted:
            log("interrupted: the runs' checkpoints are saved; the same command resumes them")
            return INTERRUPTED
        failures = outcome.failures
    rows = [summary_row(path, file_spec, failures) for path, file_spec in current]
    rows += [{"file": printable_path(os.path.basename(path)), "status": why} for path, why in problems.items()]
    rows.sort(key=lambda row: row["file"])
    stem = write_summary(spec.out_dir, rows)
    recovered = sum(row["status"] == "complete" for row in rows)
    log(f"{recovered} of {len(rows)} files recovered into {printable_path(spec.out_dir)}/; summary: "
        f"{printable_path(stem)}.md, {printable_path(stem)}.csv")
    _warn_each(problems, failures, current, warn)
    return 1 if problems or failures else 0


def _warn_each(problems, failures, current, warn):
    """One ``warn`` line per file that is not recovered: ``file: why``."""
    for path, spec in current:
        if spec.ckpt in failures:
            problems = {**problems, path: str(failures[spec.ckpt])}
    for path in sorted(problems):
        warn(f"{printable_path(path)}: {problems[path]}")
