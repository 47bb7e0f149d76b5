"""The files a run writes, and the functions that write its images and records."""

import contextlib
import dataclasses
import os

import numpy as np
import torch

from utils.atomic_files import remove_temporaries, write_csv, write_json
from utils.image_io import save_png
from utils.metrics import psnr
from utils.plotting import save_panel

from .evaluation import FINAL_LABEL
from .refinement import REFINED_LABEL
from .state import HISTORY_FIELDS


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The paths of one run's files: ``files.checkpoint`` is ``<out_dir>/<ckpt>_checkpoint.pt``."""

    out_dir: str
    ckpt: str

    def _path(self, name):
        return os.path.join(self.out_dir, f"{self.ckpt}_{name}")

    @property
    def last(self):
        """The recovered image phi, last iterate: the reference's answer."""
        return self._path("last.png")

    @property
    def final(self):
        """The candidate ``evaluation.FINAL`` at the last logged iteration (no clean image used)."""
        return self._path("final.png")

    @property
    def refined(self):
        """The refined answer (``recovery.refinement``) at the run's last iteration (no clean image used)."""
        return self._path("refined.png")

    @property
    def best(self):
        """The PSNR-best logged iterate (an oracle: it uses the clean image)."""
        return self._path("best.png")

    @property
    def noisy(self):
        """The corrupted input, as the network sees it."""
        return self._path("noisy.png")

    @property
    def clean(self):
        """The clean image, cropped as the network sees it."""
        return self._path("clean.png")

    @property
    def impulses(self):
        """s mapped to [0, 1]: grey none, white salt, black pepper."""
        return self._path("impulses.png")

    @property
    def mask(self):
        """Where the run found impulses (``ours``; the refined answer's detector,
        ``refinement.ImpulseDetector``): white elements, black elsewhere."""
        return self._path("mask.png")

    @property
    def panel(self):
        """Noisy / recovered (last, final) / clean side by side."""
        return self._path("panel.png")

    @property
    def history(self):
        return self._path("history.csv")

    @property
    def args(self):
        return self._path("args.json")

    @property
    def checkpoint(self):
        return self._path("checkpoint.pt")

    def all(self):
        """Every file of the run."""
        return [self.last, self.final, self.refined, self.best, self.noisy, self.clean, self.impulses, self.mask, self.panel, self.history,
                self.args, self.checkpoint]

    def remove_temporaries(self):
        """Remove what writes of the run's files left when a kill interrupted them (the caller
        holds the run's lock: no other process is writing them)."""
        for path in self.all():
            remove_temporaries(path)

    def remove_all(self):
        """Remove every file of the run, so that none of an old run passes for one of a new run."""
        for path in self.all():
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def write_settings(files, spec, device):
    """``<ckpt>_args.json``: the run's settings, how it computes, and where. Rewritten on resume
    too: num_iter, the step options or the device (of the same type) may have changed."""
    settings = dataclasses.asdict(spec.config)
    if spec.config.noisy is not None:  # the file is the observation: no image was read, no noise added
        settings.update(image=None, nlevel=None)
    options = {**dataclasses.asdict(spec.options), "threads": torch.get_num_threads()}
    write_json(files.args, {**settings, **options, "ckpt": spec.ckpt, "device": str(device)})


def write_observation(files, observation):
    """``_noisy.png`` and ``_clean.png`` (when there is a clean image), at the observation's bit depth."""
    save_png(files.noisy, observation.noisy, observation.bit_depth)
    if observation.clean is not None:
        save_png(files.clean, observation.clean, observation.bit_depth)


def write_history(files, state):
    write_csv(files.history, HISTORY_FIELDS, state.history)


def write_best(files, state, depth):
    """``_best.png``: ``state.best``, written (a PNG of ``depth`` bits, the observation's) as soon as
    a logged iterate beats the earlier ones."""
    save_png(files.best, state.best, depth)


def write_final_images(files, observation, state, impulses, found):
    """``_last.png``, ``_final.png`` and ``_refined.png`` (``state.final`` and ``state.refined``,
    when the run has them), ``_impulses.png`` and ``_mask.png`` (``impulses`` is s, ``C x H x W``
    in about [-1, 1], and ``found`` the impulses detected, bool of its shape; or both None) and the
    panel: noisy, recovered (last, final, refined) and clean, or the impulses when there is no
    clean image.

    The images are PNGs of the observation's bit depth, grayscale for one channel; the mask, black
    and white, is 8-bit always, and the panel (a figure for people) too."""
    depth = observation.bit_depth
    save_png(files.last, state.last, depth)
    recovered = [(state.last, "recovered (last)")]
    if state.final is not None:
        save_png(files.final, state.final, depth)
        recovered.append((state.final, FINAL_LABEL))
    if state.refined is not None:
        save_png(files.refined, state.refined, depth)
        recovered.append((state.refined, REFINED_LABEL))
    clean = observation.clean
    if clean is not None:
        tiles = [(observation.noisy, f"noisy, {observation.noisy_psnr:.2f} dB")]
        tiles += [(image, f"{caption}, {psnr(clean, image):.2f} dB") for image, caption in recovered]
        tiles.append((clean, "clean"))
    else:
        tiles = [(observation.noisy, "noisy")] + recovered
    if impulses is not None:
        save_png(files.impulses, (impulses + 1) / 2, depth)
        save_png(files.mask, found.astype(np.float32))
        if clean is None:
            tiles.append(((impulses + 1) / 2, "impulses s"))
    save_panel(files.panel, tiles)
