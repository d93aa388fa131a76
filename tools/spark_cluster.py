"""A local Spark standalone cluster: one master and two workers, every one bound to 127.0.0.1.

    python -m tools.spark_cluster start [--port 7077] [--workers 2] [--cores 1] [--memory 1g]
    python -m tools.spark_cluster stop

The daemons are Spark's own (`spark-class` from the pyspark package, which carries Spark's jars);
their PIDs, logs and work folders are kept in `$TARMAC_DATA_DIR/spark-cluster/`. `start` returns
once every worker has registered with the master and prints the master's URL, for
`TARMAC_ENGINE=spark TARMAC_SPARK_MASTER=spark://127.0.0.1:7077 make backfill ...`.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tarmac.paths import TarmacPaths
from tarmac.spark import require_java

HOST = "127.0.0.1"


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class Cluster:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"


def spark_home() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ClusterError("pyspark is not installed: `make setup SPARK=1` installs the Spark extra")
    return Path(spec.origin).parent


def _environment(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        **(extra or {}),
        "SPARK_HOME": str(spark_home()),
        # every socket a daemon opens, its web UI's included, on the loopback interface only
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(root),
        "SPARK_NO_DAEMONIZE": "1",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _launch(root: Path, name: str, arguments: list[str], environment: dict[str, str] | None = None) -> int:
    log = (root / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *arguments],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_environment(root, environment),
        start_new_session=True,  # its own process group: `stop` ends the JVM and its launcher
    )
    (root / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def start(root: Path, port: int = 7077, workers: int = 2, cores: int = 1, memory: str = "1g",
          timeout_seconds: float = 120, environment: dict[str, str] | None = None) -> Cluster:
    """Start the master and the workers, and wait until every worker has registered. `environment`:
    variables for the daemons beside this process's (the workers pass theirs on to their executors)."""
    require_java()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.glob("*.pid")):
        raise ClusterError(f"a cluster's PID files are in {root}: stop it first (python -m tools.spark_cluster stop)")
    for old in root.glob("*.log"):
        old.unlink()
    _launch(root, "master", ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
                             "--webui-port", str(_free_port())], environment)
    cluster = Cluster(root, port)
    for index in range(1, workers + 1):
        work = root / f"worker-{index}"
        work.mkdir(exist_ok=True)
        _launch(root, f"worker-{index}", ["org.apache.spark.deploy.worker.Worker", cluster.url, "--host", HOST,
                                          "--cores", str(cores), "--memory", memory, "--work-dir", str(work),
                                          "--webui-port", str(_free_port())], environment)
    deadline = time.monotonic() + timeout_seconds
    while (registered := _registered_workers(root)) < workers:
        if time.monotonic() > deadline:
            stop(root)
            raise ClusterError(f"only {registered} of {workers} workers registered with {cluster.url} within "
                               f"{timeout_seconds:.0f} s: see the logs in {root}")
        for pid_file in root.glob("*.pid"):
            if not _alive(int(pid_file.read_text())):
                stop(root)
                raise ClusterError(f"{pid_file.stem} exited while the cluster started: see {root / pid_file.stem}.log")
        time.sleep(0.5)
    return cluster


def _registered_workers(root: Path) -> int:
    log = root / "master.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return len(set(re.findall(r"Registering worker (\S+)", text)))


def _alive(pid: int) -> bool:
    """Whether the daemon `pid` still runs. Started by this process (the tests start and stop a
    cluster in one process), a daemon that has exited stays a zombie, which a signal still reaches,
    until it is reaped: reap it here, or `stop` would wait its whole timeout for every daemon."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not this process's child (`make spark-cluster-stop`): ask the kernel
        pass
    else:
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(root: Path, timeout_seconds: float = 30) -> list[str]:
    """Stop every daemon of the cluster (workers first), each by its process group."""
    stopped = []
    for pid_file in sorted(root.glob("*.pid"), key=lambda p: p.stem == "master"):
        pid = int(pid_file.read_text())
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout_seconds
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            stopped.append(pid_file.stem)
        pid_file.unlink()
    return stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.spark_cluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    starting = commands.add_parser("start", help="start a master and its workers on 127.0.0.1")
    starting.add_argument("--port", type=int, default=7077)
    starting.add_argument("--workers", type=int, default=2)
    starting.add_argument("--cores", type=int, default=1, help="cores each worker offers")
    starting.add_argument("--memory", default="1g", help="memory each worker offers to executors")
    commands.add_parser("stop", help="stop the cluster's daemons")
    arguments = parser.parse_args(argv)
    root = TarmacPaths.from_env().data_dir / "spark-cluster"
    if arguments.command == "start":
        cluster = start(root, arguments.port, arguments.workers, arguments.cores, arguments.memory)
        print(f"Spark standalone cluster at {cluster.url}: {arguments.workers} workers of {arguments.cores} core(s), "
              f"{arguments.memory} each; logs in {root}")
        print(f"run on it: TARMAC_ENGINE=spark TARMAC_SPARK_MASTER={cluster.url} make backfill START=... END=...")
    else:
        stopped = stop(root)
        print(f"stopped {', '.join(stopped)}" if stopped else f"no cluster was running (nothing in {root})")


if __name__ == "__main__":
    main()
