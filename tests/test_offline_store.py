"""The offline store: point-in-time retrieval by the same SQL that builds gold.flight_features.

On real days it returns gold.flight_features and gold.training_set exactly, and builds any other
horizon on demand. On the hand-built scenario of test_features, it leaks nothing: an event changed
or moved after an as-of time changes none of that time's features, one changed or moved before it
does. Retrieval and gold share one macro (and are equal here), so what holds for one holds for both.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from tarmac.features.offline_store import OfflineStore
from tarmac.paths import TarmacPaths
from tests.conftest import LOAD_METADATA_COLUMNS
from tests.scenario import EDT, FIRST_DAY, LAST_DAY

REAL_FIRST, REAL_LAST = "2013-03-04", "2013-03-11"  # New York switches to daylight saving on 03-10


def _frame(paths: TarmacPaths, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        frame = con.execute(sql).df()
    return frame.drop(columns=[c for c in frame.columns if c in LOAD_METADATA_COLUMNS])


def _assert_same(actual: pd.DataFrame, expected: pd.DataFrame, what: str = "DataFrame") -> None:
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=0, atol=1e-9, obj=what)


def test_equals_gold_at_the_default_horizon_and_builds_other_horizons(real_days):
    paths = real_days.paths
    store = OfflineStore(paths)
    days = f"flight_date between '{REAL_FIRST}' and '{REAL_LAST}'"

    gold = _frame(paths, f"select * from gold.flight_features where {days} order by flight_date, flight_id")
    assert len(gold) > 7000
    entities = gold[["flight_id", "prediction_ts"]].rename(columns={"prediction_ts": "as_of_ts"})
    _assert_same(store.get_historical_features(entities), gold)

    training = _frame(paths, f"select * from gold.training_set where {days} order by flight_date, flight_id")
    _assert_same(store.training_set(REAL_FIRST, REAL_LAST), training)

    # Six hours ahead: the same labelled flights, other as-of times, other features.
    six_hours = store.training_set(REAL_FIRST, REAL_LAST, horizon_minutes=360)
    assert list(six_hours["flight_id"]) == list(training["flight_id"])
    assert (six_hours["prediction_ts"] == six_hours["sched_dep_ts"] - pd.Timedelta(hours=6)).all()
    assert (six_hours["origin_departures_1h"] != training["origin_departures_1h"]).mean() > 0.5
    # and its windows end at the new as-of time: the 1-hour departure count, recounted from silver
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        con.register("six_hours", six_hours)
        (miscounted,) = con.execute(
            "select count(*) from six_hours t where origin_departures_1h <> ("
            "  select count(*) from silver.flights s where s.origin = t.origin"
            "  and s.dep_ts > t.prediction_ts - interval 1 hour and s.dep_ts <= t.prediction_ts)"
        ).fetchone()
    assert miscounted == 0


def _same(actual: object, expected: object) -> bool:
    if pd.isna(expected):
        return pd.isna(actual)
    if isinstance(expected, float):
        return actual == pytest.approx(expected, abs=1e-9)
    return actual == expected


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    """A New York time of June 2013 (EDT), as a UTC instant."""
    return datetime(2013, 6, day, hour, minute, tzinfo=UTC) + EDT


def departs(flight_id: str, dep_delay: int) -> str:
    return (
        f"update silver.flights set cancelled = false, dep_delay = {dep_delay}, "
        f"dep_ts = sched_dep_ts + to_minutes({dep_delay}) where flight_id = '{flight_id}'"
    )


def cancel(flight_id: str) -> str:
    return (
        "update silver.flights set cancelled = true, dep_delay = null, dep_ts = null, arr_delay = null "
        f"where flight_id = '{flight_id}'"
    )


def observation(origin: str, hour: int, assignments: str) -> str:
    at = _local(9, hour).isoformat()
    return f"update silver.weather set {assignments} where origin = '{origin}' and obs_ts = '{at}'"


T = "AA-100-LGA-20130609"  # LGA-ORD, scheduled D9 12:30: p = D9 10:30 at the 2-hour horizon
T_AS_OF = _local(9, 10, 30)


@dataclass(frozen=True)
class Change:
    """An edit of silver's events; `earliest`: the earliest event time it touches, before or after."""

    what: str
    sql: str
    earliest: datetime
    t_features: dict[str, object] = field(default_factory=dict)  # what T's features become (as of p)


CHANGES = [
    # after T's p: nothing of T moves
    Change("a departure after p leaves later (10:45 -> 13:45)", departs("UA-204-LGA-20130609", 200), _local(9, 10, 45)),
    Change("T's own departure leaves later (12:35 -> 13:30)", departs(T, 60), _local(9, 12, 35)),
    Change("a departure after p is cancelled (12:30)", cancel("UA-802-EWR-20130609"), _local(9, 12, 30)),
    Change("a cancellation after p is undone (10:45)", departs("DL-304-LGA-20130609", 5), _local(9, 10, 45)),
    Change("an observation after p changes", observation("LGA", 11, "temp = 99.5, humid = 1"), _local(9, 11)),
    Change("an observation after p moves later (11:00 -> 12:30)",
           observation("LGA", 11, f"obs_ts = '{_local(9, 12, 30).isoformat()}'"), _local(9, 11)),
    # at or before T's p: T's features follow
    Change("a departure in T's 1 h changes (09:31 -> 09:32)", departs("UA-203-LGA-20130609", 7), _local(9, 9, 31),
           {"origin_dep_delay_avg_1h": 13 / 3}),  # (7 - 4 + 10) / 3
    Change("a departure moves from after p to before it (10:45 -> 10:25)", departs("UA-204-LGA-20130609", 0),
           _local(9, 10, 25),
           {"origin_dep_delay_avg_1h": 3.0, "origin_departures_1h": 4, "route_dep_delay15_rate_7d": 0.25}),
    Change("a departure moves from p to after it (10:30 -> 10:31)", departs("DL-201-LGA-20130609", 11),
           _local(9, 10, 30), {"origin_dep_delay_avg_1h": 1.0, "origin_departures_1h": 2}),
    Change("a departure before p is cancelled (10:25)", cancel("UA-204-LGA-20130609"), _local(9, 10, 25),
           {"origin_cancelled_3h": 3}),
    Change("the carrier's departure at p - 24 h moves inside the window", departs("AA-402-EWR-20130608", 31),
           _local(8, 10, 30), {"carrier_dep_delay_avg_24h": 14.0}),  # (1 + 10 + 31) / 3
    Change("the observation T uses changes", observation("LGA", 10, "temp = 50.5"), _local(9, 10),
           {"temp_f": 50.5}),
    Change("an observation moves from after p to p (11:00 -> 10:30)",
           observation("LGA", 11, f"obs_ts = '{T_AS_OF.isoformat()}'"), T_AS_OF,
           {"temp_f": 71.6, "wind_speed_mph": 12.65858, "humid": 58.0}),
]  # fmt: skip


def _training_row(store: OfflineStore, flight_id: str) -> dict[str, object]:
    training = store.training_set(FIRST_DAY, LAST_DAY)
    return training[training["flight_id"] == flight_id].iloc[0].to_dict()


def test_no_leakage_events_after_the_as_of_time_change_nothing(scenario_days, tmp_path):
    paths = scenario_days.paths
    # every flight as of 30 min, 2 h and 6 h before its departure (a flight asked at several times)
    flights = _frame(paths, "select flight_id, sched_dep_ts from silver.flights order by flight_id")
    requests = pd.concat(
        [flights.assign(horizon=m, as_of_ts=flights["sched_dep_ts"] - pd.Timedelta(minutes=m)) for m in (30, 120, 360)],
        ignore_index=True,
    )
    entities = requests[["flight_id", "as_of_ts"]]
    base = OfflineStore(paths).get_historical_features(entities)
    assert list(base["flight_id"]) == list(entities["flight_id"])
    assert (base["prediction_ts"] == entities["as_of_ts"]).all()
    gold = _frame(paths, "select * from gold.flight_features order by flight_id")
    _assert_same(base[requests["horizon"] == 120].reset_index(drop=True), gold)
    base_t = _training_row(OfflineStore(paths), T)
    assert base_t["prediction_ts"] == T_AS_OF

    for i, change in enumerate(CHANGES):
        variant = TarmacPaths(tmp_path / f"variant-{i}")
        variant.data_dir.mkdir()
        shutil.copy(paths.warehouse, variant.warehouse)
        with duckdb.connect(str(variant.warehouse)) as con:
            con.execute("set TimeZone = 'UTC'")
            assert con.execute(change.sql).fetchone()[0] == 1, change.what
        after = OfflineStore(variant).get_historical_features(entities)

        earlier = base["prediction_ts"] < change.earliest
        _assert_same(after[earlier], base[earlier], f"features as of times before {change.what}")
        assert not after[~earlier].equals(base[~earlier]), f"{change.what}: no later feature moved"
        # T's training row: only events at or before its p count
        expected_t = base_t | change.t_features
        actual_t = _training_row(OfflineStore(variant), T)
        wrong = {c: (expected_t[c], v) for c, v in actual_t.items() if not _same(v, expected_t[c])}
        assert not wrong, f"{change.what}: T's training row (expected, got): {wrong}"
        assert (change.earliest > T_AS_OF) == (not change.t_features), change.what


def test_refuses_naive_times_and_unknown_flights(paths):
    store = OfflineStore(paths)
    naive = pd.DataFrame({"flight_id": ["UA-1545-EWR-20130101"], "as_of_ts": [datetime(2013, 1, 1, 3)]})
    with pytest.raises(ValueError, match="as_of_ts is naive"):
        store.get_historical_features(naive)

    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("create schema silver; create table silver.flights as select 'UA-1545-EWR-20130101' as flight_id")
    aware = naive.assign(as_of_ts=naive["as_of_ts"].dt.tz_localize("UTC"))
    unknown = pd.concat([aware, aware.assign(flight_id="XX-1-EWR-20130101")], ignore_index=True)
    with pytest.raises(LookupError, match=r"1 requested flight ids are not in silver.flights \(first: XX-1-EWR-2013"):
        store.get_historical_features(unknown)
