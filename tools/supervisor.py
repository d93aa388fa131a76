"""`make backfill` under a supervisor: SIGTERM and Ctrl-C end it within seconds, its runs released.

A backfill executes its runs in-process, and Dagster's in-process execution defers interrupts: a
step that waits for the warehouse pool's slot spins and never sees SIGTERM or SIGINT, and a killed
process leaves its run STARTED with its slot claimed. So the command the user starts only
supervises: it runs the backfill in a child process (a session of its own, killed with the
supervisor if the supervisor is killed), passes SIGTERM and SIGINT on to it as SIGINT, gives it a
few seconds, then kills its whole process group (dbt included), marks the runs it left unfinished
canceled (or failed, if the child died on its own) and frees their pool slots.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

from tarmac.paths import PROJECT_ROOT

INVOCATION_ENV = "TARMAC_INVOCATION"
GRACE_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


def invocation_id() -> str:
    """The id the supervisor gave this backfill (its runs are tagged with it), or a new one."""
    return os.environ.get(INVOCATION_ENV) or uuid.uuid4().hex


def _die_with_parent() -> None:
    """In the child, before exec: be killed if the supervisor dies (Linux), even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: the child outlives a killed supervisor
        pass


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def supervise(argv: list[str]) -> int:
    """Run `python -m tools.cli <argv>` as a supervised child; its exit status, or 128 + signal."""
    invocation = uuid.uuid4().hex
    child = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", *argv],
        cwd=PROJECT_ROOT,
        env={**os.environ, INVOCATION_ENV: invocation},
        start_new_session=True,  # Ctrl-C reaches the supervisor only; it decides what the child gets
        preexec_fn=_die_with_parent,
    )
    # Dagster is imported while the child works, so that stopping costs no import later
    preload = threading.Thread(target=_import_dagster, daemon=True)
    preload.start()
    received: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = None
        while child.poll() is None:
            if received and deadline is None:
                print(f"\n{argv[0]}: {signal.Signals(received[0]).name} received: stopping (at most "
                      f"{GRACE_SECONDS:.0f} s); its runs are then marked canceled and their slots freed", file=sys.stderr)
                deadline = time.monotonic() + GRACE_SECONDS
                preload.join()
                _mark_canceling(invocation)  # Dagster then ends an interrupted run CANCELED, not FAILURE
                try:
                    child.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
            if deadline is not None and (time.monotonic() > deadline or len(received) > 1):
                kill_group(child.pid)
            time.sleep(0.1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not received and child.returncode >= 0:
        return child.returncode
    # stopped, or died on a signal of its own (out of memory, kill -9): nothing of it may live on
    kill_group(child.pid)
    preload.join()
    _release_runs(invocation, canceled=bool(received))
    return 128 + received[0] if received else 128 - child.returncode


# Dagster (seconds to import) is imported only where it is used, and in the background while the
# child starts (_import_dagster): the supervisor must start its child at once.
def _import_dagster() -> None:
    import dagster  # noqa: F401

    import tarmac.orchestration.instance
    import tarmac.orchestration.recovery  # noqa: F401


def _runs(instance, invocation: str):
    import dagster as dg

    from tarmac.orchestration.recovery import INVOCATION_TAG

    return instance.get_runs(filters=dg.RunsFilter(tags={INVOCATION_TAG: invocation}))


def _mark_canceling(invocation: str) -> None:
    from tarmac.orchestration.instance import dagster_instance

    with dagster_instance() as instance:
        for run in _runs(instance, invocation):
            if not run.is_finished:
                instance.report_run_canceling(run, message="the backfill received SIGTERM or Ctrl-C")


def _release_runs(invocation: str, canceled: bool) -> None:
    from tarmac.orchestration.instance import dagster_instance
    from tarmac.orchestration.recovery import release_run

    reason = "the backfill was stopped (SIGTERM or Ctrl-C)" if canceled else "the backfill's process died"
    with dagster_instance() as instance:
        holders = instance.event_log_storage.get_concurrency_run_ids()
        for run in _runs(instance, invocation):
            if run.is_finished and run.run_id not in holders:
                continue
            release_run(instance, run, f"{reason}: run released by the backfill's supervisor", canceled=canceled)
            status = instance.get_run_by_id(run.run_id).status.value
            print(f"run {run.run_id}: {status}, its pool slots freed", file=sys.stderr)
