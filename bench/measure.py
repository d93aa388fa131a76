"""Measuring a command: wall time and the peak resident memory of its whole process tree.

The pipeline is more than one process (the backfill, and a dbt subprocess per dbt step), so the
peak is the largest sum of VmRSS over the tree, sampled from /proc every `interval` seconds;
`ru_maxrss` would give only the largest single process.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = ("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "duckdb", "pandera", "ibis-framework",
            "scikit-learn", "mlflow", "fastapi", "redis")


@dataclass
class Measured:
    command: list[str]
    seconds: float
    peak_rss_bytes: int
    returncode: int
    output: str

    def check(self) -> Measured:
        if self.returncode != 0:
            tail = "\n".join(self.output.splitlines()[-40:])
            raise RuntimeError(f"{' '.join(self.command)} exited with {self.returncode}:\n{tail}")
        return self


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            children.setdefault(parent, []).append(int(entry))
    return children


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    """The resident memory of `pid` and all its descendants, in bytes."""
    children, total, stack = _children(), 0, [pid]
    while stack:
        p = stack.pop()
        total += _rss(p)
        stack.extend(children.get(p, []))
    return total


def run_measured(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
                 log: Path | None = None, interval: float = 0.2) -> Measured:
    """Run `command` (its output to `log`, or kept), timing it and sampling its tree's memory."""
    out = open(log, "w") if log else subprocess.PIPE
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out,
                               stderr=subprocess.STDOUT, text=True)
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(interval)
        seconds = time.perf_counter() - started
        output = process.stdout.read() if process.stdout else ""
    finally:
        if log:
            out.close()
    if log:
        output = log.read_text()
    return Measured(command, seconds, peak, process.returncode, output)


def python(*args: str) -> list[str]:
    """A command running this interpreter (the project's environment)."""
    return [sys.executable, *args]


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = 0
    try:
        memory = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal:"))) * 1024
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "memory": f"{memory / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


def commit(root: Path) -> str:
    """The commit the figures measure, marked when the working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
                   if not line[3:].startswith(("BENCHMARKS.md", "docs/benchmarks/"))]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} with uncommitted changes" if changed else head


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
