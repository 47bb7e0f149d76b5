"""The paper's Figures 3, 4, 5 and the teaser, drawn from runs' saved states.

Every function takes the specs of its figure's runs (``RunSpec`` from ``plan``), their states (``recovery.RunState``
or None for a run not made yet, drawn as an empty tile or a missing curve) and the observations
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


def _iterations_done(state):
    """How many iterations the run had done when its ``last`` iterate was taken."""
    return state.last_iteration + 1


def _recovered_tile(spec, observation, state, with_iterations, iterate="last"):
    """A recovered image (the state's ``iterate``: ``last`` or ``final``) and its caption: PSNR,
    then how far the run got if it is partial or if ``with_iterations`` (the row's label cannot
    say it for every tile)."""
    image = None if state is None else getattr(state, iterate)
    if image is None:
        return None, "not run" if state is None else f"no {iterate} image"
    caption = f"{psnr(observation.clean, image):.2f} dB"
    if not state.reached(spec.config.num_iter):
        caption += f" (partial, {_iterations_done(state):,} it.)"
    elif with_iterations:
        caption += f" ({_iterations_done(state):,} it.)"
    return image, caption


def draw_recovery_grid(stem, specs, states, observations):
    """Figures 3 and 4: clean, corrupted and recovered images (the last iterate, the reference's
    answer, then the run's final answer at the same iteration), one column per run, PSNR under
    each tile.

    ``observations[i]`` is the observation of the run ``specs[i]``; ``states[i]`` its state or None.
    """
    titles = [f"{spec.config.image}, {spec.config.nlevel:.0%}" for spec in specs]
    clean_row = [(observation.clean, "") for observation in observations]
    noisy_row = [(observation.noisy, f"{psnr(observation.clean, observation.noisy):.2f} dB") for observation in observations]
    # From the states, not the request: a reused run may be longer than asked, a partial one shorter.
    done = {_iterations_done(state) for state in states if state is not None}
    shared = done.pop() if len(done) == 1 else None
    recovered_rows = [[_recovered_tile(spec, observation, state, shared is None, iterate)
                       for spec, observation, state in zip(specs, observations, states)]
                      for iterate in ("last", "final")]
    recovered = f"last of {shared:,} it." if shared is not None else "last iterate"
    row_labels = ["clean", "corrupted", f"{method_label(specs[0].config)}, {recovered}",
                  f"{method_label(specs[0].config)},\n{FINAL_LABEL}"]
    save_grid(figure_paths(stem), [clean_row, noisy_row, *recovered_rows], row_labels, titles)


def psnr_series(label, state, **style):
    """A curve of the PSNR logged during a run: ``{x: iterations, y: PSNR, label, ...}``."""
    rows = [row for row in state.history if row["psnr"] is not None]
    return {"x": [row["iteration"] for row in rows], "y": [row["psnr"] for row in rows], "label": label, **style}


def draw_figure5(stem, figure3_specs, figure3_states, figure4_specs, figure4_states):
    """PSNR against iteration: left the Figure 3 runs (one per image), right the Figure 4 runs
    (one per noise level). Runs not made yet are left out of their panel."""
    left = [psnr_series(spec.config.image, state) for spec, state in zip(figure3_specs, figure3_states) if state]
    right = [psnr_series(f"{spec.config.nlevel:.0%}", state) for spec, state in zip(figure4_specs, figure4_states) if state]
    width = figure3_specs[0].config.width
    panels = [
        (f"Figure 3 runs: {FIGURE3_NLEVEL:.0%} {NOISE_NAMES[figure3_specs[0].config.noise]}, ours (w={width})", left),
        (f"Figure 4 runs: {figure4_specs[0].config.image}, ours (w={width})", right),
    ]
    save_curves(figure_paths(stem), panels, "iteration", "PSNR (dB)")


def draw_teaser(stem, specs, states, at_paper_scale):
    """PSNR against iteration of ours and DIP-L1 on F16 at 50%: DIP-L1 peaks and falls, ours does
    not. With ``at_paper_scale`` (full-size image, widths 192 and 64), the points read off the
    reference's own figure are drawn beside each curve, as markers of the same colour."""
    series = []
    for number, (spec, state) in enumerate(zip(specs, states)):
        colour = f"C{number}"
        if state is not None:
            series.append(psnr_series(method_label(spec.config), state, color=colour))
        if at_paper_scale:
            points = REFERENCE_TEASER_POINTS.get((spec.config.method, spec.config.width), [])
            series.append({"x": [p[0] for p in points], "y": [p[1] for p in points], "color": colour,
                           "linestyle": "none", "marker": "o", "markerfacecolor": "none",
                           "label": f"{method_label(spec.config)}, reference's figure"})
    config = specs[0].config
    title = f"{config.image}, {config.nlevel:.0%} {NOISE_NAMES[config.noise]}"
    save_curves(figure_paths(stem), [(title, series)], "iteration", "PSNR (dB)")


def at_paper_scale(settings):
    """True when runs use the images at their own size and the paper's widths."""
    return settings.resize is None and settings.width == PAPER_WIDTH
