"""A fresh instance, a week of data, and one backfill from the UI of every partitioned asset.

A week is too little to train a model on, so no model holds the champion alias: gold/predictions
records the week's days as not scored (and says why) instead of failing, its checks warn on each
day with that reason, and the backfill completes successfully. The batch scoring sensor scores those days once a
champion exists.

The reference tables have never been built on a fresh instance and are not selected: gold's plane
features are NULL for the week (as for an unknown tail number) until they are. They are then built
the way `make backfill` builds them, as a run of the code location's asset job, which the UI
re-executes.
"""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from assets.ml.predictions import NOT_SCORED, PREDICTIONS_KEY, not_scored_days
from tarmac.days import days_between
from tests.test_end_to_end import assert_every_day_evaluated, backfill_and_wait
from tools.landing import fill_landing_zone

DAYS = ("2013-03-04", "2013-03-10")


def _partitioned_assets(graph) -> list[dg.AssetKey]:
    """What selecting every partitioned asset in the UI selects: the ML group included."""
    return sorted((k for k in graph.materializable_asset_keys if graph.get(k).is_partitioned), key=str)


def _partition_statuses(server, key: dg.AssetKey) -> list[tuple[str, str, str]]:
    data = server.graphql(
        "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetPartitionStatuses "
        "{ ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }",
        {"k": {"path": key.path}},
    )["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]
    return [(r["status"], r["startKey"], r["endKey"]) for r in data]


class _Champion:
    """Stands in for a registry in which version 1 holds the champion alias."""

    def champion_version(self) -> str:
        return "1"


class _ChampionRegistry(dg.ConfigurableResource):
    """The model registry resource, swapped for one whose registry has a champion."""

    def open(self) -> _Champion:
        return _Champion()


@pytest.mark.slow
@pytest.mark.parametrize("dagster_dev", ["sqlite"], indirect=True)
def test_a_week_backfill_of_every_partitioned_asset_succeeds_without_a_champion(dagster_dev, monkeypatch):
    server, instance, paths = dagster_dev
    days = days_between(*DAYS)
    server.set_sensor("landing_file_sensor", running=False)
    fill_landing_zone(paths, days)
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    keys = _partitioned_assets(graph)
    assert PREDICTIONS_KEY in keys and dg.AssetKey(["online", "flights"]) in keys
    backfill_id, status = backfill_and_wait(server, graph, keys, days, "a week on a fresh instance")
    assert status == "COMPLETED_SUCCESS", server.log_tail()
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]

    # every other partitioned asset has every day; without reference tables, no plane is known
    for key in keys:
        if key != PREDICTIONS_KEY:
            assert set(days) <= instance.get_materialized_partitions(key), key
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(plane_seats) from gold.flight_features").fetchone()[1] == 0
        assert con.execute("select count(*) from gold.flight_features").fetchone()[0] > 6000

    # gold/predictions: not one flight scored; each day recorded as not scored, none failed
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'gold' and table_name = 'predictions'"
        ).fetchone()[0]
        assert not tables or con.execute("select count(*) from gold.predictions").fetchone()[0] == 0
    assert not_scored_days(instance) == set(days)
    records = instance.fetch_materializations(PREDICTIONS_KEY, limit=100).records
    assert sorted(r.partition_key for r in records) == days
    for record in records:
        materialization = record.asset_materialization
        assert materialization.metadata["tarmac/scored"].value is False
        assert materialization.tags["dagster/data_version"] == NOT_SCORED
        assert "no version of tarmac-flight-delay holds the champion alias yet" in materialization.metadata["tarmac/not_scored"].value
    statuses = _partition_statuses(server, PREDICTIONS_KEY)
    assert statuses == [("MATERIALIZED", days[0], days[-1])], statuses

    # the predictions step said why, once; its checks ran and warn on each day with that reason
    (scoring_run,) = [r for r in runs if PREDICTIONS_KEY in (r.asset_selection or ())]
    reasons = [
        e.user_message for e in instance.all_logs(scoring_run.run_id)
        if e.step_key == "gold__predictions" and e.dagster_event is None and e.user_message.startswith("not scored")
    ]
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith(f"not scored [{days[0]}, 2013-03-11): no version of tarmac-flight-delay holds the champion alias yet")
    assert "the batch scoring sensor scores these days once a champion exists" in reasons[0]
    assert not instance.get_records_for_run(scoring_run.run_id, of_type=dg.DagsterEventType.STEP_SKIPPED).records
    evaluations = [
        e for r in instance.get_records_for_run(
            scoring_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000
        ).records
        if (e := r.event_log_entry.dagster_event.event_specific_data).asset_key == PREDICTIONS_KEY
    ]
    judged = sorted((e.check_name, e.partition) for e in evaluations)
    assert judged == sorted((name, day) for name in ("model_performance", "schema") for day in days), judged
    for evaluation in evaluations:
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN, evaluation
        assert evaluation.description.startswith("not scored: no version of tarmac-flight-delay holds the champion alias")
    statuses = server.check_partition_statuses(list(PREDICTIONS_KEY.path))  # as the UI shows them: warned
    assert statuses == {name: dict.fromkeys(days, "FAILED") for name in ("model_performance", "schema")}, statuses
    assert_every_day_evaluated(server, graph, set(keys) - {PREDICTIONS_KEY}, days)

    # once a champion exists, the scoring sensor requests the whole week: on its first tick, and
    # with a cursor that already knows the champion (the days count as never scored)
    from sensors.ml import batch_scoring_sensor

    for cursor in (None, json.dumps({"champion": "1"})):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"model_registry": _ChampionRegistry()}
        )
        result = batch_scoring_sensor(context)
        ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                  for r in result.run_requests]
        assert ranges == [(days[0], days[-1])], (cursor, ranges, result.skip_reason)
        assert result.run_requests[0].asset_selection == [PREDICTIONS_KEY]

    # what `make backfill` runs belongs to the code location: the reference tables built as the
    # command line builds them are a run of its asset job, which the UI re-executes
    from tools.dagster_dev import LOCATION, REPOSITORY, wait_for
    from tools.pipeline import checks_for, execute_asset_run, stage_assets

    reference = stage_assets(defs, partitioned=False, ml=False)
    built = execute_asset_run(instance, reference, checks_for(defs, reference), tags={})
    assert built.success
    planes = "select count(*), min(load_id), max(load_id) from silver.planes"
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        count, first_load, last_load = con.execute(planes).fetchone()
    assert count > 3000 and first_load == last_load == built.run_id
    shown = server.run(built.run_id)
    assert shown["pipelineName"] == "__ASSET_JOB" and shown["status"] == "SUCCESS" and shown["hasReExecutePermission"]
    assert shown["repositoryOrigin"] == {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}, shown
    again = server.reexecute(built.run_id)
    status = wait_for("the re-execution to finish", lambda: (s := server.run(again)["status"]) in ("SUCCESS", "FAILURE", "CANCELED") and s,
                      timeout=300, every=2)
    assert status == "SUCCESS", server.log_tail()
    rerun = instance.get_run_by_id(again)
    assert rerun.parent_run_id == built.run_id and rerun.asset_selection == instance.get_run_by_id(built.run_id).asset_selection
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:  # rebuilt by the re-execution
        assert con.execute(planes).fetchone() == (count, again, again)
