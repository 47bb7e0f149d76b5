"""The loop of one run: a few named phases over one context.

Each iteration *descends* (one gradient-descent step) and folds the step into the evaluation's
averages. At a logged iteration it *measures* (the loss and, with a clean image, the PSNR and SSIM
of the last iterate and of the final answer, and of every evaluation candidate at the last
iteration or with ``log_candidates``, computed on the device and brought to the host in one
transfer; the detection's columns with the run's impulse detector), *reports* (a history row, the
log line), at the run's last iteration *refines* (the refined answer, ``refinement.refine``, once)
and, every ``checkpoint_seconds`` of wall time and at the last iteration, *saves* (the checkpoint,
the history, the best image).
After the loop, :func:`finish` saves a stopped run and writes the final images.

Nothing but the measurement's one transfer waits for the device at a logged iteration: the
images stay on the device until a checkpoint needs them.
"""

import dataclasses
import math
import os
import time
import typing

import torch
from tqdm import tqdm

from utils.errors import InputError
from utils.metrics import psnr, psnr_tensor, ssim_tensor
from utils.optional import import_optional

from .devices import synchronize
from .evaluation import (CANDIDATES, DETECTION_FIELDS, ESTIMATE, FINAL, FINAL_LABEL, Evaluation, describe_detection,
                         detection, detection_row)
from .observation import Observation
from .outputs import RunFiles, write_best, write_final_images, write_history
from .problem import Recovery
from .refinement import REFINED_LABEL, ImpulseDetector, of_sign, refine, strong_impulses_extreme
from .settings import RunSpec
from .state import HISTORY_FIELDS, RunState
from .stopping import StopRequest


@dataclasses.dataclass
class RunContext:
    """What one run works with, from its first iteration to its outputs.

    ``images`` holds the device tensors of the logged images (``last``, ``final``, ``best``, each
    ``C x H x W float32`` in [0, 1]) until :meth:`keep_images` copies them into ``state``;
    ``clean`` is the clean image on the device and ``corrupted`` the elements the corruption
    changed (bool; both None without a clean image, ``corrupted`` too without a corruption term);
    ``detected`` the iteration, impulses and guide of the detector's call at the last iteration
    (:func:`impulses_found`: a run's end asks three times and detects once); ``saved_at`` the
    ``time.perf_counter()`` of the last checkpoint of this session (none yet: the first logged
    iteration saves, so that a run's first minutes are kept and an unwritable checkpoint shows at
    once) and ``saved_iteration`` the logged iteration of the newest checkpoint (None: none).
    """

    spec: RunSpec
    device: torch.device
    files: RunFiles
    observation: Observation
    problem: Recovery
    state: RunState
    evaluation: Evaluation
    detector: ImpulseDetector
    stop: StopRequest
    log: typing.Callable = print
    progress: bool = True
    clean: torch.Tensor = None
    corrupted: torch.Tensor = None
    detected: tuple = None
    images: dict = dataclasses.field(default_factory=dict)
    best_changed: bool = False
    saved_at: float = -math.inf
    saved_iteration: int = None

    def __post_init__(self):
        if self.observation.clean is not None:
            self.clean = torch.from_numpy(self.observation.clean).to(self.device)
        if self.observation.clean is not None and self.problem.corruption is not None:
            # The truly corrupted elements, for the detection: an impulse that drew the true value is none.
            self.corrupted = torch.from_numpy(self.observation.noisy != self.observation.clean).to(self.device)

    def keep_images(self):
        """Copy the logged images from the device into ``state`` (numpy), as a checkpoint and the
        outputs need them."""
        for name, image in self.images.items():
            setattr(self.state, name, image.cpu().numpy())
        self.images.clear()

    def save(self):
        """The checkpoint phase: the state (images included) as the checkpoint, the history, and
        the best image if a better one was logged since the last save."""
        self.keep_images()
        self.state.problem = self.problem.state_dict()
        self.state.evaluation = self.evaluation.state_dict()
        self.state.save(self.files.checkpoint)
        write_history(self.files, self.state)
        if self.best_changed:
            write_best(self.files, self.state, self.observation.bit_depth)
            self.best_changed = False
        self.saved_at, self.saved_iteration = time.perf_counter(), self.state.last_iteration


def fit(context):
    """Iterate until ``num_iter`` or a stop request, logging every ``show_every`` iterations and at
    the last. Returns True if the run diverged (a logged loss, or logged output, that is inf or
    nan), which stops it there with its last finite checkpoint kept."""
    state, config = context.state, context.state.config
    step = context.problem.stepper()  # after any saved state is loaded: a CUDA graph captures the tensors as they are
    with tqdm(total=config.num_iter, initial=state.iteration, disable=not context.progress, unit="it",
              dynamic_ncols=True) as bar:  # closed on an error too, so that the error's line is not run into it
        tick = time.perf_counter()
        while state.iteration < config.num_iter and not context.stop.requested:
            # Descend.
            loss, phi = step()
            context.evaluation.update(phi)  # before the next step: a CUDA-graph step overwrites phi
            state.iteration += 1
            bar.update(1)
            if (state.iteration - 1) % config.show_every and state.iteration != config.num_iter:
                continue
            synchronize(context.device)  # the iterations' queued work counts in their seconds
            now = time.perf_counter()
            state.seconds, tick = state.seconds + now - tick, now
            # Measure.
            row, finite = measure(context, loss, phi)
            state.history.append(row)
            if not finite:  # gradient descent does not come back: stop, not hours later
                write_history(context.files, state)
                return True
            # Report.
            report(context, row, bar)
            # Refine, at the last iteration: before its checkpoint, which keeps the refined answer.
            if state.iteration == config.num_iter:
                refine_answer(context)
            # Save, every checkpoint_seconds and at the last iteration.
            if (state.iteration == config.num_iter
                    or time.perf_counter() - context.saved_at >= context.spec.options.checkpoint_seconds):
                context.save()
        state.seconds += time.perf_counter() - tick
    return False


def measure(context, loss, phi):
    """The history row of the iteration just done (numbered from 0, as the reference logs), its
    output kept as the last image and the candidate ``FINAL`` as the final one, and the best
    image updated; and whether the loss, those images and the learned values are finite (the
    loss is that of the weights before the step, the candidates and the weights are those after
    it: the last step of a run may blow up only the latter). One host transfer: the loss, the
    check and every metric.

    The row holds the last iterate's and the final answer's metrics, and every candidate's at the
    run's last iteration or with ``log_candidates``; the other candidates' columns are empty. With
    a corruption term it holds the detection's columns too (``DETECTION_FIELDS``)."""
    state = context.state
    last = phi[0].detach().clone()  # a copy: the CUDA-graph step overwrites phi in place
    every = context.spec.options.log_candidates or state.iteration == state.config.num_iter
    with torch.no_grad():
        impulses = None if context.problem.corruption is None else context.problem.corruption()  # s, for both below
    candidates = context.evaluation.outputs(CANDIDATES if every else (FINAL, ESTIMATE), impulses)
    estimate = candidates[ESTIMATE] if every else candidates.pop(ESTIMATE)  # a column at the last iteration only
    context.images.update(last=last, final=candidates[FINAL])
    images = torch.stack([last, *candidates.values()])
    # Every value by its name, on the device: the row's columns, and "finite".
    measured = {"loss": loss.detach().float(),
                "finite": torch.isfinite(images).all() & context.problem.parameters_finite()}
    if impulses is not None:
        found = impulses_found(context, estimate=estimate, impulses=impulses[0])[0]
        measured.update(zip(DETECTION_FIELDS, detection(found, context.corrupted)))
    metric_columns = []  # the images' columns: the last iterate's, then each candidate's
    if context.clean is not None:
        for metric, of_images in (("psnr", psnr_tensor), ("ssim", ssim_tensor)):
            columns = [metric, *(f"{metric}_{name}" for name in candidates)]
            measured.update(zip(columns, of_images(context.clean, images)))
            metric_columns += columns
    values = dict(zip(measured, torch.cat([value.reshape(1) for value in measured.values()]).tolist()))  # one transfer
    finite = values.pop("finite") == 1 and math.isfinite(values["loss"])
    row = {**dict.fromkeys(HISTORY_FIELDS), "iteration": state.iteration - 1, "seconds": round(state.seconds, 3)}
    # The metrics of images that are not all finite are not worth a column.
    row.update((name, value) for name, value in values.items() if finite or name not in metric_columns)
    row.update(detection_row([values[field] for field in DETECTION_FIELDS if field in values]))  # 0 / 0: empty
    if context.clean is not None and finite and row["psnr"] > state.best_psnr:
        state.best_psnr, context.images["best"], context.best_changed = row["psnr"], last, True
    return row, finite


def report(context, row, bar):
    """The logged iteration's line (above the progress bar, or through ``context.log`` without one)
    and its history file."""
    message = f"Iteration {row['iteration']:05d}    Loss {row['loss']:f}"
    if row["psnr"] is not None:
        message += f"   PSNR {row['psnr']:f}   SSIM {row['ssim']:.4f}"
        bar.set_postfix(loss=f"{row['loss']:.5f}", psnr=f"{row['psnr']:.2f}")
    if context.progress:
        bar.write(message)  # above the bar, not through it
    else:
        context.log(message)
    write_history(context.files, context.state)


def impulses_found(context, sign="both", estimate=None, impulses=None):
    """The impulses the run's detector finds now (``context.detector`` on y, the averaged network's
    output and s: ``estimate`` and ``impulses``, ``C x H x W``, where the caller has them), of one
    sign with ``sign``: ``C x H x W`` bool on the device, and the guide its fill follows (``C x H x
    W float32``: that output, or the classical estimate where it explains y better). Detects once
    per iteration at the run's end (``context.detected``). Runs with a corruption term only."""
    problem, state = context.problem, context.state
    detected = context.detected
    if detected is None or detected[0] != state.iteration:
        with torch.no_grad():
            if estimate is None:
                estimate = context.evaluation.on_input(context.evaluation.averaged_network)[0]
            if impulses is None:
                impulses = problem.corruption()[0]
            detected = (state.iteration, *context.detector(problem.y[0], estimate, impulses))
        # Kept from the last iteration on only: during the loop its memory is the step's.
        context.detected = detected if state.reached(state.config.num_iter) else None
    _, found, guide = detected
    return of_sign(found, problem.y[0], guide, sign), guide


def refine_answer(context):
    """The refined answer (``refinement.refine``) into ``state.refined``, for a run with a corruption
    term unless ``no_refined``; without the ``bm3d`` package a note says so, and there is none."""
    if context.problem.corruption is None or context.spec.options.no_refined:
        return
    try:
        import_optional("bm3d", feature="the refined answer")
    except InputError as exc:
        context.log(f"note: {exc}; no {os.path.basename(context.files.refined)}")
        return
    config, observed = context.state.config, context.problem.y[0]
    if context.detector.extreme_values is None:  # a file's impulses: say what the data made of them
        with torch.no_grad():
            extreme, share = strong_impulses_extreme(observed, context.problem.corruption()[0],
                                                     context.detector.bit_depth)
        if share.isfinite():
            context.log(f"note: {share.item():.0%} of the strong impulses found are 0 or 1: the refined answer takes "
                        + ("only 0s and 1s for impulses" if extreme else "any value for an impulse"))
    found, guide = impulses_found(context, sign=config.remove)
    context.state.refined = refine(*(image.cpu().numpy() for image in (observed, guide, found)))


def describe_divergence(row):
    """The line that says a run diverged at the logged iteration of its history row ``row``, where
    :func:`fit` stopped it: every report of a divergence (the run's log, a sweep's failure, a
    job's error) is this line."""
    loss = row["loss"]
    what = f"the loss is {loss}" if not math.isfinite(loss) else "the weights or the network's outputs are inf or nan"
    return f"diverged: {what} at iteration {row['iteration']} (learning rates too large?)"


def finish(context, divergence):
    """After the loop: the checkpoint of a stopped run, the final images, and the closing line
    (``divergence``: :func:`describe_divergence` for a run that diverged, else None). Returns the
    estimated sparse corruption s (``C x H x W float32`` numpy), or None for the DIP methods or a
    diverged run."""
    state, clean, log, device = context.state, context.observation.clean, context.log, context.device
    if device.type == "cuda":
        log(f"peak GPU memory: {torch.cuda.max_memory_reserved(device) / 2**30:.2f} GiB reserved by this process")
    if divergence is not None:
        saved_iteration = context.saved_iteration
        kept = "were not written" if saved_iteration is None else f"are from iteration {saved_iteration}"
        log(f"{divergence}; stopped without writing images; the checkpoint and best image {kept}")
        return None
    if context.stop.requested:  # a diverged state is not worth resuming: the last finite one stays
        context.save()
        log(f"stopped by {context.stop.describe()} after iteration {state.iteration - 1}; checkpoint saved")
    context.keep_images()
    impulses = context.problem.impulses()
    if state.last is None:
        return impulses
    found = None if impulses is None else impulses_found(context)[0].cpu().numpy()
    write_final_images(context.files, context.observation, state, impulses, found)
    if not context.stop.requested:
        summary = f"done: {state.iteration} iterations in {state.seconds:.1f} s"
        if clean is not None:
            last, final = state.history[-1]["psnr"], state.history[-1][f"psnr_{FINAL}"]
            summary += f"; PSNR noisy {context.observation.noisy_psnr:.2f} dB, recovered (last) {last:.2f} dB"
            if final is not None:
                summary += f", {FINAL_LABEL} {final:.2f} dB"
            if state.refined is not None:
                summary += f", {REFINED_LABEL} {psnr(clean, state.refined):.2f} dB"
            summary += f", best (oracle) {state.best_psnr:.2f} dB"
        log(summary)
        if state.history[-1].get("impulses_found") is not None:  # none in a checkpoint older than the detection
            log(describe_detection(state.history[-1], clean is not None))
    return impulses
