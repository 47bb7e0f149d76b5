"""Time the recovery iteration: the eager step, as a user runs it by default, against the fast step.

    python benchmarks/step_time.py --device cpu --size 128 --width 32 --iters 20
    python benchmarks/step_time.py --device cuda --size 512 --width 128 --iters 200

Prints one line per variant (ms per iteration; peak GPU memory on CUDA), then the speed-up of the
fast step over each eager baseline, one line each: ``speedup over eager tf32 (the default):
<ratio>x`` (what ``denoising.py`` runs unless told otherwise, TF32 convolutions included: the
project's own gain) and ``speedup over eager fp32: <ratio>x`` (strict float32: TF32's gain
counted too). Off CUDA TF32 does not exist, the default step is eager fp32, timed once, and a
single line says so. Every variant runs in this one process on the same random problem, in
alternating rounds (the median round counts). On CUDA the fast step is the CUDA-graph step in
TF32 with channels-last activations, and the compiled network and bf16 are timed beside it; on
other devices, where graphs do not exist, it is the eager step with channels-last activations. A
variant that fails is reported and the others still run; stopped by SIGINT (``timeout -s INT``),
it reports the rounds done. Exit status 1 when a speed-up is unknown.
"""

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recovery import Recovery, RecoveryConfig, StepOptions, describe_device, resolve_device  # noqa: E402
from recovery.devices import synchronize  # noqa: E402
from recovery.evaluation import Evaluation  # noqa: E402
from recovery.padding import SIDE_MULTIPLE  # noqa: E402
from recovery.settings import MIN_SIDE  # noqa: E402
from utils.atomic_files import check_writable_folder, write_json  # noqa: E402
from utils.errors import InputError, OneLineErrorParser, OutputError  # noqa: E402

FAST_LABEL = "fast"  # the label of the variant that the speedup lines compare with the baselines
# The eager baselines, by precision: the default first (``--precision tf32``, as PyTorch and the
# reference run), then strict float32.
BASELINE_PRECISIONS = ("tf32", "fp32")


def check_problem(size, width, iters):
    """InputError naming the first of ``--size``, ``--width``, ``--iters`` that makes no benchmark."""
    if size < MIN_SIDE or size % SIDE_MULTIPLE:  # the sides the network takes uncropped
        raise InputError(f"`size` must be a multiple of {SIDE_MULTIPLE} and at least {MIN_SIDE}, got {size}")
    if width < 1:
        raise InputError(f"`width` must be at least 1, got {width}")
    if iters < 1:
        raise InputError(f"`iters` must be at least 1, got {iters}")


def check_json_path(path):
    """InputError unless the results can be written to ``path``: checked before minutes of timing."""
    folder = os.path.dirname(path) or "."
    if not os.path.exists(folder):  # check_writable_folder lets a folder made later pass; none is made here
        raise InputError(f"`json` {path}: the folder {folder} does not exist")
    check_writable_folder(folder, "--json")
    if os.path.isdir(path):
        raise InputError(f"`json` {path} is a folder")


def variants(device):
    """``(label, precision, StepOptions)`` of the variants to time: the eager baselines (see
    :func:`baselines`), the fast step (its label starts with ``FAST_LABEL``) and others."""
    if device.type == "cuda":
        return [
            ("eager tf32 (the default, as the reference ran)", "tf32", StepOptions()),
            ("eager fp32", "fp32", StepOptions()),
            ("graph tf32", "tf32", StepOptions(step="graph")),
            (f"{FAST_LABEL}: graph tf32 channels-last", "tf32", StepOptions(step="graph", channels_last=True)),
            ("graph tf32 channels-last compiled", "tf32", StepOptions(step="graph", channels_last=True, compile=True)),
            ("graph bf16 channels-last", "bf16", StepOptions(step="graph", channels_last=True)),
        ]
    # CUDA graphs are CUDA-only. Channels-last was 1.1x to 1.25x faster on a 2-core CPU at 128x128,
    # width 32 (docs/speed.md). Compiling is left out here: one to two minutes of compiling on a CPU
    # for about 7% more.
    return [
        ("eager fp32 (also the default: TF32 exists on CUDA only)", "fp32", StepOptions()),
        (f"{FAST_LABEL}: eager fp32 channels-last (no CUDA graphs off CUDA)", "fp32", StepOptions(channels_last=True)),
    ]


def baselines(device):
    """``[(precision, label)]``: the eager baseline of each precision in BASELINE_PRECISIONS that
    differs on ``device`` from those before it, and the name the speed-up line gives it. Off CUDA
    tf32 is float32 (``recovery`` turns TF32 on for CUDA only): one baseline, said to be both."""
    if device.type == "cuda":
        return [("tf32", "eager tf32 (the default)"), ("fp32", "eager fp32")]
    return [("fp32", "eager fp32 (= eager tf32, the default: TF32 exists on CUDA only)")]


def speedups(device, results):
    """``{label: ratio or None}``: the fast step's speed-up over each baseline of
    :func:`baselines`, None where either time is missing (a variant failed or was not timed)."""
    fast = next((r["ms"] for r in results if r["label"].startswith(FAST_LABEL)), None)
    ratios = {}
    for precision, label in baselines(device):
        # The eager step is the one with no step flags (StepOptions() gives none).
        eager = next((r["ms"] for r in results if r["precision"] == precision and not r["flags"]), None)
        ratios[label] = eager / fast if eager is not None and fast is not None else None
    return ratios


def prepare_variant(device, size, width, precision, options, warmup=5):
    """A function doing one iteration of a fresh problem in this variant as a run's loop does it
    (the step, then the evaluation's averages of the output and the weights), warmed up (compiled,
    captured, autotuned), and the most GPU memory (GiB, CUDA only) that its tensors took during
    set-up and warm-up. Only a lead: a graph's memory pool stays reserved beyond that, and cuDNN's
    autotuning workspace is paid by the first variant of a convolution set-up. A run's log gives
    the whole process's peak."""
    noisy = np.random.default_rng(0).random((3, size, size)).astype(np.float32)
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    recovery = Recovery(RecoveryConfig(width=width, precision=precision), noisy, device, options)
    step, evaluation = recovery.stepper(), Evaluation(recovery)

    def iterate():
        _, phi = step()
        evaluation.update(phi)

    for _ in range(warmup):
        iterate()
    synchronize(device)
    memory = (torch.cuda.max_memory_allocated(device) - before) / 2**30 if device.type == "cuda" else None
    return iterate, memory


def time_rounds(device, prepared, iters, rounds=5, after_round=lambda: None):
    """Time ``prepared``, a list of ``(result, iterate)``, over ``iters`` iterations each, split into
    at most ``rounds`` rounds; a round runs every variant in turn, so that a slow spell of the
    machine falls on every variant alike. After each round, ``result["ms"]`` is the median of its
    rounds so far and ``after_round()`` is called: an interrupted benchmark keeps what it measured.
    A variant that fails here gets an ``error`` and leaves the rounds."""
    rounds = min(rounds, iters)
    samples = [[] for _ in prepared]
    for number in range(rounds):
        per_round = iters // rounds + (number < iters % rounds)
        for (result, iterate), times in zip(prepared, samples):
            if "error" in result:
                continue
            try:
                synchronize(device)
                start = time.perf_counter()
                for _ in range(per_round):
                    iterate()
                synchronize(device)
            except Exception as exc:
                result["error"], result["ms"] = describe_error(exc), None
                continue
            times.append((time.perf_counter() - start) / per_round * 1000)
            result["ms"] = float(np.median(times))
        after_round()


def describe_error(exc):
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def main(argv=None):
    parser = OneLineErrorParser(prog="step_time.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="side of the square image")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--json", default=None, help="also write the results to this file, after every round")
    args = parser.parse_args(argv)
    try:
        check_problem(args.size, args.width, args.iters)
        if args.json:
            check_json_path(args.json)
        device = resolve_device(args.device)
    except InputError as exc:
        parser.error(exc)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {args.size}x{args.size}, width {args.width}, {args.iters} iterations")
    plan = variants(device)
    results = [{"label": label, "precision": precision, "flags": options.to_argv(), "ms": None, "peak_gib": None}
               for label, precision, options in plan]

    json_failed = False  # warned once, and the exit status says so

    def save():
        nonlocal json_failed
        if args.json:
            try:
                write_json(args.json, {"device": describe_device(device), "torch": torch.__version__, "size": args.size,
                                       "width": args.width, "iters": args.iters, "variants": results,
                                       "speedups": speedups(device, results)})
            except OutputError as exc:  # the timings still reach stdout
                if not json_failed:
                    print(f"step_time.py: warning: {exc}; a file there is not this run's", file=sys.stderr, flush=True)
                json_failed = True

    # Compiling can take minutes: the other variants are timed first, so that a time limit reached
    # while compiling leaves their timings; then all are timed again, side by side.
    prepared = []
    try:
        for compiling in (False, True):
            group = [(result, variant) for result, variant in zip(results, plan) if variant[2].compile == compiling]
            for result, (label, precision, options) in group:
                start = time.perf_counter()
                try:
                    iterate, result["peak_gib"] = prepare_variant(device, args.size, args.width, precision, options)
                except Exception as exc:  # one variant failing (a capture, a compiler) must not hide the others
                    result["error"] = describe_error(exc)
                    continue
                result["prepare_seconds"] = time.perf_counter() - start
                print(f"prepared {label} in {result['prepare_seconds']:.1f} s", file=sys.stderr, flush=True)
                prepared.append((result, iterate))
            if group:
                time_rounds(device, prepared, args.iters, after_round=save)
    except KeyboardInterrupt:  # e.g. `timeout -s INT`: report what was measured
        print("interrupted: the timings below are those measured so far", file=sys.stderr, flush=True)
    save()
    for result in results:
        if "error" in result:
            print(f"{result['label']}: FAILED ({result['error']})")
        elif result["ms"] is None:
            print(f"{result['label']}: not measured")
        else:
            extra = f", peak memory {result['peak_gib']:.2f} GiB" if result["peak_gib"] is not None else ""
            print(f"{result['label']}: {result['ms']:.2f} ms/iteration{extra}")
    ratios = speedups(device, results)
    for label, ratio in ratios.items():
        print(f"speedup over {label}: " + ("unknown (a variant failed or was not measured)" if ratio is None
                                           else f"{ratio:.2f}x"))
    return 1 if json_failed or None in ratios.values() else 0


if __name__ == "__main__":
    sys.exit(main())
