"""Where one recovery iteration spends its time: the kernels (or CPU operators) ranked by self time.

    python benchmarks/profile_step.py --device cpu --size 128 --width 32
    python benchmarks/profile_step.py --device cuda --size 512 --width 128 --channels_last --compile

Profiles ``--iters`` eager iterations after a warm-up (a CUDA graph replays the same kernels, so
the eager step shows what a graph would hold) with torch.profiler, and prints the ``--rows``
heaviest entries by self time on the device, then the total per iteration.
"""

import os
import sys

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.step_time import check_problem, prepare_variant  # noqa: E402
from recovery.devices import synchronize  # noqa: E402
from recovery import RecoveryConfig, StepOptions, describe_device, resolve_device  # noqa: E402
from recovery.devices import check_options  # noqa: E402
from recovery.settings import PRECISIONS  # noqa: E402
from utils.errors import InputError, OneLineErrorParser  # noqa: E402


def main(argv=None):
    parser = OneLineErrorParser(prog="profile_step.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="side of the square image")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--precision", default="tf32", choices=PRECISIONS)
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--iters", type=int, default=10, help="iterations profiled")
    parser.add_argument("--rows", type=int, default=25, help="entries printed")
    args = parser.parse_args(argv)
    options = StepOptions(channels_last=args.channels_last, compile=args.compile)
    try:
        check_problem(args.size, args.width, args.iters)
        if args.rows < 1:
            raise InputError(f"`rows` must be at least 1, got {args.rows}")
        device = resolve_device(args.device)
        check_options(options, device, RecoveryConfig(width=args.width, precision=args.precision))  # e.g. --compile on mps
    except InputError as exc:
        parser.error(exc)
    # Warmed up: compiling and cuDNN autotuning happen outside the profile.
    iterate, _ = prepare_variant(device, args.size, args.width, args.precision, options)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(args.iters):
            iterate()
        synchronize(device)
    sort_by = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {args.size}x{args.size}, width "
          f"{args.width}, {args.precision}, {options}; {args.iters} iterations profiled")
    averages = prof.key_averages()
    print(averages.table(sort_by=sort_by, row_limit=args.rows))
    if device.type == "cuda":
        # Only the kernels themselves: the operators that launched them carry their time too.
        kernels = [e for e in averages if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)]
        total_us = sum(e.self_device_time_total for e in kernels)
    else:
        total_us = sum(e.self_cpu_time_total for e in averages)
    print(f"total self time per iteration: {total_us / args.iters / 1000:.2f} ms ({sort_by})")


if __name__ == "__main__":
    main()
