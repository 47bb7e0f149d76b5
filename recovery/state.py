"""What a run carries from one session to the next, and its checkpoint file: the one definition of
the checkpoint's format, read by the run itself (to resume) and by the sweep (to draw results)."""

import dataclasses
import io
import math
import os

import numpy as np
import torch

from utils.atomic_files import atomic_path
from utils.errors import InputError

from .evaluation import history_fields
from .settings import RecoveryConfig

FORMAT = "double-overparam run state"
FORMAT_VERSION = 3
# Version 1 has no evaluation outputs: it reads with no final image, no averages and empty
# candidate columns, so that runs made with it still draw, and resume with the averages started
# where they resume. Versions 1 and 2 keep the input z itself, version 3 its digest.
READABLE_VERSIONS = (1, 2, FORMAT_VERSION)
# The reference's columns first, as they are; then the PSNR and SSIM of each evaluation candidate.
HISTORY_FIELDS = ("iteration", "loss", "psnr", "ssim", "seconds") + history_fields()


@dataclasses.dataclass
class RunState:
    """A run's progress: everything but the problem's tensors is here, and those are ``problem``
    (``Recovery.state_dict()``) once the run has been saved.

    ``iteration`` counts the iterations done. ``history`` has one row per logged iteration, a dict
    with the keys of ``HISTORY_FIELDS``: ``iteration`` (numbered from 0, as the reference logs),
    ``loss``, ``psnr`` and ``ssim`` (None without a clean image), ``seconds`` since the start,
    then ``psnr_<candidate>`` and ``ssim_<candidate>`` for each of ``evaluation.CANDIDATES``.
    ``last`` is the network output at the last logged iteration, ``final`` the candidate
    ``evaluation.FINAL`` there, ``refined`` the refined answer (``recovery.refinement``) of a run
    that has reached ``num_iter`` (None before, and where it cannot be made), and ``best`` the logged output with the highest PSNR (an oracle:
    it uses the clean image), each ``C x H x W float32`` in [0, 1] or None.
    ``seconds`` is the loop's wall time over all sessions; ``devices`` names every device the run
    has computed on. ``read_from`` (not saved) tells the file :meth:`load` read it from.
    """

    config: RecoveryConfig
    problem: dict = None
    iteration: int = 0
    history: list = dataclasses.field(default_factory=list)
    best_psnr: float = -math.inf
    best: np.ndarray = None
    last: np.ndarray = None
    final: np.ndarray = None
    refined: np.ndarray = None
    evaluation: dict = None
    seconds: float = 0.0
    devices: list = dataclasses.field(default_factory=list)
    read_from: tuple = dataclasses.field(default=None, init=False, compare=False, repr=False)

    @property
    def last_iteration(self):
        """The iteration ``last`` is the output of, numbered from 0 as in ``history``: the last
        logged one, which may be short of ``iteration`` (a run stopped between two logged
        iterations)."""
        return int(self.history[-1]["iteration"])

    def reached(self, num_iter):
        """True when the run has done at least ``num_iter`` iterations."""
        return self.iteration >= num_iter

    def to_checkpoint(self):
        """The state as a dict of plain values and tensors (what ``torch.load(weights_only=True)``
        reads back)."""
        as_tensor = lambda image: None if image is None else torch.from_numpy(image)  # noqa: E731
        return {
            "format": FORMAT, "version": FORMAT_VERSION,
            "config": dataclasses.asdict(self.config), "problem": self.problem, "iteration": self.iteration,
            "history": self.history, "best_psnr": self.best_psnr, "best": as_tensor(self.best),
            "last": as_tensor(self.last), "final": as_tensor(self.final), "refined": as_tensor(self.refined),
            "evaluation": self.evaluation,
            "seconds": self.seconds, "devices": self.devices,
        }

    @classmethod
    def from_checkpoint(cls, saved):
        """The inverse of :meth:`to_checkpoint`; ValueError for anything else."""
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError("not a checkpoint written by this program")
        if saved.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"format version {saved.get('version')}; this program reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
        try:
            config = RecoveryConfig(**saved["config"])
        except TypeError:
            raise ValueError("its settings are not those of this program") from None
        as_array = lambda tensor: None if tensor is None else tensor.numpy()  # noqa: E731
        history = [{**dict.fromkeys(HISTORY_FIELDS), **row} for row in saved["history"]]
        return cls(config=config, problem=saved["problem"], iteration=saved["iteration"],
                   history=history, best_psnr=saved["best_psnr"], best=as_array(saved["best"]),
                   last=as_array(saved["last"]), final=as_array(saved.get("final")),
                   refined=as_array(saved.get("refined")),
                   evaluation=saved.get("evaluation"), seconds=saved["seconds"], devices=saved["devices"])

    def save(self, path):
        """Write the checkpoint to ``path`` atomically: the earlier one stays whole until the new
        one is complete. OutputError if it cannot be written (a full disk)."""
        # Serialised in memory first: torch.save reports a failed write (a full disk) as an
        # unexplained RuntimeError, a plain write as the OSError it is.
        buffer = io.BytesIO()
        torch.save(self.to_checkpoint(), buffer)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(buffer.getbuffer())

    @classmethod
    def load(cls, path, earlier=None):
        """The state saved at ``path``; InputError if there is none or it cannot be read.

        ``earlier``, a state read from ``path`` before, comes back as it is while the file is still
        the one it was read from: the check of a run and its start under the lock read the
        checkpoint once, and read it again only if another process saved the run in between."""
        if earlier is not None and earlier.read_from is not None and earlier.read_from == _file_version(path):
            return earlier
        try:
            with open(path, "rb") as f:
                version = _file_version(f.fileno())
                state = cls.from_checkpoint(torch.load(f, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            raise InputError(f"no checkpoint to resume: {path} does not exist") from None
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
        except Exception as exc:  # torch.load's errors for a damaged or foreign file are of many types
            raise InputError(f"cannot read checkpoint {path} ({type(exc).__name__})") from None
        state.read_from = version
        return state


def _file_version(file):
    """What tells one version of a file (a path or an open descriptor) from another, or None where
    there is none: a checkpoint is replaced whole on every save (``save``), so a new one is a new
    inode, with its own size and times."""
    try:
        found = os.stat(file)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns
