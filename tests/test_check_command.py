"""`make check`: every asset check of a range evaluated on the materialized warehouse, nothing
materialized, a table with the numbers, and an exit status that fails only on a blocking check.

The shared real days (tests/conftest.py `real_days`) are the warehouse: a check-only run adds
check evaluations to their instance and never a materialization or a row.
"""

from __future__ import annotations

import dagster as dg
import pytest

from assets.ml.model import MODEL_KEY
from assets.ml.predictions import PREDICTIONS_KEY
from tarmac.days import days_between
from tests.conftest import Materialized, planned_after_their_run, table_hash
from tools.checks import CheckRun, run_checks, runs_alone, table

START, END = "2013-02-11", "2013-02-14"  # the 1,048 mph wind blew on 02-12
WEATHER = dg.AssetKey(["silver", "weather"])


def _materializations(instance: dg.DagsterInstance) -> int:
    """Every materialization event of the instance, of every run."""
    return sum(
        len(instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000).records)
        for run in instance.get_runs()
    )


@pytest.mark.pipeline
def test_check_evaluates_every_check_of_the_range_and_materializes_nothing(real_days: Materialized, monkeypatch):
    instance, days = real_days.instance, days_between(START, END)
    monkeypatch.setenv("TARMAC_DATA_DIR", str(real_days.paths.data_dir))
    monkeypatch.delenv("TARMAC_SETTINGS", raising=False)
    assert not planned_after_their_run(instance)  # after the backfill that built the days
    before = _materializations(instance), table_hash(real_days.paths, "silver.weather")

    checked = run_checks(START, END, instance)

    assert len(checked.results) == 2 and all(r.success for r in checked.results)  # the reference tables', the days'
    assert (_materializations(instance), table_hash(real_days.paths, "silver.weather")) == before
    for result in checked.results:
        assert not result.get_asset_materialization_events()
    # every check of every materialized daily asset, on every day; the reference tables' once
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    # no model was trained on a month: no promotion gate to evaluate, no day scored
    assert checked.left_out == {PREDICTIONS_KEY: days, MODEL_KEY: ["(never materialized)"]}
    evaluated = {(dg.AssetCheckKey(e.asset_key, e.check_name), e.partition) for e in checked.evaluations}
    for key in graph.asset_check_keys:
        if key.asset_key in checked.left_out:
            continue
        if graph.get_check_spec(key).partitions_def is not None:  # each day
            wanted = {(key, d) for d in days}
            assert wanted <= evaluated, (key.to_user_string(), wanted - evaluated)
        else:  # the reference tables' checks; processing freshness, which is about the asset
            assert (key, None) in evaluated, key.to_user_string()
    assert len(evaluated) == len(checked.evaluations)  # one evaluation each
    assert not planned_after_their_run(instance)

    # the table names the wind, and the check run passes: no blocking check failed
    (wind,) = [e for e in checked.evaluations if e.asset_key == WEATHER and e.check_name == "value_ranges"
               and e.partition == "2013-02-12"]
    assert not wind.passed and wind.severity == dg.AssetCheckSeverity.WARN
    assert "wind_speed=1048" in wind.description, wind.description
    shown = table(checked.evaluations, width=10_000)
    (line,) = [row for row in shown.splitlines() if row.startswith("silver/weather:value_ranges") and "2013-02-12" in row]
    assert " WARN " in line and "domain_violations=1" in line and "wind_speed=1048" in line, line
    assert shown.splitlines()[-1].startswith(f"{len(checked.evaluations)} evaluations: ")
    assert checked.exit_status == 0


def _evaluation(blocking: bool, passed: bool, severity: dg.AssetCheckSeverity) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=WEATHER, check_name="schema", passed=passed, severity=severity, blocking=blocking,
        metadata={}, partition="2013-02-12", description="",
    )


@pytest.mark.parametrize(
    ("blocking", "passed", "severity", "status"),
    [
        (True, False, dg.AssetCheckSeverity.ERROR, 1),  # a blocking check failed: CI fails
        (True, False, dg.AssetCheckSeverity.WARN, 0),  # a warning never fails the build
        (False, False, dg.AssetCheckSeverity.ERROR, 0),  # reported, alerted, not blocking
        (True, True, dg.AssetCheckSeverity.ERROR, 0),
    ],
)
def test_the_exit_status_fails_only_on_a_blocking_error(blocking, passed, severity, status):
    assert CheckRun([], [_evaluation(blocking, passed, severity)]).exit_status == status


def test_a_check_its_assets_own_step_yields_is_not_run_alone():
    """The promotion gate is part of the training step it judges: `make check` cannot evaluate it
    without training, so it is left out (and said so) instead of failing the run's selection; the
    layers' checks and dbt's tests run alone."""
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    alone = {k.to_user_string() for k in graph.asset_check_keys if runs_alone(graph, k)}
    assert "ml/flight_delay_model:promotion_gate" not in alone
    assert {"silver/flights:schema", "silver/flights:volume", "silver/flights:unique_silver_flights_flight_id",
            "gold/predictions:model_performance"} <= alone
    assert len(alone) == len(graph.asset_check_keys) - 1
