"""What logging costs a run: denoising.py logged every 10 iterations against every 200.

    python benchmarks/logging_overhead.py --device cuda --size 512 --width 8
    python benchmarks/logging_overhead.py --device cpu --size 64 --width 4 --rounds 1

Runs ``denoising.py`` as a user does, a fresh process each, on the astronaut resized to
``--size``, for ``--num_iter`` (201) iterations logged every A and every B iterations
(``--show_every A B``, 10 and 200), A and B alternately over ``--rounds`` rounds, so that a slow
spell of the machine falls on both. A logged iteration computes the metrics, writes the history
and the images and, as ``--checkpoint_seconds`` decides where denoising.py has it, a checkpoint.
The extra wall time per logged iteration is ``(t_A - t_B) / (n_A - n_B)``, t the whole process's
wall time, n the logged iterations (21 and 2), medians over the rounds; the same from the runs'
own ``seconds`` column (the loop alone, without start-up) is printed beside it.

Then the eager step, as a user runs it by default (tf32), is timed in this process as
``benchmarks/step_time.py`` times it, and each run's own seconds for iterations 1 to N-1 (its
history's last row less its first, which holds the first iteration's warm-up) are set against
N-1 such steps: the ratio is what the run's loop costs beyond the step alone. That span holds the
logging of the first logged iteration (and of all but the last one logged), so the loop's time per
iteration without logging is given too: the rarely logged run's span less its logged iterations'
extra time, over N-1.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.step_time import check_json_path, check_problem, prepare_variant, time_rounds  # noqa: E402
from recovery import StepOptions, describe_device, resolve_device  # noqa: E402
from utils.atomic_files import read_csv, write_json  # noqa: E402
from utils.errors import InputError, OneLineErrorParser, OutputError  # noqa: E402

PROG = "logging_overhead.py"
DEFAULT_PRECISION = "tf32"  # what denoising.py runs unless told otherwise


def logged_iterations(num_iter, show_every):
    """How many iterations a run of ``num_iter`` logs every ``show_every``: those numbered (from 0) a
    multiple of it, and the last."""
    return len([i for i in range(num_iter) if i % show_every == 0 or i == num_iter - 1])


def check_arguments(args):
    """InputError naming the first bad flag, before any run."""
    check_problem(args.size, args.width, iters=1)  # the sides and width a benchmark takes
    if args.rounds < 1:
        raise InputError(f"`rounds` must be at least 1, got {args.rounds}")
    if args.num_iter < 2:  # iterations 1 to N-1 are compared with the step: at least one
        raise InputError(f"`num_iter` must be at least 2, got {args.num_iter}")
    if min(args.show_every) < 1:
        raise InputError(f"`show_every` must be at least 1, got {min(args.show_every)}")
    often, rarely = (logged_iterations(args.num_iter, every) for every in args.show_every)
    if often == rarely:
        raise InputError(f"`show_every` {args.show_every[0]} and {args.show_every[1]} both log {often} of "
                         f"{args.num_iter} iterations: nothing to compare")
    if args.json:
        check_json_path(args.json)


def run_command(device, size, width, num_iter, show_every, out_dir, ckpt):
    """The argv of one run of the command line (after the interpreter)."""
    return ["denoising.py", "--image", "astronaut", "--resize", str(size), "--width", str(width),
            "--num_iter", str(num_iter), "--show_every", str(show_every), "--device", device,
            "--out_dir", out_dir, "--ckpt", ckpt, "--no_progress"]


def last_line(path):
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "(no output)"


def timed_run(argv, out_dir, ckpt):
    """Run ``python argv`` to its end: ``{"wall", "logged", "loop"}`` (seconds; logged iterations;
    the history's seconds from its first row to its last), or ``{"error"}`` with the run's last line."""
    log_path = os.path.join(out_dir, f"{ckpt}.log")
    with open(log_path, "w") as log:
        start = time.perf_counter()
        status = subprocess.run([sys.executable] + argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - start
    if status != 0:
        return {"error": f"exit status {status}: {last_line(log_path)}"}
    history = read_csv(os.path.join(out_dir, f"{ckpt}_history.csv"))
    return {"wall": wall, "logged": len(history), "loop": history[-1]["seconds"] - history[0]["seconds"]}


def summarise(runs, show_every, num_iter, step_ms):
    """The medians over rounds of ``runs`` (``[{"show_every", "wall", "logged", "loop"}]``, both
    settings), the extra seconds per logged iteration by wall time and by the loop's own seconds,
    and each setting's loop against ``num_iter - 1`` steps of ``step_ms`` (None: not timed)."""
    often, rarely = show_every
    medians = {}
    for every in show_every:
        mine = [run for run in runs if run["show_every"] == every]
        medians[every] = {key: statistics.median(run[key] for run in mine) for key in ("wall", "loop", "logged")}
    extra_logs = medians[often]["logged"] - medians[rarely]["logged"]
    summary = {
        "extra_logged": extra_logs,
        "wall_per_log": (medians[often]["wall"] - medians[rarely]["wall"]) / extra_logs,
        "loop_per_log": (medians[often]["loop"] - medians[rarely]["loop"]) / extra_logs,
        "step_ms": step_ms,
        "medians": {str(every): value for every, value in medians.items()},
        "runs": [len([run for run in runs if run["show_every"] == every]) for every in show_every],
        "loop_over_steps": None,
    }
    # The span from the first row to the last holds the logging of every logged iteration but the last.
    unlogged = medians[rarely]["loop"] - (medians[rarely]["logged"] - 1) * summary["loop_per_log"]
    summary["unlogged_ms"] = unlogged / (num_iter - 1) * 1000
    if step_ms:
        steps = (num_iter - 1) * step_ms / 1000
        summary["loop_over_steps"] = {str(every): medians[every]["loop"] / steps for every in show_every}
    return summary


def time_default_step(device, size, width, iters):
    """ms per iteration of the default eager step (``step_time.py``'s timing), or None and why."""
    result = {}
    try:
        iterate, _ = prepare_variant(device, size, width, DEFAULT_PRECISION, StepOptions())
        time_rounds(device, [(result, iterate)], iters)
    except Exception as exc:  # the runs' figures still stand
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]
    except KeyboardInterrupt:  # the rounds timed so far count
        return result.get("ms"), "interrupted"
    return result.get("ms"), result.get("error")


def run_rounds(args, device, report, save):
    """Run both intervals, alternately, ``args.rounds`` times, adding each run to ``report["runs"]``
    and printing it; False (having said why) when a run failed."""
    with tempfile.TemporaryDirectory() as out_dir:
        for number in range(args.rounds):
            # ABBA...: neither interval always runs first, on a machine warming up or slowing down.
            for every in args.show_every if number % 2 == 0 else args.show_every[::-1]:
                ckpt = f"every{every}_round{number + 1}"
                command = run_command(str(device), args.size, args.width, args.num_iter, every, out_dir, ckpt)
                run = {"show_every": every, "round": number + 1, **timed_run(command, out_dir, ckpt)}
                report["runs"].append(run)
                save()
                if "error" in run:
                    print(f"every {every}, round {number + 1}: FAILED ({run['error']})")
                    return False
                print(f"every {every}, round {number + 1}: {run['wall']:.2f} s wall, {run['logged']} logged, "
                      f"loop {run['loop']:.2f} s for iterations 1 to {args.num_iter - 1}", flush=True)
    return True


def main(argv=None):
    parser = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="side of the square image")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--num_iter", type=int, default=201, help="iterations per run")
    parser.add_argument("--show_every", type=int, nargs=2, default=[10, 200], metavar=("OFTEN", "RARELY"),
                        help="the two logging intervals compared")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each interval, alternating")
    parser.add_argument("--json", default=None, help="also write the runs and the summary to this file, as they come")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        device = resolve_device(args.device)
    except InputError as exc:
        parser.error(exc)
    counts = [logged_iterations(args.num_iter, every) for every in args.show_every]
    print(f"device: {describe_device(device)}; torch {torch.__version__}; astronaut {args.size}x{args.size}, "
          f"width {args.width}, {args.num_iter} iterations logged every {args.show_every[0]} ({counts[0]} logged) "
          f"and every {args.show_every[1]} ({counts[1]}); rounds: {args.rounds}", flush=True)
    report = {"device": describe_device(device), "torch": torch.__version__, "size": args.size, "width": args.width,
              "num_iter": args.num_iter, "show_every": args.show_every, "runs": [], "summary": None}

    def save():
        if args.json:
            try:
                write_json(args.json, report)
            except OutputError as exc:  # the figures still reach stdout
                print(f"{PROG}: warning: {exc}", file=sys.stderr, flush=True)

    try:
        if not run_rounds(args, device, report, save):
            return 1
        interrupted = False
    except KeyboardInterrupt:  # e.g. `timeout -s INT`: report the runs done
        print("interrupted: the figures below are from the runs done", flush=True)
        interrupted = True
    done = [run for run in report["runs"] if "error" not in run]
    if {run["show_every"] for run in done} != set(args.show_every):
        print("extra per logged iteration: unknown (no complete run of both intervals)")
        return 1
    # After the runs: this process holds no GPU memory while they run.
    step_ms, step_error = (None, "interrupted") if interrupted else time_default_step(
        device, args.size, args.width, args.num_iter - 1)
    summary = report["summary"] = summarise(done, args.show_every, args.num_iter, step_ms)
    save()
    often, rarely = args.show_every
    print(f"extra per logged iteration: {summary['wall_per_log'] * 1000:.1f} ms of wall time, "
          f"{summary['loop_per_log'] * 1000:.1f} ms of the runs' own seconds (medians of {summary['runs'][0]} and "
          f"{summary['runs'][1]} runs: (t{often} - t{rarely}) / ({counts[0]} - {counts[1]}))")
    if step_ms is None:
        print(f"step alone: not measured ({step_error})")
        return 1
    ratios = ", ".join(f"logged every {every} {ratio:.2f}x" for every, ratio in summary["loop_over_steps"].items())
    print(f"step alone: {step_ms:.2f} ms/iteration (eager {DEFAULT_PRECISION}, the default, timed in this process "
          f"as step_time.py does)")
    print(f"the runs' own seconds against {args.num_iter - 1} steps alone: {ratios}; without logging "
          f"{summary['unlogged_ms']:.2f} ms/iteration, {summary['unlogged_ms'] / step_ms:.2f}x the step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
