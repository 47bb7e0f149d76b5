"""A sweep on one machine with several GPUs: each run a local job (submitit's LocalExecutor, the
same ``run_task.RunTask`` as on Slurm), at most one per GPU at a time, each seeing only its GPU."""

import contextlib
import dataclasses
import os
import signal
import time

import torch

from recovery.stopping import StopRequest
from utils.atomic_files import printable_path
from utils.errors import InputError
from utils.optional import import_optional

from . import sweep
from .launch_settings import LaunchSettings
from .states import DONE, STOPPED, Outcome

# submitit's LocalExecutor ends a job at its timeout (2 min unless told): a run may take hours.
LOCAL_TIMEOUT_MIN = 60 * 24 * 365
LOCAL_POLL_S = 0.2


def local_job_devices(device):
    """One device per local job at a time: every visible GPU for ``auto``/``cuda`` when there are
    several, else just ``device`` (and runs stay in this process)."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return [device]


def physical_gpu(device):
    """The index CUDA_VISIBLE_DEVICES gives a job to make it see the GPU ``device`` (``cuda:K``,
    numbered among this process's visible GPUs) as its only one; None for a CPU."""
    if not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return index
    entries = [entry.strip() for entry in visible.split(",")]
    if not all(entry.isdigit() for entry in entries):
        raise InputError("CUDA_VISIBLE_DEVICES names GPUs by UUID: give them by index to share the runs among "
                         "them, or run on one (`device` cuda:N)")
    return int(entries[index])


@contextlib.contextmanager
def _starting_local_job():
    """What a local job inherits while it starts: this checkout on its PYTHONPATH (its task is
    unpickled by reference to this package), and SIGINT blocked. A Ctrl-C in the terminal then
    reaches this process alone, which stops every job with one SIGTERM; reaching submitit's
    controller of a job, it would SIGINT and then SIGKILL the job's run a second later."""
    from .run_task import REPOSITORY  # with submitit, which local jobs need

    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = REPOSITORY + ("" if path is None else os.pathsep + path)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = path


def submit_local_job(executor, gpu, function, *args):
    """Submit ``function(*args)`` to the LocalExecutor ``executor`` as a job that sees the GPU
    ``gpu`` (CUDA_VISIBLE_DEVICES's index) as its only one, or none when ``gpu`` is None."""
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, gpus_per_node=0 if gpu is None else 1,
                               visible_gpus=[] if gpu is None else [gpu])
    with _starting_local_job():
        return executor.submit(function, *args)


def _start_local_job(executor, spec, gpu):
    """Submit the run ``spec`` as a local job on the GPU ``gpu``, or on the CPU when ``gpu`` is None."""
    from .run_task import RunTask

    task = RunTask(dataclasses.replace(spec, device="cpu" if gpu is None else "cuda"), LaunchSettings().max_restarts)
    return submit_local_job(executor, gpu, task)


def _local_outcome(job, stopped):
    """The ``states.Outcome`` of a local job that has ended."""
    from .run_task import error_line

    if job.paths.result_pickle.exists():
        error = job.exception()
        return DONE if error is None else Outcome.failed(error_line(str(error)))
    if stopped:
        return STOPPED
    return Outcome.failed(f"the job ended without a result (log: {job.paths.stderr})")


def execute_locally(specs, device, progress=True, log=print, check_memory=True):
    """Bring every run to completion on this machine: in this process on ``device``, or one local
    job per GPU where ``device`` means several (:func:`local_job_devices`); a ``sweep.SweepOutcome``.
    ``check_memory`` False starts the runs made in this process without the memory check (a
    local job checks always)."""
    devices = local_job_devices(device)
    if len(devices) > 1:
        return execute_in_local_jobs(specs, devices, progress, log)
    return sweep.execute_runs(specs, progress, log, check_memory)


def execute_in_local_jobs(specs, devices, progress=True, log=print):
    """Bring every run to completion as local jobs (submitit's LocalExecutor), at most one per
    device of ``devices`` (``cuda:K``, or ``cpu`` for a CPU standing in for a GPU) at a time;
    returns a ``sweep.SweepOutcome``. With at most one run to make, it runs in this process.

    The first stop signal (Ctrl-C, SIGTERM...) starts no further job and stops the running ones,
    which save their checkpoints; a second one stops this process at once.
    """
    todo, reused = sweep.split_runs(specs)
    if len(todo) <= 1:
        return sweep.execute_runs(specs, progress, log)
    gpus = [physical_gpu(device) for device in devices]  # a device that cannot be given fails before any job
    submitit = import_optional("submitit", "one local job per GPU")
    for ckpt in reused:
        log(f"{printable_path(ckpt)}: complete, reused")
    folder = os.path.join(os.path.abspath(todo[0][0].out_dir), "local")
    executor = submitit.LocalExecutor(folder=os.path.join(folder, "%j"))
    log(f"{len(todo)} runs as local jobs, one at a time on each of {', '.join(devices)}; logs in {folder}/")
    waiting, free, running, outcomes = list(todo), list(zip(devices, gpus)), {}, {}
    stopped = False
    with StopRequest() as stop:
        while running or (waiting and not stop.requested):
            while waiting and free and not stop.requested:
                (spec, resume), (device, gpu) = waiting.pop(0), free.pop(0)
                job = _start_local_job(executor, spec, gpu)
                running[job] = spec, (device, gpu)
                log(f"{printable_path(spec.ckpt)}: {'resuming' if resume else 'starting'} on {device} "
                    f"(log: {job.paths.stdout})")
            if stop.requested and not stopped:
                stopped = True
                for job in running:
                    if not job.done():  # alive, so its id (the controller's pid) is still its own
                        os.kill(int(job.job_id), signal.SIGTERM)  # which the controller passes on to the run
            for job in [job for job in running if job.done()]:
                spec, slot = running.pop(job)
                free.append(slot)
                outcomes[spec.ckpt] = _local_outcome(job, stopped)
                log(outcomes[spec.ckpt].line(spec.ckpt))
            time.sleep(LOCAL_POLL_S)
    failures = {ckpt: outcome for ckpt, outcome in outcomes.items() if outcome.is_failure}
    return sweep.SweepOutcome(list(outcomes), reused, stopped, failures)
