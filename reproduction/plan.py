"""Which recovery runs each of the paper's figures (and the results table) needs.

A run is named as in the reference README, ``<image>_<nlevel digits>_<width>`` (``F16_05_128``),
with the method appended for the baselines (``F16_05_192_dip-l1``). Runs at different image sizes
live in different folders (``runs/full``, ``runs/resize64``), so a quick look never meets a
full-size run of the same name; runs of another noise than the paper's salt-and-pepper live in
folders of their own too (``runs/resize64-random_valued``).
"""

import dataclasses
import os
import typing

from recovery import RecoveryConfig, RunSpec, StepOptions
from recovery.settings import PRECISIONS, check_at_least, setting
from utils.corruption import NOISE_MODELS
from utils.image_io import DEFAULT_DATA_DIR

TARGETS = ("3", "4", "5", "teaser", "table")
PAPER_WIDTH = 128
PAPER_ITERATIONS = 150000  # Figures 3 to 5 and the table (the paper's setting)
TEASER_ITERATIONS = 200000  # the reference README's learning curve runs this far
PAPER_SHOW_EVERY = 500
FIGURE3_IMAGES = ("F16", "Peppers", "Baboon", "kodim03")
FIGURE3_NLEVEL = 0.5
FIGURE4_IMAGE = "F16"
FIGURE4_NLEVELS = (0.1, 0.3, 0.5, 0.7)
# The teaser: (method, width at the paper's scale), in the order they are drawn.
TEASER_RUNS = (("ours", 192), ("dip-l1", 192), ("dip-l1", 64))
TEASER_IMAGE, TEASER_NLEVEL = "F16", 0.5
# Noise levels at which the classical filters are also reported for every image.
CLASSICAL_NLEVELS = (0.5, 0.7)
TABLE_BASELINES = ("dip", "dip-l1")
METHOD_NAMES = {"ours": "ours", "dip": "DIP (L2)", "dip-l1": "DIP-L1"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every run of one invocation shares; anything left at None takes the paper's value.

    ``width`` is the width of Figures 3 and 4 (the paper's 128); the teaser's widths 192 and 64 are
    scaled by ``width / 128`` so that a narrow quick look keeps its wide-against-narrow contrast.
    """

    width: int = setting(PAPER_WIDTH, "network width of Figures 3, 4 and the table (the teaser's 192 and 64 "
                         "are scaled by WIDTH/128)")
    num_iter: typing.Optional[int] = setting(None, "iterations of every run (default: the paper's 150,000; "
                                             "200,000 for the teaser)")
    show_every: typing.Optional[int] = setting(None, "log and checkpoint every N iterations (default: 500, fewer "
                                               "for short runs so that curves have about 20 points)")
    resize: typing.Optional[int] = setting(None, "resize every image so its shorter side is N pixels")
    data_dir: str = setting(DEFAULT_DATA_DIR, "where the paper's images are (default: data/denoising in this "
                            "checkout)")
    seed: int = setting(0, "seeds every run and the corruption, the same for every method")
    noise: str = setting("salt_pepper", "the impulses of every run and filter, as denoising.py's --noise (runs of "
                         "another noise than the paper's live in runs/<size>-<noise>)", NOISE_MODELS)
    precision: str = setting("tf32", "as denoising.py's --precision, for every run", PRECISIONS)
    out_dir: str = setting("figures", "where figures, table and runs/ go")
    device: str = setting("auto", "auto (every visible GPU, else CPU), cpu, cuda, cuda:N or mps")
    options: StepOptions = StepOptions()  # how, not what, each run computes

    def validate(self):
        check_at_least(self, 1, "width")  # scaled_width would quietly make a smaller one 1


def cell_name(image, nlevel):
    """``F16_05``: an image at a noise level."""
    return f"{image}_{str(nlevel).replace('.', '')}"


def run_name(image, nlevel, width, method):
    """``F16_05_128``, ``F16_05_192_dip-l1``: the reference README's naming."""
    name = f"{cell_name(image, nlevel)}_{width}"
    return name if method == "ours" else f"{name}_{method}"


def runs_dir(settings):
    """Where the runs at ``settings``' image size and noise live: ``<out_dir>/runs/full`` or
    ``.../resize<N>`` for the paper's salt-and-pepper, ``.../full-random_valued`` for another."""
    folder = "full" if settings.resize is None else f"resize{settings.resize}"
    if settings.noise != Settings.noise:
        folder += f"-{settings.noise}"
    return os.path.join(settings.out_dir, "runs", folder)


def scaled_width(paper_width, settings):
    """The width standing for ``paper_width`` when Figures 3 and 4 use ``settings.width``."""
    return max(1, round(paper_width * settings.width / PAPER_WIDTH))


def show_every_for(num_iter, settings):
    """The paper logs every 500 iterations; short runs log more often so their curves have points."""
    if settings.show_every is not None:
        return settings.show_every
    return min(PAPER_SHOW_EVERY, max(1, num_iter // 20))


def cell_config(image, nlevel, settings):
    """The settings that fix the observation of ``image`` at ``nlevel`` (image, size, corruption
    and its seed): every run and every classical filter of that cell sees the same corrupted image."""
    return RecoveryConfig(image=image, nlevel=nlevel, noise=settings.noise, seed=settings.seed, resize=settings.resize,
                          data_dir=settings.data_dir)


def make_run(image, nlevel, method, paper_width, paper_iterations, settings):
    """The RunSpec of ``method`` on ``image`` at ``nlevel``, at the size and scale ``settings`` ask."""
    width = scaled_width(paper_width, settings)
    num_iter = settings.num_iter if settings.num_iter is not None else paper_iterations
    config = dataclasses.replace(
        cell_config(image, nlevel, settings),
        method=method,
        width=width,
        num_iter=num_iter,
        show_every=show_every_for(num_iter, settings),
        precision=settings.precision,
    )
    return RunSpec(run_name(image, nlevel, width, method), runs_dir(settings), settings.device, config,
                   settings.options)


def figure3_runs(settings):
    """Ours on each of the four images at 50%, in the figure's column order."""
    return [make_run(image, FIGURE3_NLEVEL, "ours", PAPER_WIDTH, PAPER_ITERATIONS, settings) for image in FIGURE3_IMAGES]


def figure4_runs(settings):
    """Ours on F16 at each noise level, in the figure's column order."""
    return [
        make_run(FIGURE4_IMAGE, nlevel, "ours", PAPER_WIDTH, PAPER_ITERATIONS, settings) for nlevel in FIGURE4_NLEVELS
    ]


def teaser_runs(settings):
    """Ours (w=192), DIP-L1 (w=192), DIP-L1 (w=64) on F16 at 50%, widths scaled with ``settings``."""
    return [
        make_run(TEASER_IMAGE, TEASER_NLEVEL, method, width, TEASER_ITERATIONS, settings)
        for method, width in TEASER_RUNS
    ]


def recovery_cells():
    """The (image, nlevel) pairs of Figures 3 and 4: where ours and the DIP baselines are run."""
    cells = [(image, FIGURE3_NLEVEL) for image in FIGURE3_IMAGES]
    cells += [(FIGURE4_IMAGE, nlevel) for nlevel in FIGURE4_NLEVELS]
    return _unique(cells)


def table_cells():
    """Every (image, nlevel) of the results table, sorted: the recovery cells, and every image at
    the classical filters' noise levels."""
    cells = recovery_cells() + [(image, nlevel) for image in FIGURE3_IMAGES for nlevel in CLASSICAL_NLEVELS]
    return sorted(_unique(cells), key=lambda cell: (FIGURE3_IMAGES.index(cell[0]), cell[1]))


def table_runs(settings):
    """DIP (L2) and DIP-L1 at the figures' width on every recovery cell, to compare ours with."""
    return [
        make_run(image, nlevel, method, PAPER_WIDTH, PAPER_ITERATIONS, settings)
        for image, nlevel in recovery_cells()
        for method in TABLE_BASELINES
    ]


def runs_for(targets, settings):
    """Every run the ``targets`` (names from TARGETS) need, each once, in a stable order.

    A run needed twice with different lengths (possible only at tiny widths, where scaled widths
    coincide) is kept once, with the longer length.
    """
    builders = {
        "3": figure3_runs,
        "4": figure4_runs,
        "5": lambda s: figure3_runs(s) + figure4_runs(s),
        "teaser": teaser_runs,
        "table": lambda s: figure3_runs(s) + figure4_runs(s) + table_runs(s),
    }
    specs = {}
    for target in TARGETS:
        if target in targets:
            for spec in builders[target](settings):
                kept = specs.get(spec.ckpt)
                if kept is None or spec.config.num_iter > kept.config.num_iter:
                    specs[spec.ckpt] = spec  # a replaced entry keeps its place
    return list(specs.values())


def _unique(items):
    return list(dict.fromkeys(items))
