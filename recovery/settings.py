"""Every setting of a run, written once: its default, its help text, its choices and its check.

``RecoveryConfig`` says what problem is solved (saved with the run and compared on resume),
``StepOptions`` how each iteration is computed (free to change between sessions), ``RunSpec`` which
run it is (name, folder, device). The command lines build their flags from these fields
(:func:`add_arguments`), and :meth:`RunSpec.to_argv` turns a run back into the command that makes
it, so that a printed command and the run it stands for can never drift apart.
"""

import argparse
import dataclasses
import math
import numbers
import os
import typing

import numpy as np

from utils.atomic_files import printable_path
from utils.corruption import NOISE_MODELS
from utils.errors import InputError
from utils.image_io import DEFAULT_DATA_DIR

METHODS = ("ours", "dip", "dip-l1")
ALGORITHMS = ("sgd", "adam")
REMOVALS = ("both", "salt", "pepper")
# fp32: strict float32 everywhere; tf32: TF32 convolutions on CUDA (PyTorch's and the reference's
# default); bf16: the network in bfloat16 autocast, s and the loss in float32.
PRECISIONS = ("fp32", "tf32", "bf16")
STEPS = ("eager", "graph")
MIN_SIDE = 64  # the network's least side (see models.SkipEncoderDecoder)
# Pixels neighbouring tiles share at least by default: the network's side multiple, so that a tile's
# border (where its network sees no neighbourhood) lies in the overlap, where the blend's window gives
# it little weight. Not tuned: docs/tiling.md measures the cost of tiling at this overlap only.
DEFAULT_TILE_OVERLAP = 32
# Bounds beyond which no run can start. Sizes: a 65536-pixel side is a 51 GB float32 image even at
# width 1, and a width of 65536 is a network of 2.3 TB of weights; beyond them torch's size arithmetic
# overflows instead of the memory check refusing the run.
MAX_SIDE = 2**16
MAX_WIDTH = 2**16
# Iteration counts go through floats (the progress bar, the history file read back): exact to 2**53.
MAX_COUNT = 2**53
# The optimisers apply learning rates as float32 scalars, Adam's first step its rate times
# 1 / (1 - beta1) = 10: past float32's largest value / 16, torch refuses the rate in the first step
# ("cannot be converted to type float without overflow"). Below float32's least normal value, a
# rate may be flushed to 0 on a device.
MIN_LEARNING_RATE, MAX_LEARNING_RATE = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max) / 16
# torch starts one OpenMP worker per thread. Past the cores every thread waits for the others (see
# StepOptions.threads); far past them the OpenMP runtime cannot start them at all (libgomp ends the
# process with "out of memory" at 100,000, naming no setting). A few times the cores still lets a
# caller oversubscribe on purpose, and validate a Slurm sweep on a login node smaller than its nodes.
THREADS_PER_CORE = 4
MAX_SEED = 2**63 - 1  # what both numpy's and torch's generators accept
MAX_CKPT_LENGTH = 200  # leaves room within a file name's 255 bytes for "_checkpoint.pt" and temporaries
# Settings that may differ between a run and its resumption; all others must match.
RESUMABLE_CHANGES = ("num_iter", "show_every")
PATH_SETTINGS = ("image", "noisy", "data_dir")  # compared as the files they name, however spelled


def setting(default, help, choices=None):
    """A dataclass field that is also a command-line flag ``--<name>``."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def max_threads():
    return THREADS_PER_CORE * (os.cpu_count() or 1)


# What a value of each field type may be: an int field takes numpy's integers too, a float field
# any real number (each kept as Python's own, so that it prints and saves as a plain number).
_ACCEPTED = {int: numbers.Integral, float: numbers.Real}
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


def check_types(settings):
    """InputError naming the first field of ``settings`` (a settings dataclass) whose value is not of
    its type: a Python caller's string where a number goes would fail deep inside torch instead.
    A string must be one that a file name or a command line can hold (no NUL, no lone surrogate)."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        kind = _value_type(field)
        if value is None and type(None) in typing.get_args(field.type):
            continue
        if not isinstance(value, _ACCEPTED.get(kind, kind)) or (kind in _ACCEPTED and isinstance(value, bool)):
            raise InputError(f"`{field.name}` must be {_KIND_NAMES.get(kind, 'a ' + kind.__name__)}, "
                             f"got {type(value).__name__}")
        if kind in _ACCEPTED:
            try:
                object.__setattr__(settings, field.name, kind(value))  # frozen: set once, while it is made
            except OverflowError:
                raise InputError(f"`{field.name}` is beyond the range of a float, got {value}") from None
        if kind is str and ("\0" in value or not _encodable(value)):
            raise InputError(f"`{field.name}` '{printable_path(value)}' holds a character no file name can")


def _encodable(text):
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        return False
    return True


def _value_type(field):
    """The type a flag's text is parsed as: ``int`` for ``Optional[int]`` and so on."""
    kinds = [kind for kind in typing.get_args(field.type) if kind is not type(None)] or [field.type]
    return kinds[0]


@dataclasses.dataclass(frozen=True)
class RecoveryConfig:
    """What defines one recovery problem; saved with every run (``<ckpt>_args.json`` and the
    checkpoint). The defaults are the paper's: F16 at 50% salt-and-pepper, width 128, SGD with
    learning rates 1 and 500, 150,000 iterations."""

    image: str = setting("F16", "image name in --data_dir (with or without .png), path to an image file, "
                         "or a scikit-image sample name such as astronaut")
    nlevel: float = setting(0.5, "fraction of corrupted elements (of pixels for salt_pepper_pixel), in [0, 1)")
    noise: str = setting("salt_pepper", "the impulses added: salt_pepper (the paper's: each element 0 or 1); "
                         "salt_pepper_pixel (whole pixels 0 or 1: dead and hot pixels); random_valued (each "
                         "element a value uniform in [0, 1])", NOISE_MODELS)
    remove: str = setting("both", "the impulses the final answer replaces: both; salt (brighter than the image: "
                          "hot pixels) or pepper (darker: dead pixels) only, those of the other sign kept as "
                          "observed", REMOVALS)
    alg: str = setting("sgd", "optimiser for both parameter groups", ALGORITHMS)
    l1: bool = setting(False, "L1 loss (default L2)")
    lr: float = setting(1.0, "learning rate of the network parameters theta")
    lr_c: float = setting(500.0, "learning rate of the corruption parameters g, h")
    num_iter: int = setting(150000, "number of iterations")
    width: int = setting(128, "network width")
    method: str = setting("ours", "ours: phi + g*g - h*h; dip: network alone, L2 loss; dip-l1: network alone, "
                          "L1 loss", METHODS)
    seed: int = setting(0, "seeds corruption, input, initialisation, perturbations (0 to 2**63 - 1)")
    data_dir: str = setting(DEFAULT_DATA_DIR, "where --image names are looked up (default: data/denoising in "
                            "this checkout, from any working folder)")
    show_every: int = setting(500, "log, record history and checkpoint every N iterations")
    resize: typing.Optional[int] = setting(None, "resize the clean image so its shorter side is N pixels "
                                           "(the run's outputs are of that size)")
    noisy: typing.Optional[str] = setting(None, "path to an already corrupted image with no clean version: no "
                                          "noise is added, no PSNR is computed, the impulse map s is written")
    precision: str = setting("tf32", "fp32: strict; tf32: TF32 convolutions on CUDA (PyTorch's and the "
                             "reference's default); bf16: network in bfloat16, loss and s in float32", PRECISIONS)
    # Tiles are part of the problem: each tile's network sees only its tile, so a tiled answer is
    # another answer than the whole image's, and a run may not change them on resume.
    tile: typing.Optional[int] = setting(None, "recover the image in overlapping N x N tiles, each a run of "
                                         "its own (<out_dir>/<ckpt>_tiles/), blended into one image "
                                         "(docs/tiling.md); for images too large for the memory whole")
    tile_overlap: int = setting(DEFAULT_TILE_OVERLAP, "pixels that neighbouring tiles share at least, blended "
                                "with a raised-cosine window; less than half of --tile")
    tile_index: typing.Optional[int] = setting(None, "recover tile K (numbered row by row from 0) of the --tile "
                                               "grid alone: the run a tiled command makes of each tile")

    @property
    def folder_field(self):
        """``"image"`` or ``"noisy"``: which of the images names a folder of images (a run per
        file: ``reproduction/folder.py``); None for neither."""
        for field in ("noisy", "image"):
            path = getattr(self, field)
            if path is not None and os.path.isdir(path):
                return field
        return None

    @property
    def network_seed(self):
        """The seed of the network, z and the perturbations: ``seed`` for a whole image; for tile K
        of a tiled run one of its own, drawn by numpy's ``SeedSequence((seed, K))``, so that no two
        tiles start alike while the corruption (drawn from ``seed``) is the whole image's."""
        if self.tile_index is None:
            return self.seed
        return int(np.random.SeedSequence((self.seed, self.tile_index)).generate_state(1, np.uint64)[0]) & MAX_SEED

    @property
    def uses_l1(self):
        return self.l1 or self.method == "dip-l1"

    @property
    def has_corruption_term(self):
        return self.method == "ours"

    def with_absolute_paths(self):
        """The same problem with its file settings as absolute paths, so that a run saved with them
        can be resumed from any working directory. An ``image`` that is a name stays a name, and
        so does the unused one beside ``noisy``."""
        image = os.path.abspath(self.image) if self.noisy is None and os.path.isfile(self.image) else self.image
        noisy = None if self.noisy is None else os.path.abspath(self.noisy)
        return dataclasses.replace(self, image=image, noisy=noisy, data_dir=os.path.abspath(self.data_dir))

    def __post_init__(self):
        check_types(self)

    def validate(self):
        """Raise InputError naming the first bad value."""
        check_choices(self)
        if self.noisy is None and not 0 <= self.nlevel < 1:  # also refuses nan
            raise InputError(f"`nlevel` must be in [0, 1), got {self.nlevel}")
        check_at_least(self, 1, "width", "num_iter", "show_every")
        check_at_most(self, MAX_WIDTH, "width")
        check_at_most(self, MAX_COUNT, "num_iter", "show_every")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"`seed` must be in [0, 2**63 - 1], got {self.seed}")
        if not all(MIN_LEARNING_RATE <= rate <= MAX_LEARNING_RATE for rate in (self.lr, self.lr_c)):  # nan too
            raise InputError(f"learning rates must be in [{MIN_LEARNING_RATE:.7g}, {MAX_LEARNING_RATE:.7g}] (positive "
                             f"and finite for the float32 optimisers), got `lr` {self.lr}, `lr_c` {self.lr_c}")
        # As the command line refuses them: a run's command (to_argv) must make the run.
        if self.noisy is not None and self.image != RecoveryConfig.image:
            raise InputError("give either `image` or `noisy`, not both")
        for added in ("nlevel", "noise"):
            if self.noisy is not None and getattr(self, added) != getattr(RecoveryConfig, added):
                raise InputError(f"`{added}` adds noise, and `noisy` images have theirs already: give one of them")
        if self.noisy is not None and self.resize is not None:
            raise InputError("`resize` cannot be used with `noisy`: resizing would smear the impulses into their "
                             "neighbours")
        if self.remove != RecoveryConfig.remove and not self.has_corruption_term:
            raise InputError(f"`remove` {self.remove} needs the impulses s of method ours; {self.method} has none")
        if self.resize is not None:
            check_at_least(self, MIN_SIDE, "resize")
            check_at_most(self, MAX_SIDE, "resize")
        check_at_least(self, 0, "tile_overlap")
        check_at_most(self, MAX_SIDE, "tile_overlap")
        if self.tile is not None:
            check_at_least(self, MIN_SIDE, "tile")  # the network's least side: 0 and negative too
            check_at_most(self, MAX_SIDE, "tile")
            if 2 * self.tile_overlap >= self.tile:
                raise InputError(f"`tile_overlap` {self.tile_overlap} leaves `tile` {self.tile} no interior that "
                                 f"is its own: it must be less than half the tile")
        elif self.tile_index is not None:
            raise InputError("`tile_index` is a tile of the `tile` grid: give `tile` too")
        if self.tile_index is not None:
            check_at_least(self, 0, "tile_index")

    def check_resumable(self, saved):
        """InputError unless this problem is ``saved`` (a RecoveryConfig) up to what may change on
        resume (RESUMABLE_CHANGES)."""
        for field in dataclasses.fields(self):
            value, before = getattr(self, field.name), getattr(saved, field.name)
            if field.name in PATH_SETTINGS and value is not None and before is not None:
                value, before = os.path.realpath(value), os.path.realpath(before)
            if field.name not in RESUMABLE_CHANGES and value != before:
                shown = lambda v: "(not given)" if v is None else printable_path(str(v))  # noqa: E731
                raise InputError(
                    f"`{field.name}` {shown(value)} differs from the checkpoint's {shown(before)}; "
                    f"only {', '.join(f'`{k}`' for k in RESUMABLE_CHANGES)} may change on resume"
                )

    def to_argv(self):
        return settings_argv(self)


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """How each iteration is computed and how often the run's work is kept, as opposed to what is
    computed (``RecoveryConfig``): none of these changes the mathematics, so a run may be resumed
    with other values. They cost or save time."""

    step: str = setting("eager", "eager: the reference's step; graph: the same step replayed as a CUDA graph "
                        "(CUDA, SGD)", STEPS)
    channels_last: bool = setting(False, "NHWC activations (a speed option)")
    compile: bool = setting(False, "torch.compile the network, fusing BatchNorm, LeakyReLU and padding (a "
                            "speed option; compiling takes a minute or more; cpu and cuda)")
    # Runs sharing a CPU must split its cores: oversubscribed, every parallel operator waits for
    # descheduled threads, and small runs slow down a hundredfold.
    threads: typing.Optional[int] = setting(None, "PyTorch's CPU threads (default: one per core); runs sharing "
                                            "a CPU should split its cores between them")

    # A checkpoint of the paper's run is some 40 MB: written at every logged iteration, it costs
    # more than the iterations themselves on a fast GPU.
    checkpoint_seconds: float = setting(300.0, "write the checkpoint at the first logged iteration after this many "
                                        "seconds since the last one (0: at every logged iteration); also at the "
                                        "first and last logged iterations and when stopped")

    # The extra candidates cost a forward pass and four SSIMs per logged iteration: on a CPU at
    # 512x512 more than the rest of the logging together.
    log_candidates: bool = setting(False, "log the PSNR and SSIM of every evaluation candidate at every logged "
                                   "iteration; by default those of the last iterate and the final answer, and "
                                   "every candidate's at the last iteration")

    # The fill and BM3D at the run's end: seconds at 64x64 and half a minute at 256x256 on a 2-core
    # CPU (docs/impulse_noise.md), what a test or a quick look may not want to pay.
    no_refined: bool = setting(False, "do not make the refined answer (_refined.png: impulses detected by value, "
                               "filled from their surroundings, BM3D) at the run's end")

    def __post_init__(self):
        check_types(self)

    def validate(self):
        check_choices(self)
        if self.threads is not None:
            check_at_least(self, 1, "threads")
            if self.threads > max_threads():
                raise InputError(f"`threads` must be at most {max_threads()} ({THREADS_PER_CORE} per core of the "
                                 f"{os.cpu_count()} here), got {self.threads}")
        if not 0 <= self.checkpoint_seconds < math.inf:  # also refuses nan
            raise InputError(f"`checkpoint_seconds` must be at least 0 and finite, got {self.checkpoint_seconds}")

    def to_argv(self):
        return settings_argv(self)

    def __str__(self):
        return f"step: {self.step}" + ", channels-last" * self.channels_last + ", compiled" * self.compile


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: its name and folder (outputs are ``<out_dir>/<ckpt>_*``), where it computes, the
    problem it solves and how it computes each iteration."""

    ckpt: str = setting("test", "run name: outputs are <out_dir>/<ckpt>_*")
    out_dir: str = setting("checkpoints", "where outputs are written")
    device: str = setting("auto", "auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps")
    config: RecoveryConfig = RecoveryConfig()
    options: StepOptions = StepOptions()

    def __post_init__(self):
        check_types(self)

    def validate(self):
        """InputError naming the first bad setting of the run (the device is checked when resolved)."""
        if not self.ckpt or self.ckpt in (".", "..") or "/" in self.ckpt or os.sep in self.ckpt:
            raise InputError(f"`ckpt` must be a plain name, not '{printable_path(self.ckpt)}' (choose the folder "
                             f"with `out_dir`)")
        if len(os.fsencode(self.ckpt)) > MAX_CKPT_LENGTH:  # a file name's limit is in bytes
            raise InputError(f"`ckpt` is {len(os.fsencode(self.ckpt))} bytes long; at most {MAX_CKPT_LENGTH}")
        self.config.validate()
        self.options.validate()

    def to_argv(self, resume=False):
        """The ``denoising.py`` command line (a list, without the interpreter) making this run.

        >>> spec = RunSpec("run", "out", "cpu", RecoveryConfig(lr=0.5), StepOptions(threads=2))
        >>> spec.to_argv(resume=True)
        ['denoising.py', '--ckpt', 'run', '--out_dir', 'out', '--device', 'cpu', '--lr', '0.5', '--threads', '2',
         '--resume']
        """
        argv = ["denoising.py", *flag_argv("ckpt", self.ckpt), *flag_argv("out_dir", self.out_dir),
                *flag_argv("device", self.device)]
        return argv + self.config.to_argv() + self.options.to_argv() + ["--resume"] * resume


def check_choices(settings):
    for field in dataclasses.fields(settings):
        choices = field.metadata.get("choices")
        value = getattr(settings, field.name)
        if choices and value not in choices:
            raise InputError(f"`{field.name}` must be one of {', '.join(choices)}, got '{printable_path(value)}'")


def check_at_least(settings, least, *names):
    for name in names:
        if getattr(settings, name) < least:
            raise InputError(f"`{name}` must be at least {least}, got {getattr(settings, name)}")


def check_at_most(settings, most, *names):
    for name in names:
        if getattr(settings, name) > most:
            raise InputError(f"`{name}` must be at most {most}, got {getattr(settings, name)}")


def _flag_fields(cls):
    """The fields of a settings class that are flags (a nested settings object is not)."""
    return [field for field in dataclasses.fields(cls) if "help" in field.metadata]


def settings_argv(settings):
    """The flags giving ``settings`` (a settings dataclass) every value that is not its default.

    >>> settings_argv(RecoveryConfig(image="astronaut", resize=64, l1=True, lr=0.5))
    ['--image', 'astronaut', '--l1', '--lr', '0.5', '--resize', '64']
    >>> settings_argv(StepOptions(threads=2))
    ['--threads', '2']
    """
    argv = []
    for field in _flag_fields(type(settings)):
        value = getattr(settings, field.name)
        if value == field.default or (field.name == "data_dir" and os.path.realpath(value) == os.path.realpath(field.default)):
            continue
        if _value_type(field) is bool:
            argv.append(f"--{field.name}")  # a bool that is not its default False
        else:
            argv += flag_argv(field.name, repr(value) if isinstance(value, float) else str(value))
    return argv


def flag_argv(name, text):
    """``--name text`` as command-line words; ``--name=text`` for a ``text`` that starts with a dash
    (a run named ``-x``), which argparse would otherwise take for a flag."""
    return [f"--{name}={text}"] if text.startswith("-") else [f"--{name}", text]


def add_arguments(parser, cls, exclude=()):
    """Add a flag per field of the settings class ``cls`` to an argparse ``parser``.

    Flags left out of a command line are absent from the parsed namespace (not set to their
    default), so that :func:`given_settings` tells what was given: on resume, what was not given
    comes from the checkpoint.
    """
    for field in _flag_fields(cls):
        if field.name in exclude:
            continue
        kind = _value_type(field)
        shown = "data/denoising in this checkout" if field.name == "data_dir" else field.default
        extra = {"action": "store_true"} if kind is bool else {"type": kind, "choices": field.metadata["choices"]}
        help_text = field.metadata["help"]
        if not (kind is bool or field.default is None or "default:" in help_text):
            help_text += f" (default: {shown})"
        parser.add_argument(f"--{field.name}", dest=field.name, default=argparse.SUPPRESS, help=help_text, **extra)


def given_settings(cls, namespace):
    """``{name: value}`` of the fields of ``cls`` given on the command line parsed into ``namespace``."""
    return {field.name: getattr(namespace, field.name) for field in _flag_fields(cls) if hasattr(namespace, field.name)}
