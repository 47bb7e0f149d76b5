"""reproduction.launch_settings: every launcher setting checked before anything is submitted or
run, each refusal one line naming the flag and exit status 2, nothing written: settings that
disagree with the sweep's, Slurm's flags without the Slurm launcher, and --sbatch entries that are
no option's name on one line, that the launcher sets, or that leave it no job to follow (what
sbatch refuses itself is tests/test_slurm_launch.py's, on a real cluster)."""

import pytest

from conftest import needs_package
from reproduce import main
from reproduction.launch_settings import LaunchSettings
from reproduction.plan import Settings


def refusal(tmp_path, capsys, argv):
    """The one line ``reproduce.py argv`` writes as it exits with status 2, having written nothing."""
    assert main(["--figure", "3", "--out_dir", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()
    return err


@pytest.mark.parametrize("flags,named", [
    (["--gpus_per_task", "1", "--device", "cpu"], "--device cpu cannot be used"),
    (["--gpus_per_task", "0", "--threads", "2", "--cpus_per_task", "1"], "--threads 2 differs"),
    (["--time_min", "0"], "--time_min must be at least 1"),
])
def test_launcher_settings_that_disagree_are_one_line(tmp_path, capsys, flags, named):
    assert named in refusal(tmp_path, capsys, ["--launcher", "slurm", *flags])


@pytest.mark.parametrize("flags,named", [(["--partition", "gpu"], "--partition is for --launcher slurm"),
                                         (["--sbatch", "hold"], "--sbatch is for --launcher slurm"),
                                         (["--status"], "--status shows the state of Slurm jobs")])
def test_slurm_flags_need_the_slurm_launcher(tmp_path, capsys, flags, named):
    assert named in refusal(tmp_path, capsys, flags)


@pytest.mark.parametrize("entry,named", [
    ("=x", "--sbatch takes KEY=VALUE or KEY"),
    ("account=", "--sbatch takes KEY=VALUE or KEY"),
    ("hold\n#SBATCH --partition=big", "--sbatch takes KEY=VALUE or KEY (an sbatch option without its dashes) on one "
                                     "line, not 'hold\\n#SBATCH --partition=big'"),  # a line of its own in the script
    ("comment=a\nb", "on one line, not 'comment=a\\nb'"),
    ("acc ount=me", "--sbatch takes KEY=VALUE or KEY"),
    ("time=10", "--sbatch time is set by --time_min"),
    ("--cpus_per_task=4", "--sbatch cpus-per-task is set by --cpus_per_task"),
    ("gpus=2", "--sbatch gpus is set by --gpus_per_task"),
    ("output=x.log", "--sbatch output is set by the launcher itself"),
    ("out=x.log", "--sbatch out (output to sbatch) is set by the launcher itself"),  # sbatch takes it for output
    ("sig=USR1@10", "--sbatch sig (signal to sbatch) is set by the launcher itself"),
    ("parsable", "--sbatch parsable leaves the launcher no job to follow"),
    ("pars", "--sbatch pars (parsable to sbatch) leaves the launcher no job to follow"),
    ("test-only", "--sbatch test-only leaves the launcher no job to follow"),
    ("wait", "--sbatch wait leaves the launcher no job to follow"),
])
def test_a_bad_sbatch_entry_is_one_line_naming_the_flag(tmp_path, capsys, entry, named):
    err = refusal(tmp_path, capsys, ["--launcher", "slurm", "--gpus_per_task", "0", "--sbatch", "qos=normal",
                                     f"--sbatch={entry}"])
    assert err.startswith("reproduce.py: error: ") and named in err, err


@needs_package("submitit")  # validating the Slurm launcher checks for its client
def test_sbatch_entries_are_valid_slurm_settings():
    LaunchSettings(launcher="slurm", sbatch=("account=me", "--qos=high", "hold", "no-kill")).validate(Settings())


def test_sbatch_entries_become_the_options_sbatch_spells():
    entries = ("account=me", "--qos=high", "mem_per_cpu=2G", "hold", "exclusive=user", "no-kill")
    options = LaunchSettings(launcher="slurm", sbatch=entries).sbatch_options()
    assert options == {"account": "me", "qos": "high", "mem-per-cpu": "2G", "hold": True, "exclusive": "user",
                       "no-kill": True}
    # Whole options that begin like the launcher's own are theirs, not a beginning of the launcher's.
    assert LaunchSettings(sbatch=("wait-all-nodes=1", "time-min=60")).sbatch_options() == {
        "wait-all-nodes": "1", "time-min": "60"}
