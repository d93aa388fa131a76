"""End to end against a real `dagster dev` (webserver + daemon), on SQLite and on PostgreSQL.

One scenario, as a person would live it in the UI (on PostgreSQL up to step 2; on SQLite all of it):
1. a 4-day asset backfill launched through GraphQL (the UI's own API) materializes every asset from
   landing to gold in as few runs as the backfill policies allow, and every blocking check passes;
2. the landing sensor, started afterwards, finds every landed file already loaded: no run;
3. a new day's files land: the sensor materializes that day;
4. a corrected file lands for an earlier day: exactly that day's flights side re-runs, and then
   exactly the later days whose look-back windows read it are refreshed, each once.
"""

from __future__ import annotations

import time
from collections import Counter

import dagster as dg

from assets.ml.model import ML_GROUP
from tarmac.days import days_between
from tests.conftest import SENSOR_INTERVAL, planned_after_their_run
from tools.dagster_dev import wait_for
from tools.landing import fill_landing_zone

BACKFILL_DAYS = ("2013-03-01", "2013-03-04")
NEW_DAY = "2013-03-05"
CORRECTED_DAY = "2013-03-02"
TRIGGER = "tarmac/trigger"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _pipeline_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs that build assets (freshness check-only runs of the freshness sensor are left out)."""
    return [r for r in instance.get_runs() if r.asset_selection]


def _quiet(instance: dg.DagsterInstance, expected_runs: int):
    """True once `expected_runs` pipeline runs exist and none is queued or in progress."""
    runs = _pipeline_runs(instance)
    active = instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
    return len(runs) >= expected_runs and not active and runs


def _daily_assets() -> list[dg.AssetKey]:
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    return sorted((k for k in _pipeline_assets(graph) if graph.get(k).is_partitioned), key=str)


def _pipeline_assets(graph) -> list[dg.AssetKey]:
    """Landing to gold: the ML group needs months of training data (tests/test_model.py covers it)."""
    return [k for k in graph.materializable_asset_keys if graph.get(k).group_name != ML_GROUP]


def backfill_and_wait(server, graph, keys, days: list[str], title: str, timeout: float = 900) -> tuple[str, str]:
    """Launch one asset backfill of `keys` over `days` through GraphQL, as the UI does (partitioned
    assets over the range, the others whole), and wait for it: (backfill id, final status)."""
    selection = [
        {"assetKey": {"path": key.path},
         "partitions": {"range": {"start": days[0], "end": days[-1]}} if graph.get(key).is_partitioned else None}
        for key in sorted(keys, key=str)
    ]
    backfill_id = server.launch_backfill(selection, title=title)
    status = wait_for(
        "the backfill to finish",
        lambda: (s := server.backfill_status(backfill_id)) not in ("REQUESTED", "CANCELING") and s,
        timeout=timeout,
        every=3,
    )
    return backfill_id, status


def _materialized_since(instance: dg.DagsterInstance, storage_id: int) -> Counter:
    built: Counter = Counter()
    for key in _daily_assets():
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=1000
        ).records
        built.update((key.to_user_string(), r.partition_key) for r in records)
    return built


def _latest_storage_id(instance: dg.DagsterInstance) -> int:
    return max(
        (r.storage_id for key in _daily_assets() for r in instance.fetch_materializations(key, limit=1).records),
        default=0,
    )


def _layers(run: dg.DagsterRun) -> str:
    return "+".join(sorted({key.path[0] for key in run.asset_selection or ()}))


SENSORS = ("landing_file_sensor", "downstream_refresh_sensor")


def _let_sensors_tick(server, instance: dg.DagsterInstance, runs_before: int) -> None:
    """Wait until the landing and refresh sensors have each finished two ticks that began after now
    (so one whole evaluation saw the current state), then insist that neither failed nor launched
    anything."""
    since = time.time()

    def ticked() -> bool:
        return all(len([t for t in server.sensor_ticks(name, since) if t["status"] != "STARTED"]) >= 2 for name in SENSORS)

    wait_for("two ticks of " + " and ".join(SENSORS), ticked, timeout=12 * SENSOR_INTERVAL + 60, every=1)
    for name in SENSORS:
        ticks = server.sensor_ticks(name, since)
        assert all(t["status"] != "FAILURE" and not t["runIds"] for t in ticks), (name, ticks)
    assert not instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE))
    assert len(_pipeline_runs(instance)) == runs_before


def test_backfill_sensors_and_propagation_against_a_running_dagster(dagster_dev, request):
    server, instance, paths = dagster_dev
    storage = request.node.callspec.params["dagster_dev"]
    days = days_between(*BACKFILL_DAYS)

    # 1. a 4-day backfill of every pipeline asset, launched as the UI launches it
    server.set_sensor("landing_file_sensor", running=False)
    fill_landing_zone(paths, days)
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    backfill_id, status = backfill_and_wait(server, graph, _pipeline_assets(graph), days, "end-to-end test")
    assert status == "COMPLETED_SUCCESS", server.log_tail()
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # as few runs as the backfill policies allow: the reference tables (with the online planes) and
    # bronze+silver for the 4 days have no dependency, so they run side by side; gold reads both, so
    # it runs after them, with the online load of its days
    shapes = sorted((r.tags.get("dagster/asset_partition_range_start", "unpartitioned"), _layers(r)) for r in runs)
    assert shapes == [
        (days[0], "bronze+silver"), (days[0], "gold+online"), ("unpartitioned", "bronze+online+silver")
    ], shapes
    for key in _daily_assets():
        assert set(days) <= instance.get_materialized_partitions(key), key
    # every blocking check was evaluated for every day (or table, if unpartitioned) and passed
    outcomes = {}
    for run in runs:
        for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000).records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            outcomes[(evaluation.asset_check_key, evaluation.partition)] = evaluation.passed
    pipeline = set(_pipeline_assets(graph))
    blocking = [k for k in graph.asset_check_keys if graph.get_check_spec(k).blocking and k.asset_key in pipeline]
    assert len(blocking) >= 15
    for check in blocking:
        partitioned = graph.get_check_spec(check).partitions_def is not None
        for day in days if partitioned else [None]:
            assert outcomes.get((check, day)) is True, (check.to_user_string(), day)

    # and the UI shows each of them per day: every day of the backfill passed or failed in each
    # partitioned check's Partitions view (dbt's tests included), none missing, planned or skipped
    assert_every_day_evaluated(server, graph, pipeline, days)
    # and processing freshness is judged on the landing zone's clock: the four days are all that was
    # delivered, so no daily asset is overdue for the rest of 2013
    freshness = [k for k in graph.asset_check_keys if k.name == "partition_freshness"]
    assert len(freshness) == 5
    for key, summary in instance.event_log_storage.get_asset_check_summary_records(freshness).items():
        evaluation = summary.last_completed_check_execution_record.event.asset_check_evaluation
        assert evaluation.passed, (key.to_user_string(), evaluation.description, evaluation.metadata.get("missing"))
        assert evaluation.metadata["clock"].value == "deliveries"

    # 2. the landing sensor, started now, finds every file loaded by the backfill
    server.set_sensor("landing_file_sensor", running=True)
    _let_sensors_tick(server, instance, runs_before=3)
    if storage == "postgres":
        # the sensors' cursors and ticks are stored, and read back, in PostgreSQL too; what they then
        # decide does not depend on the storage, and is followed through on SQLite
        assert not planned_after_their_run(instance)
        return

    # 3. a new day lands: the sensor materializes it (in one run, or one per dataset when a tick
    # falls between the two files' arrival: each file starts its own side of the day)
    fill_landing_zone(paths, [NEW_DAY])

    def new_day_built() -> bool:
        return bool(_quiet(instance, 4)) and all(NEW_DAY in instance.get_materialized_partitions(k) for k in _daily_assets())

    wait_for(f"{NEW_DAY} to be materialized", new_day_built, timeout=300)
    landing_runs = [r for r in _pipeline_runs(instance) if r.tags.get(TRIGGER) == "landing"]
    assert 1 <= len(landing_runs) <= 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in landing_runs)
    runs_now = len(_pipeline_runs(instance))
    _let_sensors_tick(server, instance, runs_before=runs_now)  # nothing downstream of the new day had been built yet

    # 4. a corrected flights file for an earlier day
    before = _latest_storage_id(instance)
    flights = paths.landing_day_file("flights", CORRECTED_DAY)
    lines = flights.read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = str(int(fields[5]) + 90)  # dep_delay of the day's first flight
    lines[1] = ",".join(fields)
    flights.write_text("\n".join(lines) + "\n")
    wait_for("the correction and its refresh", lambda: _quiet(instance, runs_now + 2), timeout=420)
    _let_sensors_tick(server, instance, runs_before=runs_now + 2)
    later = days_between("2013-03-03", NEW_DAY)
    expected = Counter(
        [(key, CORRECTED_DAY) for key in ("bronze/flights", "bronze/rejected_files", "silver/flights",
                                          "silver/quarantine", "silver/load_audit")]
        + [(key, day) for key in ("gold/flight_features", "gold/training_set", "online/flights")
           for day in [CORRECTED_DAY, *later]]
    )
    assert _materialized_since(instance, before) == expected
    triggers = Counter(r.tags.get(TRIGGER) for r in _pipeline_runs(instance) if r.tags.get(TRIGGER))
    assert triggers == {"landing": len(landing_runs) + 1, "downstream_refresh": 1}
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in _pipeline_runs(instance))
    assert_every_day_evaluated(server, graph, pipeline, [*days, NEW_DAY])
    assert not planned_after_their_run(instance)  # no check left planned by any run that ended


def assert_every_day_evaluated(server, graph, assets: set[dg.AssetKey], days: list[str]) -> None:
    """The UI's partition status of every partitioned check of `assets`: each of `days` passed or
    failed (the blocking ones passed), as the check's Partitions view shows it."""
    checked = 0
    for key in sorted(assets, key=str):
        specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys if k.asset_key == key}
        partitioned = {name for name, spec in specs.items() if spec.partitions_def is not None}
        if not partitioned:
            continue
        statuses = server.check_partition_statuses(list(key.path))
        assert set(statuses) == partitioned, (key, set(statuses) ^ partitioned)
        for name, by_day in statuses.items():
            shown = {day: by_day.get(day, "MISSING") for day in days}
            allowed = {"SUCCEEDED"} if specs[name].blocking else {"SUCCEEDED", "FAILED"}
            assert set(shown.values()) <= allowed, (key.to_user_string(), name, shown)
            checked += 1
    assert checked >= 30, checked  # the layers' checks and dbt's tests on the daily tables
