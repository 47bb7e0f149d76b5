"""tests/slurm_cluster.py, the private Slurm cluster of the tests: a missing prerequisite skips a
test, except under CI where it fails it; a second cluster runs beside the first, and stopping it
ends every process it started and removes its folder. What the project does on the cluster is
tested in test_slurm_launch.py."""

import pytest
from slurm_cluster import processes_with_environ, skip_or_fail, start_cluster, wait_for


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_prerequisite_skips_except_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no Slurm here"):
        skip_or_fail("no Slurm here")


def _alive(pid):
    """Whether process `pid` exists and is not a zombie waiting for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_a_second_cluster_runs_beside_the_first_and_stop_ends_all_of_it(slurm_cluster):
    second, processes = start_cluster()
    marker = f"SLURM_CONF={second.conf_path}"
    try:
        assert second.conf_path != slurm_cluster.conf_path
        output = second.root / "jobs" / "%j.out"
        job_id = second.command("sbatch", "--parsable", f"--output={output}", "--wrap", "sleep 300").strip()
        wait_for(lambda: second.queued_jobs().get(job_id) == "RUNNING", 30, f"running job {job_id}")
        # The daemons, slurmstepd and the job's own processes.
        started = processes_with_environ(marker)
        assert set(processes.pids.values()) < set(started)
        assert slurm_cluster.node_state() == "idle"
    finally:
        processes.stop()
    assert not processes_with_environ(marker)
    wait_for(lambda: not any(map(_alive, started)), 10, f"end of the second cluster's processes {started}")
    assert not second.root.exists()
    assert slurm_cluster.node_state() == "idle"
