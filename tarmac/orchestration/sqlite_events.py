"""Dagster's SQLite event log without a new database engine and a new connection per event, and
with a pool slot claimed by one statement (`guard_slot_claims`, below).

A run on a SQLite instance writes every event (each day's materialization, each check's evaluation
of each day) through `SqliteEventLogStorage._connect`, which builds a SQLAlchemy engine, opens a
connection, commits and disposes of the engine again. Three costs come with it:

- Building the engine: its dialect is set up from scratch and SQLAlchemy's cache of compiled
  statements, which lives in the engine, starts empty, so every INSERT and UPDATE is compiled
  again. A 60-day backfill writes about 5,700 events (4,338 of them check evaluations); in a
  profile of one, 46% of its time went to storing them, much of it here.
- Closing the connection: the storage's files are in WAL mode, and the last connection to close a
  database file checkpoints its log into it and deletes the log. An asset event writes the run's
  file and the index (twice for a check evaluation), so every event paid that two or three times.
- Committing: SQLite's default `synchronous=FULL` flushes the log to the disk at every commit.

`keep_engines()` replaces that one method with the same code keeping one engine per database file
(shard), for the 8 shards used last (the index and the runs being written), and:

- keeps one connection open per engine (a pool of one). Between transactions it holds no lock and
  no snapshot (the pool rolls back what it is given back), so other processes (the UI, the
  daemon, another backfill) write the same files as before. One thing changes: Dagster's UI
  follows a running run by watching the run's file for changes, which the checkpoint on close
  used to make after every event. So after a transaction that wrote to a run's file, its
  modification time is set (`os.utime`), which wakes the watch the same way (inotify reports it
  as a change, a polling watch sees the new time); a read changes nothing and wakes nobody.
- sets `synchronous=NORMAL` on every connection, SQLite's advice for WAL mode: a commit is
  durable against a crash or a kill of the process, and the database stays consistent after a
  power loss, which may take the last commits back. The pipeline recovers from that as from any
  lost run: bronze's ledger is the landing assets' materializations, so a landing file whose
  record was lost is loaded again, and loads are idempotent.

Measured with 300 runless check evaluations on a fresh instance, per event: on disk 10.7 ms with
Dagster's own method, 7.2 ms with engines kept, 1.7 ms with connections kept and NORMAL commits
as well; in memory (/dev/shm) 5.6, 2.9 and 1.7 ms.

`wipe` and `dispose` close the kept connections first (a wipe deletes run files).
A forked child builds engines of its own (it must not use its parent's connections). The storage's
lock still serialises its threads, and is held while a connection is in use. PostgreSQL instances
(dagster-postgres) keep their own pooled engine and are not touched.

The replacement is applied only over the implementation it was written against (compared by its
source): a Dagster upgrade that changes `_connect` keeps Dagster's own, and
tests/test_sqlite_events.py says so.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

# engines kept per storage, the most recently used: the index shard and the runs being written
KEPT_ENGINES = 8
# sha256 of the source of SqliteEventLogStorage._connect in the Dagster versions this replaces
KNOWN_CONNECT = {"b8435f2665689760a1e1d98e17b78ceef5a48256dc11b562a20c840abc37d170"}  # dagster 1.13


def source_digest(function) -> str:
    """sha256 of a function's source; getsource follows __wrapped__ to Dagster's own function,
    replaced or not."""
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def connect_source_digest() -> str:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    return source_digest(SqliteEventLogStorage._connect)


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
            if self.__dict__.get("_tarmac_pid") != os.getpid():  # new, or a forked copy: not its parent's
                self.__dict__["_tarmac_engines"], self.__dict__["_tarmac_pid"] = OrderedDict(), os.getpid()
            engines: OrderedDict = self.__dict__["_tarmac_engines"]
            engine = engines.get(shard)
            if engine is None:
                engine = engines[shard] = _engine(module, self.conn_string_for_shard(shard))
                if len(engines) > KEPT_ENGINES:  # a long-lived daemon sees a shard per run
                    engines.popitem(last=False)[1].dispose()
            engines.move_to_end(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes = conn.connection.dbapi_connection.total_changes
                with conn.begin():
                    yield conn
                wrote = conn.connection.dbapi_connection.total_changes != changes
            if wrote and shard != module.INDEX_SHARD_NAME:
                # what the UI's watch of a running run waits for: its file changing (see above)
                os.utime(self.path_for_shard(shard))

    _connect.__wrapped__ = original
    _connect._tarmac_keeps_engines = True
    storage._connect = _connect
    original_dispose = storage.dispose

    def dispose(self) -> None:
        original_dispose(self)
        _close_engines(self)  # the kept connections closed with the storage, not left to the collector

    dispose.__wrapped__ = original_dispose
    storage.dispose = dispose
    original_wipe = storage.wipe

    def wipe(self) -> None:
        _close_engines(self)  # no kept connection may write on into a file the wipe deletes
        original_wipe(self)

    wipe.__wrapped__ = original_wipe
    storage.wipe = wipe
    return True


def _close_engines(storage) -> None:
    """Close a storage's kept connections, those this process opened (a forked copy's are its
    parent's to close)."""
    with storage._db_lock:
        engines = storage.__dict__.pop("_tarmac_engines", {})
        if storage.__dict__.pop("_tarmac_pid", None) == os.getpid():
            for engine in engines.values():
                engine.dispose()


def _engine(module, url: str):
    """An engine for one database file with a pool of one connection, kept open (more are opened
    only while one is in use, as Dagster's schema set-up does, and closed after); it commits with
    synchronous=NORMAL. The connection may serve another thread than the one that opened it (the
    storage's lock serialises them), which pysqlite allows with check_same_thread off."""
    from sqlalchemy import event
    from sqlalchemy.pool import QueuePool

    engine = module.create_engine(
        url, poolclass=QueuePool, pool_size=1, max_overflow=4,
        connect_args={"timeout": module.SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(engine, "connect", _normal_commits)
    return engine


def _normal_commits(connection, _record) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


# sha256 of the source of SqlEventLogStorage._claim_concurrency_slot in the Dagster versions this guards
KNOWN_CLAIM = {"7628812bbe08bc3e6ec3416a46b7f61f03c379ff47ac06d366f99dbbb4a93a72"}  # dagster 1.13


def claim_source_digest() -> str:
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    return source_digest(SqlEventLogStorage._claim_concurrency_slot)


def guard_slot_claims() -> bool:
    """Make a pool slot's claim on a SQLite instance one statement; False (nothing changed) when
    Dagster's claim is not the implementation this replaces.

    A step that the pool's queue has assigned claims a slot row as a semaphore: Dagster selects a
    free slot, then updates that row by its id. PostgreSQL locks the row between the two (`FOR
    UPDATE SKIP LOCKED`); SQLite ignores that clause, so two processes can select the same free slot
    and both update it, each told it holds the pool's one slot: two writing steps then run beside
    each other and one fails on DuckDB's lock. Here the claim is one UPDATE of a free row, chosen
    in the same statement; SQLite runs a statement under its write lock, so exactly one claim gets
    the row and the other is told the pool is busy, and asks again as it does for any busy pool."""
    from dagster._core.storage.event_log import sql_event_log as sql
    from dagster._core.storage.event_log.sqlite import sqlite_event_log as module

    storage = module.SqliteEventLogStorage
    if getattr(storage._claim_concurrency_slot, "_tarmac_guarded", False):
        return True
    if claim_source_digest() not in KNOWN_CLAIM:
        return False
    original = storage._claim_concurrency_slot
    slots, db, status = sql.ConcurrencySlotsTable, sql.db, sql.ConcurrencySlotStatus

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str):
        free = (
            sql.db_select([slots.c.id])
            .where(db.and_(slots.c.concurrency_key == concurrency_key, slots.c.step_key == None,  # noqa: E711
                           slots.c.deleted == False))  # noqa: E712
            .limit(1)
            .scalar_subquery()
        )
        with self.index_connection() as conn:
            claimed = conn.execute(
                slots.update().values(run_id=run_id, step_key=step_key)
                .where(db.and_(slots.c.id == free, slots.c.step_key == None))  # noqa: E711
            ).rowcount
        return status.CLAIMED if claimed else status.BLOCKED

    _claim_concurrency_slot.__wrapped__ = original
    _claim_concurrency_slot._tarmac_guarded = True
    storage._claim_concurrency_slot = _claim_concurrency_slot
    return True

