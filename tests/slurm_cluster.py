"""A private single-node Slurm cluster for the tests: munged, slurmctld and slurmd started by the
test session itself on this host, each with its own files, socket and ports under one temporary
folder, so that it never touches a system-wide daemon nor one left by an earlier run.

The host is both the controller and the only compute node, with CPUs = nproc and no GPUs. Memory
is not a consumable resource (SelectTypeParameters=CR_CPU): jobs asking for no memory run side by
side, and a job asking for up to the node's RealMemory (90 % of this host's) runs too.

Timing (Slurm 22.05): time limits are whole minutes (`--time=0:30` becomes 1:00), and slurmctld
checks them every 30 s, so a job ends 0-30 s after its limit and `--signal=USR2@N` arrives at the
first 30 s check where the time left is at most N + 30 s. KillWait (KILL_WAIT_S) is the time from
SIGTERM to SIGKILL when a job is ended, requeued or out of time; a requeued job may start again
REQUEUE_DELAY_S after it ended (AuthInfo cred_expire, 120 s by default).

Use it through the session fixture `slurm_cluster` (tests/conftest.py, over `session_cluster`). Where Slurm or root is missing the tests using it are skipped with the reason;
under CI (CI=true) that is a failure instead.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DAEMON_PROGRAMS = ("munged", "slurmctld", "slurmd")
CLIENT_PROGRAMS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
PARTITION = "debug"
KILL_WAIT_S = 5
REQUEUE_DELAY_S = 5
STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
# Linux limits a unix socket's path to 107 bytes.
MAX_SOCKET_PATH = 100


def skip_or_fail(reason):
    """Skips the calling test with `reason`; under CI, where nothing may be missing, fails it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(reason)


def find_slurm_programs():
    """Returns ({program name: absolute path}, None), or (None, reason) when one is missing."""
    # The daemons live in sbin folders, which a non-root PATH often lacks.
    sbin_folders = ["/usr/local/sbin", "/usr/sbin", "/sbin"]
    search_path = os.pathsep.join([os.environ.get("PATH", "")] + sbin_folders)
    found = {}
    for name in DAEMON_PROGRAMS + CLIENT_PROGRAMS:
        path = shutil.which(name, path=search_path)
        if path is None:
            return None, (
                f"Slurm is not installed: {name!r} not found "
                "(Debian: apt-get install --no-install-recommends slurm-wlm)"
            )
        found[name] = path
    return found, None


def wait_for(condition, timeout_s, what, interval_s=0.2):
    """Calls condition() every interval_s until it returns a true value, and returns that value;
    raises TimeoutError('no <what> after <timeout_s> s') when it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout_s} s")
        time.sleep(interval_s)


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """What a test needs to use a running cluster.

    root: the cluster's private folder (configuration, state, spool, daemon logs, job output).
    conf_path: its slurm.conf, which `environ` ({"SLURM_CONF": ...}) points Slurm's clients at.
    partition: the one partition, the default one.
    node_name: the one node (this host's short name); cpus: its CPU count (nproc).
    kill_wait_s: see the module's docstring.
    programs: {program name: absolute path} of the daemons and clients.
    """

    root: Path
    conf_path: Path
    partition: str
    node_name: str
    cpus: int
    kill_wait_s: int
    programs: dict

    @property
    def environ(self):
        return {"SLURM_CONF": str(self.conf_path)}

    def command(self, *args, timeout=30, check=True):
        """Runs Slurm client args[0] (sinfo, squeue, ...) on this cluster; returns its stdout.
        Raises RuntimeError with its stderr when it fails and `check` is set."""
        completed = subprocess.run(
            [self.programs.get(args[0], args[0]), *args[1:]],
            env={**os.environ, **self.environ},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited with {completed.returncode}: {completed.stderr.strip()}"
            )
        return completed.stdout

    def node_state(self):
        """The node's state as sinfo names it ('idle', 'mixed', 'down*', ...), '' if unknown."""
        return self.command("sinfo", "-h", "-n", self.node_name, "-o", "%T", check=False).strip()

    def queued_jobs(self):
        """{job id ('<array id>_<task>' for array tasks): state} of the jobs squeue lists
        (pending, running, completing; not finished ones)."""
        text = self.command("squeue", "-h", "-r", "-o", "%i %T")
        return dict(line.split() for line in text.splitlines() if line.strip())

    def wait_until_no_jobs(self, timeout_s=60):
        """Waits until squeue lists no job; raises TimeoutError naming those left."""
        try:
            wait_for(lambda: not self.queued_jobs(), timeout_s, "empty queue", interval_s=0.5)
        except TimeoutError as error:
            raise TimeoutError(f"{error}: {self.queued_jobs()}") from None


def slurm_conf_text(root, node_name, cpus, real_memory_mb, controller_port, node_port):
    """The slurm.conf of a one-node cluster whose every file lies under folder `root`."""
    return "\n".join(
        [
            "ClusterName=testcluster",
            f"SlurmctldHost={node_name}(127.0.0.1)",
            f"SlurmctldPort={controller_port}",
            f"SlurmdPort={node_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root}/munge/munge.socket,cred_expire={REQUEUE_DELAY_S}",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/run/slurmctld.pid",
            f"SlurmdPidFile={root}/run/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            f"PlugStackConfig={root}/plugstack.conf",
            # Slurm's default, /bin/mail, is absent here: an error line in every log otherwise.
            "MailProg=/bin/true",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            # A job that becomes eligible later (a requeued one) starts within a second, not at
            # the main scheduler's next 60 s pass or backfill's next 30 s pass.
            "SchedulerParameters=sched_interval=1,bf_interval=1",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "ReturnToService=2",
            # A hardware mismatch must not drain the only node.
            "SlurmdParameters=config_overrides",
            f"KillWait={KILL_WAIT_S}",
            "OverTimeLimit=0",
            "InactiveLimit=0",
            f"NodeName={node_name} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} "
            "State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={node_name} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _free_port():
    # The kernel picks a port free now; the daemon binds it a moment later.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _real_memory_mb():
    # slurmd drains a node whose configured RealMemory exceeds what it finds: stay below it.
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 9 // 10 // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"


def processes_with_environ(entry):
    """Pids of the processes (other than this one) whose environment holds `entry`
    ('NAME=value'). The daemons, slurmstepd and the jobs all carry SLURM_CONF=<conf path>, and no
    process outside one cluster carries its path."""
    wanted = entry.encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if wanted in environ.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            continue
    return pids


class ClusterProcesses:
    """The daemons of one cluster, run in the foreground so that their pids are those we start."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._started = []  # (name, Popen) in start order

    @property
    def pids(self):
        """{daemon name: pid} of the daemons started."""
        return {name: process.pid for name, process in self._started}

    def start(self, name, args):
        with open(self.cluster.root / "log" / f"{name}.stderr", "ab") as output:
            process = subprocess.Popen(
                [self.cluster.programs[name], *args],
                env={**os.environ, **self.cluster.environ},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self._started.append((name, process))

    def check_alive(self):
        """Raises RuntimeError naming a daemon that has exited."""
        for name, process in self._started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}")

    def log_tails(self):
        logs = sorted((self.cluster.root / "log").iterdir())
        return "\n".join(f"--- {path.name}:\n{_tail(path)}" for path in logs)

    def stop(self):
        """Ends the daemons (the last started first) and any job process they leave behind, then
        removes the cluster's folder."""
        try:
            for name, process in reversed(self._started):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=STOP_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
            for pid in processes_with_environ(f"SLURM_CONF={self.cluster.conf_path}"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            shutil.rmtree(self.cluster.root, ignore_errors=True)


def start_cluster():
    """Starts a private cluster; returns (SlurmCluster, ClusterProcesses), whose stop() ends it.
    Raises RuntimeError, with the daemons' log tails, when Slurm is missing or the node is not
    idle within STARTUP_TIMEOUT_S."""
    programs, reason = find_slurm_programs()
    if programs is None:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="slurm-test-"))
    munge = root / "munge"
    if len(str(munge / "munge.socket")) > MAX_SOCKET_PATH:
        shutil.rmtree(root)
        raise RuntimeError(f"temporary folder {root} is too long a path for a unix socket")
    for folder in ("munge", "state", "spool", "run", "log", "jobs"):
        (root / folder).mkdir(mode=0o700)
    node_name = socket.gethostname().split(".")[0]
    cluster = SlurmCluster(
        root=root,
        conf_path=root / "slurm.conf",
        partition=PARTITION,
        node_name=node_name,
        cpus=os.cpu_count(),
        kill_wait_s=KILL_WAIT_S,
        programs=programs,
    )
    (root / "plugstack.conf").write_text("")
    ports = (_free_port(), _free_port())
    cluster.conf_path.write_text(
        slurm_conf_text(root, node_name, cluster.cpus, _real_memory_mb(), *ports)
    )
    (munge / "munge.key").write_bytes(os.urandom(1024))
    (munge / "munge.key").chmod(0o400)

    processes = ClusterProcesses(cluster)

    def ready(condition):
        processes.check_alive()
        try:
            return condition()
        except subprocess.TimeoutExpired:
            return False

    try:
        processes.start(
            "munged",
            [
                "--foreground",
                "--force",
                f"--socket={munge}/munge.socket",
                f"--key-file={munge}/munge.key",
                f"--pid-file={munge}/munged.pid",
                f"--seed-file={munge}/munged.seed",
                f"--log-file={root}/log/munged.log",
            ],
        )
        wait_for(lambda: ready((munge / "munge.socket").exists), STARTUP_TIMEOUT_S, "munge socket")
        # -c: start from an empty state, never one an earlier cluster left.
        processes.start("slurmctld", ["-D", "-c", "-f", str(cluster.conf_path)])
        processes.start("slurmd", ["-D", "-f", str(cluster.conf_path), "-N", node_name])
        wait_for(
            lambda: ready(lambda: cluster.node_state() == "idle"),
            STARTUP_TIMEOUT_S,
            f"idle node {node_name} in sinfo",
        )
    except (RuntimeError, TimeoutError) as error:
        tails = processes.log_tails()
        processes.stop()
        raise RuntimeError(f"the Slurm test cluster did not start: {error}\n{tails}") from None
    except BaseException:
        processes.stop()
        raise
    return cluster, processes


@contextlib.contextmanager
def session_cluster():
    """A running private Slurm cluster (SlurmCluster) for the whole session. os.environ holds
    its SLURM_CONF meanwhile (submitit calls sbatch with this process's environment), and no
    SLURM_*, SBATCH_*, SRUN_* or SALLOC_* variable of an enclosing Slurm job, which would steer
    sbatch and srun. At the end it cancels the jobs left, ends its processes, removes its folder."""
    if os.geteuid() != 0:
        skip_or_fail("the Slurm test cluster runs slurmd, which needs root")
    programs, reason = find_slurm_programs()
    if programs is None:
        skip_or_fail(reason)
    environment = pytest.MonkeyPatch()
    processes = None
    try:
        for name in list(os.environ):
            if name.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")):
                environment.delenv(name)
        cluster, processes = start_cluster()
        environment.setenv("SLURM_CONF", str(cluster.conf_path))
        yield cluster
        cluster.command("scancel", f"--partition={cluster.partition}", check=False)
        cluster.wait_until_no_jobs(timeout_s=cluster.kill_wait_s + 30)
    finally:
        environment.undo()
        if processes is not None:
            processes.stop()
