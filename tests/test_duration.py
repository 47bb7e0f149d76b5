"""recovery.duration: the CPU step-time model, the note of a run that device auto put on the CPU,
and the refusal of a sweep far too long for the CPU."""

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models import SkipEncoderDecoder
from recovery import RecoveryConfig, RunSpec, run_recovery
from recovery.duration import (
    THREAD_EXPONENT, convolution_gmacs, cpu_fallback_note, describe_seconds, refuse_long_cpu_sweep,
    step_ms, sweep_cpu_seconds)
from recovery.problem import INPUT_CHANNELS
from sweep_helpers import forbid_runs
from test_nvidia import PYPI
from tiny import TINY_PROBLEM
from utils.errors import InputError

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="device auto takes the GPU here")


@pytest.mark.parametrize("height,width,network_width", [(64, 64, 8), (64, 96, 3)])
def test_the_multiply_adds_are_those_of_the_real_convolutions(height, width, network_width):
    network = SkipEncoderDecoder(INPUT_CHANNELS, 3, network_width)
    with FlopCounterMode(display=False) as counter:
        network(torch.rand(1, INPUT_CHANNELS, height, width))
    # The counter counts a multiply-add as two operations, and only the convolutions here.
    assert convolution_gmacs(height, width, network_width) * 2e9 == pytest.approx(counter.get_total_flops())


# The model's numbers, and the CPU time one thread measured at the same settings in the
# calibration (docs/duration.md): the model holds every calibration point within 32%.
@pytest.mark.parametrize("size,network_width,modelled,measured", [
    (64, 8, 9.9, 10.3),
    (128, 32, 72.2, 61.7),
    (256, 128, 2033.2, 2256.8),
    (512, 32, 1068.0, 1561.0),
    (512, 128, 8112.1, 9551.0),  # the paper's setting: 8.1 s an iteration, 14 days for 150,000
])
def test_step_time_model_on_a_few_settings(size, network_width, modelled, measured):
    assert step_ms(RecoveryConfig(width=network_width), size, size) == pytest.approx(modelled, abs=0.1)
    assert abs(modelled / measured - 1) < 0.32


def test_threads_divide_the_time_by_their_speedup():
    config = RecoveryConfig(width=32)
    one = step_ms(config, 256, 256)
    assert step_ms(config, 256, 256, threads=2) == pytest.approx(one / 2**THREAD_EXPONENT)
    assert step_ms(config, 256, 256, threads=16) < step_ms(config, 256, 256, threads=2) < one
    dip = dataclasses.replace(config, method="dip")
    assert step_ms(dip, 512, 512) < step_ms(config, 512, 512)  # no g, h, nor phi + s


@pytest.mark.parametrize("seconds,text", [(40, "40 s"), (720, "12 min"), (3.2 * 3600, "3.2 h"),
                                          (20 * 86400, "20.0 days"), (1500 * 86400, "1,500.0 days")])
def test_durations_read_as_a_person_reads_them(seconds, text):
    assert describe_seconds(seconds) == text


TINY_CONFIG = RecoveryConfig(**TINY_PROBLEM, num_iter=3, show_every=1)


@pytest.mark.parametrize("device_setting,device", [("cpu", "cpu"), ("auto", "cuda"), ("cuda", "cuda")])
def test_only_device_auto_on_the_cpu_gets_the_note(device_setting, device):
    assert cpu_fallback_note(RunSpec(device=device_setting, config=TINY_CONFIG), 64, 64, 3, torch.device(device)) is None


@needs_no_gpu
def test_a_run_that_device_auto_put_on_the_cpu_says_so_with_its_duration(tmp_path):
    lines = []
    run_recovery(RunSpec("run", str(tmp_path), "auto", TINY_CONFIG), progress=False, log=lines.append)
    threads = torch.get_num_threads()
    seconds = describe_seconds(3 * step_ms(RecoveryConfig(width=4), 64, 64, threads=threads) / 1000)
    assert [line for line in lines if line.startswith("note: no GPU")] == [
        f"note: no GPU visible (device auto): computing on the CPU, about {seconds} for 3 iterations at {threads} "
        "threads (estimated from step times on a 2-core CPU, docs/duration.md)"]
    assert lines.index(next(line for line in lines if line.startswith("device: cpu"))) < lines.index(
        next(line for line in lines if line.startswith("note: no GPU")))


def paper_like_runs(folder, count=4, num_iter=150000):
    """Runs of the paper's size (astronaut is 512x512) and width: a GPU's sweep."""
    config = RecoveryConfig(image="astronaut", width=128, num_iter=num_iter)
    return [RunSpec(f"run{number}", str(folder), "auto", dataclasses.replace(config, seed=number))
            for number in range(count)]


def test_a_sweep_for_a_gpu_is_refused_on_the_cpu_device_auto_fell_back_to(tmp_path):
    with pytest.raises(InputError) as caught:
        refuse_long_cpu_sweep("auto", paper_like_runs(tmp_path), threads=2, facts=PYPI)
    line = caught.value.for_command_line()
    days = describe_seconds(4 * 150000 * step_ms(RecoveryConfig(width=128), 512, 512, threads=2) / 1000)
    assert line == (f"--device auto found no GPU, and the runs left would take about {days} on this CPU at 2 "
                    "threads (estimated from step times on a 2-core CPU, docs/duration.md); run them where there is "
                    "a GPU, or give --device cpu to run them here")


def test_a_cpu_given_or_a_short_sweep_is_not_refused(tmp_path):
    refuse_long_cpu_sweep("cpu", paper_like_runs(tmp_path), threads=2, facts=PYPI)  # a choice, not a fallback
    refuse_long_cpu_sweep("auto", paper_like_runs(tmp_path, num_iter=100), threads=2, facts=PYPI)  # 10 minutes


def test_only_the_iterations_left_are_counted(tmp_path):
    done = RunSpec("done", str(tmp_path), "cpu", dataclasses.replace(TINY_CONFIG, num_iter=2))
    run_recovery(done, progress=False, log=lambda line: None)
    assert sweep_cpu_seconds([done], threads=1) == 0
    longer = dataclasses.replace(done, config=dataclasses.replace(done.config, num_iter=10))
    assert sweep_cpu_seconds([longer], threads=1) == pytest.approx(8 * step_ms(RecoveryConfig(width=4), 64, 64) / 1000)


@needs_no_gpu
def test_reproduce_refuses_the_papers_sweep_on_this_cpu_in_one_line(tmp_path, capsys, monkeypatch, sample_data_dir):
    from reproduce import main  # the command line that starts sweeps

    forbid_runs(monkeypatch)
    assert main(["--figure", "3", "--data_dir", str(sample_data_dir), "--out_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reproduce.py: error: --device auto found no GPU, and the runs ")
    assert not (tmp_path / "out").exists()
