"""Runs whose process died: found, marked failed and their pool slots freed, with no one stepping in.

A run that `make backfill` executes in-process has no run launcher and no code server watching it:
if its process is killed (`kill -9`, an out-of-memory kill, a closed laptop), Dagster leaves it
STARTED forever, holding the one slot of the warehouse pool, and every later run waits on that slot.
So each such run carries the identity of the process that executes it (`tarmac/process`: host, pid
and the process's start time, which a recycled pid does not share), and `recover_dead_runs`:

- marks failed every unfinished run whose process is gone from this host;
- frees the pool slots (claimed or pending) of every finished run, whoever launched it: the code
  server marks a dead run worker's run failed but does not free its slots, and a DAGSTER_HOME whose
  dagster.yaml predates `run_monitoring.free_slots_after_run_end_seconds` would keep them;
- hands a free slot to a step left waiting beside it (`assign_stranded_steps`): when one run's
  step frees the pool's slot at the moment another run's step asks for it, Dagster can queue the
  asking step unassigned after the free has looked for someone to hand the slot to, and nothing
  assigns it later: the step waits forever beside a free slot.

It runs at the start of every backfill and in the daemon (`dead_run_sensor`), so a crash costs the
next run a few seconds, not a person.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from tarmac.paths import PROJECT_ROOT

PROCESS_TAG = "tarmac/process"
INVOCATION_TAG = "tarmac/invocation"
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on (state, ppid, pgrp, session, ...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22), or None."""
    stat = _stat(pid)
    return stat[19] if stat else None


def kill_orphans(pid: int, started: str) -> list[int]:
    """Kill what a dead supervised backfill left behind (its dbt process, say): the processes of the
    session it led (the supervisor starts it in a session of its own), started after it."""
    killed: list[int] = []
    if not started.isdigit() or not Path("/proc").is_dir():
        return killed
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat and stat[2] == str(pid) and stat[3] == str(pid) and int(stat[19]) >= int(started):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except OSError:
                pass
    return killed


def process_identity(pid: int | None = None) -> str:
    """host:pid:start-time of a process (this one by default), as the run tag records it."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def process_is_gone(identity: str) -> bool:
    """Whether the process a run tag names has ended; False when it ran on another host (unknown)."""
    host, pid, started = identity.rsplit(":", 2)
    if host != socket.gethostname():
        return False
    if started == "?":  # no /proc where it ran: whether the pid lives is all there is to know
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return _start_time(int(pid)) != started


def command_process(run: dg.DagsterRun) -> str | None:
    """The identity of the command-line process that executes `run` in process, if one does. A
    re-execution launched from the UI inherits its parent's tags, this one included, but runs
    where the daemon launches it: it is not that process's."""
    return run.tags.get(PROCESS_TAG) if run.parent_run_id is None else None


def run_process_tags(invocation: str) -> dict[str, str]:
    """Tags for a run this process executes in-process."""
    return {PROCESS_TAG: process_identity(), INVOCATION_TAG: invocation}


def release_run(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str, canceled: bool = False) -> None:
    """Mark an unfinished run failed (or canceled) and free every pool slot it holds or waits for."""
    run = instance.get_run_by_id(run.run_id) or run
    if not run.is_finished:
        if canceled:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def recover_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Release the runs whose process is gone and the slots of finished runs; returns the run ids."""
    released: list[str] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        identity = command_process(run)
        if identity and process_is_gone(identity):
            _, pid, started = identity.rsplit(":", 2)
            kill_orphans(int(pid), started)
            release_run(instance, run, f"the process that executed this run (pid {pid}) is gone: marked failed "
                                       "and its pool slots freed by the next backfill or the dead-run sensor")
            log(f"run {run.run_id}: its process (pid {pid}) is gone; marked failed, its pool slots freed")
            released.append(run.run_id)
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return released
    holders = set()
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        holders.update(slot.run_id for slot in info.claimed_slots)
        holders.update(step.run_id for step in info.pending_steps)
    for run_id in sorted(holders - set(released)):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            log(f"run {run_id}: {'finished' if run else 'deleted'} but still holding pool slots; freed")
            released.append(run_id)
    assign_stranded_steps(instance, log)
    return released


def assign_stranded_steps(
    instance: dg.DagsterInstance, log: Callable[[str], None] = lambda _: None, min_wait_seconds: float = 10.0
) -> list[tuple[str, str]]:
    """Hand each pool's free slots to the steps that have waited at least `min_wait_seconds`
    unassigned beside them; returns the (run id, step key) pairs that were waiting.

    Assigning is what Dagster itself does when a slot is freed, in the same order (priority, then
    arrival); the slot rows stay the semaphore, so a step assigned while another claims the slot
    in the same instant waits for its turn instead of running beside it.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    now = time.time()
    stranded: list[tuple[str, str]] = []
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        waiting = [
            step for step in info.pending_steps
            if step.assigned_timestamp is None and now - step.enqueued_timestamp.timestamp() >= min_wait_seconds
        ]
        if waiting and storage.has_unassigned_slots(pool):
            storage.assign_pending_steps([pool])
            stranded += [(step.run_id, step.step_key) for step in waiting]
            log(f"pool {pool}: a slot was free while {len(waiting)} step(s) waited unassigned "
                f"({', '.join(f'{s.run_id}:{s.step_key}' for s in waiting[:5])}); the first in line was assigned it")
    return stranded


def default_instance_config() -> str:
    """The project's local dagster.yaml: the warehouse pool, the run queue, run monitoring."""
    return (PROJECT_ROOT / ".dagster" / "dagster.yaml").read_text(encoding="utf-8")


class InstanceConfigError(RuntimeError):
    pass


def require_warehouse_pool(instance: dg.DagsterInstance, pool: str) -> None:
    """Refuse an instance whose pools do not limit `pool` to one slot: the single-writer rule."""
    limit = instance.get_concurrency_config().pool_config.default_pool_limit
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        info = storage.get_concurrency_info(pool)
        if info.slot_count:  # a limit set for this pool alone (dagster instance concurrency set)
            limit = info.slot_count
    if limit != 1:
        home = os.environ.get("DAGSTER_HOME", "DAGSTER_HOME")
        raise InstanceConfigError(
            f"{Path(home) / 'dagster.yaml'}: concurrency.pools.default_limit is {limit}, not 1: the "
            f"`{pool}` pool must admit one step at a time (DuckDB allows one writer); use the project's "
            ".dagster/dagster.yaml"
        )


@contextmanager
def stranded_steps_watchdog(
    instance: dg.DagsterInstance, every: float = 5.0, min_wait_seconds: float = 10.0,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> Iterator[None]:
    """While a run executes in this process, hand free pool slots to stranded steps every `every`
    seconds: a backfill executed in process has no daemon beside it to do so, and a step stranded
    by the free/claim race (see `assign_stranded_steps`) would wait forever."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(every):
            try:
                assign_stranded_steps(instance, log, min_wait_seconds)
            except Exception as error:  # the watchdog must not end the run it watches; it says why
                log(f"stranded-step watchdog: {type(error).__name__}: {error}")

    thread = threading.Thread(target=watch, name="stranded-steps", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
