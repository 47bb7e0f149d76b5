"""Recover an image from salt-and-pepper noise by double over-parameterization.

    python denoising.py --gpu 0 --ckpt F16_05_128 --image F16 --nlevel 0.5 --width 128

The reference's flags keep their meaning and defaults. This file only turns the command line into
one ``recovery.RunSpec`` and calls ``recovery.run_recovery``; every setting, its default and its
help live in ``recovery/settings.py``. Outputs land in ``--out_dir`` as ``<ckpt>_*``.
"""

import dataclasses
import os
import shlex
import sys

from recovery import RecoveryConfig, RunFiles, RunSpec, RunState, StepOptions, run_recovery
from recovery.devices import check_gpu_flag
from recovery.settings import add_arguments, given_settings
from utils.errors import EXPECTED_FAILURES, InputError, OneLineErrorParser, report_failure, signal_exit_status

PROG = "denoising.py"


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
    return p


def spec_from_args(args):
    """The RunSpec the command line asks for. On --resume, problem settings not given come from
    the run's checkpoint, so ``--ckpt NAME --resume`` is enough."""
    spec = RunSpec(**given_settings(RunSpec, args))
    given = given_settings(RecoveryConfig, args)
    if "noisy" in given and "image" in given:
        raise InputError("give either `image` or `noisy`, not both")
    for added in ("nlevel", "noise"):
        if "noisy" in given and added in given:
            raise InputError(f"`{added}` adds noise, and `noisy` images have theirs already: give one of them")
    base = RunState.load(RunFiles(spec.out_dir, spec.ckpt).checkpoint).config if args.resume else RecoveryConfig()
    return RunSpec(spec.ckpt, spec.out_dir, spec.device, config=dataclasses.replace(base, **given),
                   options=StepOptions(**given_settings(StepOptions, args)))


def resume_command(spec, gpu=None):
    """The command line (a list) that continues the run ``spec`` where it stopped, on the GPU
    ``--gpu`` chose for it (``gpu``, or None): the noise generator's state is the device's."""
    return RunSpec(spec.ckpt, spec.out_dir, spec.device).to_argv(resume=True) + (["--gpu", gpu] if gpu else [])


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu  # torch reads it when CUDA is first used
    try:
        spec = spec_from_args(args)
        if args.gpu is not None:
            check_gpu_flag(args.gpu, spec.device)
        report = run_recovery(spec, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                              check_memory=not args.no_memory_check)
    # Ctrl-C lands here only outside the loop's own clean stop (start-up, or a second Ctrl-C).
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, "the last checkpoint written, if any, is intact (--resume)")
    if report.interrupted:
        print(f"continue with: python {shlex.join(resume_command(spec, args.gpu))}")
        return signal_exit_status(report.stop_signal)
    if report.diverged:
        return 1
    print(f"outputs: {os.path.join(spec.out_dir, spec.ckpt)}_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
