"""The SQLite event log keeps its engines (tarmac/orchestration/sqlite_events.py): the same events
written and read back, a bounded number of engines, and Dagster's own code kept when it changed."""

import os
import time

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


def test_kept_connections_and_the_ui_s_watch_of_a_running_run(tmp_path):
    """Every shard keeps one connection between events, and a run's file still changes with each
    event written (what the UI's watch of a running run waits for): a watch started on a finished
    run sees the events written to it afterwards."""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        assert dg.materialize([numbers, positive], instance=instance, partition_key="2013-01-01").success
        run = instance.get_runs()[0]
        engines = storage.__dict__["_tarmac_engines"]
        for engine in (engines["index"], engines[run.run_id]):
            assert engine.pool.checkedin() == 1  # kept, and given back after each use
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        seen: list[str] = []
        cursor = instance.get_records_for_run(run.run_id).cursor  # after the run's last event
        storage.watch(run.run_id, cursor, lambda event, _cursor: seen.append(event.message))
        try:
            before = os.stat(storage.path_for_shard(run.run_id)).st_mtime_ns
            for i in range(3):
                instance.report_engine_event(f"note {i}", run)
            assert os.stat(storage.path_for_shard(run.run_id)).st_mtime_ns != before
            deadline = time.monotonic() + 20
            while len(seen) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [m for m in seen if m.startswith("note")] == ["note 0", "note 1", "note 2"], seen
            reads = len(seen)
            instance.all_logs(run.run_id)  # a read changes nothing, so it wakes no watcher
            time.sleep(1.0)
            assert len(seen) == reads
        finally:
            for handler in list(storage._watchers[run.run_id]):
                storage.end_watch(run.run_id, handler)
    assert "_tarmac_engines" not in storage.__dict__  # disposed with the instance


POOL = "duckdb_warehouse"


def _claims_racing(tmp_path) -> list:
    """Two storages of one instance's files (two processes' views) claim the pool's one slot at
    once: the first has read which slot is free, and before it takes the row the second claims
    that slot. What each claim was told."""
    import threading

    from sqlalchemy import event

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = instance.event_log_storage
        first.set_concurrency_slots(POOL, 1)
        second = SqliteEventLogStorage(first._base_dir)
        outcomes: dict[str, object] = {}
        engine = first.__dict__["_tarmac_engines"]["index"]

        def the_other_claims_first(conn, cursor, statement, *_):
            if statement.lstrip().upper().startswith("UPDATE CONCURRENCY_SLOTS") and "second" not in outcomes:
                other = threading.Thread(target=lambda: outcomes.setdefault(
                    "second", second._claim_concurrency_slot(POOL, "run-b", "step-b")))
                other.start()
                other.join()

        event.listen(engine, "before_cursor_execute", the_other_claims_first)
        try:
            outcomes["first"] = first._claim_concurrency_slot(POOL, "run-a", "step-a")
        finally:
            event.remove(engine, "before_cursor_execute", the_other_claims_first)
        holders = {slot.run_id for slot in first.get_concurrency_info(POOL).claimed_slots}
        second.dispose()
        return [outcomes["first"], outcomes["second"], holders]


def test_two_processes_claiming_the_pool_s_one_slot_at_once_get_it_once(tmp_path):
    from dagster._core.storage.event_log.sql_event_log import ConcurrencySlotStatus

    assert sqlite_events.claim_source_digest() in sqlite_events.KNOWN_CLAIM
    assert getattr(SqliteEventLogStorage._claim_concurrency_slot, "_tarmac_guarded", False)
    first, second, holders = _claims_racing(tmp_path)
    assert second == ConcurrencySlotStatus.CLAIMED and holders == {"run-b"}
    assert first == ConcurrencySlotStatus.BLOCKED  # told the pool is busy: it asks again later


def test_without_the_guard_both_processes_are_told_they_hold_the_one_slot(tmp_path, monkeypatch):
    """What the guard is for: Dagster's own claim, on SQLite, in the same race."""
    from dagster._core.storage.event_log.sql_event_log import ConcurrencySlotStatus

    monkeypatch.setattr(SqliteEventLogStorage, "_claim_concurrency_slot",
                        SqliteEventLogStorage._claim_concurrency_slot.__wrapped__)
    first, second, _ = _claims_racing(tmp_path)
    assert first == second == ConcurrencySlotStatus.CLAIMED
