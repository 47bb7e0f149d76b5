"""Robust low-rank matrix recovery by double over-parameterization: the paper's theorem, tested.

    python matrix_recovery.py --quick                      # all three experiments, small, under a minute
    python matrix_recovery.py                              # the full experiments (about 10 minutes on 2 cores)
    python matrix_recovery.py --experiment implicit_bias   # one of them

Writes ``<out_dir>/matrix_<experiment>.png``, ``.pdf`` and ``.csv``; the last line is the
implicit-bias check, ``implicit bias: relative distance <d> at eps <e>``. These are this project's
experiments (lowrank/, docs/theory.md), not the paper's figures.
"""

import argparse
import functools
import sys

from lowrank.experiments import EXPERIMENTS, MatrixSettings, run_experiments
from recovery.settings import add_arguments, given_settings
from utils.errors import EXPECTED_FAILURES, OneLineErrorParser, report_failure

PROG = "matrix_recovery.py"


def build_parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", nargs="+", choices=EXPERIMENTS + ("all",), default=["all"],
                   help="which to run: implicit_bias (the distance to the convex solution as eps falls), "
                   "phase_transition (recovery over rank and corruption), learning_curves, or all (default)")
    add_arguments(p, MatrixSettings)
    return p


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    experiments = EXPERIMENTS if "all" in args.experiment else tuple(dict.fromkeys(args.experiment))
    settings = MatrixSettings(**given_settings(MatrixSettings, args), experiments=experiments)
    try:
        run_experiments(settings, log=functools.partial(print, flush=True))  # progress shows when piped to a file
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, "the outputs written so far are complete files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
