"""Where the runs of a sweep compute (``reproduce.py --launcher``), and the Slurm options of its
tasks: checked before anything is submitted where sbatch would take them and break the launcher,
else left to sbatch, which refuses what it does not know as it submits."""

import argparse
import dataclasses
import re
import typing

from recovery.settings import add_arguments, check_at_least, check_choices, given_settings, setting
from utils.errors import InputError
from utils.optional import import_optional

LAUNCHERS = ("local", "slurm")
DEFAULT_TASK_CPUS = 2
# What an sbatch option's name is made of: submitit writes it unquoted into the batch script, where
# anything else (a newline above all) would write a line of its own.
SBATCH_OPTION_NAME = re.compile(r"[a-z][a-z0-9-]*")
# The options the launcher sets itself, from its flags (named here) or for submitit's files and
# signals (and gpus, the job's GPUs in all). sbatch takes each again, and submitit writes an entry in
# the launcher's place: the tasks would lose their logs, their array or their warning before the
# time limit.
RESERVED_SBATCH_OPTIONS = {
    "array": "max_running", "partition": "partition", "time": "time_min", "cpus-per-task": "cpus_per_task",
    "gpus": "gpus_per_task", "gpus-per-node": "gpus_per_task", "nodes": None, "output": None, "error": None,
    "open-mode": None, "signal": None,
}
# sbatch's options that leave submitit no job to follow, though sbatch takes them (Slurm 22.05,
# measured): with parsable it prints the job's id alone, which submitit cannot read (the job runs,
# untracked); with test-only it submits nothing; with wait it returns once the job has ended.
UNFOLLOWED_SBATCH_OPTIONS = ("parsable", "test-only", "wait")


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
            import_optional("submitit", "`launcher` slurm")

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
        sbatch spells them (``cpus-per-task``). sbatch itself refuses an option it does not know or
        a value it does not take, as it submits; InputError here for an entry that is no option's
        name (and value) on one line, an option the launcher sets itself or one that leaves it no
        job to follow. sbatch takes a long option's name cut short where no other begins the same
        way (``out`` for ``output``): a beginning of such an option's name is refused too."""
        options = {}
        for entry in self.sbatch:
            key, has_value, value = entry.partition("=")
            key = key.strip().lstrip("-").replace("_", "-")
            if not SBATCH_OPTION_NAME.fullmatch(key) or (has_value and not value) or not value.isprintable():
                raise InputError(f"`sbatch` takes KEY=VALUE or KEY (an sbatch option without its dashes) on one "
                                 f"line, not {entry!r}")
            if reserved := next((name for name in RESERVED_SBATCH_OPTIONS if name.startswith(key)), None):
                flag = RESERVED_SBATCH_OPTIONS[reserved]
                raise InputError(f"`sbatch` {key}{'' if key == reserved else f' ({reserved} to sbatch)'} is set by "
                                 + (f"`{flag}`" if flag else "the launcher itself"))
            if unfollowed := next((name for name in UNFOLLOWED_SBATCH_OPTIONS if name.startswith(key)), None):
                raise InputError(f"`sbatch` {key}{'' if key == unfollowed else f' ({unfollowed} to sbatch)'} leaves "
                                 f"the launcher no job to follow (man sbatch)")
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
