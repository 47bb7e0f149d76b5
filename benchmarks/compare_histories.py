"""Compare the PSNR trajectories of two runs (their ``<ckpt>_history.csv``) iteration by iteration.

    python benchmarks/compare_histories.py checkpoints/eager_history.csv checkpoints/fast_history.csv

Prints the logged iterations both runs share, each run's PSNR and the difference, then
``max |dPSNR|: <x> dB over <n> iterations`` and whether it is within ``--tolerance`` (0.2 dB, the
fidelity bar of the speed work); exits 1 if it is not. With ``--images A B`` (the runs'
``<ckpt>_last.png``) it also says how far apart the two final images are.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.atomic_files import read_csv  # noqa: E402
from utils.errors import InputError, OneLineErrorParser  # noqa: E402
from utils.image_io import read_image_file, to_float_image  # noqa: E402
from utils.metrics import psnr  # noqa: E402


def psnr_differences(history_a, history_b):
    """``[(iteration, psnr_a, psnr_b)]`` for the iterations logged, with a PSNR, in both."""
    b_by_iteration = {row["iteration"]: row["psnr"] for row in history_b if row["psnr"] is not None}
    return [
        (int(row["iteration"]), row["psnr"], b_by_iteration[row["iteration"]])
        for row in history_a
        if row["psnr"] is not None and row["iteration"] in b_by_iteration
    ]


def image_difference(path_a, path_b):
    """How far apart two images are: ``identical``, or the PSNR of one against the other and the
    largest difference of a value, in 8-bit levels."""
    a, b = (to_float_image(read_image_file(path))[0] for path in (path_a, path_b))
    if a.shape != b.shape:
        return f"of different sizes, {a.shape} and {b.shape}"
    if (a == b).all():
        return "identical"
    levels = int(round(abs(a - b).max() * 255))
    return f"PSNR of one against the other {psnr(a, b):.2f} dB, largest difference {levels}/255"


def main(argv=None):
    parser = OneLineErrorParser(prog="compare_histories.py", description=__doc__.splitlines()[0])
    parser.add_argument("history_a")
    parser.add_argument("history_b")
    parser.add_argument("--tolerance", type=float, default=0.2, help="largest allowed |dPSNR| in dB")
    parser.add_argument("--images", nargs=2, metavar=("A", "B"), help="the two runs' final images, to compare too")
    args = parser.parse_args(argv)
    try:
        history_a, history_b = read_csv(args.history_a), read_csv(args.history_b)
        rows = psnr_differences(history_a, history_b)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"cannot read the histories ({type(exc).__name__}: {exc})")
    if not rows:
        print("no logged iteration with a PSNR in common")
        return 1
    print(f"{'iteration':>9}  {'PSNR a':>8}  {'PSNR b':>8}  {'b - a':>7}")
    for iteration, a, b in rows:
        print(f"{iteration:>9}  {a:8.3f}  {b:8.3f}  {b - a:+7.3f}")
    worst = max(abs(b - a) for _, a, b in rows)
    verdict = "within" if worst <= args.tolerance else "OVER"
    print(f"max |dPSNR|: {worst:.3f} dB over {len(rows)} iterations ({verdict} the {args.tolerance} dB tolerance)")
    if args.images:  # each run's final image is that of its last logged iteration
        ends = f"iterations {int(history_a[-1]['iteration'])} and {int(history_b[-1]['iteration'])}"
        try:
            print(f"final images ({ends}): {image_difference(*args.images)}")
        except InputError as exc:
            parser.error(exc)
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
