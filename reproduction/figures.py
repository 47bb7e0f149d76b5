"""The paper's Figures 3, 4, 5 and the teaser, drawn from runs' saved results.

Every function takes the runs of its figure (``RunSpec`` from ``plan``), their results (``recovery.RunState`` or
None for a run not made yet, drawn as an empty tile or a missing curve) and the observations
(``recovery.Observation``, clean and corrupted images) and writes ``<stem>.png`` and ``<stem>.pdf``.
"""

from recovery.evaluation import FINAL_LABEL
from utils.corruption import NOISE_NAMES
from utils.metrics import psnr
from utils.plotting import save_curves, save_grid

from .plan import FIGURE3_NLEVEL, METHOD_NAMES, PAPER_WIDTH

FORMATS = (".png", ".pdf")
# The reference README's learning curves (F16, 50%), read off its picture to +-0.2 dB (METHOD.md):
# (method, width) -> [(iteration, PSNR)]. Drawn only beside runs at the paper's size and widths.
REFERENCE_TEASER_POINTS = {
    ("ours", 192): [(50000, 31.0), (90000, 32.0), (200000, 32.2)],
    ("dip-l1", 192): [(57500, 29.1), (200000, 14.0)],
    ("dip-l1", 64): [(60000, 27.0), (180000, 28.9)],
}


def figure_paths(stem):
    return [stem + ext for ext in FORMATS]


def method_label(config):
    return f"{METHOD_NAMES[config.method]} (w={config.width})"


def _iterations_done(result):
    """How many iterations the run had done when its ``last`` iterate was taken."""
    return result.last_iteration + 1


def _recovered_tile(run, observation, result, with_iterations, iterate="last"):
    """A recovered image (the result's ``iterate``: ``last`` or ``final``) and its caption: PSNR,
    then how far the run got if it is partial or if ``with_iterations`` (the row's label cannot
    say it for every tile)."""
    image = None if result is None else getattr(result, iterate)
    if image is None:
        return None, "not run" if result is None else f"no {iterate} image"
    caption = f"{psnr(observation.clean, image):.2f} dB"
    if not result.reached(run.config.num_iter):
        caption += f" (partial, {_iterations_done(result):,} it.)"
    elif with_iterations:
        caption += f" ({_iterations_done(result):,} it.)"
    return image, caption


def draw_recovery_grid(stem, runs, results, observations):
    """Figures 3 and 4: clean, corrupted and recovered images (the last iterate, the reference's
    answer, then the run's final answer at the same iteration), one column per run, PSNR under
    each tile.

    ``observations[i]`` is the observation of ``runs[i]``; ``results[i]`` its result or None.
    """
    titles = [f"{run.config.image}, {run.config.nlevel:.0%}" for run in runs]
    clean_row = [(observation.clean, "") for observation in observations]
    noisy_row = [(observation.noisy, f"{psnr(observation.clean, observation.noisy):.2f} dB") for observation in observations]
    # From the results, not the request: a reused run may be longer than asked, a partial one shorter.
    done = {_iterations_done(result) for result in results if result is not None}
    shared = done.pop() if len(done) == 1 else None
    recovered_rows = [[_recovered_tile(run, observation, result, shared is None, iterate)
                       for run, observation, result in zip(runs, observations, results)]
                      for iterate in ("last", "final")]
    recovered = f"last of {shared:,} it." if shared is not None else "last iterate"
    row_labels = ["clean", "corrupted", f"{method_label(runs[0].config)}, {recovered}",
                  f"{method_label(runs[0].config)},\n{FINAL_LABEL}"]
    save_grid(figure_paths(stem), [clean_row, noisy_row, *recovered_rows], row_labels, titles)


def psnr_series(label, result, **style):
    """A curve of the PSNR logged during a run: ``{x: iterations, y: PSNR, label, ...}``."""
    rows = [row for row in result.history if row["psnr"] is not None]
    return {"x": [row["iteration"] for row in rows], "y": [row["psnr"] for row in rows], "label": label, **style}


def draw_figure5(stem, figure3_runs, figure3_results, figure4_runs, figure4_results):
    """PSNR against iteration: left the Figure 3 runs (one per image), right the Figure 4 runs
    (one per noise level). Runs not made yet are left out of their panel."""
    left = [psnr_series(run.config.image, result) for run, result in zip(figure3_runs, figure3_results) if result]
    right = [psnr_series(f"{run.config.nlevel:.0%}", result) for run, result in zip(figure4_runs, figure4_results) if result]
    width = figure3_runs[0].config.width
    panels = [
        (f"Figure 3 runs: {FIGURE3_NLEVEL:.0%} {NOISE_NAMES[figure3_runs[0].config.noise]}, ours (w={width})", left),
        (f"Figure 4 runs: {figure4_runs[0].config.image}, ours (w={width})", right),
    ]
    save_curves(figure_paths(stem), panels, "iteration", "PSNR (dB)")


def draw_teaser(stem, runs, results, at_paper_scale):
    """PSNR against iteration of ours and DIP-L1 on F16 at 50%: DIP-L1 peaks and falls, ours does
    not. With ``at_paper_scale`` (full-size image, widths 192 and 64), the points read off the
    reference's own figure are drawn beside each curve, as markers of the same colour."""
    series = []
    for number, (run, result) in enumerate(zip(runs, results)):
        colour = f"C{number}"
        if result is not None:
            series.append(psnr_series(method_label(run.config), result, color=colour))
        if at_paper_scale:
            points = REFERENCE_TEASER_POINTS.get((run.config.method, run.config.width), [])
            series.append({"x": [p[0] for p in points], "y": [p[1] for p in points], "color": colour,
                           "linestyle": "none", "marker": "o", "markerfacecolor": "none",
                           "label": f"{method_label(run.config)}, reference's figure"})
    config = runs[0].config
    title = f"{config.image}, {config.nlevel:.0%} {NOISE_NAMES[config.noise]}"
    save_curves(figure_paths(stem), [(title, series)], "iteration", "PSNR (dB)")


def at_paper_scale(settings):
    """True when runs use the images at their own size and the paper's widths."""
    return settings.resize is None and settings.width == PAPER_WIDTH
