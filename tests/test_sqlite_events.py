"""The SQLite event log keeps its engines (tarmac/orchestration/sqlite_events.py): the same events
written and read back, a bounded number of engines, and Dagster's own code kept when it changed."""

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
