"""Measure the peak memory of real runs and set it beside recovery.memory's estimate.

    python benchmarks/memory_peak.py --sizes 128 256 512 --widths 32 64 --methods ours dip --json peaks.json
    python benchmarks/memory_peak.py --device cuda --sizes 512 1024 2048 --widths 128   # a GPU session

Every run is a fresh process of the command line, as a user starts it:

    python denoising.py --image astronaut --resize S --width W --method M --num_iter 2 --show_every 1
        --device cpu --threads 1 --precision fp32 --out_dir <tmp> --ckpt m --no_progress

(astronaut is 512x512, so ``--resize S`` gives an ``S x S`` problem; above 512 it is upsampled).

CPU: the measure is the child's peak resident size, ``ru_maxrss`` of the rusage that
``os.wait4`` returns for exactly that child. It is the kernel's own high-water mark, so no
short-lived peak is missed as by polling; and unlike ``getrusage(RUSAGE_CHILDREN)``, which gives
the largest of all children waited for so far, it belongs to this run alone. It includes the
library pages that the interpreter touches as it exits, part of the calibrated process overhead.

CUDA (untested here: no GPU on the development machine): the child runs ``denoising.py`` in
process (``runpy``) and then prints ``torch.cuda.max_memory_reserved`` (what the caching
allocator took from the device: what has to fit in the free memory) and
``torch.cuda.max_memory_allocated`` (what the tensors asked for); the ratio is taken against the
reserved bytes. That is the measurement ``recovery.memory`` lacks on CUDA: reserved against the
estimate's tensor terms over the sizes shows what the caching allocator and cuDNN's workspaces add
(a slope and an intercept), which the estimate leaves out today.

Prints one table row per run (size, width, method, estimated, measured, ratio = estimated /
measured, and the ``BACKWARD_BUFFERS`` that the measurement implies where that term is at least
5% of it) and, with ``--json``, writes them all after every run. ``--from_json`` runs nothing: it
prints the table of measurements saved by earlier ``--json`` runs with the estimates of the model
as it is now (after a calibration constant has changed). Exit status 1 when a ratio is outside
``1 +- --tolerance`` or a run failed.
"""

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recovery.memory import BACKWARD_BUFFERS, PROCESS_OVERHEAD_BYTES, estimate_terms  # noqa: E402
from recovery.settings import METHODS, RecoveryConfig  # noqa: E402
from utils.atomic_files import check_writable_folder, write_json  # noqa: E402
from utils.errors import InputError, OneLineErrorParser, OutputError  # noqa: E402

PROG = "memory_peak.py"
MIB = 2**20
CUDA_PEAKS_MARKER = "memory_peak.py cuda peaks:"
# Runs denoising.py as its own command line would, then reports the CUDA caching allocator's peaks.
CUDA_CHILD = f"""
import json, runpy, sys, torch
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    status = exc.code or 0
else:
    status = 0
print("{CUDA_PEAKS_MARKER}", json.dumps({{"reserved": torch.cuda.max_memory_reserved(),
                                          "allocated": torch.cuda.max_memory_allocated()}}), flush=True)
sys.exit(status)
"""


def run_command(size, width, method, alg, precision, device, num_iter, out_dir):
    """The argv of one measured run of the command line."""
    return [
        "denoising.py", "--image", "astronaut", "--resize", str(size), "--width", str(width), "--method", method,
        "--alg", alg, "--precision", precision, "--num_iter", str(num_iter), "--show_every", "1",
        "--device", device, "--threads", "1", "--out_dir", out_dir, "--ckpt", "m", "--no_progress",
    ]


def measure_cpu(argv, log_path):
    """``(exit status, peak resident bytes)`` of ``python argv`` run to its end."""
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable] + argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return child.returncode, usage.ru_maxrss * 1024  # Linux gives kilobytes


def measure_cuda(argv, log_path):
    """``(exit status, peak reserved bytes, peak allocated bytes)`` of the run on CUDA."""
    with open(log_path, "w") as log:
        status = subprocess.run([sys.executable, "-c", CUDA_CHILD] + argv, cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT).returncode
    with open(log_path) as log:
        lines = [line for line in log if line.startswith(CUDA_PEAKS_MARKER)]
    if not lines:
        return status, None, None
    peaks = json.loads(lines[-1][len(CUDA_PEAKS_MARKER):])
    return status, peaks["reserved"], peaks["allocated"]


def last_line(path):
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "(no output)"


def check_arguments(args):
    """InputError naming the first bad flag, before minutes of runs."""
    for size in args.sizes:
        if size < 64 or size % 32:
            raise InputError(f"--sizes must be multiples of 32 and at least 64 (sides the network takes "
                             f"uncropped), got {size}")
    if min(args.widths) < 1:
        raise InputError(f"--widths must be at least 1, got {min(args.widths)}")
    if args.num_iter < 1:
        raise InputError(f"--num_iter must be at least 1, got {args.num_iter}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but CUDA is not available here")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise InputError(f"--json {args.json}: the folder {folder} does not exist")
        check_writable_folder(folder, "--json")


def describe_device(device):
    return torch.cuda.get_device_name() if device == "cuda" else f"{os.cpu_count()}-core CPU"


def compare(measurement):
    """A table row: the ``measurement`` of one run (a dict with size, width, method, alg,
    precision, device_type, device, measured bytes or None, seconds, error) with the estimate,
    the ratio and the calibration constants that the measurement implies."""
    config = RecoveryConfig(width=measurement["width"], method=measurement["method"], alg=measurement["alg"],
                            precision=measurement["precision"])
    terms = estimate_terms(config, measurement["size"], measurement["size"], device=measurement["device_type"])
    estimate, measured = sum(terms.values()), measurement["measured"]
    row = {**measurement, "estimated": estimate, "ratio": None, "implied_buffers": None, "implied_overhead": None}
    if measured:
        row["ratio"] = estimate / measured
        transient = terms["backward transient"]
        if transient >= 0.05 * measured:
            row["implied_buffers"] = (measured - (estimate - transient)) / (transient / BACKWARD_BUFFERS)
        if "process" in terms:
            row["implied_overhead"] = measured - (estimate - PROCESS_OVERHEAD_BYTES)
    return row


COLUMNS = ("size", "width", "method", "alg, precision", "estimated", "measured", "ratio", "implied buffers", "seconds",
           "device")
TABLE_HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "| --- " * len(COLUMNS) + "|"


def markdown_row(row):
    measured = "failed" if row["measured"] is None else f"{row['measured'] / MIB:,.0f} MiB"
    ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
    buffers = "" if row["implied_buffers"] is None else f"{row['implied_buffers']:.1f}"
    return (f"| {row['size']}x{row['size']} | {row['width']} | {row['method']} | {row['alg']}, {row['precision']} | "
            f"{row['estimated'] / MIB:,.0f} MiB | "
            f"{measured} | {ratio} | {buffers} | {row['seconds']:.0f} | {row['device']} |")


def out_of_tolerance(rows, tolerance):
    """Print the largest deviation; True if a run failed or deviates more than ``tolerance``."""
    deviations = [abs(row["ratio"] - 1) for row in rows if row["ratio"] is not None]
    if deviations:
        print(f"largest |estimated / measured - 1|: {max(deviations):.3f} (tolerance {tolerance})")
    return len(deviations) < len(rows) or any(d > tolerance for d in deviations)


def read_measurements(paths):
    """The rows of earlier ``--json`` files, as measurements (estimates dropped)."""
    rows = []
    for path in paths:
        try:
            with open(path) as f:
                saved = json.load(f)
            rows += [{key: row[key] for key in MEASUREMENT_KEYS} for row in saved["rows"]]
        except FileNotFoundError:
            raise InputError(f"--from_json {path} does not exist") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"--from_json {path} is not a file written by {PROG} --json "
                             f"({type(exc).__name__})") from None
    return rows


MEASUREMENT_KEYS = ("size", "width", "method", "alg", "precision", "device_type", "device", "measured", "seconds",
                    "error")


def main(argv=None):
    parser = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512], help="sides of the square problems")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64], help="network widths")
    parser.add_argument("--methods", nargs="+", default=["ours"], choices=METHODS)
    parser.add_argument("--alg", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--num_iter", type=int, default=2, help="iterations per run (every one is logged)")
    parser.add_argument("--tolerance", type=float, default=0.25, help="largest |estimated / measured - 1| accepted")
    parser.add_argument("--json", default=None, help="also write the rows to this file, after every run")
    parser.add_argument("--from_json", nargs="+", default=None, metavar="FILE",
                        help="run nothing: tabulate the measurements in these --json files with today's estimates")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        saved = read_measurements(args.from_json) if args.from_json else None
    except InputError as exc:
        parser.error(exc)

    if saved is not None:
        print(TABLE_HEADER)
        rows = [compare(measurement) for measurement in saved]
        for row in rows:
            print(markdown_row(row))
        return 1 if out_of_tolerance(rows, args.tolerance) else 0

    device_name = describe_device(args.device)
    print(f"device: {device_name}; torch {torch.__version__}; {args.num_iter} iterations, --alg {args.alg}, "
          f"--precision {args.precision}, --threads 1")
    print(TABLE_HEADER, flush=True)
    rows = []
    for size, width, method in itertools.product(sorted(args.sizes), sorted(args.widths), args.methods):
        with tempfile.TemporaryDirectory() as out_dir:
            command = run_command(size, width, method, args.alg, args.precision, args.device, args.num_iter, out_dir)
            log_path = os.path.join(out_dir, "log.txt")
            start = time.perf_counter()
            if args.device == "cuda":
                status, measured, allocated = measure_cuda(command, log_path)
            else:
                (status, measured), allocated = measure_cpu(command, log_path), None
            seconds = time.perf_counter() - start
            error = None if status == 0 and measured else f"exit status {status}: {last_line(log_path)}"
        row = compare({"size": size, "width": width, "method": method, "alg": args.alg, "precision": args.precision,
                       "device_type": args.device, "device": device_name, "measured": None if error else measured,
                       "seconds": seconds, "error": error})
        if allocated is not None:
            row["allocated"] = allocated
        rows.append(row)
        print(markdown_row(row) + (f" {error}" if error else ""), flush=True)
        if args.json:
            try:
                write_json(args.json, {"device": device_name, "torch": torch.__version__,
                                       "num_iter": args.num_iter, "rows": rows})
            except OutputError as exc:
                print(f"{PROG}: warning: {exc}", file=sys.stderr, flush=True)
    return 1 if out_of_tolerance(rows, args.tolerance) else 0


if __name__ == "__main__":
    sys.exit(main())
