"""From a request (which figures, at which settings) to runs, figures and the results table."""

import os

import torch

from recovery import describe_device, prepare_observation, resolve_device
from recovery.devices import check_options
from utils.atomic_files import check_writable_folder
from utils.corruption import NOISE_NAMES
from utils.errors import INTERRUPTED, InputError
from utils.image_io import resolve_image
from utils.optional import import_optional

from . import figures, plan, sweep, table
from .launch_settings import LaunchSettings
from .local_jobs import execute_locally, local_job_devices
from .slurm_launch import run_on_slurm
from .slurm_status import SlurmSweep
from .states import State


def output_stems(targets, out_dir):
    """``{target: path without extension}`` of every figure and table the targets produce."""
    names = {"3": "figure3", "4": "figure4", "5": "figure5", "teaser": "teaser"}
    stems = {target: os.path.join(out_dir, names[target]) for target in targets if target in names}
    stems["table"] = os.path.join(out_dir, "results")  # always written: it shows whatever has run
    return stems


def output_files(stems):
    """Every file written for ``stems`` (from :func:`output_stems`)."""
    return [stem + ext for target, stem in stems.items()
            for ext in (table.FORMATS if target == "table" else figures.FORMATS)]


def check_images(settings):
    """InputError naming the first of the paper's images that is not found, as loading it would
    say (``prepare_observation``); cheap enough for a dry run, which loads none."""
    for image in dict.fromkeys(image for image, _ in plan.table_cells()):
        resolve_image(image, settings.data_dir)


def describe_plan(targets, settings, launch, log=print):
    """Log the runs the targets need, each with its state and an equivalent ``denoising.py``
    command, where they would compute (``launch``, a ``LaunchSettings``), and the files
    that would be written. Writes nothing."""
    specs = plan.runs_for(targets, settings)
    directory = plan.runs_dir(settings)
    log(f"{len(specs)} runs in {directory}/ (device {settings.device}):")
    for spec in specs:
        state, done = sweep.run_state(spec)
        status = state.value
        if state is not State.MISSING:
            status += f", {sweep.describe_progress(done, spec.config.num_iter)} it."
        log(f"  {spec.ckpt:<24} {status:<32} {sweep.denoising_command(spec, state is State.PARTIAL)}")
    if launch.launcher == "slurm":
        gpus = f"{launch.gpus_per_task} GPU" + "s" * (launch.gpus_per_task > 1) if launch.gpus_per_task else "no GPU"
        log(f"the runs not complete would go to one Slurm job array, a task each with {gpus} and "
            f"{launch.task_cpus(settings.options.threads)} CPUs for {launch.time_min} min; its files in "
            f"{SlurmSweep(directory).folder}/")
    elif len(devices := local_job_devices(settings.device)) > 1:
        log(f"runs go to local jobs, one at a time on each GPU: {', '.join(devices)}")
    cells = plan.table_cells()
    log(f"classical filters on {len(cells)} image/noise cells, cached in {directory}/<cell>_classical.json")
    log("would write: " + ", ".join(output_files(output_stems(targets, settings.out_dir))))


def table_description(settings, directory):
    size = ("images at their own size" if settings.resize is None
            else f"images resized so that the shorter side is {settings.resize} px")
    return [
        f"Made by `reproduce.py` from the runs in `{directory}/`: {size}, "
        f"{NOISE_NAMES[settings.noise]} corruption seeded with {settings.seed}, so every method on an image at a "
        f"noise level sees the very same corrupted image.",
        "PSNR in dB (data range 1) and SSIM (scikit-image, 7x7 window, over the colour channels), both against "
        "the clean image.",
        "*last*: the last iterate, what the reference reports. *final*: the run's own answer at the same "
        "iteration, computed without the clean image (docs/evaluation.md). *oracle peak*: the logged iterate with "
        "the highest PSNR; choosing it needs the clean image, so it bounds what early stopping could do and is not "
        "a usable method.",
        "Wall time: the optimisation loop (learned methods) or the filter itself (classical ones), on the device "
        "named. *not run*: no run yet (`reproduce.py --figure table` makes the missing ones, `--figure teaser` "
        "those of the teaser's widths). A blank summary cell: no "
        "such run is planned (the learned methods run on the cells of Figures 3 and 4 only).",
    ]


def draw_outputs(targets, settings, observations, log=print):
    """Draw the targets' figures and write the results table from whatever runs exist."""
    directory = plan.runs_dir(settings)
    all_specs = plan.runs_for(plan.TARGETS, settings)
    states = {spec.ckpt: sweep.load_state(spec) for spec in all_specs}
    stems = output_stems(targets, settings.out_dir)
    os.makedirs(settings.out_dir, exist_ok=True)

    def states_of(specs):
        return [states[spec.ckpt] for spec in specs]

    def observations_of(specs):
        return [observations[(spec.config.image, spec.config.nlevel)] for spec in specs]

    figure3_specs, figure4_specs = plan.figure3_runs(settings), plan.figure4_runs(settings)
    for target, specs in (("3", figure3_specs), ("4", figure4_specs)):
        if target in stems:
            figures.draw_recovery_grid(stems[target], specs, states_of(specs), observations_of(specs))
    if "5" in stems:
        figures.draw_figure5(stems["5"], figure3_specs, states_of(figure3_specs), figure4_specs,
                             states_of(figure4_specs))
    if "teaser" in stems:
        teaser_specs = plan.teaser_runs(settings)
        figures.draw_teaser(stems["teaser"], teaser_specs, states_of(teaser_specs), figures.at_paper_scale(settings))

    cpu = describe_device(torch.device("cpu"))
    rows = []
    for image, nlevel in plan.table_cells():
        observation = observations[(image, nlevel)]
        cache = os.path.join(directory, f"{plan.cell_name(image, nlevel)}_classical.json")
        classical = table.classical_rows(image, nlevel, observation, settings, cache, cpu)
        cell_specs = [spec for spec in all_specs if (spec.config.image, spec.config.nlevel) == (image, nlevel)]
        rows += table.cell_rows(image, nlevel, classical, cell_specs, states_of(cell_specs), observation.clean,
                                settings.width)
    table.write_results(stems["table"], rows, settings.width, table_description(settings, directory))
    log("wrote " + ", ".join(output_files(stems)))


def reproduce(targets, settings, dry_run=False, start_runs=True, progress=True, log=print, launch=None,
              status_only=False):
    """Make the runs ``targets`` need (reusing and resuming), then draw them; returns an exit status.

    With ``launch.launcher`` slurm the runs not complete are submitted to Slurm instead, and the
    call returns once they are (``slurm_launch.run_on_slurm``); a later call shows where they stand,
    submits those neither complete nor queued nor running again, and draws once all are complete.

    :param targets: names from ``plan.TARGETS``.
    :param bool start_runs: False draws from the runs that exist (even partial ones) and runs none.
    :param launch: a ``LaunchSettings``; None is the local launcher.
    :param bool status_only: with the Slurm launcher, show where the runs stand and do nothing else.
    :raises InputError: bad settings, device or a missing image, before anything runs.
    """
    launch = LaunchSettings() if launch is None else launch
    settings.validate()
    launch.validate(settings)
    on_slurm = launch.launcher == "slurm"
    if status_only and not on_slurm:
        raise InputError("`status` shows the state of Slurm jobs: it needs `launcher` slurm")
    check_writable_folder(settings.out_dir, "`out_dir`")
    specs = plan.runs_for(targets, settings)
    # A Slurm task's device is on its node, not here: checked by its kind alone.
    resolved = torch.device(launch.task_device(settings.device)) if on_slurm else resolve_device(settings.device)
    for spec in specs:
        spec.validate()
        check_options(spec.options, resolved, spec.config)
    if dry_run:
        check_images(settings)  # not listing runs that could not start; a real run loads the images next
        describe_plan(targets, settings, launch, log)
        return 0
    if on_slurm and start_runs:
        check_images(settings)  # here, not in every task
        complete = run_on_slurm(specs, launch, plan.runs_dir(settings), submit_runs=not status_only, log=log)
        if status_only or not complete:
            return 0
    # Every observation first: a missing image stops us before hours of runs, not after.
    observations = {cell: prepare_observation(plan.cell_config(*cell, settings)) for cell in plan.table_cells()}
    import_optional("bm3d", "reproduce.py's results table (its BM3D baselines)")  # drawn after the runs
    failures = {}
    if start_runs and not on_slurm:
        outcome = execute_locally(specs, settings.device, progress, log)
        if outcome.interrupted:
            log("interrupted: the runs' checkpoints are saved; the same command resumes them")
            return INTERRUPTED
        failures = outcome.failures
    for ckpt, outcome in failures.items():
        log(outcome.line(ckpt))
    draw_outputs(targets, settings, observations, log)
    return 1 if failures else 0
