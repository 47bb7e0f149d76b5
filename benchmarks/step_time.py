"""Time the recovery iteration: the reference's eager fp32 step against the fast step.

    python benchmarks/step_time.py --device cpu --size 128 --width 32 --iters 20
    python benchmarks/step_time.py --device cuda --size 512 --width 128 --iters 200

Prints one line per variant (ms per iteration; peak GPU memory on CUDA), then
``speedup: <ratio>x`` of the fast step over eager fp32. Both variants run in this one process on
the same random problem. On CUDA the fast step is the CUDA-graph step in TF32 with channels-last
activations; on other devices, where graphs do not exist, it is the eager step itself.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from graph_step import CudaGraphStep  # noqa: E402
from recovery import Recovery, RecoveryConfig, describe_device, resolve_device  # noqa: E402


def variants(device):
    """(name, precision, step, channels_last) of the variants to time; the first is the baseline."""
    if device.type == "cuda":
        return [
            ("eager fp32", "fp32", "eager", False),
            ("eager tf32 (reference)", "tf32", "eager", False),
            ("graph tf32", "tf32", "graph", False),
            ("fast: graph tf32 channels-last", "tf32", "graph", True),
            ("graph bf16 channels-last", "bf16", "graph", True),
        ]
    # CUDA graphs are CUDA-only, and channels-last was slower on a 2-core CPU (54.6 against
    # 50.3 ms at 128x128, width 32), so elsewhere the fast step is the eager step.
    return [
        ("eager fp32", "fp32", "eager", False),
        ("fast: eager fp32 (no CUDA graphs off CUDA)", "fp32", "eager", False),
        ("eager fp32 channels-last", "fp32", "eager", True),
    ]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_variant(device, size, width, iters, precision, step, channels_last, warmup=5):
    """Milliseconds per iteration and peak GPU memory (GiB, CUDA only) of one variant."""
    noisy = np.random.default_rng(0).random((3, size, size)).astype(np.float32)
    config = RecoveryConfig(width=width, precision=precision)
    recovery = Recovery(config, noisy, device, channels_last=channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    iterate = CudaGraphStep(recovery) if step == "graph" else recovery.step
    for _ in range(warmup):
        iterate()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        iterate()
    synchronize(device)
    ms = (time.perf_counter() - start) / iters * 1000
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return ms, memory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="side of the square image")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {args.size}x{args.size}, width {args.width}, {args.iters} iterations")
    results = []
    for label, precision, step, channels_last in variants(device):
        ms, memory = time_variant(device, args.size, args.width, args.iters, precision, step, channels_last)
        results.append((label, ms))
        extra = f", peak memory {memory:.2f} GiB" if memory is not None else ""
        print(f"{label}: {ms:.2f} ms/iteration{extra}", flush=True)
    baseline = results[0][1]
    fast = next(ms for label, ms in results if label.startswith("fast"))
    print(f"speedup: {baseline / fast:.2f}x")


if __name__ == "__main__":
    main()
