"""One image recovered in tiles: ``denoising.py --tile N``.

The image's grid (``recovery.tiling``) makes one run per tile, ``<ckpt>_tile_r<i>_c<j>`` in
``<out_dir>/<ckpt>_tiles/``: the command's settings with ``tile_index`` set, so that the tile's
observation is the whole image's corrupted pixels there and its network, z and perturbations come
from a seed of its own (``RecoveryConfig.network_seed``). The tiles are the runs of a sweep like any
other (``sweep``): one after another in this process, one local job per GPU on a machine with
several, or one Slurm job array (``--launcher slurm``); a complete tile is reused and an
interrupted one resumed (``--resume``). Once every tile is complete, their last, final and refined
images, their impulses s and where they found impulses are blended (``tiling.Blend``) into the run's usual files at the image's own
size, ``<out_dir>/<ckpt>_last.png`` and the others, and ``<out_dir>/<ckpt>_tiles.csv`` and ``.md``
give each tile's figures and the whole image's.
"""

import dataclasses
import os

import numpy as np
import torch

from models import SparseCorruption
from recovery import Observation, RunFiles, RunSpec, RunState, prepare_observation, resolve_device
from recovery.evaluation import FINAL
from recovery.outputs import write_final_images, write_observation, write_settings
from recovery.run import check_run
from recovery.tiling import Blend, tile_grid
from utils.atomic_files import check_writable_folder, make_folder, printable_path
from utils.errors import INTERRUPTED, InputError
from utils.image_io import load_image
from utils.metrics import psnr

from . import sweep
from .folder import say_on_stderr, write_table
from .local_jobs import execute_locally
from .slurm_launch import run_on_slurm
from .slurm_status import SlurmSweep

TILES_FIELDS = ("tile", "region", "status", "iterations", "psnr_last", "psnr_final", "impulses_found", "seconds")
WHOLE = "whole"  # the summary's row of the blended image


def tiles_folder(spec):
    """Where the tiles' runs of the tiled run ``spec`` are: ``<out_dir>/<ckpt>_tiles``."""
    return os.path.join(spec.out_dir, f"{spec.ckpt}_tiles")


def summary_stem(spec):
    """``<out_dir>/<ckpt>_tiles``: the stem of the summary's ``.csv`` and ``.md``."""
    return tiles_folder(spec)


def tile_specs(spec, grid):
    """The RunSpec of each tile of ``grid`` (``tiling.Tile``, row by row) of the tiled run ``spec``."""
    return [dataclasses.replace(spec, ckpt=f"{spec.ckpt}_{tile.name}", out_dir=tiles_folder(spec),
                                config=dataclasses.replace(spec.config, tile_index=tile.index)) for tile in grid]


@dataclasses.dataclass
class TiledRun:
    """What checking a tiled run found: its spec (paths absolute), the whole image's observation
    (``C x H x W``, for the blend and its PSNR), the grid and the tiles' RunSpecs."""

    spec: RunSpec
    observation: Observation
    grid: list
    specs: list


def check_tiled(spec, launch, resume=False, overwrite=False, check_memory=True):
    """Everything that can be wrong with the tiled run ``spec`` before anything is written: InputError
    naming the first problem (a tile too large for the memory of the device here too, unless not
    ``check_memory`` or on Slurm, whose tasks check on their nodes), else a :class:`TiledRun`."""
    spec = dataclasses.replace(spec, config=spec.config.with_absolute_paths())
    spec.validate()
    if resume and overwrite:
        raise InputError("give `resume` (continue the tiles) or `overwrite` (start them again), not both")
    if launch.launcher != "slurm":  # a Slurm task's device is its node's, checked there
        resolve_device(spec.device)
    check_writable_folder(spec.out_dir, "`out_dir`")
    whole = RunFiles(spec.out_dir, spec.ckpt)
    if os.path.exists(whole.checkpoint):
        raise InputError(f"{printable_path(whole.checkpoint)} is a run of the whole image: give the tiled run "
                         f"another `ckpt`")
    observation = prepare_observation(spec.config)
    grid = tile_grid(*observation.noisy.shape[1:], spec.config.tile, spec.config.tile_overlap)
    specs = tile_specs(spec, grid)
    started = [tile_spec for tile_spec in specs if os.path.exists(RunFiles(tile_spec.out_dir, tile_spec.ckpt).checkpoint)]
    if not overwrite:
        if (started or os.path.exists(SlurmSweep(tiles_folder(spec)).folder)) and not resume:
            raise InputError(f"the tiles of {printable_path(spec.ckpt)} exist in {printable_path(tiles_folder(spec))}: "
                             f"pass `resume` to continue them, `overwrite` to start them again, or another `ckpt`")
        for tile_spec in started:
            sweep.saved_state(tile_spec)  # InputError for tiles made with other settings
    if check_memory and launch.launcher != "slurm":  # every tile has the first one's size
        check_run(specs[0], resume=False, overwrite=True, check_memory=True)
    return TiledRun(spec, observation, grid, specs)


def recover_tiled(spec, launch, resume=False, overwrite=False, progress=True, log=print, warn=say_on_stderr,
                  check_memory=True):
    """Recover the image of ``spec`` (a RunSpec whose ``config.tile`` is set) in tiles and blend them;
    returns an exit status: 0 when the blended image is written (or, on Slurm, the tiles submitted
    or under way), 1 when a tile failed (one ``warn`` line each), ``utils.errors.INTERRUPTED`` when
    stopped (each tile's checkpoint saved: the same command with ``resume`` goes on).

    :param launch: a ``LaunchSettings``: where the tiles compute.
    :param check_memory: False starts tiles (in this process) that the memory check would refuse.
    :raises InputError: a bad setting, tiles made with other settings, tiles that exist without
        ``resume`` or ``overwrite``; nothing was written then.
    """
    tiled = check_tiled(spec, launch, resume, overwrite, check_memory)
    spec, folder = tiled.spec, tiles_folder(tiled.spec)
    if overwrite:
        for path in [RunFiles(tile_spec.out_dir, tile_spec.ckpt) for tile_spec in tiled.specs] + [
                RunFiles(spec.out_dir, spec.ckpt)]:
            path.remove_all()
    make_folder(folder)
    height, width = tiled.observation.noisy.shape[1:]
    rows, columns = tiled.grid[-1].row + 1, tiled.grid[-1].column + 1
    log(f"{width}x{height} image in {len(tiled.grid)} tiles ({rows} x {columns}) of at most {spec.config.tile} px, "
        f"neighbours sharing at least {spec.config.tile_overlap} px; their runs in {printable_path(folder)}/")
    if launch.launcher == "slurm":
        if not run_on_slurm(tiled.specs, launch, folder, log=log):
            log("the same command with --resume blends the tiles once every one is complete")
            return 0
    else:
        outcome = execute_locally(tiled.specs, spec.device, progress, log, check_memory)
        if outcome.interrupted:
            log("interrupted: the tiles' checkpoints are saved; the same command with --resume goes on")
            return INTERRUPTED
        for ckpt, failure in outcome.failures.items():
            warn(failure.line(ckpt))
        if outcome.failures:
            return 1
    blend_tiles(tiled, log)
    return 0


def tile_impulses(state):
    """The impulses s = g*g - h*h of a tile's RunState, ``C x H_t x W_t float32``, or None without them."""
    saved = state.problem["corruption"]
    if saved is None:
        return None
    corruption = SparseCorruption(saved["g"].shape)
    corruption.load_state_dict(saved)
    with torch.no_grad():
        return corruption()[0].numpy()


def tile_found(spec, state):
    """Where a complete tile's run found impulses (its ``_mask.png``, the run's detector at its
    end), ``C x H_t x W_t float32`` of 0 and 1, or None for a tile without a corruption term."""
    if state.problem["corruption"] is None:
        return None
    mask, *_ = load_image(RunFiles(spec.out_dir, spec.ckpt).mask)
    return (mask > 0.5).astype(np.float32)


def blend_tiles(tiled, log=print):
    """Blend the complete tiles of ``tiled`` (a :class:`TiledRun`) into the run's files, at the
    image's size: noisy, clean, last, final, impulses, mask and panel as one run writes them, and
    the summary of each tile and of the whole (``<out_dir>/<ckpt>_tiles.csv`` and ``.md``)."""
    spec, observation, grid = tiled.spec, tiled.observation, tiled.grid
    height, width = observation.noisy.shape[1:]
    blends = {name: Blend(grid, height, width) for name in ("last", "final", "refined", "impulses", "found")}
    rows, iterations, seconds = [], [], 0.0
    for tile, tile_spec in zip(grid, tiled.specs):
        state = sweep.load_state(tile_spec)  # one tile's state at a time: the whole may be large
        images = {"last": state.last, "final": state.final, "refined": state.refined, "impulses": tile_impulses(state),
                  "found": tile_found(tile_spec, state)}
        for name, image in images.items():
            if image is None:
                blends.pop(name, None)
            elif name in blends:
                blends[name].add(tile, image)
        last_row = state.history[-1]
        rows.append({"tile": tile.name, "region": tile.describe(), "status": "complete", "iterations": state.iteration,
                     "psnr_last": last_row.get("psnr"), "psnr_final": last_row.get(f"psnr_{FINAL}"),
                     "impulses_found": last_row.get("impulses_found"), "seconds": state.seconds})
        iterations.append(state.iteration)
        seconds += state.seconds
    blended = {name: blend.result() for name, blend in blends.items()}
    whole = RunState(config=spec.config, iteration=min(iterations), seconds=seconds, last=blended["last"],
                     final=blended.get("final"), refined=blended.get("refined"))
    impulses = blended.get("impulses")
    # An element is found where a tile that weighs in on it found it: where the blended refined
    # answer may differ from the observation.
    found = blended["found"] > 0 if "found" in blended else None
    files = RunFiles(spec.out_dir, spec.ckpt)
    write_settings(files, spec, spec.device)
    write_observation(files, observation)
    write_final_images(files, observation, whole, impulses, found)
    clean = observation.clean
    rows.append({"tile": WHOLE, "region": f"{width}x{height}", "status": "complete", "iterations": whole.iteration,
                 "psnr_last": None if clean is None else psnr(clean, whole.last),
                 "psnr_final": None if clean is None or whole.final is None else psnr(clean, whole.final),
                 "impulses_found": None if found is None else float(np.mean(found)),
                 "seconds": seconds})
    write_table(summary_stem(spec), TILES_FIELDS, rows, title=f"{printable_path(spec.ckpt)}: each tile and the whole")
    line = f"done: {len(grid)} tiles blended into {width}x{height}, {seconds:.1f} s of runs"
    if clean is not None:
        line += (f"; PSNR noisy {observation.noisy_psnr:.2f} dB, recovered (last) {rows[-1]['psnr_last']:.2f} dB"
                 + ("" if rows[-1]["psnr_final"] is None else f", final {rows[-1]['psnr_final']:.2f} dB")
                 + ("" if whole.refined is None else f", refined {psnr(clean, whole.refined):.2f} dB"))
    log(line)
    log(f"summary: {printable_path(summary_stem(spec))}.md, .csv")
