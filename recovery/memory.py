"""How much memory a recovery run will need at its peak, and how much the device has: the
pre-flight check that refuses a run before its first iteration instead of letting the kernel's
OOM killer end it without a word.

The estimate (:func:`estimate_terms`, summed by :func:`estimate_peak_bytes`) counts what is alive
at the peak of one iteration, which is the start of the backward pass:

``saved activations``
    every tensor autograd keeps for the backward pass of the skip encoder-decoder, counted per
    scale (:func:`saved_activation_bytes` lists them); for a ``H x W`` image at width w it is
    about ``(113 + 16 w) H W`` float32 values, nearly all of them at the two finest scales.
``backward transient``
    while the backward pass goes through the finest scale, the gradient arriving at a layer and
    the one it sends on are alive beside the saved tensors (which are freed only as their layer
    is differentiated): ``BACKWARD_BUFFERS`` full-resolution float32 tensors of ``w + skip``
    channels (calibrated).
``network state``
    the parameters theta, their gradients, the evaluation's average of them and, with Adam, its
    two moment estimates; under bf16 also the bfloat16 copies of the weights that the
    convolutions keep.
``input``
    the fixed code z and the iteration's perturbation of it (``1 x 32 x H x W`` float32 each).
``observation``
    y and the evaluation's average of the outputs (``1 x C x H x W`` float32 each) and, on the
    CPU, the images the run keeps on the host beside them (clean, last, final, best).
``corruption`` (method ``ours`` only)
    g, h and their gradients (``1 x C x H x W`` float32 each); with Adam, their four moments.
``process``
    on the CPU, the peak resident size of a run too small for any of the above to matter: the
    interpreter, torch and the program's other imports, and what a run and its exit touch
    besides the tensors (calibrated, ``PROCESS_OVERHEAD_BYTES``).

``graph pool`` and ``evaluation pass`` (CUDA, ``step`` graph only)
    the captured iteration allocates from a private memory pool of its own, kept for the run's
    life, while the blocks its eager warm-up iterations took stay cached in the ordinary pool (the
    caching allocator frees no cached block while a capture is under way): one more iteration's
    saved activations, backward transient and gradients. The evaluation's forward passes without
    autograd cannot reuse the warm-up's blocks (they were taken on the warm-up's side stream):
    the largest layer's input and output at full resolution, ``2 (w + skip) H W`` float32 values.
    With the eager step every pass reuses what the last iteration freed.

The two calibrated constants come from peak resident sizes of real runs on a CPU
(``benchmarks/memory_peak.py``, table in ``docs/memory.md``). On CUDA the tensor terms are the
same; what the CUDA caching allocator adds (its rounding and fragmentation, cuDNN's workspaces) is
not measured yet, so there the estimate is a lower bound (docs/memory.md says how to measure it).
"""

import os

import torch

from models import SkipEncoderDecoder

from .problem import INPUT_CHANNELS
from .settings import StepOptions

GIB = 2**30
FLOAT32_BYTES = 4
BFLOAT16_BYTES = 2

# Calibrated on a 2-core CPU, PyTorch 2.14.1, --threads 1 (docs/memory.md has the table).
# Peak resident size of a run whose tensors are negligible (64x64, width 1: 937 MiB measured, its
# tensor terms 3 MiB): the interpreter, torch and the program's other imports, library and
# allocator state, the final images and panel, and the library pages touched at interpreter exit.
PROCESS_OVERHEAD_BYTES = 934 * 2**20
# Full-resolution (width + skip)-channel tensors alive beside the saved ones at the peak: the
# gradients flowing into and out of the finest-scale layer being differentiated. The runs of
# 512x512 and more imply 1.2 to 2.3 (2.0 at 1024x1024).
BACKWARD_BUFFERS = 2

# Full-resolution (width + skip)-channel float32 tensors alive at the peak of a forward pass
# without autograd: the largest layer's input and output.
EVALUATION_BUFFERS = 2


def _check_sides(height, width, num_scales):
    """ValueError unless the network takes a ``height x width`` input; the other settings are
    RecoveryConfig's, validated there."""
    multiple = 2**num_scales
    if height < 2 * multiple or width < 2 * multiple or height % multiple or width % multiple:
        raise ValueError(f"height and width must be multiples of {multiple} and at least {2 * multiple}, "
                         f"got {height}x{width}")


def _network(network_width, channels):
    """The network of the run, built on the meta device: its shape without its memory."""
    with torch.device("meta"):
        return SkipEncoderDecoder(INPUT_CHANNELS, channels, network_width)


def saved_activation_bytes(height, width, network_width, method="ours", precision="fp32", l1=False, channels=3):
    """Bytes of the tensors that autograd saves in one forward pass for the backward pass, for a
    ``1 x 32 x height x width`` input (sides multiples of 32). Per-channel statistics are left out
    (a few kilobytes).

    Per scale, at its side ``h x w`` (``h' x w'`` half of it) with ``c`` input channels (32 at
    the finest scale, the network width below), skip channels ``k`` and width ``n``:

    - the scale's input x, saved by its two reflection pads (not at the finest scale, where x
      is z plus noise and needs no gradient): ``c h w``;
    - the stride-2 convolution's padded input ``c (h + 2)(w + 2)`` and the 1x1 skip
      convolution's input, a copy that its zero-width reflection pad makes: ``c h w``;
    - the skip branch's BatchNorm and LeakyReLU inputs: ``2 k h w``;
    - the deeper branch at ``h' x w'``: two convolution outputs and two BatchNorm outputs (the
      inputs of BatchNorm and LeakyReLU), the pad input and the padded convolution input:
      ``5 n h' w' + n (h' + 2)(w' + 2)``;
    - the merge: the concatenation (BatchNorm input), the BatchNorm output (pad input), the padded
      convolution input, and for its 3x3 and 1x1 convolutions two conv outputs, two BatchNorm
      outputs, the LeakyReLU output (the 1x1 pad's input) and the 1x1 pad's copy:
      ``2 (k + n) h w + (k + n)(h + 2)(w + 2) + 6 n h w``.

    Upsampling and concatenation save nothing (their backward needs only shapes), and the
    coarsest scale's deeper output is not saved (only upsampled). Then the head: its 1x1
    convolution's input ``n H W`` and the sigmoid's output ``C H W`` (``channels``, the image's: 1
    or 3); the loss keeps the prediction (``ours``: phi + s, a new tensor) or, for an L1 loss, the
    residual: ``C H W``
    (none for ``dip``'s L2 loss in fp32, where the prediction is the sigmoid's output).

    Values are float32, or bfloat16 under ``bf16`` autocast except the pads' inputs: the CPU's
    autocast runs reflection padding in float32, so each pad saves a float32 copy of its input
    (x twice then, one copy per pad); the loss terms stay float32.
    """
    net = _network(network_width, channels)
    num_scales, skip = net.num_scales, net.body.skip[0].out_channels
    _check_sides(height, width, num_scales)
    bf16 = precision == "bf16"
    value = BFLOAT16_BYTES if bf16 else FLOAT32_BYTES  # an activation
    pad_input = FLOAT32_BYTES  # what a reflection pad saves of its input
    x_copies = 2 if bf16 else 1  # x as the two pads save it: one tensor, or one float32 cast each
    n, k = network_width, skip
    total = 0
    for scale in range(num_scales):
        h, w = height >> scale, width >> scale
        c = INPUT_CHANNELS if scale == 0 else n
        pixels, padded = h * w, (h + 2) * (w + 2)
        half, half_padded = pixels // 4, (h // 2 + 2) * (w // 2 + 2)
        if scale > 0:
            total += x_copies * c * pixels * pad_input
        total += (c * padded + c * pixels) * value  # stride-2 conv input, skip conv input
        total += 2 * k * pixels * value  # skip BatchNorm and LeakyReLU inputs
        total += (4 * n * half + n * half_padded) * value + n * half * pad_input  # deeper branch
        total += ((k + n) * pixels + (k + n) * padded + 5 * n * pixels) * value  # merge
        total += ((k + n) * pixels + n * pixels) * pad_input  # merge: the two pads' inputs
    pixels = height * width
    total += n * pixels * value + channels * pixels * value  # head conv input, sigmoid output
    if method == "ours" or l1 or method == "dip-l1" or bf16:
        # The loss keeps a float32 tensor of its own: phi + s, the L1 residual, or phi.float().
        total += channels * pixels * FLOAT32_BYTES
    return total


def estimate_terms(config, height, width, channels=3, device="cpu", options=StepOptions()):
    """The estimated peak memory of one run, by term (bytes; the module docstring explains each).

    :param RecoveryConfig config: the problem; what counts is its ``width``, ``method``, ``alg``
        (``adam`` keeps two moments per parameter), ``precision`` (``tf32`` stores float32, ``bf16``
        autocasts) and whether its loss is L1.
    :param int height: image height after cropping, a multiple of 32, at least 64.
    :param int width: image width likewise.
    :param int channels: image channels (1 for a grayscale image, 3 for colour).
    :param device: where the run computes: a ``torch.device`` or its name (``cpu``, ``cuda:0``, ``mps``).
    :param StepOptions options: how it computes; what counts is its ``step`` (``graph``: on CUDA the
        iteration replayed as a graph).
    :return: dict of term name to bytes, in the order of the module docstring.
    """
    network_width, method, precision = config.width, config.method, config.precision
    device_type = torch.device(device).type
    net = _network(network_width, channels)
    _check_sides(height, width, net.num_scales)
    skip = net.body.skip[0].out_channels
    bf16 = precision == "bf16"
    pixels = height * width
    image = channels * pixels * FLOAT32_BYTES  # one C x H x W float32 tensor
    adam = config.alg == "adam"
    parameters = sum(p.numel() for p in net.parameters())
    terms = {
        "saved activations": saved_activation_bytes(height, width, network_width, method, precision, config.uses_l1,
                                                    channels),
        # float32 also under bf16: the gradients pass through the float32 reflection pads.
        "backward transient": BACKWARD_BUFFERS * (network_width + skip) * pixels * FLOAT32_BYTES,
        "network state": parameters * (FLOAT32_BYTES * (3 + 2 * adam) + BFLOAT16_BYTES * bf16),
        "input": 2 * INPUT_CHANNELS * pixels * FLOAT32_BYTES,
        "observation": image * (6 if device_type == "cpu" else 2),
        "corruption": image * (4 + 4 * adam) if method == "ours" else 0,
    }
    if device_type == "cpu":
        terms["process"] = PROCESS_OVERHEAD_BYTES
    if device_type == "cuda" and options.step == "graph":
        gradients = parameters * FLOAT32_BYTES + (2 * image if method == "ours" else 0)
        terms["graph pool"] = terms["saved activations"] + terms["backward transient"] + gradients
        terms["evaluation pass"] = EVALUATION_BUFFERS * (network_width + skip) * pixels * FLOAT32_BYTES
    return terms


def estimate_peak_bytes(config, height, width, channels=3, device="cpu", options=StepOptions()):
    """Estimated peak memory (bytes) of a run on a ``height x width`` image: on the CPU its peak
    resident size, on CUDA its peak of device memory. The parameters are those of
    :func:`estimate_terms`."""
    return sum(estimate_terms(config, height, width, channels, device, options).values())


def _meminfo_available(meminfo="/proc/meminfo"):
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _read_number(path):
    """The integer in a cgroup file, or None if absent or ``max`` (no limit)."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _memory_cgroup_folders(proc_self):
    """``(folder, limit file, usage file)`` of the process's memory cgroup in each mounted
    hierarchy that has one (cgroup v2; v1's memory controller)."""
    try:
        with open(os.path.join(proc_self, "cgroup")) as f:
            memberships = [line.rstrip("\n").split(":", 2) for line in f if line.count(":") >= 2]
        with open(os.path.join(proc_self, "mountinfo")) as f:
            mounts = [line.split() for line in f]
    except OSError:
        return []
    folders = []
    for fields in mounts:
        if "-" not in fields:
            continue
        root, mount_point, fstype = fields[3], fields[4], fields[fields.index("-") + 1]
        if fstype == "cgroup2":
            files, paths = ("memory.max", "memory.current"), [p for _, c, p in memberships if c == ""]
        elif fstype == "cgroup" and "memory" in fields[-1].split(","):
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            paths = [p for _, c, p in memberships if "memory" in c.split(",")]
        else:
            continue
        for path in paths:
            relative = os.path.relpath(path, root)
            if not relative.startswith(".."):  # else the process's cgroup lies outside this mount
                folders.append((mount_point, os.path.normpath(os.path.join(mount_point, relative)), files))
    return folders


def _cgroup_headrooms(proc_self="/proc/self"):
    """Limit minus usage (bytes) of every limited level of the process's memory cgroups, from its
    own cgroup up to the mount's root."""
    headrooms = []
    for mount_point, folder, (limit_file, usage_file) in _memory_cgroup_folders(proc_self):
        while True:
            limit = _read_number(os.path.join(folder, limit_file))
            usage = _read_number(os.path.join(folder, usage_file))
            # v2 writes "no limit" as "max", v1 as a number near 2**63.
            if limit is not None and usage is not None and limit < 2**60:
                headrooms.append(max(limit - usage, 0))
            if folder == os.path.normpath(mount_point):
                break
            folder = os.path.dirname(folder)
    return headrooms


def available_bytes(device, meminfo="/proc/meminfo", proc_self="/proc/self"):
    """Memory (bytes) a run on ``device`` (a ``torch.device`` or its name) can still take, or None
    where it cannot be known (then there is nothing to check).

    CPU: the system's MemAvailable, or less where the process's memory cgroup (v2 or v1, any
    level up to its mount's root) has a lower limit than that minus its usage. CUDA: the free
    memory that the driver reports for that GPU, plus what this process's caching allocator holds
    unused (the driver counts it as taken: in a sweep, the runs before this one left it there).
    MPS: Metal's recommended working set minus what the driver has allocated. ``meminfo`` and
    ``proc_self`` name the files read on the CPU.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return cuda_available(torch.cuda.mem_get_info(device)[0], torch.cuda.memory_reserved(device),
                              torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return max(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory(), 0)
    if device.type != "cpu":
        return None
    available = _meminfo_available(meminfo)
    if available is None:
        return None
    return min([available] + _cgroup_headrooms(proc_self))


def cuda_available(free, reserved, allocated):
    """Bytes a run can take on a GPU whose driver reports ``free`` bytes free while this process's
    caching allocator has ``reserved`` bytes, ``allocated`` of them in tensors: the rest of what it
    reserved is cached for reuse, free to this run though the driver counts it as taken."""
    return free + reserved - allocated


def memory_shortfall(estimate, available):
    """The one-line refusal when an ``estimate`` of peak bytes exceeds the ``available`` bytes, or
    None when it fits or ``available`` is unknown (None). The settings it names are marked as
    ``InputError`` messages mark them (```width```: ``--width`` on the command line), so that the
    caller raises ``InputError(sentence)``, which adds the program's name and exit status."""
    if available is None or estimate <= available:
        return None
    return (f"needs about {estimate / GIB:.1f} GiB, {available / GIB:.1f} GiB available: "
            f"use `resize`, a smaller `width`, or another `device`")
