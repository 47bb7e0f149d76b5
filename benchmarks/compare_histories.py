"""Compare the PSNR trajectories of two runs (their ``<ckpt>_history.csv``) iteration by iteration.

    python benchmarks/compare_histories.py checkpoints/eager_history.csv checkpoints/fast_history.csv

Prints the logged iterations both runs share, each run's PSNR and the difference, then
``max |dPSNR|: <x> dB over <n> iterations`` and whether it is within ``--tolerance`` (0.2 dB, the
fidelity bar of the speed work); exits 1 if it is not.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.atomic_files import read_csv  # noqa: E402


def psnr_differences(history_a, history_b):
    """``[(iteration, psnr_a, psnr_b)]`` for the iterations logged, with a PSNR, in both."""
    b_by_iteration = {row["iteration"]: row["psnr"] for row in history_b if row["psnr"] is not None}
    return [
        (int(row["iteration"]), row["psnr"], b_by_iteration[row["iteration"]])
        for row in history_a
        if row["psnr"] is not None and row["iteration"] in b_by_iteration
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("history_a")
    parser.add_argument("history_b")
    parser.add_argument("--tolerance", type=float, default=0.2, help="largest allowed |dPSNR| in dB")
    args = parser.parse_args(argv)
    rows = psnr_differences(read_csv(args.history_a), read_csv(args.history_b))
    if not rows:
        print("no logged iteration with a PSNR in common")
        return 1
    print(f"{'iteration':>9}  {'PSNR a':>8}  {'PSNR b':>8}  {'b - a':>7}")
    for iteration, a, b in rows:
        print(f"{iteration:>9}  {a:8.3f}  {b:8.3f}  {b - a:+7.3f}")
    worst = max(abs(b - a) for _, a, b in rows)
    verdict = "within" if worst <= args.tolerance else "OVER"
    print(f"max |dPSNR|: {worst:.3f} dB over {len(rows)} iterations ({verdict} the {args.tolerance} dB tolerance)")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
