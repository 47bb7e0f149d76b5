"""Recover an image from salt-and-pepper noise by double over-parameterization.

    python denoising.py --gpu 0 --ckpt F16_05_128 --image F16 --nlevel 0.5 --width 128
    python denoising.py --noisy my_images/ --out_dir recovered --num_iter 20000   # every image of a folder

The reference's flags keep their meaning and defaults. This file only turns the command line into
one ``recovery.RunSpec`` and calls ``recovery.run_recovery``; every setting, its default and its
help live in ``recovery/settings.py``. Outputs land in ``--out_dir`` as ``<ckpt>_*``. A folder given as
``--image`` or ``--noisy`` is a run per image file (``reproduction/folder.py``), with reproduce.py's
launcher flags; so is ``--tile N``, one image recovered in tiles (``reproduction/tiles.py``).
"""

import dataclasses
import os
import shlex
import sys

from recovery import RecoveryConfig, RunFiles, RunSpec, RunState, StepOptions, run_recovery
from recovery.devices import check_gpu_flag
from recovery.settings import add_arguments, given_settings
from reproduction.launch_settings import add_launch_arguments, launch_from_args
from utils.errors import (EXPECTED_FAILURES, INTERRUPTED, InputError, OneLineErrorParser, report_failure,
                          signal_exit_status)

PROG = "denoising.py"
# What a failure leaves: one run, or the runs of a folder (which take no --resume).
KEPT = "the last checkpoint written, if any, is intact (--resume)"
FOLDER_KEPT = "every run's last checkpoint written is intact; the same command resumes the runs"


def build_parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(p, RunSpec)
    add_arguments(p, RecoveryConfig)
    add_arguments(p, StepOptions)
    p.add_argument("--gpu", type=str, help="GPU index, set as CUDA_VISIBLE_DEVICES, and a GPU required (default: "
                   "CUDA_VISIBLE_DEVICES as it is; --device auto then takes the first GPU CUDA sees, or the CPU)")
    p.add_argument("--resume", action="store_true", help="continue the run <ckpt> from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start <ckpt> again even if it has a checkpoint")
    p.add_argument("--no_progress", action="store_true", help="no progress bar; log lines only")
    p.add_argument("--no_memory_check", action="store_true", help="start even if the run's estimated peak "
                   "memory exceeds what the device has available")
    launch = p.add_argument_group("a folder of images (--image DIR or --noisy DIR) or the tiles of one (--tile N): "
                                  "where their runs compute")
    add_launch_arguments(launch)
    return p


def spec_from_args(args, whole_run=True):
    """The RunSpec the command line asks for, and for a ``whole_run`` (not a folder's or a tiled
    run's) on --resume the RunState of the run's checkpoint (else None): problem settings not given
    come from it, so ``--ckpt NAME --resume`` is enough."""
    spec = RunSpec(**given_settings(RunSpec, args))
    given = given_settings(RecoveryConfig, args)
    if "noisy" in given and "image" in given:
        raise InputError("give either `image` or `noisy`, not both")
    for added in ("nlevel", "noise"):
        if "noisy" in given and added in given:
            raise InputError(f"`{added}` adds noise, and `noisy` images have theirs already: give one of them")
    state = RunState.load(RunFiles(spec.out_dir, spec.ckpt).checkpoint) if args.resume and whole_run else None
    base = RecoveryConfig() if state is None else state.config
    return RunSpec(spec.ckpt, spec.out_dir, spec.device, config=dataclasses.replace(base, **given),
                   options=StepOptions(**given_settings(StepOptions, args))), state


def resume_command(spec, gpu=None):
    """The command line (a list) that continues the run ``spec`` where it stopped, on the GPU
    ``--gpu`` chose for it (``gpu``, or None): the noise generator's state is the device's."""
    return RunSpec(spec.ckpt, spec.out_dir, spec.device).to_argv(resume=True) + (["--gpu", gpu] if gpu else [])


def refuse_single_run_flags(args):
    """InputError for a flag of one run given with a folder of images."""
    for flag in ("ckpt", "resume", "overwrite"):
        if getattr(args, flag, None) not in (None, False):
            raise InputError(f"`{flag}` is for one image: the runs of a folder are named after their files, and "
                             f"the same command skips complete ones and resumes the others")


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu  # torch reads it when CUDA is first used
    field = None
    try:
        launch, launching = launch_from_args(args)
        given = RecoveryConfig(**given_settings(RecoveryConfig, args))
        field = given.folder_field
        tiled = given.tile is not None and given.tile_index is None
        if field is not None:
            refuse_single_run_flags(args)
            if given.tile is not None:
                raise InputError("`tile` is for one image, not a folder of images")
        spec, state = spec_from_args(args, whole_run=field is None and not tiled)
        if args.gpu is not None:
            check_gpu_flag(args.gpu, spec.device)
        if field is not None or tiled:
            # The sweep and its launchers: not for one image in one piece.
            from reproduction.folder import recover_folder
            from reproduction.tiles import recover_tiled

            spec.options.validate()
            launch.validate(spec)
            if tiled:
                status = recover_tiled(spec, launch, resume=args.resume, overwrite=args.overwrite,
                                       progress=not args.no_progress, check_memory=not args.no_memory_check)
                if status == INTERRUPTED:
                    print(f"continue with: python {shlex.join(spec.to_argv(resume=True))}")
                return status
            return recover_folder(spec, field, launch, progress=not args.no_progress,
                                  check_memory=not args.no_memory_check)
        if launching:
            raise InputError(f"`{launching[0]}` is for a folder of images (`image` DIR or `noisy` DIR) or `tile`")
        report = run_recovery(spec, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                              check_memory=not args.no_memory_check, state=state)
    # Ctrl-C lands here only outside the loop's own clean stop (start-up, or a second Ctrl-C).
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, KEPT if field is None else FOLDER_KEPT)
    if report.interrupted:
        print(f"continue with: python {shlex.join(resume_command(spec, args.gpu))}")
        return signal_exit_status(report.stop_signal)
    if report.diverged:
        return 1
    print(f"outputs: {os.path.join(spec.out_dir, spec.ckpt)}_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
