import os

import pytest
import torch

from benchmarks.memory_peak import measure_cpu, run_command
from models import SkipEncoderDecoder, SparseCorruption
from recovery import RecoveryConfig, StepOptions
from recovery.memory import (
    GIB, INPUT_CHANNELS, PROCESS_OVERHEAD_BYTES, available_bytes, cuda_available, estimate_peak_bytes, estimate_terms,
    memory_shortfall, saved_activation_bytes)
from utils.errors import InputError

IMAGE_BYTES = 3 * 4  # one float32 value per channel of a 3-channel image, per pixel


def problem(network_width, method="ours", alg="sgd"):
    """The settings the estimates read, the others their defaults (a float32 run)."""
    return RecoveryConfig(width=network_width, method=method, alg=alg, precision="fp32")


def autograd_saved_bytes(height, width, network_width, method, precision, channels=3):
    """Bytes of the activations that autograd really keeps for one forward pass of the problem:
    the distinct storages of every 4-D batch-of-one image-sized tensor saved in the graph, less the
    observation y and the parameters g and h (counted by other terms)."""
    torch.manual_seed(0)
    net = SkipEncoderDecoder(INPUT_CHANNELS, channels, network_width).train()
    z = torch.rand(1, INPUT_CHANNELS, height, width) * 0.1
    y = torch.rand(1, channels, height, width)
    corruption = SparseCorruption((1, channels, height, width), 1e-5) if method == "ours" else None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False):
        phi = net(z + torch.randn(z.shape) / 30)
    phi = phi.float()
    prediction = phi + corruption() if corruption is not None else phi
    loss = (torch.nn.L1Loss() if method == "dip-l1" else torch.nn.MSELoss())(prediction, y)
    counted_elsewhere = {y.untyped_storage().data_ptr()}
    if corruption is not None:
        counted_elsewhere |= {p.untyped_storage().data_ptr() for p in corruption.parameters()}
    storages, visited, pending = {}, set(), [loss.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        for name in dir(node):
            saved = getattr(node, name) if name.startswith("_saved_") else None
            # Not a 1x1 convolution's weight: a one-channel head's is 1 x n x 1 x 1.
            image_sized = isinstance(saved, torch.Tensor) and saved.dim() == 4 and saved.shape[2:] != (1, 1)
            if image_sized and saved.shape[0] == 1:
                storage = saved.untyped_storage()
                if storage.data_ptr() not in counted_elsewhere:
                    storages[storage.data_ptr()] = storage.nbytes()
        pending.extend(next_node for next_node, _ in node.next_functions)
    return sum(storages.values())


@pytest.mark.parametrize("height,width", [(64, 64), (64, 96)])
@pytest.mark.parametrize("network_width", [3, 8])
@pytest.mark.parametrize("method", ["ours", "dip", "dip-l1"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_saved_activations_are_what_autograd_saves(height, width, network_width, method, precision):
    expected = autograd_saved_bytes(height, width, network_width, method, precision)
    assert saved_activation_bytes(height, width, network_width, method, precision) == expected


@pytest.mark.parametrize("method", ["ours", "dip", "dip-l1"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_grayscale_image_saves_what_autograd_saves_for_one_channel(method, precision):
    expected = autograd_saved_bytes(64, 96, 8, method, precision, channels=1)
    assert saved_activation_bytes(64, 96, 8, method, precision, channels=1) == expected
    assert expected < autograd_saved_bytes(64, 96, 8, method, precision)


@pytest.mark.parametrize("network_width", [16, 128])
@pytest.mark.parametrize("method", ["ours", "dip"])
def test_estimate_grows_with_pixels_linearly_above_the_fixed_terms(network_width, method):
    def per_pixel(side):
        terms = estimate_terms(problem(network_width, method), side, side)
        return (sum(terms.values()) - terms["process"] - terms["network state"]) / side**2

    # Only the reflection pads' borders make it less than exactly linear.
    assert per_pixel(512) == pytest.approx(per_pixel(2048), rel=0.01)
    assert per_pixel(512) > per_pixel(2048)
    sizes = [estimate_peak_bytes(problem(network_width, method), side, side) for side in (64, 256, 512, 1024)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_estimate_grows_with_width(method):
    sizes = [estimate_peak_bytes(problem(width, method), 256, 256) for width in (1, 16, 32, 64, 128)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


@pytest.mark.parametrize("alg", ["sgd", "adam"])
@pytest.mark.parametrize("height,width", [(64, 64), (256, 512)])
def test_ours_adds_g_h_and_its_prediction_over_dip(alg, height, width):
    ours = estimate_terms(problem(32, "ours", alg), height, width)
    dip = estimate_terms(problem(32, "dip", alg), height, width)
    pixels = height * width
    # g, h and their gradients (and Adam's two moments of each), plus the prediction phi + s
    # that the loss keeps (for dip the loss keeps phi itself, already saved by the sigmoid).
    corruption = (4 + 4 * (alg == "adam")) * IMAGE_BYTES * pixels
    assert ours["corruption"] == corruption and dip["corruption"] == 0
    assert sum(ours.values()) - sum(dip.values()) == corruption + IMAGE_BYTES * pixels


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_adam_adds_two_moments_per_parameter(method):
    sgd = estimate_peak_bytes(problem(16, method, "sgd"), 128, 128)
    adam = estimate_peak_bytes(problem(16, method, "adam"), 128, 128)
    parameters = sum(p.numel() for p in SkipEncoderDecoder(INPUT_CHANNELS, 3, 16).parameters())
    g_and_h = 2 * 3 * 128 * 128 if method == "ours" else 0
    assert adam - sgd == 2 * 4 * (parameters + g_and_h)


def test_bf16_halves_most_activations():
    fp32 = saved_activation_bytes(512, 512, 64, precision="fp32")
    bf16 = saved_activation_bytes(512, 512, 64, precision="bf16")
    assert 0.5 * fp32 < bf16 < 0.75 * fp32  # the pads keep float32 copies


def test_the_run_that_was_killed_is_refused():
    # 3072x3072 at width 128 grew past 24 GB on a 24 GiB machine before the OOM killer ended it.
    assert estimate_peak_bytes(problem(128), 3072, 3072) > 20 * GIB


@pytest.mark.parametrize("height,width", [(100, 128), (32, 32), (64, 48)])
def test_sides_the_network_cannot_take_are_refused(height, width):
    with pytest.raises(ValueError, match="multiples of 32"):
        estimate_peak_bytes(problem(16), height, width)


def test_real_run_peak_is_within_a_quarter_of_its_estimate(tmp_path):
    command = run_command(128, 16, "ours", "sgd", "fp32", "cpu", 2, str(tmp_path))
    status, peak = measure_cpu(command, tmp_path / "log.txt")
    assert status == 0, (tmp_path / "log.txt").read_text()[-2000:]
    estimate = estimate_peak_bytes(problem(16), 128, 128)
    assert abs(estimate / peak - 1) <= 0.25, f"estimated {estimate / 2**20:.0f} MiB, measured {peak / 2**20:.0f} MiB"


def meminfo_total():
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemTotal:"))


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="reads Linux's /proc/meminfo")
def test_cpu_available_memory_is_positive_and_at_most_the_total():
    available = available_bytes("cpu")
    assert 0 < available <= meminfo_total()
    assert available_bytes(torch.device("cpu")) > 0


def fake_system(tmp_path, fstype, files, cgroup_line, parent_files=()):
    """A /proc/self and cgroup mount under tmp_path: the process in cgroup /job, ``files`` in it
    and ``parent_files`` in the mount's root above it."""
    mount = tmp_path / "cgroup"
    (mount / "job").mkdir(parents=True)
    for name, text in files.items():
        (mount / "job" / name).write_text(text)
    for name, text in dict(parent_files).items():
        (mount / name).write_text(text)
    proc = tmp_path / "proc"
    proc.mkdir()
    options = "rw,memory" if fstype == "cgroup" else "rw"
    (proc / "mountinfo").write_text(f"40 31 0:38 / {mount} rw,relatime - {fstype} {fstype} {options}\n")
    (proc / "cgroup").write_text(cgroup_line + "\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: {64 * 2**20} kB\nMemAvailable: {32 * 2**20} kB\n")  # 64 GiB, 32 free
    return str(meminfo), str(proc)


@pytest.mark.parametrize("fstype,files,cgroup_line,expected_gib", [
    ("cgroup2", {"memory.max": f"{8 * GIB}\n", "memory.current": f"{3 * GIB}\n"}, "0::/job", 5),
    ("cgroup2", {"memory.max": "max\n", "memory.current": f"{3 * GIB}\n"}, "0::/job", 32),
    ("cgroup2", {"memory.max": f"{40 * GIB}\n", "memory.current": f"{1 * GIB}\n"}, "0::/job", 32),
    ("cgroup", {"memory.limit_in_bytes": f"{6 * GIB}\n", "memory.usage_in_bytes": f"{2 * GIB}\n"},
     "4:memory:/job", 4),
    ("cgroup", {"memory.limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "1\n"},
     "4:memory:/job", 32),
])
def test_cgroup_limit_lowers_the_cpu_memory_available(tmp_path, fstype, files, cgroup_line, expected_gib):
    meminfo, proc = fake_system(tmp_path, fstype, files, cgroup_line)
    assert available_bytes("cpu", meminfo=meminfo, proc_self=proc) == expected_gib * GIB


def test_a_parent_cgroup_limit_counts_too(tmp_path):
    files = {"memory.max": "max\n", "memory.current": f"{1 * GIB}\n"}
    parent = {"memory.max": f"{10 * GIB}\n", "memory.current": f"{7 * GIB}\n"}
    meminfo, proc = fake_system(tmp_path, "cgroup2", files, "0::/job", parent)
    assert available_bytes("cpu", meminfo=meminfo, proc_self=proc) == 3 * GIB


def test_unknown_cpu_memory_is_none(tmp_path):
    assert available_bytes("cpu", meminfo=str(tmp_path / "absent"), proc_self=str(tmp_path)) is None


@pytest.mark.parametrize("estimate,available", [(1 * GIB, 2 * GIB), (2 * GIB, 2 * GIB), (50 * GIB, None)])
def test_no_shortfall_when_it_fits_or_nothing_is_known(estimate, available):
    assert memory_shortfall(estimate, available) is None


def test_shortfall_names_the_gibibytes_and_the_fixes():
    sentence = memory_shortfall(21.3 * GIB, 18.2 * GIB)
    assert "\n" not in sentence
    assert sentence.startswith("needs about 21.3 GiB, 18.2 GiB available")
    # The settings are marked as InputError marks them: flags on the command line.
    line = InputError(sentence).for_command_line()
    assert all(fix in line for fix in ("--resize", "smaller --width", "another --device"))


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_cuda_estimate_leaves_out_what_stays_on_the_host(method):
    cpu = estimate_terms(problem(32, method), 256, 256, device="cpu")
    cuda = estimate_terms(problem(32, method), 256, 256, device="cuda")
    # The process's own memory and the clean, last, final and best images are host memory.
    host = PROCESS_OVERHEAD_BYTES + 4 * IMAGE_BYTES * 256 * 256
    assert sum(cpu.values()) - sum(cuda.values()) == host


@pytest.mark.parametrize("method", ["ours", "dip"])
def test_the_graph_step_adds_its_pool_and_the_evaluation_pass_on_cuda(method):
    eager = estimate_terms(problem(128, method), 512, 512, device="cuda")
    graph = estimate_terms(problem(128, method), 512, 512, device="cuda", options=StepOptions(step="graph"))
    assert {name: graph[name] for name in eager} == eager
    parameters = sum(p.numel() for p in SkipEncoderDecoder(INPUT_CHANNELS, 3, 128).parameters())
    gradients = 4 * parameters + (2 * IMAGE_BYTES * 512 * 512 if method == "ours" else 0)
    # One more iteration in the graph's private pool; a forward pass's largest layer, input and
    # output at width + 4 skip channels, that cannot reuse the warm-up's blocks.
    assert graph["graph pool"] == eager["saved activations"] + eager["backward transient"] + gradients
    assert graph["evaluation pass"] == 2 * (128 + 4) * 512 * 512 * 4
    # Where there is no graph, nothing is added.
    cpu = estimate_terms(problem(128, method), 512, 512, device="cpu", options=StepOptions(step="graph"))
    assert cpu == estimate_terms(problem(128, method), 512, 512)


def test_what_the_process_has_cached_on_a_gpu_is_available_to_the_next_run():
    # A 16 GB card after one run of a sweep: the driver reports 2 GiB free, but this process's
    # allocator holds 12 GiB, of which only 0.5 GiB are live tensors.
    assert cuda_available(free=2 * GIB, reserved=12 * GIB, allocated=GIB // 2) == 13.5 * GIB
    assert cuda_available(free=2 * GIB, reserved=0, allocated=0) == 2 * GIB
