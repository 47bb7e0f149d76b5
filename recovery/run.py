"""One run, start to end: check everything (touching nothing), prepare, fit, write the outputs.

The data path is a straight line: the image becomes an ``Observation`` (``observation.py``), the
observation a ``Recovery`` problem (``problem.py``), and the loop (``loop.py``) fits it over one
``RunContext``: a ``RunState`` (``state.py``) records its progress, and ``outputs.py`` writes what it
found.
"""

import dataclasses
import os

import torch

from utils.atomic_files import check_writable_folder, make_folder
from utils.errors import InputError

from .devices import check_options, describe_device, out_of_memory_as_failure, resolve_device
from .duration import cpu_fallback_note
from .evaluation import Evaluation
from .lock import RunLock
from .loop import RunContext, describe_divergence, finish, fit
from .memory import available_bytes, estimate_peak_bytes, memory_shortfall
from .observation import Observation, prepare_observation
from .outputs import RunFiles, write_observation, write_settings
from .padding import network_sides
from .problem import Recovery
from .refinement import ImpulseDetector
from .settings import RecoveryConfig, RunSpec
from .state import RunState
from .stopping import StopRequest
from .tiling import largest_fitting_tile


@dataclasses.dataclass
class RunReport:
    """What a call of :func:`run_recovery` did.

    ``state`` is the run's :class:`RunState` as it ended (history, last, final and best images,
    iterations done, wall time); ``impulses`` the estimated s = g*g - h*h (``C x H x W float32``,
    about noisy - clean, so within about [-1, 1]; None for the DIP methods or a diverged run).
    ``stop_signal`` is the signal that stopped the run early (its checkpoint saved), else None;
    ``divergence`` the line that says it stopped at a logged iteration whose loss or output is inf
    or nan (``loop.describe_divergence``; no images written then), else None.
    """

    spec: RunSpec
    files: RunFiles
    observation: Observation
    state: RunState
    impulses: object
    stop_signal: int
    divergence: str

    @property
    def interrupted(self):
        return self.stop_signal is not None

    @property
    def diverged(self):
        return self.divergence is not None

    @property
    def last(self):
        """The recovered image, last iterate: ``C x H x W float32`` in [0, 1] (C 1 or 3), or None."""
        return self.state.last


@dataclasses.dataclass
class _Checked:
    """What checking a run found: the spec with absolute paths, the device, the state read from
    the checkpoint to resume (or None), and the observation."""

    spec: RunSpec
    device: torch.device
    state: RunState
    observation: Observation


def run_recovery(spec, resume=False, overwrite=False, progress=True, log=print, check_memory=True, state=None):
    """Run (or, with ``resume``, continue) the run ``spec`` (a RunSpec) and write its outputs to
    ``<spec.out_dir>/<spec.ckpt>_*``; returns a :class:`RunReport`. With ``resume``, ``state`` may be
    the RunState the caller has read from the run's checkpoint already (``RunState.load``): it is
    not read again unless the file has changed since.

    Before anything is written, the run's peak memory is estimated (``recovery.memory``) and the run
    refused if the device has less available, unless ``check_memory`` is False.

    A stop signal (Ctrl-C, SIGTERM, SIGUSR1, SIGUSR2; in the main thread) stops the run after the
    current iteration and saves its checkpoint; the call then *returns*, with ``interrupted`` True,
    so that a caller running several recoveries should check it and stop (a second signal stops
    at once).

    :raises InputError: bad settings or input, a run that does not fit in memory, or the run in
        use by another process; nothing on disk has been touched then.
    :raises RunFailure: the device ran out of memory (building the problem or during the run); the last
        checkpoint is intact.
    :raises OutputError: an output could not be written (a full disk); the file it names, the
        checkpoint included, is as it was.
    """
    checked = check_run(spec, resume, overwrite, check_memory, state)
    spec, files = checked.spec, RunFiles(checked.spec.out_dir, checked.spec.ckpt)
    make_folder(spec.out_dir)
    with RunLock(os.path.join(spec.out_dir, f"{spec.ckpt}.lock"), spec.ckpt), StopRequest() as stop, \
            out_of_memory_as_failure(checked.device):  # building the problem, the loop, the evaluation passes
        state = _state_under_lock(checked, files, resume, overwrite)
        context = prepare(checked, state, files, overwrite, stop, progress, log)
        _log_header(context)
        divergence = describe_divergence(context.state.history[-1]) if fit(context) else None
        impulses = finish(context, divergence)
    return RunReport(spec, files, checked.observation, context.state, impulses, stop.signal, divergence)


def check_run(spec, resume, overwrite, check_memory=True, state=None):
    """Everything that can be wrong with a run before it starts, checked without writing a byte:
    InputError naming the first problem, else a ``_Checked``. ``state``: as :func:`run_recovery`
    takes it."""
    spec = dataclasses.replace(spec, config=spec.config.with_absolute_paths())
    files = RunFiles(spec.out_dir, spec.ckpt)
    state = RunState.load(files.checkpoint, earlier=state) if resume else None
    if state is not None:
        # Before validating: a setting that differs from the checkpoint is the error to name, not
        # the clash it makes with the checkpoint's other settings.
        spec.config.check_resumable(state.config)
    spec.validate()
    device = resolve_device(spec.device)
    check_options(spec.options, device, spec.config)
    check_writable_folder(spec.out_dir, "`out_dir`")
    if state is not None:
        _check_resumable_state(state, spec.config, device)
    elif os.path.exists(files.checkpoint) and not overwrite:
        raise InputError(f"{files.checkpoint} exists: pass `resume` to continue that run, `overwrite` to start "
                         f"it again, or another `ckpt`")
    # Checked before the image is resized: a large resize would fill the memory on its own.
    check_size = (lambda *shape: _check_memory(spec, device, *shape)) if check_memory else None
    observation = prepare_observation(spec.config, check_size)
    if state is not None:
        _check_same_observation_shape(state, observation)
    return _Checked(spec, device, state, observation)


def _check_memory(spec, device, channels, height, width):
    """InputError when the run on a ``height x width`` canvas would not fit in the memory ``device``
    has available, naming the largest ``tile`` that would (tiling is not automatic: it changes the
    answer, docs/tiling.md)."""
    available = available_bytes(device)
    estimate = lambda side_height, side_width: estimate_peak_bytes(  # noqa: E731
        spec.config, side_height, side_width, channels, device, spec.options)
    shortfall = memory_shortfall(estimate(height, width), available)
    if shortfall is None:
        return
    way = "`no_memory_check` starts it anyway"
    if spec.config.tile_index is None:
        tile = largest_fitting_tile(lambda side: memory_shortfall(estimate(side, side), available) is None,
                                    height, width, spec.config.tile_overlap)
        tile_way = (f"`tile` {tile} recovers it in tiles that fit" if tile is not None else
                    "not even the smallest `tile` fits")
        way = f"{tile_way}; {way}"
    raise InputError(f"the run {shortfall} ({way})")


def _check_resumable_state(state, config, device):
    if config.num_iter < state.iteration:
        raise InputError(f"the run has done {state.iteration} iterations already; `num_iter` cannot be less")
    # The noise generator's state is device-specific: a CPU state cannot drive a CUDA generator.
    if state.problem["generator_device"] != device.type:
        kind = state.problem["generator_device"]
        raise InputError(f"the run was made on a {kind} device; resume it on one (`device` {kind})")


def describe_shape(shape):
    """An image's ``C x H x W`` shape as a person reads it: ``grayscale 64x48``, ``3-channel 64x48``."""
    channels, height, width = shape
    return f"{'grayscale' if channels == 1 else f'{channels}-channel'} {width}x{height}"


def _check_same_observation_shape(state, observation):
    """The network, g and h of a checkpoint fit images of its shape only: InputError when the image
    gives another (the file was replaced, by one of other channels or size)."""
    made = tuple(state.problem["y"].shape[1:])
    if made != observation.noisy.shape:
        raise InputError(f"the run was made on a {describe_shape(made)} image, and the image is now "
                         f"{describe_shape(observation.noisy.shape)}: resume it with the image it "
                         f"was made with, or start it again (`overwrite`)")


def _state_under_lock(checked, files, resume, overwrite):
    """The state to resume: the checked one, read again if the checkpoint changed between the
    check and the lock (another process ran meanwhile); a fresh run re-checks that no checkpoint
    appeared."""
    if not resume:
        if os.path.exists(files.checkpoint) and not overwrite:
            raise InputError(f"{files.checkpoint} appeared while the run was starting; pass `resume` to continue it")
        return None
    state = RunState.load(files.checkpoint, earlier=checked.state)
    if state is not checked.state:
        _check_resumable_state(state, checked.spec.config, checked.device)
    return state


def prepare(checked, state, files, overwrite, stop, progress=True, log=print):
    """Write the run's settings and observation, build the problem and restore ``state`` (the
    RunState to resume, or None); returns the run's ``RunContext``."""
    spec = checked.spec
    files.remove_temporaries()
    if overwrite and state is None:
        files.remove_all()
    if spec.options.threads is not None:
        torch.set_num_threads(spec.options.threads)
    write_settings(files, spec, checked.device)
    if checked.device.type == "cuda":
        # The closing line's peak is this run's, not that of an earlier run of the process (a sweep).
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(checked.device)
    problem = Recovery(spec.config, checked.observation.noisy, checked.device, spec.options)
    if state is not None:
        problem.load_state_dict(state.problem)
        state = dataclasses.replace(state, config=spec.config)
    else:
        state = RunState(config=spec.config)
        write_observation(files, checked.observation)
    if (name := describe_device(checked.device)) not in state.devices:
        state.devices.append(name)
    detector = ImpulseDetector.for_run(spec.config, problem.y[0], checked.observation.bit_depth,
                                       refined=not spec.options.no_refined)
    return RunContext(spec, checked.device, files, checked.observation, problem, state,
                      Evaluation(problem, state.evaluation), detector, stop, log, progress,
                      saved_iteration=state.last_iteration if state.history else None)


def _log_header(context):
    observation, config, options, log = context.observation, context.spec.config, context.spec.options, context.log
    device, state = context.device, context.state
    h, w = observation.noisy.shape[1:]
    log(f"image: {observation.description}, {w}x{h}")
    for note in observation.notes:
        log(f"note: {note}")
    log(f"device: {device}" + (f", threads: {torch.get_num_threads()}" if device.type == "cpu" else "")
        + f"; method: {config.method}; network: width {config.width}, {context.problem.num_parameters:,} parameters; "
        f"{options}, precision: {config.precision}"
        + (" (TF32 exists on CUDA only: float32 here)" if config.precision == "tf32" and device.type != "cuda" else ""))
    canvas_height, canvas_width = network_sides(h, w)  # what each iteration computes on
    if (note := cpu_fallback_note(context.spec, canvas_height, canvas_width, config.num_iter - state.iteration,
                                  device)) is not None:
        log(note)
    if observation.clean is not None:
        log(f"noisy input: PSNR {observation.noisy_psnr:.2f} dB at nlevel {config.nlevel}"
            + ("" if config.noise == RecoveryConfig.noise else f", {config.noise}"))
    if state.iteration:
        log(f"resuming at iteration {state.iteration} of {config.num_iter}")
        if state.evaluation is None:
            log(f"note: the checkpoint has no evaluation averages (format version 1); they start at iteration "
                f"{state.iteration}")
