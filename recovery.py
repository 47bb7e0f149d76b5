"""Robust image recovery by double over-parameterization: the problem and its optimisation loop.

The observation y (``1 x 3 x H x W``) is explained as ``phi(theta; z + noise) + g*g - h*h``, fitted by
plain gradient descent with learning rate ``lr`` for theta and ``lr_c`` for g and h (the README's
"Faithful to the reference" lists every detail). ``run_recovery`` is what ``denoising.py`` and
``reproduce.py`` call; ``Recovery`` holds one problem's state and does one optimisation step at a
time.
"""

import contextlib
import dataclasses
import io
import math
import os
import shutil
import signal
import time

import numpy as np
import torch
from tqdm import tqdm

from graph_step import CudaGraphStep, graph_step_unsupported
from models import SkipEncoderDecoder, SparseCorruption
from utils.atomic_files import atomic_path, check_writable_folder, write_csv, write_json
from utils.corruption import corrupt_salt_pepper
from utils.errors import InputError
from utils.image_io import (
    ALPHA_NOTE, DEFAULT_DATA_DIR, crop_to_multiple, is_jpeg, load_image, resize_shorter_side, save_png)
from utils.metrics import psnr, ssim
from utils.plotting import save_panel

METHODS = ("ours", "dip", "dip-l1")
# fp32: strict float32 everywhere; tf32: TF32 convolutions on CUDA (PyTorch's and the reference's
# default); bf16: the network in bfloat16 autocast, s and the loss in float32.
PRECISIONS = ("fp32", "tf32", "bf16")
STEPS = ("eager", "graph")  # see StepOptions
INPUT_CHANNELS = 32  # channels of the network input z
INPUT_SCALE = 0.1  # z ~ U[0, 1) * 0.1
INPUT_NOISE_STD = 1.0 / 30.0  # fresh Gaussian perturbation of z at every iteration
CORRUPTION_INIT_SCALE = 1e-5  # g, h ~ N(0, 1) * 1e-5
# Five stride-2 scales: sides must be multiples of 32, and at least 64 so that the coarsest scale
# (side / 32) has room for its reflection padding.
SIDE_MULTIPLE = 32
MIN_SIDE = 64
HISTORY_FIELDS = ("iteration", "loss", "psnr", "ssim", "seconds")
# Settings that may differ between a run and its resumption; all others must match.
RESUMABLE_CHANGES = ("num_iter", "show_every")
PATH_SETTINGS = ("image", "noisy", "data_dir")  # compared as the files they name, however spelled
MAX_SEED = 2**63 - 1  # what both numpy's and torch's generators accept
MAX_CKPT_LENGTH = 200  # leaves room within a file name's 255 bytes for "_checkpoint.pt" and temporaries


@dataclasses.dataclass
class RecoveryConfig:
    """What defines one recovery problem; saved with every run as ``<ckpt>_args.json``.

    The defaults are the paper's (F16 at 50% salt-and-pepper, width 128, SGD with learning rates 1
    and 500, 150,000 iterations).
    """

    image: str = "F16"  # name in data_dir, path to an image file, or scikit-image sample name
    noisy: str = None  # path to an already corrupted image with no clean version (replaces image)
    nlevel: float = 0.5  # fraction of corrupted elements
    method: str = "ours"  # ours: phi + g*g - h*h; dip: phi alone, L2; dip-l1: phi alone, L1
    alg: str = "sgd"  # sgd or adam, for both parameter groups
    l1: bool = False  # L1 loss instead of L2
    lr: float = 1.0  # learning rate of the network parameters theta
    lr_c: float = 500.0  # learning rate of the corruption parameters g and h
    num_iter: int = 150000
    width: int = 128
    seed: int = 0  # seeds the corruption, the input z, the initialisation and the perturbations
    resize: int = None  # resize the clean image so that its shorter side has this many pixels
    data_dir: str = DEFAULT_DATA_DIR  # this checkout's data/denoising
    show_every: int = 500  # log (PSNR, SSIM, history row, checkpoint) every this many iterations
    precision: str = "tf32"  # fp32, tf32 or bf16 (see PRECISIONS); matters on CUDA (bf16 anywhere)

    @property
    def uses_l1(self):
        return self.l1 or self.method == "dip-l1"

    @property
    def has_corruption_term(self):
        return self.method == "ours"

    def with_absolute_paths(self):
        """The same problem with its file settings as absolute paths, so that a run saved with them
        can be resumed from any working directory. An ``image`` that is a name stays a name."""
        image = os.path.abspath(self.image) if os.path.isfile(self.image) else self.image
        noisy = None if self.noisy is None else os.path.abspath(self.noisy)
        return dataclasses.replace(self, image=image, noisy=noisy, data_dir=os.path.abspath(self.data_dir))

    def validate(self):
        """Raise InputError naming the first bad value."""
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got '{self.method}'")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        if self.alg not in ("sgd", "adam"):
            raise InputError(f"alg must be sgd or adam, got '{self.alg}'")
        if self.noisy is None and not 0 <= self.nlevel < 1:
            raise InputError(f"nlevel must be in [0, 1), got {self.nlevel}")
        if self.width < 1:
            raise InputError(f"width must be at least 1, got {self.width}")
        if self.num_iter < 1:
            raise InputError(f"num_iter must be at least 1, got {self.num_iter}")
        if self.show_every < 1:
            raise InputError(f"show_every must be at least 1, got {self.show_every}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed must be in [0, 2**63 - 1], got {self.seed}")
        if not (0 < self.lr < math.inf and 0 < self.lr_c < math.inf):
            raise InputError(f"learning rates must be positive, got lr={self.lr}, lr_c={self.lr_c}")
        if self.noisy is not None and self.resize is not None:
            raise InputError("--resize cannot be used with --noisy: resizing would smear the impulses into their neighbours")
        if self.resize is not None and self.resize < MIN_SIDE:
            raise InputError(f"resize must be at least {MIN_SIDE}, got {self.resize}")


@dataclasses.dataclass
class Observation:
    """The data of one problem: ``3 x H x W float32`` arrays in [0, 1]."""

    noisy: np.ndarray
    clean: np.ndarray  # None when only a corrupted image is known (--noisy)
    description: str
    notes: list


def prepare_observation(config):
    """Load, resize and crop the image and, unless it is already noisy, corrupt it (seeded)."""
    source = config.noisy if config.noisy is not None else config.image
    if config.noisy is not None and not os.path.isfile(config.noisy):
        raise InputError(f"noisy image '{config.noisy}' not found")
    image, description, notes = load_image(source, config.data_dir)
    if config.resize is not None:
        image = resize_shorter_side(image, config.resize)
        notes.append(f"resized to {image.shape[2]}x{image.shape[1]}")
    original = image.shape
    image = crop_to_multiple(image, SIDE_MULTIPLE)
    if image.shape[1] < MIN_SIDE or image.shape[2] < MIN_SIDE:
        raise InputError(
            f"image is {original[2]}x{original[1]}: the network needs at least {MIN_SIDE}x{MIN_SIDE} "
            f"after centre-cropping to multiples of {SIDE_MULTIPLE}"
        )
    if image.shape != original:
        notes.append(f"centre-cropped from {original[2]}x{original[1]} to multiples of {SIDE_MULTIPLE}")
    if config.noisy is not None:
        # The model takes every impulse to be an exact 0 or 1: say where the file cannot hold them.
        if ALPHA_NOTE in notes:
            notes.append("white is the salt value: transparent pixels will be taken for impulses")
        if is_jpeg(config.noisy):
            notes.append("JPEG compression has blurred the impulses into their neighbours, so they are not exact "
                         "0s and 1s as the model assumes; a lossless file (PNG) keeps them")
        return Observation(noisy=image, clean=None, description=description, notes=notes)
    noisy = corrupt_salt_pepper(image, config.nlevel, config.seed)
    return Observation(noisy=noisy, clean=image, description=description, notes=notes)


def resolve_device(name):
    """``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name} asked for, but only {torch.cuda.device_count()} GPUs are visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device mps asked for, but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


def describe_device(device):
    """A person's name for a ``torch.device``: ``NVIDIA H200``, ``2-core CPU``, ``Apple MPS``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"{os.cpu_count()}-core CPU"


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How each iteration is computed, as opposed to what (``RecoveryConfig``): none of these
    changes the mathematics, so a run may be resumed with other values. They cost or save time."""

    step: str = "eager"  # eager: one PyTorch call after another, as the reference; graph: see graph_step.py
    channels_last: bool = False  # NHWC activations
    compile: bool = False  # torch.compile the network, fusing BatchNorm, LeakyReLU and padding kernels
    # PyTorch's CPU threads, for the whole process (torch.set_num_threads); None keeps PyTorch's
    # default of one per core. Runs sharing a CPU must split its cores: oversubscribed, every
    # parallel operator waits for descheduled threads, and small runs slow down a hundredfold.
    threads: int = None

    def check(self, device, config):
        """InputError unless these options can compute ``config`` on the torch.device ``device``."""
        if self.step not in STEPS:
            raise InputError(f"step must be one of {', '.join(STEPS)}, got '{self.step}'")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        reason = graph_step_unsupported(device, config) if self.step == "graph" else None
        if reason is not None:
            raise InputError(f"--step graph {reason}")
        if self.compile and device.type not in ("cpu", "cuda"):
            raise InputError(f"--compile works on cpu and cuda devices, not {device.type}")
        if self.compile and device.type == "cpu" and cpp_compiler() is None:
            raise InputError("--compile on a CPU needs a C++ compiler (g++, c++ or clang++, or $CXX); none was found")

    def flags(self):
        """The command-line flags (of denoising.py and reproduce.py) asking for these options."""
        flags = [] if self.step == "eager" else ["--step", self.step]
        flags += ["--channels_last"] * self.channels_last + ["--compile"] * self.compile
        return flags + ([] if self.threads is None else ["--threads", str(self.threads)])

    def __str__(self):
        return f"step: {self.step}" + ", channels-last" * self.channels_last + ", compiled" * self.compile


def cpp_compiler():
    """The C++ compiler that torch.compile would build CPU kernels with ($CXX, else g++, c++ or
    clang++ on the PATH), or None."""
    return next((name for name in (os.environ.get("CXX"), "g++", "c++", "clang++") if name and shutil.which(name)), None)


class Recovery:
    """One recovery problem's state (network, corruption, input, optimisers, noise generator).

    :param RecoveryConfig config: the problem's settings.
    :param numpy.ndarray noisy: the observation y, ``3 x H x W float32`` in [0, 1].
    :param torch.device device: where to compute.
    :param StepOptions options: how to compute each iteration (layout, compilation, CUDA graph).

    Everything random is drawn from ``config.seed``: the initialisation and z on the CPU (so they
    are the same on every device), the per-iteration input perturbations from a generator on the
    device, whose state is part of :meth:`state_dict`.
    """

    def __init__(self, config, noisy, device, options=StepOptions()):
        self.config = config
        self.options = options
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        shape = (1,) + tuple(noisy.shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.net = SkipEncoderDecoder(INPUT_CHANNELS, shape[1], config.width)
            self.z = torch.rand((1, INPUT_CHANNELS) + shape[2:]) * INPUT_SCALE
            self.corruption = (
                SparseCorruption(shape, CORRUPTION_INIT_SCALE) if config.has_corruption_term else None
            )
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # cuDNN autotuning, as in the reference
        self.net.to(self.device, memory_format=self.memory_format).train()
        # The same module behind a compiling wrapper (shared parameters and buffers), not a copy;
        # static shapes, so that problems of other sizes in one process each get their own kernels.
        self.network = torch.compile(self.net, dynamic=False) if options.compile else self.net
        self.z = self.z.to(self.device, memory_format=self.memory_format)
        self.y = torch.from_numpy(noisy)[None].to(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.criterion = torch.nn.L1Loss() if config.uses_l1 else torch.nn.MSELoss()
        optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[config.alg]
        self.optimizer = optimizer(self.net.parameters(), lr=config.lr)
        self.optimizer_c = None
        if self.corruption is not None:
            self.corruption.to(self.device)
            self.optimizer_c = optimizer(self.corruption.parameters(), lr=config.lr_c)

    @property
    def num_parameters(self):
        return sum(p.numel() for p in self.net.parameters())

    def draw_input_noise(self, out=None):
        """The next perturbation of z (std 1/30) from the problem's own generator, into ``out``
        if given (a static buffer for the CUDA-graph step)."""
        # Contiguous whatever z's layout: normal_ fills memory in order, so the layout would
        # otherwise move the same draws to other pixels.
        out = torch.empty(self.z.shape, device=self.device) if out is None else out
        return out.normal_(0.0, INPUT_NOISE_STD, generator=self.generator)

    def loss_terms(self, noise):
        """The forward pass on ``z + noise``: returns ``(loss, phi)``, phi being the network output
        ``1 x 3 x H x W`` float32 in [0, 1] (the recovered image, without s). Under ``bf16`` only
        the network runs in bfloat16; s, the residual and the loss stay float32."""
        # No autocast weight cache: each weight is used once per pass, and CUDA-graph capture
        # forbids the cache.
        bf16 = self.config.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
            phi = self.network(self.z + noise)
        phi = phi.float()
        prediction = phi + self.corruption() if self.corruption is not None else phi
        return self.criterion(prediction, self.y), phi

    def update(self, noise):
        """Forward on ``z + noise``, backward, one update of theta and one of (g, h). The whole
        iteration but the noise draw: the body that the CUDA-graph step captures."""
        if self.device.type == "cuda":
            # Whether cuDNN may use TF32 (PyTorch's default, hence the reference's numbers) is a
            # process-wide switch: set it for every iteration, so that problems of other precisions
            # in the same process (a benchmark, a sweep) cannot change this one's.
            torch.backends.cudnn.allow_tf32 = self.config.precision != "fp32"
        self.optimizer.zero_grad()
        if self.optimizer_c is not None:
            self.optimizer_c.zero_grad()
        loss, phi = self.loss_terms(noise)
        loss.backward()
        self.optimizer.step()
        if self.optimizer_c is not None:
            self.optimizer_c.step()
        return loss.detach(), phi.detach()

    def step(self):
        """One iteration, eagerly. Returns the ``(loss, phi)`` of its forward pass, as tensors on
        the device (no host synchronisation)."""
        return self.update(self.draw_input_noise())

    def iteration(self):
        """A function doing one iteration per call as ``options.step`` asks: :meth:`step` itself, or
        the same iteration replayed as a CUDA graph. Make it after loading any saved state: the graph
        captures the tensors as they are."""
        return CudaGraphStep(self) if self.options.step == "graph" else self.step

    def impulses(self):
        """The estimated sparse corruption s = g*g - h*h, ``3 x H x W`` numpy, or None."""
        if self.corruption is None:
            return None
        with torch.no_grad():
            return self.corruption()[0].float().cpu().numpy()

    def state_dict(self):
        return {
            "net": self.net.state_dict(),
            "corruption": self.corruption.state_dict() if self.corruption is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "optimizer_c": self.optimizer_c.state_dict() if self.optimizer_c is not None else None,
            "z": self.z.cpu(),
            "y": self.y.cpu(),
            "generator": self.generator.get_state(),
            "generator_device": self.device.type,
        }

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
        if self.corruption is not None:
            self.corruption.load_state_dict(state["corruption"])
            self.optimizer_c.load_state_dict(state["optimizer_c"])
        self.optimizer.load_state_dict(state["optimizer"])
        # In place, so that a captured CUDA graph keeps seeing the same tensors.
        self.z.copy_(state["z"])
        self.y.copy_(state["y"])
        self.generator.set_state(state["generator"])


def output_paths(out_dir, ckpt):
    """Every file a run writes, by role."""
    names = {
        "last": "last.png",  # the recovered image phi, last iterate
        "best": "best.png",  # the PSNR-best iterate (oracle: uses the clean image)
        "noisy": "noisy.png",  # the corrupted input, as the network sees it
        "clean": "clean.png",  # the clean image, cropped as the network sees it
        "impulses": "impulses.png",  # s mapped to [0, 1]: grey none, white salt, black pepper
        "panel": "panel.png",  # noisy / recovered / clean side by side
        "history": "history.csv",
        "args": "args.json",
        "checkpoint": "checkpoint.pt",
    }
    return {role: os.path.join(out_dir, f"{ckpt}_{name}") for role, name in names.items()}


CHECKPOINT_KEYS = ("config", "recovery", "iteration", "history", "seconds", "best_psnr", "best", "last")


def load_checkpoint(path):
    """The saved state of a run (a dict), or InputError if it cannot be read."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"no checkpoint to resume: {path} does not exist") from None
    except Exception as exc:
        raise InputError(f"cannot read checkpoint {path} ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or any(key not in saved for key in CHECKPOINT_KEYS):
        raise InputError(f"{path} is not a checkpoint written by this program")
    return saved


def check_resumable(config, saved_config):
    """Raise InputError if ``config`` differs from the checkpoint's beyond what may change."""
    for key, saved in saved_config.items():
        value = getattr(config, key)
        if key in PATH_SETTINGS and value is not None and saved is not None:
            value, saved = os.path.realpath(value), os.path.realpath(saved)
        if key not in RESUMABLE_CHANGES and value != saved:
            shown = lambda v: "(not given)" if v is None else v  # noqa: E731
            raise InputError(
                f"--{key} {shown(value)} differs from the checkpoint's {shown(saved)}; "
                f"only {', '.join('--' + k for k in RESUMABLE_CHANGES)} may change on --resume"
            )


class _StopRequest:
    """Turns the first Ctrl-C into a request to stop after the current iteration (so the saved
    state is never half an update); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _to_image(tensor):
    return tensor[0].float().cpu().numpy()


def run_recovery(
    config,
    ckpt="test",
    out_dir="checkpoints",
    device="auto",
    resume=False,
    overwrite=False,
    progress=True,
    log=print,
    options=StepOptions(),
):
    """Run (or continue) one recovery and write its outputs to ``out_dir/<ckpt>_*``.

    ``options`` (``StepOptions``) change how, not what, is computed, so a run may be resumed with
    other values.

    Ctrl-C (SIGINT, in the main thread) stops the run after the current iteration and saves its
    checkpoint; the call then *returns*, with ``interrupted`` True, so that a caller running several
    recoveries should check it and stop (a second Ctrl-C raises KeyboardInterrupt at once).

    :return: dict with ``history`` (list of rows, dicts with the keys of ``HISTORY_FIELDS``:
        ``iteration`` (from 0), ``loss``, ``psnr`` and ``ssim`` (None without a clean image),
        ``seconds`` since the start), ``last`` and ``best`` images (``3 x H x W float32`` in [0, 1];
        ``best`` None without a clean image), ``noisy``, ``clean`` (None with ``config.noisy``),
        ``impulses`` (the estimated s = g*g - h*h, ``3 x H x W float32``, about noisy - clean
        so within about [-1, 1]; None for the DIP methods), ``iterations`` done, ``interrupted``,
        ``diverged`` (stopped at a logged iteration whose loss is inf or nan: no images written),
        ``seconds`` (the loop's wall time, all sessions of the run together), ``paths``
        (``output_paths``).
    :raises InputError: bad settings or input; nothing on disk has been touched then.
    :raises OutputError: an output could not be written (a full disk); the file it names, the
        checkpoint included, is as it was.
    """
    if not ckpt or ckpt in (".", "..") or "/" in ckpt or os.sep in ckpt:
        raise InputError(f"--ckpt must be a plain name, not '{ckpt}' (choose the folder with --out_dir)")
    if len(ckpt) > MAX_CKPT_LENGTH:
        raise InputError(f"--ckpt is {len(ckpt)} characters long; at most {MAX_CKPT_LENGTH}")
    paths = output_paths(out_dir, ckpt)
    config = config.with_absolute_paths()
    saved = None
    if resume:
        # Before validate(): a setting that differs from the checkpoint is the error to name, not
        # the clash it makes with the checkpoint's other settings.
        saved = load_checkpoint(paths["checkpoint"])
        check_resumable(config, saved["config"])
    config.validate()
    device = resolve_device(device)
    options.check(device, config)
    check_writable_folder(out_dir, "--out_dir")
    if resume:
        if config.num_iter < saved["iteration"]:
            raise InputError(f"the run has done {saved['iteration']} iterations already; --num_iter cannot be less")
        # The noise generator's state is device-specific: a CPU state cannot drive a CUDA generator.
        saved_device = saved["recovery"].get("generator_device", "cpu")
        if saved_device != device.type:
            raise InputError(f"the run was made on a {saved_device} device; resume it on one (--device {saved_device})")
    elif os.path.exists(paths["checkpoint"]) and not overwrite:
        raise InputError(
            f"{paths['checkpoint']} exists: pass --resume to continue that run, "
            f"--overwrite to start it again, or another --ckpt"
        )
    observation = prepare_observation(config)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create --out_dir {out_dir} ({exc.strerror})") from None
    if overwrite and saved is None:  # no file of the old run may pass for one of the new run
        for path in paths.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    if options.threads is not None:
        torch.set_num_threads(options.threads)
    # Rewritten on --resume too: num_iter, the step, or the device (of the same type) may have changed.
    settings = dataclasses.asdict(config)
    if config.noisy is not None:  # the file is the observation: no image was read, no noise added
        settings.update(image=None, nlevel=None)
    write_json(
        paths["args"],
        {**settings, **dataclasses.asdict(options), "threads": torch.get_num_threads(), "ckpt": ckpt,
         "device": str(device)},
    )
    recovery = Recovery(config, observation.noisy, device, options)
    history, start, best_psnr, best, last, elapsed = [], 0, -math.inf, None, None, 0.0
    devices = []  # every device the run has computed on, for the results table
    if saved is not None:
        recovery.load_state_dict(saved["recovery"])
        history, start, elapsed = saved["history"], saved["iteration"], saved["seconds"]
        devices = list(saved.get("devices", []))  # absent from checkpoints written before it was kept
        best_psnr = saved["best_psnr"]
        best = saved["best"].numpy() if saved["best"] is not None else None
        last = saved["last"].numpy() if saved["last"] is not None else None
    else:
        save_png(paths["noisy"], observation.noisy)
        if observation.clean is not None:
            save_png(paths["clean"], observation.clean)
    if (device_name := describe_device(device)) not in devices:
        devices.append(device_name)

    clean = observation.clean
    h, w = observation.noisy.shape[1:]
    log(f"image: {observation.description}, {w}x{h} after cropping")
    for note in observation.notes:
        log(f"note: {note}")
    log(
        f"device: {device}" + (f", threads: {torch.get_num_threads()}" if device.type == "cpu" else "")
        + f"; method: {config.method}; network: width {config.width}, "
        f"{recovery.num_parameters:,} parameters; {options}, precision: {config.precision}"
        + (" (TF32 exists on CUDA only: float32 here)" if config.precision == "tf32" and device.type != "cuda" else "")
    )
    noisy_psnr = None if clean is None else psnr(clean, observation.noisy)  # logged now, and in the panel and summary
    if clean is not None:
        log(f"noisy input: PSNR {noisy_psnr:.2f} dB at nlevel {config.nlevel}")
    if start:
        log(f"resuming at iteration {start} of {config.num_iter}")

    def save_checkpoint(iteration):
        state = {
            "config": dataclasses.asdict(config),
            "recovery": recovery.state_dict(),
            "iteration": iteration,
            "history": history,
            "seconds": elapsed,
            "best_psnr": best_psnr,
            "best": torch.from_numpy(best) if best is not None else None,
            "last": torch.from_numpy(last) if last is not None else None,
            "devices": devices,
        }
        # Serialised in memory first: torch.save reports a failed write (a full disk) as an
        # unexplained RuntimeError, a plain write as the OSError it is.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with atomic_path(paths["checkpoint"]) as tmp, open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
        write_csv(paths["history"], HISTORY_FIELDS, history)

    iterate = recovery.iteration()  # after any resumed state is loaded
    iteration, diverged = start, False
    # The bar closes on an error too, so that the error's line is not run into it.
    with tqdm(total=config.num_iter, initial=start, disable=not progress, unit="it", dynamic_ncols=True) as bar, \
            _StopRequest() as stop:
        tick = time.perf_counter()
        while iteration < config.num_iter and not stop.requested:
            loss, phi = iterate()
            iteration += 1
            bar.update(1)
            logged = iteration - 1  # the reference numbers iterations from 0
            if logged % config.show_every == 0 or iteration == config.num_iter:
                elapsed += time.perf_counter() - tick
                tick = time.perf_counter()
                row = {"iteration": logged, "loss": loss.item(), "psnr": None, "ssim": None, "seconds": round(elapsed, 3)}
                if not math.isfinite(row["loss"]):
                    # Gradient descent does not come back from inf or nan: stop, not hours later.
                    history.append(row)
                    write_csv(paths["history"], HISTORY_FIELDS, history)
                    diverged = True
                    break
                last = _to_image(phi)
                if clean is not None:
                    row["psnr"], row["ssim"] = psnr(clean, last), ssim(clean, last)
                    if row["psnr"] > best_psnr:
                        best_psnr, best = row["psnr"], last
                        save_png(paths["best"], best)
                    bar.set_postfix(loss=f"{row['loss']:.5f}", psnr=f"{row['psnr']:.2f}")
                else:
                    bar.set_postfix(loss=f"{row['loss']:.5f}")
                history.append(row)
                message = f"Iteration {logged:05d}    Loss {row['loss']:f}"
                if row["psnr"] is not None:
                    message += f"   PSNR {row['psnr']:f}   SSIM {row['ssim']:.4f}"
                if progress:
                    bar.write(message)  # above the bar, not through it
                else:
                    log(message)
                save_checkpoint(iteration)
        elapsed += time.perf_counter() - tick
    if device.type == "cuda":
        log(f"peak GPU memory: {torch.cuda.max_memory_reserved(device) / 2**30:.2f} GiB reserved by this process")
    if stop.requested and not diverged:  # a diverged state is not worth resuming: the last finite one stays
        save_checkpoint(iteration)
        log(f"interrupted after iteration {iteration - 1}; checkpoint saved")
    if diverged:
        kept = f"are from iteration {history[-2]['iteration']:.0f}" if len(history) > 1 else "were not written"
        log(f"diverged: the loss is {history[-1]['loss']} at iteration {iteration - 1} (learning rates too large?); "
            f"stopped without writing images; the checkpoint and best image {kept}")

    impulses = None if diverged else recovery.impulses()
    if last is not None and not diverged:
        save_png(paths["last"], last)
        tiles = [(observation.noisy, "noisy")]
        if clean is not None:
            tiles[0] = (observation.noisy, f"noisy, {noisy_psnr:.2f} dB")
            tiles += [(last, f"recovered, {psnr(clean, last):.2f} dB"), (clean, "clean")]
        else:
            tiles.append((last, "recovered"))
        if impulses is not None:
            save_png(paths["impulses"], (impulses + 1) / 2)
            if clean is None:
                tiles.append(((impulses + 1) / 2, "impulses s"))
        save_panel(paths["panel"], tiles)
    if last is not None and not stop.requested and not diverged:
        summary = f"done: {iteration} iterations in {elapsed:.1f} s"
        if clean is not None:
            summary += (f"; PSNR noisy {noisy_psnr:.2f} dB, recovered (last) {psnr(clean, last):.2f} dB, "
                        f"best (oracle) {best_psnr:.2f} dB")
        log(summary)
    return {
        "history": history,
        "last": last,
        "best": best,
        "noisy": observation.noisy,
        "clean": clean,
        "impulses": impulses,
        "iterations": iteration,
        "interrupted": stop.requested,
        "diverged": diverged,
        "seconds": elapsed,
        "paths": paths,
    }
