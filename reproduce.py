"""Reproduce the paper's Figures 3, 4, 5, its teaser and a results table with baselines.

    python reproduce.py --figure all                 # the paper's settings, on a GPU (many hours)
    python reproduce.py --figure all --num_iter 40 --resize 64 --width 8 --device cpu   # a quick look
    python reproduce.py --figure all --launcher slurm --partition gpu   # a Slurm job array; again: state, figures

Runs are ``recovery.run_recovery`` (what ``denoising.py`` does) writing into
``<out_dir>/runs/<size>/``; complete ones are reused, interrupted ones resumed; with ``--launcher
slurm`` each is a task of one Slurm job array (``reproduction/slurm_launch.py``). Figures land in
``<out_dir>/`` as PNG and PDF, the table as ``results.md`` and ``results.csv``. See
docs/reproducing.md.
"""

import argparse
import sys

from recovery import StepOptions
from recovery.duration import refuse_long_cpu_sweep
from recovery.settings import add_arguments, given_settings
from reproduction.launch_settings import add_launch_arguments, launch_from_args
from reproduction.pipeline import reproduce
from reproduction.plan import TARGETS, Settings, runs_for
from utils.errors import EXPECTED_FAILURES, OneLineErrorParser, report_failure

PROG = "reproduce.py"


def build_parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--figure", nargs="+", required=True, choices=TARGETS + ("all",),
                   help="what to make: 3, 4 (recovered images), 5 (PSNR curves of 3 and 4), teaser (ours against "
                   "DIP-L1), table (adds the DIP and DIP-L1 runs of the table), or all; several may be given")
    add_arguments(p, Settings)
    add_arguments(p, StepOptions)  # as denoising.py's: passed to every run
    add_launch_arguments(p)
    p.add_argument("--status", action="store_true", help="with --launcher slurm: show where every run stands "
                   "(queued, running, iterations done, complete, failed and why); submit and draw nothing")
    p.add_argument("--dry_run", action="store_true", help="list the runs, their state and commands; run nothing")
    p.add_argument("--no_run", action="store_true", help="start no run: draw the figures and the table from "
                   "the runs there are, partial ones included (e.g. to look at a sweep under way)")
    p.add_argument("--no_progress", action="store_true", help="no progress bars; log lines only")
    return p


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    targets = TARGETS if "all" in args.figure else tuple(args.figure)
    settings = Settings(**given_settings(Settings, args), options=StepOptions(**given_settings(StepOptions, args)))
    try:
        launch, _ = launch_from_args(args)
        if launch.launcher == "local" and not (args.dry_run or args.no_run or args.status):  # runs start here
            refuse_long_cpu_sweep(settings.device, runs_for(targets, settings), settings.options.threads)
        return reproduce(targets, settings, dry_run=args.dry_run, start_runs=not args.no_run,
                         progress=not args.no_progress, launch=launch, status_only=args.status)
    # Ctrl-C lands here only outside the runs' own clean stop (start-up, drawing, or a second Ctrl-C).
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, "the runs' checkpoints, if any, are intact (the same command resumes them)")


if __name__ == "__main__":
    sys.exit(main())
