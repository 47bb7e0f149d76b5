"""Measure the evaluation candidates (recovery/evaluation.py) beside the last iterate.

    python benchmarks/evaluation_outputs.py tune --out_dir benchmarks/evaluation_runs
    python benchmarks/evaluation_outputs.py measure --out_dir benchmarks/evaluation_runs --budget_minutes 45
    python benchmarks/evaluation_outputs.py timing --out_dir benchmarks/evaluation_runs
    python benchmarks/evaluation_outputs.py report --out_dir benchmarks/evaluation_runs

``tune`` fits scikit-image samples (never the paper's images) and records, at the end, the PSNR of
the last iterate and of every candidate for every averaging weight in ``--weights``: what the
constants of recovery/evaluation.py were chosen on. ``measure`` makes the runs of Figures 3 and 4
(the paper's images, ``--data_dir``) with the engine itself, all settings of one seed before the
next seed, until the CPU time of the runs of that kind recorded in ``--out_dir`` would pass
``--budget_minutes``; each run records the PSNR of last, of each candidate and of the chosen one,
the loop's time and the time spent in the candidates. ``timing`` times the engine's loop with and without the candidates on one setting, in
alternating rounds. ``report`` prints the Markdown tables of what the others wrote.

Every run is one JSON file in ``--out_dir``; a file already there is not run again, so an
interrupted measurement continues where it stopped. Everything runs on the CPU with ``--threads``
threads (1 by default: the machine is shared).
"""

import dataclasses
import glob
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recovery import Recovery, RecoveryConfig, RunSpec, describe_device, prepare_observation  # noqa: E402
from recovery.evaluation import (CANDIDATES, DESCRIPTIONS, FILL_THRESHOLD, FINAL, FINAL_LABEL,  # noqa: E402
                                 OUTPUT_EMA_WEIGHT, WEIGHT_EMA_WEIGHT, Evaluation)
from recovery.outputs import RunFiles  # noqa: E402
from recovery.loop import fit  # noqa: E402
from recovery.run import check_run, prepare  # noqa: E402
from recovery.stopping import StopRequest  # noqa: E402
from reproduction.plan import FIGURE3_IMAGES, FIGURE3_NLEVEL, FIGURE4_IMAGE, FIGURE4_NLEVELS  # noqa: E402
from reproduction.table import markdown_table  # noqa: E402
from utils.atomic_files import write_json  # noqa: E402
from utils.errors import InputError, OneLineErrorParser  # noqa: E402
from utils.metrics import psnr  # noqa: E402

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                                "data", "denoising")
TUNE_IMAGES = ("astronaut", "coffee", "chelsea")
TUNE_WEIGHTS = (0.9, 0.98, 0.99, 0.995, 0.998, 0.999)
TUNE_THRESHOLDS = (1, 2, 4, 8, 16, 32, 64)  # in units of 1/255
SHOW_EVERY = 500
UNAVERAGED = ("on_z", "y_minus_s")  # the candidates no averaging weight changes


def paper_settings():
    """``(image, nlevel)`` of Figures 3 and 4, each once, in the figures' order."""
    settings = [(image, FIGURE3_NLEVEL) for image in FIGURE3_IMAGES]
    return settings + [(FIGURE4_IMAGE, nlevel) for nlevel in FIGURE4_NLEVELS if (FIGURE4_IMAGE, nlevel) not in settings]


def run_config(args, image, nlevel, seed):
    return RecoveryConfig(image=image, nlevel=nlevel, seed=seed, resize=args.resize, width=args.width,
                          num_iter=args.num_iter, show_every=SHOW_EVERY, data_dir=args.data_dir)


def record_path(out_dir, kind, image, nlevel, seed):
    return os.path.join(out_dir, f"{kind}_{image}_{round(nlevel * 100):02d}_seed{seed}.json")


class TimedEvaluation(Evaluation):
    """The candidates, with the wall and CPU seconds spent computing them."""

    def __init__(self, problem):
        super().__init__(problem)
        self.wall = self.cpu = 0.0

    def _timed(self, method, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = method(*args)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return result

    def update(self, phi):
        return self._timed(super().update, phi)

    def outputs(self):
        return self._timed(super().outputs)


class WithoutCandidates(Evaluation):
    """No averages and no passes on z: the loop as it ran before the candidates existed (the final
    answer is the last output), to time the candidates' cost against."""

    def update(self, phi):
        self.phi = phi

    def outputs(self):
        return {FINAL: self.phi[0].float()}


def engine_run(config, folder, evaluation_class):
    """One run by the engine's own pieces (check, prepare, fit) in ``folder``, its candidates
    computed by ``evaluation_class`` (an ``Evaluation``); returns ``(state, evaluation,
    observation)``."""
    spec = RunSpec("run", folder, "cpu", config)
    checked = check_run(spec, resume=False, overwrite=True, check_memory=False)
    run = prepare(checked, None, RunFiles(folder, "run"), overwrite=True, stop=StopRequest(), progress=False,
                  log=lambda message: None)
    run.evaluation = evaluation_class(run.problem)
    fit(run)
    run.keep_images()
    return run.state, run.evaluation, checked.observation


def measure_one(args, image, nlevel, seed):
    config = run_config(args, image, nlevel, seed)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        state, evaluation, observation = engine_run(config, folder, TimedEvaluation)
    last_row = state.history[-1]
    return {
        "kind": "measure", "image": image, "nlevel": nlevel, "seed": seed, "resize": args.resize, "width": args.width,
        "num_iter": config.num_iter, "device": describe_cpu(),
        "noisy": observation.noisy_psnr, "last": last_row["psnr"],
        "candidates": {name: last_row[f"psnr_{name}"] for name in CANDIDATES}, "final": FINAL,
        "final_psnr": psnr(observation.clean, state.final),
        "weights": {"output": OUTPUT_EMA_WEIGHT, "weights": WEIGHT_EMA_WEIGHT}, "fill_threshold": FILL_THRESHOLD,
        "loop_seconds": state.seconds, "candidate_seconds": evaluation.wall, "candidate_cpu_seconds": evaluation.cpu,
        "cpu_seconds": time.process_time() - cpu,
    }


def tune_one(args, image, nlevel, seed):
    """A plain loop on ``image`` with one Evaluation per weight (both averages with that weight),
    and ``filled`` for each threshold of ``--thresholds`` (/255) on the weight average of the
    weight ``WEIGHT_EMA_WEIGHT``."""
    config = run_config(args, image, nlevel, seed)
    observation = prepare_observation(config)
    problem = Recovery(config, observation.noisy, "cpu")
    weights = sorted(set(args.weights) | {WEIGHT_EMA_WEIGHT})
    evaluations = {weight: Evaluation(problem, output_weight=weight, weights_weight=weight) for weight in weights}
    cpu = time.process_time()
    curve = []
    for iteration in range(config.num_iter):
        _, phi = problem.step()
        for evaluation in evaluations.values():
            evaluation.update(phi)
        if iteration % SHOW_EVERY == 0 or iteration == config.num_iter - 1:
            point = {"iteration": iteration, "last": psnr(observation.clean, phi[0].numpy())}
            for weight, evaluation in evaluations.items():
                for name, image_now in evaluation.outputs().items():
                    if name != "filled" and (weight in args.weights or name in UNAVERAGED):
                        point[name if name in UNAVERAGED else f"{name} {weight:g}"] = psnr(observation.clean,
                                                                                           image_now.numpy())
            if problem.corruption is not None:
                point.update(filled_by_threshold(evaluations[WEIGHT_EMA_WEIGHT], observation.clean, args.thresholds))
            curve.append(point)
    return {"kind": "tune", "image": image, "nlevel": nlevel, "seed": seed, "resize": args.resize, "width": args.width,
            "num_iter": config.num_iter, "device": describe_cpu(), "noisy": observation.noisy_psnr, "curve": curve,
            "cpu_seconds": time.process_time() - cpu}


def filled_by_threshold(evaluation, clean, thresholds):
    """``{"filled <t>": PSNR}`` of ``evaluation``'s ``filled`` for each threshold t (in units of
    1/255) of ``thresholds``."""
    points = {}
    for threshold in thresholds:
        evaluation.fill_threshold = threshold / 255
        points[f"filled {threshold:g}"] = psnr(clean, evaluation.outputs()["filled"].numpy())
    evaluation.fill_threshold = FILL_THRESHOLD
    return points


def describe_cpu():
    return f"{describe_device(torch.device('cpu'))}, {torch.get_num_threads()} thread(s)"


def spent_cpu_seconds(out_dir, kind):
    total = 0.0
    for path in glob.glob(os.path.join(out_dir, f"{kind}_*.json")):
        with open(path) as f:
            total += json.load(f)["cpu_seconds"]
    return total


def run_all(args, kind, cells, make):
    """Make every ``(image, nlevel, seed)`` of ``cells`` not yet recorded, while the budget allows."""
    budget = args.budget_minutes * 60 if args.budget_minutes is not None else float("inf")
    spent = spent_cpu_seconds(args.out_dir, kind)
    last_cost = None
    for image, nlevel, seed in cells:
        path = record_path(args.out_dir, kind, image, nlevel, seed)
        if os.path.exists(path):
            continue
        if last_cost is not None and spent + last_cost > budget:
            print(f"budget: {spent / 60:.1f} of {budget / 60:.0f} CPU minutes spent; {image} {nlevel:.0%} seed {seed} "
                  f"and the rest not run")
            return
        record = make(args, image, nlevel, seed)
        write_json(path, record)
        last_cost = record["cpu_seconds"]
        spent += last_cost
        print(f"{kind} {image} {nlevel:.0%} seed {seed}: {record['cpu_seconds']:.0f} CPU s "
              f"(total {spent / 60:.1f} min)", flush=True)


def timing(args):
    """The engine's loop with and without the candidates, alternating rounds of ``--timing_iterations``."""
    image, nlevel = paper_settings()[0]
    config = dataclasses.replace(run_config(args, image, nlevel, 0), num_iter=args.timing_iterations)
    rounds = {"with": [], "without": []}
    for round_number in range(args.timing_rounds):
        for label, evaluation_class in (("without", WithoutCandidates), ("with", Evaluation)):
            with tempfile.TemporaryDirectory() as folder:
                cpu = time.process_time()
                state, _, _ = engine_run(config, folder, evaluation_class)
                rounds[label].append({"wall": state.seconds, "cpu": time.process_time() - cpu})
            print(f"round {round_number}: {label} the candidates {state.seconds:.1f} s", flush=True)
    record = {"kind": "timing", "image": image, "nlevel": nlevel, "resize": args.resize, "width": args.width,
              "iterations": args.timing_iterations, "show_every": SHOW_EVERY, "rounds": rounds,
              "device": describe_cpu()}
    write_json(os.path.join(args.out_dir, "timing.json"), record)


def load_records(out_dir, kind):
    records = []
    for path in sorted(glob.glob(os.path.join(out_dir, f"{kind}_*.json"))):
        with open(path) as f:
            records.append(json.load(f))
    return records


def gain(record, name):
    """The gain of candidate ``name`` over the last iterate at the run's last iteration, in dB."""
    end = record["curve"][-1]
    return end[name] - end["last"]


def candidate_column_order(name):
    """Tuning columns as ``CANDIDATES`` orders them, each candidate's by its constant: ``"filled 4"``."""
    candidate, _, constant = name.partition(" ")
    return CANDIDATES.index(candidate), float(constant or 0)


def report(args):
    tuned = load_records(args.out_dir, "tune")
    if tuned:
        tuned.sort(key=lambda r: (r["nlevel"] != 0.5, r["nlevel"], r["image"], r["seed"]))
        names = sorted((name for name in tuned[0]["curve"][-1] if name not in ("iteration", "last")),
                       key=candidate_column_order)
        print(f"Tuning ({tuned[0]['device']}; {tuned[0]['resize']} px, width {tuned[0]['width']}, "
              f"{tuned[0]['num_iter']:,} iterations): PSNR (dB) of last at the last iteration, and each candidate's "
              f"gain over it")
        lines = []
        for nlevel in dict.fromkeys(r["nlevel"] for r in tuned):
            group = [r for r in tuned if r["nlevel"] == nlevel]
            lines += [[r["image"], f"{nlevel:.0%}", r["seed"], f"{r['curve'][-1]['last']:.2f}"]
                      + [f"{gain(r, name):+.2f}" for name in names] for r in group]
            lines.append([f"mean at {nlevel:.0%}", "", "", ""]
                         + [f"{statistics.mean(gain(r, name) for r in group):+.2f}" for name in names])
        lines.append(["smallest gain", "", "", ""] + [f"{min(gain(r, name) for r in tuned):+.2f}" for name in names])
        print("\n".join(markdown_table(["image", "noise", "seed", "last"] + names, lines)), "\n")
    measured = load_records(args.out_dir, "measure")
    if measured:
        order = {cell: index for index, cell in enumerate(paper_settings())}
        measured.sort(key=lambda r: (r["seed"], order.get((r["image"], r["nlevel"]), 99)))
        print(f"Measured ({measured[0]['device']}; {measured[0]['resize']} px, width {measured[0]['width']}, "
              f"{measured[0]['num_iter']:,} iterations): PSNR (dB)")
        header = ["image", "noise", "seed", "noisy", "last"] + [DESCRIPTIONS[name] for name in CANDIDATES]
        header += [f"{FINAL_LABEL} - last", "loop (s)", "in the candidates (s)"]
        lines = [[r["image"], f"{r['nlevel']:.0%}", r["seed"], f"{r['noisy']:.2f}", f"{r['last']:.2f}"]
                 + [f"{r['candidates'][name]:.2f}" for name in CANDIDATES]
                 + [f"{r['final_psnr'] - r['last']:+.2f}", f"{r['loop_seconds']:.0f}",
                    f"{r['candidate_seconds']:.1f} ({r['candidate_seconds'] / r['loop_seconds']:.1%})"]
                 for r in measured]
        lines.append(["mean gain over last", "", "", "", ""]
                     + [f"{statistics.mean(r['candidates'][name] - r['last'] for r in measured):+.2f}" for name in CANDIDATES]
                     + [f"{statistics.mean(r['final_psnr'] - r['last'] for r in measured):+.2f}", "", ""])
        print("\n".join(markdown_table(header, lines)), "\n")
    path = os.path.join(args.out_dir, "timing.json")
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        print(f"Timing ({record['device']}; {record['image']} {record['nlevel']:.0%}, {record['resize']} px, width "
              f"{record['width']}, {record['iterations']} iterations a round, {len(record['rounds']['with'])} rounds "
              f"each, alternating): median over rounds")
        lines = [[label, f"{statistics.median(r['wall'] for r in rounds):.1f}",
                  f"{statistics.median(r['cpu'] for r in rounds):.1f}"] for label, rounds in record["rounds"].items()]
        print("\n".join(markdown_table(["candidates", "loop wall (s)", "process CPU (s)"], lines)))


def main(argv=None):
    parser = OneLineErrorParser(prog="evaluation_outputs.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["tune", "measure", "timing", "report"])
    parser.add_argument("--out_dir", required=True, help="one JSON file per run")
    parser.add_argument("--data_dir", default=os.path.normpath(DEFAULT_DATA_DIR), help="the paper's images (measure; default: shared/data/denoising beside the repository)")
    parser.add_argument("--resize", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--num_iter", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget_minutes", type=float, help="CPU minutes for all the runs of the command's kind in --out_dir")
    parser.add_argument("--images", nargs="+", default=list(TUNE_IMAGES), help="tune: scikit-image samples")
    parser.add_argument("--nlevels", type=float, nargs="+", default=[0.5], help="tune: noise levels")
    parser.add_argument("--weights", type=float, nargs="+", default=list(TUNE_WEIGHTS), help="tune: EMA weights")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(TUNE_THRESHOLDS),
                        help="tune: the |s| thresholds of filled, in units of 1/255")
    parser.add_argument("--timing_iterations", type=int, default=300)
    parser.add_argument("--timing_rounds", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        if args.command == "tune" and set(args.images) & set(FIGURE3_IMAGES):
            raise InputError("`images`: tune on other images than the paper's, which the constants are reported on")
        torch.set_num_threads(args.threads)
        os.makedirs(args.out_dir, exist_ok=True)
        if args.command == "tune":
            run_all(args, "tune", [(image, nlevel, seed) for seed in args.seeds for nlevel in args.nlevels
                                   for image in args.images], tune_one)
        elif args.command == "measure":
            run_all(args, "measure", [(image, nlevel, seed) for seed in args.seeds
                                      for image, nlevel in paper_settings()], measure_one)
        elif args.command == "timing":
            timing(args)
        report(args)
    except InputError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
