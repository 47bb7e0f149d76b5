"""Recover an image from salt-and-pepper noise by double over-parameterization.

    python denoising.py --gpu 0 --ckpt F16_05_128 --image F16 --nlevel 0.5 --width 128

The reference's flags keep their meaning and defaults; the recovery itself is
``recovery.run_recovery``. Outputs land in ``--out_dir`` as ``<ckpt>_*``.
"""

import argparse
import dataclasses
import os
import shlex
import sys

import torch

from recovery import METHODS, PRECISIONS, STEPS, RecoveryConfig, StepOptions, load_checkpoint, output_paths, run_recovery
from utils.errors import EXPECTED_FAILURES, InputError, OneLineErrorParser, report_failure
from utils.image_io import DEFAULT_DATA_DIR

PROG = "denoising.py"


def add_compute_arguments(p):
    """The flags saying how runs compute (``--precision`` and the ``StepOptions``), shared with
    reproduce.py; read them back with :func:`step_options`."""
    p.add_argument("--step", type=str, default="eager", choices=STEPS,
                   help="eager: the reference's step; graph: the same step replayed as a CUDA graph (CUDA, SGD)")
    p.add_argument("--precision", type=str, default="tf32", choices=PRECISIONS,
                   help="fp32: strict; tf32: TF32 convolutions on CUDA (PyTorch's and the reference's default); "
                   "bf16: network in bfloat16, loss and s in float32")
    p.add_argument("--channels_last", action="store_true", help="NHWC activations (a speed option)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network, fusing BatchNorm, "
                   "LeakyReLU and padding (a speed option; compiling takes a minute or more; cpu and cuda)")
    p.add_argument("--threads", type=int, default=None, help="PyTorch's CPU threads (default: one per core); "
                   "runs sharing a CPU should split its cores between them")


def step_options(args):
    return StepOptions(args.step, args.channels_last, args.compile, args.threads)


def build_parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    # The reference's flags.
    p.add_argument("--ckpt", type=str, default="test", help="run name: outputs are <out_dir>/<ckpt>_*")
    p.add_argument("--gpu", type=str, default="0", help="GPU index, as CUDA_VISIBLE_DEVICES (default 0; an "
                   "already set CUDA_VISIBLE_DEVICES is kept unless --gpu is given)")
    p.add_argument("--image", type=str, default="F16", help="image name in --data_dir (with or without "
                   ".png), path to an image file, or a scikit-image sample name such as astronaut")
    p.add_argument("--nlevel", type=float, default=0.5, help="fraction of corrupted elements, in [0, 1)")
    p.add_argument("--alg", type=str, default="sgd", choices=["sgd", "adam"], help="optimiser for both groups")
    p.add_argument("--l1", action="store_true", help="L1 loss (default L2)")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate of the network parameters theta")
    p.add_argument("--lr_c", type=float, default=500.0, help="learning rate of the corruption parameters g, h")
    p.add_argument("--num_iter", type=int, default=150000, help="number of iterations")
    p.add_argument("--width", type=int, default=128, help="network width")
    # Added.
    p.add_argument("--method", type=str, default="ours", choices=METHODS,
                   help="ours: phi + g*g - h*h; dip: network alone, L2 loss; dip-l1: network alone, L1 loss")
    p.add_argument("--seed", type=int, default=0, help="seeds corruption, input, initialisation, perturbations")
    p.add_argument("--device", type=str, default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, "
                   "cuda:N or mps")
    p.add_argument("--data_dir", type=str, default=DEFAULT_DATA_DIR, help="where --image names are looked up "
                   "(default: data/denoising in this checkout, from any working folder)")
    p.add_argument("--out_dir", type=str, default="checkpoints", help="where outputs are written")
    p.add_argument("--show_every", type=int, default=500, help="log, record history and checkpoint every N iterations")
    p.add_argument("--resize", type=int, default=None, help="resize the clean image so its shorter side is N "
                   "pixels (before cropping to multiples of 32)")
    p.add_argument("--noisy", type=str, default=None, help="path to an already corrupted image with no clean "
                   "version: no noise is added, no PSNR is computed, the impulse map s is written")
    add_compute_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run <ckpt> from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start <ckpt> again even if it has a checkpoint")
    p.add_argument("--no_progress", action="store_true", help="no progress bar; log lines only")
    return p


CONFIG_FIELDS = [f.name for f in dataclasses.fields(RecoveryConfig)]


def explicit_arguments(parser, argv):
    """The destinations given on the command line (as opposed to left at their defaults)."""
    probe = OneLineErrorParser(prog=PROG, add_help=False, argument_default=argparse.SUPPRESS)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs = {"dest": action.dest}
            if action.nargs == 0:
                kwargs["action"] = "store_true"
            probe.add_argument(*action.option_strings, **kwargs)
    return set(vars(probe.parse_known_args(argv)[0]))


def config_from_args(args, explicit):
    """The RecoveryConfig the command line asks for. On --resume, settings not given explicitly
    come from the run's saved arguments, so ``--ckpt NAME --resume`` is enough."""
    values = {name: getattr(args, name) for name in CONFIG_FIELDS}
    if args.noisy is not None and "image" in explicit:
        raise InputError("give either --image or --noisy, not both")
    if args.noisy is not None and "nlevel" in explicit:
        raise InputError("--nlevel adds noise, and --noisy images have theirs already: give one of them")
    if args.resume:
        saved = load_checkpoint(output_paths(args.out_dir, args.ckpt)["checkpoint"])["config"]
        values = {name: (values[name] if name in explicit else saved.get(name, values[name])) for name in CONFIG_FIELDS}
    return RecoveryConfig(**values)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_arguments(parser, argv)
    if "gpu" in explicit or "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu  # torch reads it when CUDA is first used

    try:
        if "gpu" in explicit and args.device == "auto" and not torch.cuda.is_available():
            # Rather than quietly running on the CPU for hours.
            raise InputError(f"--gpu {args.gpu} asks for a GPU, but CUDA sees none with CUDA_VISIBLE_DEVICES={args.gpu}; "
                             "leave --gpu out to run on the CPU")
        config = config_from_args(args, explicit)
        result = run_recovery(
            config,
            ckpt=args.ckpt,
            out_dir=args.out_dir,
            device=args.device,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            options=step_options(args),
        )
    # Ctrl-C lands here only outside the loop's own clean stop (start-up, or a second Ctrl-C).
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, "the last checkpoint written, if any, is intact (--resume)")
    if result["interrupted"]:
        print(f"continue with: python denoising.py --out_dir {shlex.quote(args.out_dir)} --ckpt {shlex.quote(args.ckpt)} "
              "--resume")
        return 130
    if result["diverged"]:
        return 1
    print(f"outputs: {os.path.join(args.out_dir, args.ckpt)}_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
