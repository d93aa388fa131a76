"""The features (docs/design.md#features) on the hand-built scenario of tests/scenario.py: every
feature of gold.flight_features, window edges included, equals its hand-computed value."""

from __future__ import annotations

import pytest

from tests.scenario import EXPECTED, EXPECTED_LABELS, FLIGHTS, FLOAT_COLUMNS, WEATHER


def test_flight_features_match_hand_computed_values(scenario_days, tmp_path):
    paths, query = scenario_days.paths, scenario_days.query

    # The fixture itself is clean: nothing quarantined, only the impossible wind nulled (and logged).
    assert query(
        "select dataset, action, rule, column_name, original_value, source_file, source_line_number "
        "from silver.quarantine"
    ) == [("weather", "value_nulled", "impossible_value", "wind_speed", "1048.0", "landing/weather/2013-06-09.csv", 9)]
    assert query("select count(*) from silver.flights")[0][0] == len(FLIGHTS)
    assert query("select count(*) from silver.weather")[0][0] == len(WEATHER)

    # One feature row per flight, cancelled and diverted flights included.
    assert query("select count(*), count(distinct flight_id) from gold.flight_features")[0] == (30, 30)

    columns = ["flight_id", *next(iter(EXPECTED.values())).keys()]
    rows = query(
        f"select {', '.join(columns)} from gold.flight_features where flight_id in "
        f"({', '.join('?' for _ in EXPECTED)}) order by flight_id",
        list(EXPECTED),
    )
    actual = {row[0]: dict(zip(columns[1:], row[1:])) for row in rows}
    assert sorted(actual) == sorted(EXPECTED)

    mismatches = []
    for flight_id, expected in EXPECTED.items():
        for column, want in expected.items():
            got = actual[flight_id][column]
            if column in FLOAT_COLUMNS and want is not None:
                ok = got is not None and got == pytest.approx(want, abs=1e-9)
            else:
                ok = got == want and type(got) is type(want)
            if not ok:
                mismatches.append(f"{flight_id}.{column}: expected {want!r}, got {got!r}")
    assert not mismatches, "\n".join(mismatches)

    # Training set: exactly the flights with a known label, with is_delayed = arr_delay >= 15,
    # and the same features as gold.flight_features.
    labels = dict(query("select flight_id, is_delayed from gold.training_set"))
    assert labels == EXPECTED_LABELS
    assert query(
        "select count(*) from gold.training_set t join silver.flights s using (flight_id) "
        "where s.arr_delay is null or t.is_delayed is distinct from (s.arr_delay >= 15)"
    ) == [(0,)]
    feature_columns = [c for c in columns if c != "flight_id"]
    assert query(
        f"select count(*) from gold.training_set t join gold.flight_features f using (flight_id) "
        f"where {' or '.join(f't.{c} is distinct from f.{c}' for c in feature_columns)}"
    ) == [(0,)]

    # the benchmark's floor, run on the same landing files, gives the same rows
    _assert_the_benchmark_floor_computes_the_same(paths, tmp_path / "floor.duckdb")


def _assert_the_benchmark_floor_computes_the_same(paths, floor):
    """bench/floor.sql (one DuckDB script, no dbt) must compute what the pipeline computes, edge cases
    included, or its ratio would compare against something else; and its comparison must see a change."""
    import duckdb

    from bench.floor import compare, run_floor

    assert run_floor(paths.data_dir, floor)["rows"] == 30
    same = compare(floor, paths.warehouse)
    assert same.equal, same.summary()
    assert (same.floor_rows, same.columns) == (30, 23)

    with duckdb.connect(str(floor)) as con:
        con.execute("update flight_features set origin_cancelled_3h = origin_cancelled_3h + 1 "
                    "where flight_id = 'AA-100-LGA-20130609'")
        con.execute("update flight_features set temp_f = temp_f + 1e-12")  # float noise: still equal
        con.execute("delete from flight_features where flight_id = 'UA-801-EWR-20130609'")
    changed = compare(floor, paths.warehouse)
    assert not changed.equal
    assert (changed.only_in_floor, changed.only_in_pipeline) == (0, 1)
    assert {c: n for c, n in changed.differing_cells.items() if n} == {"origin_cancelled_3h": 1}
    assert "origin_cancelled_3h 1" in changed.summary()
