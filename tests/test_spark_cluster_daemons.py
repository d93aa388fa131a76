"""tools/spark_cluster.py's handling of its daemons' processes, without Java: a plain child process
stands for a daemon."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tools.spark_cluster import _alive, stop


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_daemon_that_exited_is_not_alive_though_no_one_has_reaped_it_yet() -> None:
    process = subprocess.Popen(["true"])
    deadline = time.monotonic() + 30
    while _state(process.pid) != "Z":  # exited, not yet reaped: a signal still reaches a zombie
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)
    assert not _alive(process.pid)
    assert not Path(f"/proc/{process.pid}").exists()  # and it was reaped: no zombie is left behind


def test_stop_ends_each_daemon_by_its_process_group_and_removes_its_pid_file(tmp_path: Path) -> None:
    daemons = {name: subprocess.Popen(["sleep", "300"], start_new_session=True) for name in ("master", "worker-1")}
    for name, process in daemons.items():
        (tmp_path / f"{name}.pid").write_text(str(process.pid))
    assert stop(tmp_path) == ["worker-1", "master"]  # the workers before their master
    assert not list(tmp_path.glob("*.pid"))
    assert all(not Path(f"/proc/{process.pid}").exists() for process in daemons.values())
    assert stop(tmp_path) == []  # nothing left to stop
