"""The three matrix experiments as one call: their settings (``MatrixSettings``, whose fields are
``matrix_recovery.py``'s flags) and :func:`run_experiments`, which runs those asked for, writes
their CSV files and figures, and logs what they found."""

import dataclasses
import os
import time
import typing

from recovery.settings import MAX_SEED, check_at_least, check_at_most, setting
from utils.atomic_files import check_writable_folder, printable_path
from utils.errors import InputError
from utils.optional import import_optional

from . import implicit_bias, learning_curves, phase_transition

EXPERIMENTS = ("implicit_bias", "phase_transition", "learning_curves")
# Every problem of the phase transition is made before the first is solved, and each is a convex
# program and two descents: --quick --trials 20 (180 problems) took 9.7 s on the 2-core development
# CPU, so 1,000 trials (9,000 problems; 30,000 larger ones on the full grid) are minutes to hours.
# Far beyond, the problems alone fill the memory (issue 28: --trials 10**11 reached 23.7 GB).
MAX_TRIALS = 1000
MODULES = dict(zip(EXPERIMENTS, (implicit_bias, phase_transition, learning_curves)))  # each has QUICK and FULL


@dataclasses.dataclass(frozen=True)
class MatrixSettings:
    """What ``matrix_recovery.py`` runs. The sizes, step, iterations and scales of each experiment
    are fixed (``FULL`` and ``QUICK`` in its module; docs/theory.md lists them)."""

    quick: bool = setting(False, "a small version of every experiment asked for (under a minute on a 2-core CPU)")
    seed: int = setting(0, "seed of the first planted problem; the others take the next seeds (0 to 2**63 - 1)")
    out_dir: str = setting(os.path.join("figures", "matrix"), "where the figures (PNG, PDF) and CSV files go")
    threshold: float = setting(1e-2, "a phase-transition trial recovers X* when ||X - X*||_F / ||X*||_F is below "
                               "this, in (0, 1)")
    trials: typing.Optional[int] = setting(None, "problems per cell of the phase transition, 1 to 1000 (default: 5; "
                                           "2 with --quick)")
    experiments: tuple = EXPERIMENTS  # the command line's --experiment

    def validate(self):
        """Raise InputError naming the first bad setting."""
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"`seed` must be in [0, 2**63 - 1], got {self.seed}")
        if not 0 < self.threshold < 1:  # also refuses nan
            raise InputError(f"`threshold` must be in (0, 1), got {self.threshold}")
        if self.trials is not None:
            check_at_least(self, 1, "trials")
            check_at_most(self, MAX_TRIALS, "trials")
        unknown = [name for name in self.experiments if name not in EXPERIMENTS]
        if unknown or not self.experiments:
            raise InputError(f"`experiment` must be some of {', '.join(EXPERIMENTS)}, "
                             f"got {', '.join(unknown) or 'none'}")
        check_writable_folder(self.out_dir, "`out_dir`")

    def plans(self):
        """``{experiment: plan}`` for the experiments asked for, quick or full, ``trials`` applied."""
        plans = {name: MODULES[name].QUICK if self.quick else MODULES[name].FULL
                 for name in EXPERIMENTS if name in self.experiments}
        if self.trials is not None and "phase_transition" in plans:
            plans["phase_transition"] = dataclasses.replace(plans["phase_transition"], trials=self.trials)
        return plans


def run_experiments(settings, log=print):
    """Run the experiments ``settings`` asks for, write their files in ``settings.out_dir`` and log
    their findings; the last line, when the implicit-bias experiment ran, is
    ``implicit bias: relative distance <d> at eps <e>`` for the commuting measurements' smallest
    eps (the median over alpha and problems; the line before names the largest). Returns
    ``{experiment: rows}``.

    :raises InputError: bad settings, before anything runs.
    """
    settings.validate()
    import_optional("cvxpy", "every matrix experiment (each compares with the convex program)")
    plans = settings.plans()
    os.makedirs(settings.out_dir, exist_ok=True)
    results, written = {}, []
    for name, plan in plans.items():
        start = time.perf_counter()
        if name == "implicit_bias":
            rows = implicit_bias.run_implicit_bias(plan, settings.seed, log)
            written += implicit_bias.write_implicit_bias(rows, settings.out_dir)
            for line in implicit_bias.describe(rows):
                log(line)
        elif name == "phase_transition":
            rows = phase_transition.run_phase_transition(plan, settings.seed, log)
            written += phase_transition.write_phase_transition(rows, settings.out_dir, settings.threshold)
            for line in phase_transition.describe(rows, settings.threshold):
                log(line)
        else:
            rows = learning_curves.run_learning_curves(plan, settings.seed)
            written += learning_curves.write_learning_curves(rows, settings.out_dir)
            log(learning_curves.describe(rows))
        log(f"{name.replace('_', ' ')}: done in {time.perf_counter() - start:.1f} s")
        results[name] = rows
    log("outputs: " + ", ".join(printable_path(path) for path in written))
    summary = implicit_bias.commuting_summary(results.get("implicit_bias", []))
    if summary is not None:
        median, eps, worst = summary
        log(f"implicit bias: the commuting runs' largest distance at eps {eps:g} is {worst['distance']:.3g} "
            f"({worst['kind']} problem {worst['instance']}, alpha {worst['alpha']:g}); their median:")
        log(f"implicit bias: relative distance {median:.3g} at eps {eps:g}")
    return results
