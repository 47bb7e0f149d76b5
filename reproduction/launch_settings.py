"""Where the runs of a sweep compute (``reproduce.py --launcher``), and the Slurm options of its
tasks, each checked before anything is submitted."""

import argparse
import dataclasses
import typing

from recovery.settings import add_arguments, check_at_least, check_choices, given_settings, setting
from utils.errors import InputError

LAUNCHERS = ("local", "slurm")
DEFAULT_TASK_CPUS = 2
# The long options of a job in `man sbatch` of Slurm 22.05 (the version the tests run), by what
# follows them. sbatch's options that make no job (help, parsable, quiet, test-only, usage,
# verbose, version, wait, wrap) are left out: given to submitit's script they would break it.
SBATCH_FLAGS = ("contiguous", "hold", "ignore-pbs", "no-requeue", "overcommit", "oversubscribe", "reboot",
                "requeue", "spread-job", "use-min-nodes")
SBATCH_OPTIONAL_VALUE = ("exclusive", "get-user-env", "nice", "no-kill", "propagate")
SBATCH_VALUED = (
    "account", "acctg-freq", "array", "batch", "bb", "bbf", "begin", "chdir", "cluster-constraint", "clusters",
    "comment", "constraint", "container", "core-spec", "cores-per-socket", "cpu-freq", "cpus-per-gpu",
    "cpus-per-task", "deadline", "delay-boot", "dependency", "distribution", "error", "exclude", "export",
    "export-file", "extra-node-info", "gid", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node", "gpus-per-socket",
    "gpus-per-task", "gres", "gres-flags", "hint", "input", "job-name", "kill-on-invalid-dep", "licenses",
    "mail-type", "mail-user", "mcs-label", "mem", "mem-bind", "mem-per-cpu", "mem-per-gpu", "mincpus", "network",
    "nodefile", "nodelist", "nodes", "ntasks", "ntasks-per-core", "ntasks-per-gpu", "ntasks-per-node",
    "ntasks-per-socket", "open-mode", "output", "partition", "power", "prefer", "priority", "profile", "qos",
    "reservation", "signal", "sockets-per-node", "switches", "thread-spec", "threads-per-core", "time", "time-min",
    "tmp", "uid", "wait-all-nodes", "wckey",
)
# The options the launcher sets itself, from its flags (named here) or for submitit's files and signals.
RESERVED_SBATCH_OPTIONS = {
    "array": "max_running", "partition": "partition", "time": "time_min", "cpus-per-task": "cpus_per_task",
    "gpus-per-node": "gpus_per_task", "nodes": None, "output": None, "error": None, "open-mode": None,
    "signal": None,
}


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
    """Where the runs of a sweep compute: ``local`` (in this process, or one local job per visible
    GPU) or ``slurm`` (one Slurm job array, a task per run). Every other field is for ``slurm``."""

    launcher: str = setting("local", "local: runs in this process (one local job per GPU with several GPUs); "
                            "slurm: the runs not complete go to one Slurm job array, a task per run, and "
                            "the same command shows their state, then draws once all are complete", LAUNCHERS)
    partition: typing.Optional[str] = setting(None, "Slurm partition of the tasks (default: the cluster's default "
                                              "partition)")
    time_min: int = setting(120, "time limit of each Slurm task in minutes; a task warned of it saves its run, "
                            "requeues itself and resumes")
    gpus_per_task: int = setting(1, "GPUs of each Slurm task (its run computes on one); 0 on a cluster without "
                                 "GPUs (the run computes on the task's CPUs)")
    cpus_per_task: typing.Optional[int] = setting(None, "CPUs of each Slurm task, which are also its PyTorch "
                                                  f"threads (default: --threads if given, else {DEFAULT_TASK_CPUS})")
    max_running: typing.Optional[int] = setting(None, "at most N tasks of the array run at once (default: no "
                                                "limit but the cluster's)")
    max_restarts: int = setting(10, "a Slurm task requeued more than N times (time limits, preemptions) fails")
    sbatch: typing.Tuple[str, ...] = setting((), "an extra sbatch option KEY=VALUE (account=NAME, qos=NAME, "
                                             "constraint=a100, mem=32G) or KEY alone for a flag (hold); "
                                             "may be repeated")

    def validate(self, settings):
        """InputError naming the first bad value, or one that disagrees with the sweep's
        ``settings`` (a ``plan.Settings``): its device and threads."""
        check_choices(self)
        check_at_least(self, 1, "time_min")
        check_at_least(self, 0, "gpus_per_task", "max_restarts")
        for name in ("cpus_per_task", "max_running"):
            if getattr(self, name) is not None:
                check_at_least(self, 1, name)
        self.sbatch_options()
        if self.launcher == "slurm":
            self.task_device(settings.device)
            self.task_cpus(settings.options.threads)

    def task_device(self, device):
        """The device of a Slurm task's run: its GPU, or its CPUs without one. InputError if the
        sweep's ``device`` setting asks for another."""
        wanted = "cuda" if self.gpus_per_task else "cpu"
        if device not in ("auto", wanted) and not (wanted == "cuda" and device == "cuda:0"):
            where = "its GPU" if self.gpus_per_task else "its CPUs"
            raise InputError(f"`device` {device} cannot be used with `launcher` slurm and `gpus_per_task` "
                             f"{self.gpus_per_task}: each task computes on {where} (`device` auto or {wanted})")
        return wanted

    def task_cpus(self, threads):
        """The CPUs (and PyTorch threads) of each task; ``threads`` is the sweep's setting."""
        if self.cpus_per_task is not None and threads is not None and threads != self.cpus_per_task:
            raise InputError(f"`threads` {threads} differs from `cpus_per_task` {self.cpus_per_task}: a Slurm "
                             f"task's PyTorch threads are its CPUs (give one of them)")
        return self.cpus_per_task or threads or DEFAULT_TASK_CPUS

    def sbatch_options(self):
        """``{option: value}`` of the ``sbatch`` entries (``True`` for a bare KEY), option names as
        sbatch spells them (``cpus-per-task``); InputError for an entry that is not one of sbatch's
        job options with a value as it takes one, or an option the launcher sets itself."""
        options = {}
        for entry in self.sbatch:
            key, has_value, value = entry.partition("=")
            key = key.strip().lstrip("-").replace("_", "-")
            if not key or (has_value and not value):
                raise InputError(f"`sbatch` takes KEY=VALUE or KEY (an sbatch option without its dashes), "
                                 f"not '{entry}'")
            if key not in SBATCH_FLAGS + SBATCH_OPTIONAL_VALUE + SBATCH_VALUED:
                raise InputError(f"`sbatch` '{entry}': {key} is not an option of an sbatch job (man sbatch)")
            if key in RESERVED_SBATCH_OPTIONS:
                flag = RESERVED_SBATCH_OPTIONS[key]
                raise InputError(f"`sbatch` {key} is set by " + (f"`{flag}`" if flag else "the launcher itself"))
            if has_value and key in SBATCH_FLAGS:
                raise InputError(f"`sbatch` '{entry}': {key} is a flag and takes no value (give `sbatch` {key})")
            if not has_value and key in SBATCH_VALUED:
                raise InputError(f"`sbatch` '{entry}': {key} takes a value ({key}=VALUE)")
            options[key] = value if has_value else True
        return options


def add_launch_arguments(parser):
    """The command-line flags of every ``LaunchSettings`` field (``--sbatch`` repeatable)."""
    add_arguments(parser, LaunchSettings, exclude=("sbatch",))
    sbatch = next(field for field in dataclasses.fields(LaunchSettings) if field.name == "sbatch")
    parser.add_argument("--sbatch", action="append", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help=sbatch.metadata["help"])


def launch_from_args(args):
    """``(LaunchSettings, names of the flags given)`` from arguments parsed with
    :func:`add_launch_arguments`; InputError for a Slurm flag given with the local launcher."""
    given = given_settings(LaunchSettings, args)
    launch = LaunchSettings(**{**given, "sbatch": tuple(given.get("sbatch", ()))})
    if launch.launcher == "local" and (slurm_flags := sorted(set(given) - {"launcher"})):
        raise InputError(f"`{slurm_flags[0]}` is for `launcher` slurm only")
    return launch, sorted(given)
