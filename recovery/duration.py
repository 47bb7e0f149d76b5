"""How long recovery runs take on a CPU: the step-time model behind the note that a run on a CPU
chosen by ``device`` auto logs, and behind the refusal of a sweep far too long for a CPU.

One eager iteration (forward, backward, both updates) costs, in milliseconds,

    ``OVERHEAD_MS + MS_PER_GMAC * convolution GMACs + MS_PER_MIB * saved-activation MiB``

over a thread-count speedup ``threads ** THREAD_EXPONENT``: the convolutions' multiply-adds (the
compute, quadratic in the width) and the bytes autograd saves (the memory traffic of every
elementwise layer, linear in it; ``recovery.memory.saved_activation_bytes``), plus a fixed cost per
iteration. The constants are fitted to step times measured on this project's 2-core development
CPU (docs/duration.md has the table, the command and how busy the machine was); another CPU is
faster or slower by its own factor, so the figures are estimates of magnitude: what tells a
minute from a day.
"""

import os

import torch
from torch import nn

from models import SkipEncoderDecoder
from utils.errors import InputError

from .devices import resolve_device
from .memory import saved_activation_bytes
from .observation import prepare_observation
from .outputs import RunFiles
from .padding import network_sides
from .problem import INPUT_CHANNELS
from .state import RunState

# Fitted to the CPU time of one thread on the 2-core development CPU, PyTorch 2.14.1, eager fp32
# step, 64x64 to 512x512, widths 8 to 128: every point within 32% (docs/duration.md).
OVERHEAD_MS = 5.5
MS_PER_GMAC = 75.8
MS_PER_MIB = 1.04
# T threads are T ** THREAD_EXPONENT times faster than one: 1.33x from one thread to two at
# 128x128, width 32 on that CPU (docs/duration.md); many-core CPUs may scale better.
THREAD_EXPONENT = 0.4
CALIBRATED_ON = "a 2-core CPU"
# A sweep estimated to take longer than this on the CPU that `device` auto fell back to is refused.
SWEEP_LIMIT_HOURS = 6


def convolution_gmacs(height, width, network_width, channels=3):
    """Multiply-adds (billions) of the network's convolutions in one forward pass on a
    ``height x width`` input: each convolution's output pixels times its input channels, output
    channels and kernel area."""
    with torch.device("meta"):
        net = SkipEncoderDecoder(INPUT_CHANNELS, channels, network_width)
    total, scale, pixels = 0, net.body, height * width
    while scale is not None:
        # The skip branch and the merge compute at the scale's side, the deeper branch at half of it.
        for layers, at in ((scale.skip, pixels), (scale.down, pixels // 4), (scale.merge, pixels)):
            for conv in (m for m in layers.modules() if isinstance(m, nn.Conv2d)):
                total += at * conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        scale, pixels = scale.inner, pixels // 4
    head = net.head[0]
    total += height * width * head.in_channels * head.out_channels
    return total / 1e9


def step_ms(config, height, width, threads=1):
    """Estimated milliseconds of one eager iteration of the run of ``config`` (a ``RecoveryConfig``:
    what counts is its ``width`` and ``method``; the model is of float32 steps) on a ``height x
    width`` image (sides multiples of 32), computed by ``threads`` CPU threads."""
    activations = saved_activation_bytes(height, width, config.width, config.method) / 2**20
    work = OVERHEAD_MS + MS_PER_GMAC * convolution_gmacs(height, width, config.width) + MS_PER_MIB * activations
    return work / max(threads, 1) ** THREAD_EXPONENT


def describe_seconds(seconds):
    """``40 s``, ``12 min``, ``3.2 h``, ``5.1 days``: a duration as a person reads it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def cpu_fallback_note(spec, height, width, iterations, device):
    """The log line of a run whose ``device`` auto (``spec.device``) became the CPU ``device``:
    that it computes on the CPU, and about how long its ``iterations`` left take there (at the
    threads PyTorch uses now); None for any other run."""
    if spec.device != "auto" or device.type != "cpu":
        return None
    threads = torch.get_num_threads()
    seconds = iterations * step_ms(spec.config, height, width, threads) / 1000
    return (f"note: no GPU visible (device auto): computing on the CPU, about {describe_seconds(seconds)} for "
            f"{iterations:,} iterations at {threads} threads (estimated from step times on {CALIBRATED_ON}, "
            f"docs/duration.md)")


def _iterations_done(spec):
    path = RunFiles(spec.out_dir, spec.ckpt).checkpoint
    return RunState.load(path).iteration if os.path.exists(path) else 0


def sweep_cpu_seconds(specs, threads):
    """Estimated seconds the runs of the RunSpecs ``specs`` take on this CPU at ``threads`` threads,
    one after another, counting only the iterations each has left (its checkpoint, if any, says how
    many are done). Loads each image once for the size of its network's canvas."""
    sides, total = {}, 0.0
    for spec in specs:
        left = spec.config.num_iter - _iterations_done(spec)
        if left <= 0:
            continue
        config = spec.config
        key = (config.image, config.noisy, config.resize, config.data_dir, config.tile, config.tile_overlap,
               config.tile_index)
        if key not in sides:
            sides[key] = network_sides(*prepare_observation(spec.config).noisy.shape[1:])
        height, width = sides[key]
        total += left * step_ms(spec.config, height, width, threads) / 1000
    return total


def refuse_long_cpu_sweep(device, specs, threads=None, facts=None):
    """InputError when ``device`` auto finds no GPU and the RunSpecs ``specs`` would take more than
    ``SWEEP_LIMIT_HOURS`` on this CPU at ``threads`` threads (None: PyTorch's count): a sweep
    meant for a GPU that would quietly run for weeks. A ``device`` given as cpu is a choice and is
    not refused; ``facts`` (a ``GpuFacts``) stands for this machine's."""
    if device != "auto" or resolve_device("auto", facts).type != "cpu":
        return
    for spec in specs:
        spec.validate()  # a bad setting is the error to name, not the time it would take
    threads = threads or torch.get_num_threads()
    seconds = sweep_cpu_seconds(specs, threads)
    if seconds > SWEEP_LIMIT_HOURS * 3600:
        raise InputError(f"`device` auto found no GPU, and the runs left would take about {describe_seconds(seconds)} "
                         f"on this CPU at {threads} threads (estimated from step times on {CALIBRATED_ON}, "
                         f"docs/duration.md); run them where there is a GPU, or give `device` cpu to run them here")
