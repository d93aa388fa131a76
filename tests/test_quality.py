"""The checks on real 2013 data and on injected faults, through real in-process runs.

Each test runs the pipeline with its checks exactly as a backfill does and reads the per-partition
check evaluations the runs reported, and the numbers recorded in the monitoring table.
"""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

DEP_DELAY = 5  # the flights column by position


def evaluations(results, asset: str, check: str) -> dict[str, dg.AssetCheckEvaluation]:
    """Per-partition evaluations of one check, from the runs' events."""
    out = {}
    for result in results:
        for event in result.all_events:
            if event.event_type_value != "ASSET_CHECK_EVALUATION":
                continue
            evaluation = event.event_specific_data
            if evaluation.asset_key.to_user_string() == asset and evaluation.check_name == check and evaluation.partition:
                out[evaluation.partition] = evaluation
    return out


def rewrite_flights(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:]]
    change(rows)
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")


def metrics(paths, sql: str, params: list) -> list[tuple]:
    with duckdb.connect(str(paths.monitoring), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_real_data_the_1048_mph_wind_is_caught_and_null_rates_are_recorded(real_days):
    paths, results = real_days.paths, real_days.results

    ranges = evaluations(results, "silver/weather", "value_ranges")
    windy = ranges["2013-02-12"]
    assert not windy.passed and windy.severity == dg.AssetCheckSeverity.WARN
    (violation,) = windy.metadata["impossible_values"].value
    assert violation["column"] == "wind_speed" and float(violation["value"]) == pytest.approx(1048.36058)
    assert violation["file"] == "landing/weather/2013-02-12.csv" and violation["line"] == 5
    assert ranges["2013-02-11"].passed

    # every check of every partition recorded its numbers, weather null rates among them
    rows = metrics(
        paths,
        "select partition_date::varchar, value from latest_check_metrics where asset_key = 'silver/weather' "
        "and check_name = 'missing_values' and metric = 'null_rate:wind_speed' "
        "and partition_date between '2013-02-11' and '2013-02-12' order by 1",
        [],
    )
    assert [d for d, _ in rows] == ["2013-02-11", "2013-02-12"]
    assert rows[1][1] == pytest.approx(1 / 72)  # the nulled 1,048 mph reading, out of 72 observations
    recorded = metrics(paths, "select count(distinct partition_date) from check_metrics "
                              "where asset_key = 'silver/weather' and metric = 'null_rate:wind_speed'", [])
    assert recorded == real_days.query("select count(distinct obs_date) from silver.weather")
    checks = {c for (c,) in metrics(paths, "select distinct check_name from check_metrics", [])}
    assert checks == {"schema", "freshness", "volume", "missing_values", "value_ranges", "drift", "correlation",
                      "training_serving_parity"}


def test_june_drifts_against_a_spring_reference(paths, land, run_days, settings):
    """Seasonal drift stays visible: against a fixed spring reference, late June fails, and with
    the calibration's own thresholds (four reference days: the least it is told to work with)."""
    settings(quality__reference_window={"days": 28, "start": "2013-04-01", "end": "2013-04-05"},
             quality__drift__min_reference_days=4)
    land("2013-04-01", "2013-04-04")
    land("2013-06-26", "2013-06-28")  # three days: beyond normal on two of the last three is an ERROR
    run_days("2013-04-01", "2013-04-04")
    results = run_days("2013-06-26", "2013-06-28")

    late_june = evaluations(results, "gold/flight_features", "drift")["2013-06-28"]
    assert not late_june.passed and late_june.severity == dg.AssetCheckSeverity.ERROR
    stats = late_june.metadata["statistics"].value
    carrier_delay = stats["carrier_dep_delay_avg_24h"]
    assert carrier_delay["statistic"] == "wasserstein_normed" and carrier_delay["null_days"] == 4
    assert carrier_delay["value"] > carrier_delay["error"], carrier_delay
    assert late_june.metadata["reference_window"].value == "[2013-04-01, 2013-04-05)"
    assert Path(late_june.metadata["report"].value).stat().st_size > 0  # the drift report image


def test_a_wrong_typed_value_warns_by_default_and_blocks_gold_when_configured_to(
    paths, land, run_days, instance, settings
):
    day = "2013-05-06"
    land(day, day)

    def bad_type(rows):
        rows[10][DEP_DELAY] = "abc"

    rewrite_flights(paths.landing_day_file("flights", day), bad_type)
    gold = dg.AssetKey(["gold", "flight_features"])

    # default: one bad line in ~900 is quarantined by silver; the schema check warns and names it
    results = run_days(day, day)
    schema = [e for r in results for e in r.get_asset_check_evaluations()
              if e.asset_key.to_user_string() == "bronze/flights" and e.check_name == "schema" and e.partition == day]
    assert [(e.passed, e.severity) for e in schema] == [(False, dg.AssetCheckSeverity.WARN)]
    case = schema[0].metadata["failure_cases"].value[0]
    assert case["column"] == "dep_delay" and case["value"] == "abc"
    assert case["file"] == f"landing/flights/{day}.csv" and case["line"] == 12
    first = instance.get_latest_materialization_event(gold)
    assert first is not None and first.run_id == results[-1].run_id

    # the same file with no tolerance for invalid lines: ERROR, and gold is not materialized
    settings(quality__schema__bronze_max_invalid_share=0)
    results = run_days(day, day, expect_success=False)
    assert not results[-1].success
    schema = [e for e in results[-1].get_asset_check_evaluations()
              if e.asset_key.to_user_string() == "bronze/flights" and e.check_name == "schema" and e.partition == day]
    assert [(e.passed, e.severity) for e in schema] == [(False, dg.AssetCheckSeverity.ERROR)]
    assert instance.get_latest_materialization_event(gold).run_id == first.run_id
    silver = instance.get_latest_materialization_event(dg.AssetKey(["silver", "flights"]))
    assert silver.run_id == first.run_id
