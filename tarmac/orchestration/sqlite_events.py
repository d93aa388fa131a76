"""Dagster's SQLite event log without a new database engine per event.

A run on a SQLite instance writes every event (each day's materialization, each check's evaluation
of each day) through `SqliteEventLogStorage._connect`, which builds a SQLAlchemy engine, opens a
connection, commits and disposes of the engine again. Building the engine is most of that: its
dialect is set up from scratch and SQLAlchemy's cache of compiled statements, which lives in the
engine, starts empty, so every INSERT and UPDATE is compiled again. A 60-day backfill writes about
5,700 events (4,338 of them check evaluations); in a profile of one, 46% of its time went to
storing them, much of it in a new engine per event and in compiling its statements again.

`keep_engines()` replaces that one method with the same code keeping one engine per database file
(shard), for the 8 shards used last (the index and the runs being written). Nothing else changes: the pool is still `NullPool`, so every use
opens and closes its own SQLite connection and no connection or lock outlives a transaction, which
is what lets other processes (the UI, the daemon, another backfill) write the same files; the
storage's lock still serialises its threads. PostgreSQL instances (dagster-postgres) keep their own
pooled engine and are not touched.

The replacement is applied only over the implementation it was written against (compared by its
source): a Dagster upgrade that changes `_connect` keeps Dagster's own, and
tests/test_instance.py says so.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

# engines kept per storage, the most recently used: the index shard and the runs being written
KEPT_ENGINES = 8
# sha256 of the source of SqliteEventLogStorage._connect in the Dagster versions this replaces
KNOWN_CONNECT = {"b8435f2665689760a1e1d98e17b78ceef5a48256dc11b562a20c840abc37d170"}  # dagster 1.13


def connect_source_digest() -> str:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    # getsource follows __wrapped__ to Dagster's own function, replaced or not
    return hashlib.sha256(inspect.getsource(SqliteEventLogStorage._connect).encode()).hexdigest()


def keep_engines() -> bool:
    """Make SQLite event log storages keep one engine per shard; False (nothing changed) when
    Dagster's `_connect` is not the implementation this replaces."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log as module

    storage = module.SqliteEventLogStorage
    if getattr(storage._connect, "_tarmac_keeps_engines", False):
        return True
    if connect_source_digest() not in KNOWN_CONNECT:
        return False
    original = storage._connect

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        with self._db_lock:
            module.check.str_param(shard, "shard")
            engines: OrderedDict = self.__dict__.setdefault("_tarmac_engines", OrderedDict())
            engine = engines.get(shard)
            if engine is None:
                engine = engines[shard] = module.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=module.NullPool,
                    connect_args={"timeout": module.SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                if len(engines) > KEPT_ENGINES:  # a long-lived daemon sees a shard per run
                    engines.popitem(last=False)[1].dispose()
            engines.move_to_end(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    _connect.__wrapped__ = original
    _connect._tarmac_keeps_engines = True
    storage._connect = _connect
    return True
