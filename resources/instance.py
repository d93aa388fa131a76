"""Opening the Dagster instance from more than one process at a time.

Dagster's SQLite run and schedule storages create their tables on first use without a guard: two
processes that open a fresh DAGSTER_HOME together (two `make backfill`s, a backfill and a test) can
both try to create them, and one dies on "table already exists". Every Tarmac process opens the
instance through `dagster_instance()`, which creates the storages while holding an exclusive file
lock in DAGSTER_HOME, so the second process waits and then finds them made.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

LOCK_FILE = ".tarmac-instance.lock"


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """`DagsterInstance.get()`, with its storages initialised under a lock shared by all processes."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("DAGSTER_HOME is not set; the Makefile sets it to ./.dagster")
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = dg.DagsterInstance.get()
            # touching each storage makes it create its schema now, while we hold the lock
            instance.get_runs(limit=1)
            instance.event_log_storage.get_asset_records([])
            if instance.schedule_storage is not None:
                instance.schedule_storage.all_instigator_state()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance
