"""The SQLite event log keeps its engines (tarmac/orchestration/sqlite_events.py): the same events
written and read back, a bounded number of engines, and Dagster's own code kept when it changed."""

import os

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

import definitions  # noqa: F401  (loading the definitions applies it, as in every process that runs steps)
from tarmac.orchestration import sqlite_events


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2013-01-01"))
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"n": 1})


@dg.asset_check(asset=numbers)
def positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def test_the_pinned_dagster_gets_the_engines_kept():
    assert sqlite_events.connect_source_digest() in sqlite_events.KNOWN_CONNECT
    assert getattr(SqliteEventLogStorage._connect, "_tarmac_keeps_engines", False)


def test_runs_write_and_read_their_events_with_a_bounded_number_of_engines():
    days = [f"2013-01-{d:02d}" for d in range(1, 13)]
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, SqliteEventLogStorage)
        for day in days:  # a run (and so a database file) per day
            result = dg.materialize([numbers, positive], instance=instance, partition_key=day)
            assert result.success
        assert instance.get_materialized_partitions(numbers.key) == set(days)
        for run in instance.get_runs():
            types = {e.dagster_event.event_type_value for e in instance.all_logs(run.run_id) if e.dagster_event}
            assert {"ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "PIPELINE_SUCCESS"} <= types
        kept = storage.__dict__["_tarmac_engines"]
        assert 1 < len(kept) <= sqlite_events.KEPT_ENGINES  # the index and the latest runs' shards


def test_a_changed_dagster_keeps_its_own(monkeypatch: pytest.MonkeyPatch):
    patched = SqliteEventLogStorage._connect
    monkeypatch.setattr(SqliteEventLogStorage, "_connect", patched.__wrapped__)  # Dagster's own
    monkeypatch.setattr(sqlite_events, "KNOWN_CONNECT", {"another implementation"})
    assert sqlite_events.keep_engines() is False
    assert SqliteEventLogStorage._connect is patched.__wrapped__


def test_the_index_keeps_one_connection_and_a_run_s_file_changes_with_each_event(tmp_path):
    """The index's connection stays open between events; a run's file is closed after each one, so
    its changes reach the file itself (checkpointed), which is what the UI watches to follow a run."""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        seen = []
        real = storage.store_event

        def store_and_look(event):
            real(event)
            if event.run_id:
                path = storage.path_for_shard(event.run_id)
                seen.append((event.dagster_event_type, os.stat(path).st_mtime_ns, os.stat(path).st_size))

        storage.store_event = store_and_look
        assert dg.materialize([numbers, positive], instance=instance, partition_key="2013-01-01").success
        # every event left the run's file changed: nothing waits in its write-ahead log
        assert len(seen) > 10 and all(later[1:] != earlier[1:] for earlier, later in zip(seen, seen[1:])), seen
        engines = storage.__dict__["_tarmac_engines"]
        index = engines["index"]
        assert index.pool.checkedin() == 1  # kept, and given back after each use
        with index.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        run_engine = next(e for shard, e in engines.items() if shard != "index")
        assert run_engine.pool.__class__.__name__ == "NullPool"
    assert "_tarmac_engines" not in storage.__dict__  # disposed with the instance
