"""Time the recovery iteration: the reference's eager fp32 step against the fast step.

    python benchmarks/step_time.py --device cpu --size 128 --width 32 --iters 20
    python benchmarks/step_time.py --device cuda --size 512 --width 128 --iters 200

Prints one line per variant (ms per iteration; peak GPU memory on CUDA), then
``speedup: <ratio>x`` of the fast step over eager fp32. Every variant runs in this one process on
the same random problem, in alternating rounds (the median round counts). On CUDA the fast step is the CUDA-graph step in TF32 with channels-last
activations, and the compiled network and bf16 are timed beside it; on other devices, where graphs
do not exist, it is the eager step with channels-last activations. A variant that fails is reported and the rest still run.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recovery import Recovery, RecoveryConfig, StepOptions, describe_device, resolve_device  # noqa: E402
from utils.atomic_files import write_json  # noqa: E402

FAST_LABEL = "fast"  # the label of the variant that the speedup line compares with the baseline


def variants(device):
    """``(label, precision, StepOptions)`` of the variants to time; the first is the baseline."""
    if device.type == "cuda":
        return [
            ("eager fp32", "fp32", StepOptions()),
            ("eager tf32 (reference)", "tf32", StepOptions()),
            ("graph tf32", "tf32", StepOptions(step="graph")),
            (f"{FAST_LABEL}: graph tf32 channels-last", "tf32", StepOptions(step="graph", channels_last=True)),
            ("graph tf32 channels-last compiled", "tf32", StepOptions(step="graph", channels_last=True, compile=True)),
            ("graph bf16 channels-last", "bf16", StepOptions(step="graph", channels_last=True)),
        ]
    # CUDA graphs are CUDA-only. Channels-last was about 10% faster on a 2-core CPU from 128x128,
    # width 32 up (docs/speed.md). Compiling is left out here: minutes of compiling on a CPU for a
    # few percent.
    return [
        ("eager fp32", "fp32", StepOptions()),
        (f"{FAST_LABEL}: eager fp32 channels-last (no CUDA graphs off CUDA)", "fp32", StepOptions(channels_last=True)),
    ]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def prepare_variant(device, size, width, precision, options, warmup=5):
    """A function doing one iteration of a fresh problem in this variant, warmed up (compiled,
    captured, autotuned), and the GPU memory (GiB, CUDA only) that its set-up and warm-up took."""
    noisy = np.random.default_rng(0).random((3, size, size)).astype(np.float32)
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    recovery = Recovery(RecoveryConfig(width=width, precision=precision), noisy, device, options)
    iterate = recovery.iteration()
    for _ in range(warmup):
        iterate()
    synchronize(device)
    memory = (torch.cuda.max_memory_allocated(device) - before) / 2**30 if device.type == "cuda" else None
    return iterate, memory


def time_rounds(device, iterates, iters, rounds=5):
    """Milliseconds per iteration of each function: the median over ``rounds`` rounds, each
    running every function in turn for ``iters / rounds`` iterations, so that a slow spell of the
    machine falls on every variant alike."""
    per_round = max(1, iters // rounds)
    samples = [[] for _ in iterates]
    for _ in range(rounds):
        for iterate, times in zip(iterates, samples):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(per_round):
                iterate()
            synchronize(device)
            times.append((time.perf_counter() - start) / per_round * 1000)
    return [float(np.median(times)) for times in samples]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="side of the square image")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {args.size}x{args.size}, width {args.width}, {args.iters} iterations")
    results, iterates = [], []
    for label, precision, options in variants(device):
        result = {"label": label, "precision": precision, "flags": options.flags(), "ms": None, "peak_gib": None}
        try:
            iterate, result["peak_gib"] = prepare_variant(device, args.size, args.width, precision, options)
        except Exception as exc:  # one variant failing (a capture, a compiler) must not hide the others
            result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            print(f"{label}: FAILED ({result['error']})", flush=True)
        else:
            iterates.append((result, iterate))
        results.append(result)
    timings = time_rounds(device, [iterate for _, iterate in iterates], args.iters)
    for (result, _), ms in zip(iterates, timings):
        result["ms"] = ms
        extra = f", peak memory {result['peak_gib']:.2f} GiB" if result["peak_gib"] is not None else ""
        print(f"{result['label']}: {ms:.2f} ms/iteration{extra}", flush=True)
    if args.json:
        write_json(args.json, {"device": describe_device(device), "torch": torch.__version__, "size": args.size,
                               "width": args.width, "iters": args.iters, "variants": results})
    baseline = results[0]["ms"]
    fast = next(r["ms"] for r in results if r["label"].startswith(FAST_LABEL))
    if baseline is None or fast is None:
        print("speedup: unknown (a variant failed)")
        return 1
    print(f"speedup: {baseline / fast:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
