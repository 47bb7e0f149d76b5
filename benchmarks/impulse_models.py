"""The impulse models side by side: ours and every classical filter of the results table, on
scikit-image samples, for each corruption at several densities and seeds.

    python benchmarks/impulse_models.py --out_dir impulse_models --device cpu --threads 1 --seeds 0 &
    python benchmarks/impulse_models.py --out_dir impulse_models --device cpu --threads 1 --seeds 1
    python benchmarks/impulse_models.py --out_dir impulse_models --no_run    # the table of both

Every run is a ``denoising.py`` run (``recovery.run_recovery`` through reproduce.py's sweep:
complete runs are reused, interrupted ones resumed), named ``<image>_<noise>_<nlevel digits>_s<seed>``
in ``<out_dir>/runs``; its command is printed. The classical filters see the very same corrupted
image and are cached beside it (``<run>_classical.json``). Writes ``<out_dir>/impulse_models.md``
(means over the seeds, per corruption) and ``.csv`` (every number of every seed).
"""

import dataclasses
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from recovery import RunSpec, StepOptions, describe_device, prepare_observation  # noqa: E402
from recovery.evaluation import DETECTION_FIELDS  # noqa: E402
from reproduction import plan, sweep, table  # noqa: E402
from reproduction.states import State  # noqa: E402
from utils.atomic_files import atomic_path, write_csv  # noqa: E402
from utils.corruption import NOISE_MODELS, NOISE_NAMES  # noqa: E402
from utils.errors import EXPECTED_FAILURES, INTERRUPTED, OneLineErrorParser, report_failure  # noqa: E402
from utils.metrics import psnr, ssim  # noqa: E402

PROG = "impulse_models.py"
FIELDS = ("image", "noise", "nlevel", "seed", "method", "psnr", "ssim", "true_density", "impulses_found", "precision",
          "recall", "iterations", "device", "seconds")
LAST, FINAL, REFINED = "ours, last", "ours, final", "ours, refined"


def build_parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", default=["immunohistochemistry", "retina"],
                   help="scikit-image samples or image files (default: two samples no constant was tuned on)")
    p.add_argument("--noises", nargs="+", default=list(NOISE_MODELS), choices=NOISE_MODELS)
    p.add_argument("--nlevels", nargs="+", type=float, default=[0.1, 0.3, 0.5])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--resize", type=int, default=128, help="shorter side of every image, in pixels")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--num_iter", type=int, default=3000)
    p.add_argument("--show_every", type=int, default=150)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="PyTorch's CPU threads of each run")
    p.add_argument("--out_dir", default="impulse_models")
    p.add_argument("--no_run", action="store_true", help="start no run: tabulate the runs there are")
    return p


def cells(args):
    """``(image, noise, nlevel, seed)`` of every run, in the order they are made."""
    return [(image, noise, nlevel, seed) for noise in args.noises for nlevel in args.nlevels for seed in args.seeds
            for image in args.images]


def cell_settings(args, noise, seed):
    """The reproduce.py settings that fix a cell's observation (size, corruption, seed)."""
    return plan.Settings(resize=args.resize, seed=seed, noise=noise, width=args.width, device=args.device)


def make_run(args, image, noise, nlevel, seed):
    config = dataclasses.replace(plan.cell_config(image, nlevel, cell_settings(args, noise, seed)), width=args.width,
                                 num_iter=args.num_iter, show_every=args.show_every)
    name = f"{image}_{noise}_{str(nlevel).replace('.', '')}_s{seed}"
    return RunSpec(name, os.path.join(args.out_dir, "runs"), args.device, config, StepOptions(threads=args.threads))


def cell_rows(args, image, noise, nlevel, seed, cpu):
    """The rows of one cell: ours (last iterate and final answer, with the detection) and every
    classical filter; ours left out where its run has not logged yet."""
    run = make_run(args, image, noise, nlevel, seed)
    observation = prepare_observation(run.config)
    common = {"image": image, "noise": noise, "nlevel": nlevel, "seed": seed,
              "true_density": float((observation.noisy != observation.clean).mean())}
    rows = []
    result = sweep.load_state(run)
    if result is not None and result.reached(run.config.num_iter):  # a partial run's iterate is not the answer
        detection = {field: result.history[-1].get(field) for field in DETECTION_FIELDS}
        for method, estimate in ((LAST, result.last), (FINAL, result.final), (REFINED, result.refined)):
            if estimate is None:  # a run made without the refined answer
                continue
            rows.append({**common, **detection, "method": method, "psnr": psnr(observation.clean, estimate),
                         "ssim": ssim(observation.clean, estimate), "iterations": result.iteration,
                         "device": ", ".join(result.devices), "seconds": result.seconds})
    cache = os.path.join(run.out_dir, f"{run.ckpt}_classical.json")
    for row in table.classical_rows(image, nlevel, observation, cell_settings(args, noise, seed), cache, cpu):
        rows.append({**common, **{key: row.get(key) for key in ("method", "psnr", "ssim", "device", "seconds")}})
    return rows


def summary_markdown(rows, args):
    """Per corruption: the means over the seeds of every method's PSNR, the detection, and the
    final and refined answers' margins over the best classical filter."""
    lines = ["# Impulse models: ours against the classical filters", "",
             f"scikit-image samples resized to {args.resize} px (shorter side), at their own size; "
             f"ours at width {args.width}, {args.num_iter:,} iterations; PSNR in dB, every method's the mean over "
             f"the seeds (of {', '.join(map(str, args.seeds))}) whose run is complete (*seeds run*; all of them "
             "where none is). *found*: the fraction of elements the run's detector (the refined "
             "answer's) takes for impulses, against the fraction the corruption changed (*true*).", ""]
    for noise in args.noises:
        of_noise = [row for row in rows if row["noise"] == noise]
        methods = list(dict.fromkeys(row["method"] for row in of_noise))
        filters = [method for method in methods if method not in (LAST, FINAL, REFINED, "noisy input")]
        header = ["image", "density", "seeds run", "noisy", "last", "final", "refined", "best filter", "final - best",
                  "refined - best", "found (true)", "precision", "recall"]
        lines += [f"## {NOISE_NAMES[noise]} ({noise})", ""]
        summary, every = [], []
        for image, nlevel in dict.fromkeys((row["image"], row["nlevel"]) for row in of_noise):
            cell = [row for row in of_noise if (row["image"], row["nlevel"]) == (image, nlevel)]
            run_seeds = [row["seed"] for row in cell if row["method"] == LAST]
            if run_seeds:  # the filters on the very corrupted images ours ran on
                cell = [row for row in cell if row["seed"] in run_seeds]

            def mean(method, field="psnr", cell=cell):
                values = [row[field] for row in cell if row["method"] == method and row.get(field) is not None]
                return statistics.fmean(values) if values else None

            best = max(filters, key=mean)
            margin = lambda method: "" if mean(method) is None else f"{mean(method) - mean(best):+.2f}"  # noqa: E731
            seeds = ", ".join(map(str, run_seeds)) or "none"
            summary.append([image, f"{nlevel:.0%}", seeds, _number(mean("noisy input")), _number(mean(LAST)),
                            _number(mean(FINAL)), _number(mean(REFINED)), f"{_number(mean(best))} ({best})",
                            margin(FINAL), margin(REFINED),
                            f"{_number(mean(FINAL, 'impulses_found'), '.1%')} "
                            f"({_number(mean(FINAL, 'true_density'), '.1%')})",
                            _number(mean(FINAL, "precision"), ".3f"), _number(mean(FINAL, "recall"), ".3f")])
            every.append([image, f"{nlevel:.0%}"] + [_number(mean(method)) for method in methods])
        lines += table.markdown_table(header, summary) + ["", "Every method:", ""]
        lines += table.markdown_table(["image", "density"] + methods, every) + [""]
    return "\n".join(lines)


def _number(value, spec=".2f"):
    return "" if value is None else format(value, spec)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        runs = [make_run(args, *cell) for cell in cells(args)]
        for run in runs:
            run.validate()
        if not args.no_run:
            for run in runs:
                state, _ = sweep.run_state(run)
                if state is not State.COMPLETE:
                    print(sweep.denoising_command(run, state is State.PARTIAL))
            outcome = sweep.execute_runs(runs, progress=False)
            if outcome.interrupted:
                print("interrupted: the runs' checkpoints are saved; the same command resumes them")
                return INTERRUPTED
        cpu = describe_device(torch.device("cpu"))
        rows = [row for cell in cells(args) for row in cell_rows(args, *cell, cpu)]
        stem = os.path.join(args.out_dir, "impulse_models")
        write_csv(stem + ".csv", FIELDS, rows)
        with atomic_path(stem + ".md") as tmp, open(tmp, "w") as f:
            f.write(summary_markdown(rows, args))
        print(f"wrote {stem}.md, {stem}.csv")
        return 1 if not args.no_run and outcome.failures else 0
    except EXPECTED_FAILURES as exc:
        return report_failure(PROG, exc, "the runs' checkpoints, if any, are intact (the same command resumes them)")


if __name__ == "__main__":
    sys.exit(main())
