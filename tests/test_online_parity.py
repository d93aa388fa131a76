"""Training/serving parity: the online path (events -> speed layer -> online store -> serving reads)
gives gold.flight_features' values, on test_features' hand-built edge cases and on real days.

The crafted scenario holds an event exactly at each window's edge, cancellations (a cancelled
target too), weather exactly 3 h old and 4 h old, an observation whose wind silver nulled, an
unknown tail number and flights across local midnight; its expected values are literals, so the
online path is checked against hand arithmetic as well as against gold.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from tarmac.features.registry import feature_registry
from tarmac.online.batch import FLIGHT_ATTRIBUTES, flight_records, plane_records
from tarmac.online.events import silver_events, to_us
from tarmac.online.parity import PARITY_CHECK, parity_for_flights, replay_and_compare
from tarmac.online.retrieval import FLIGHT, PLANE, OnlineFeatures, open_online_store
from tarmac.online.store import SqliteOnlineStore
from tarmac.settings.loader import load_settings
from tests.scenario import EXPECTED, FIRST_DAY, FLOAT_COLUMNS, LAST_DAY


def _parity_evaluations(results) -> list:
    return [e for r in results for e in r.get_asset_check_evaluations() if e.check_name == PARITY_CHECK
            and e.partition is not None]  # fmt: skip


def _all_flights(paths) -> list[str]:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return [i for (i,) in con.execute("select flight_id from gold.flight_features order by 1").fetchall()]


def _records_built_in_python(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """What a flight's online record must hold, built value by value: silver's attributes, gold's
    prediction_ts and vector, dates and instants as datetime.isoformat writes them (UTC)."""
    names = list(feature_registry())
    con.execute("set TimeZone = 'UTC'")
    cursor = con.execute(
        f"select {', '.join(f'f.{c}' for c in FLIGHT_ATTRIBUTES)}, g.prediction_ts, "
        f"{', '.join(f'g.{n} as batch_{n}' for n in names)} "
        "from silver.flights f join gold.flight_features g using (flight_id)")
    columns = [d[0] for d in cursor.description]
    records = {}
    for row in cursor.fetchall():
        values = dict(zip(columns, row))
        record = {c: values[c] for c in (*FLIGHT_ATTRIBUTES, "prediction_ts")}
        for c in ("flight_date", "sched_dep_ts", "prediction_ts"):
            record[c] = record[c].isoformat()
        record["batch"] = {n: values[f"batch_{n}"] for n in names}
        records[record["flight_id"]] = record
    return records


def test_crafted_edge_cases_online_equal_gold_and_hand_arithmetic_and_a_wrong_value_shows(scenario_days, tmp_path):
    paths, results = scenario_days.paths, scenario_days.results
    # the pipeline's own parity check ran on every day, on every flight (fewer than its sample size)
    evaluations = _parity_evaluations(results)
    assert sorted(e.partition for e in evaluations) == pd.date_range(FIRST_DAY, LAST_DAY).strftime("%Y-%m-%d").tolist()
    assert all(e.passed for e in evaluations), [e.description for e in evaluations if not e.passed]
    assert sum(e.metadata["flights_compared"].value for e in evaluations if "flights_compared" in e.metadata) == 30

    flight_ids = _all_flights(paths)
    # the records online/flights loaded (JSON built in DuckDB) hold what Python would build:
    # NULL features (unknown tail number, stale weather), flights across local midnight, the types
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        expected_records = _records_built_in_python(con)
    loaded = open_online_store(load_settings().online, paths)
    assert sorted(expected_records) == flight_ids and loaded.count_records(FLIGHT) == len(flight_ids)
    assert {i: loaded.get_record(FLIGHT, i) for i in flight_ids} == expected_records
    loaded.close()

    store = SqliteOnlineStore(tmp_path / "online.sqlite")
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        result = parity_for_flights(con, flight_ids, store, tolerance=0.0)  # exact here
        targets = flight_records(con, flight_ids=list(EXPECTED))
    assert targets == {i: expected_records[i] for i in targets} and sorted(targets) == sorted(EXPECTED)
    assert sorted(result.flights) == flight_ids
    assert result.mismatches == {}, result.examples()

    # and against the hand-computed values: each target's vector read back as of its prediction_ts
    online = OnlineFeatures(SqliteOnlineStore(tmp_path / "online.sqlite"))
    for record in targets.values():
        expected = EXPECTED[record["flight_id"]]
        # the replay stopped at the last flight's prediction_ts; earlier instants read the history
        values = online.for_flight(record, to_us(pd.Timestamp(record["prediction_ts"])))
        for name, want in expected.items():
            if name not in values:
                continue
            got = values[name]
            if name in FLOAT_COLUMNS and want is not None:
                assert got == pytest.approx(want, abs=1e-12), (record["flight_id"], name)
            else:
                assert got == want, (record["flight_id"], name, got, want)

    # the comparison itself: a wrong count and a wrong NULL show, float noise below the tolerance not
    target, other = "AA-100-LGA-20130609", "B6-601-LGA-20130609"
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        flights = flight_records(con, flight_ids=flight_ids)
        times = [pd.Timestamp(r["prediction_ts"]) for r in flights.values()]
        events = silver_events(con, min(times) - pd.Timedelta(days=7), max(times))
        planes = plane_records(con)
    flights[target]["batch"]["origin_departures_1h"] += 1  # gold says 4, online counts 3
    flights[target]["batch"]["temp_f"] += 1e-12  # below the tolerance
    flights[other]["batch"]["plane_seats"] = None  # a NULL where online has 20
    scratch = SqliteOnlineStore(tmp_path / "scratch.sqlite")
    scratch.put_records(PLANE, planes, group="all")
    result = replay_and_compare(flights, events, scratch, tolerance=1e-9)
    assert result.mismatches == {
        target: {"origin_departures_1h": {"online": 3, "gold": 4}},
        other: {"plane_seats": {"online": 20, "gold": None}},
    }
    assert result.mismatch_rate == pytest.approx(2 / 30)


def test_real_days_have_no_parity_mismatch(real_days):
    """The real, dirty data (docs/design.md#data) of every shared day: the settings' sample of
    flights a day (150: over 5,000 flights) equal gold exactly."""
    sample_size = load_settings().online.parity.sample_size
    evaluations = _parity_evaluations(real_days.results)
    days = {d for (d,) in real_days.query("select distinct flight_date::varchar from gold.flight_features")}
    assert sorted(e.partition for e in evaluations) == sorted(days) and len(days) == 37
    compared = sum(e.metadata["flights_compared"].value for e in evaluations)
    mismatched = sum(e.metadata["flights_mismatched"].value for e in evaluations)
    assert (compared, mismatched) == (sample_size * len(days), 0), [e.description for e in evaluations if not e.passed]
    assert all(e.passed for e in evaluations)
