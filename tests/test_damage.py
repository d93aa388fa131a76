"""Damage to a day's delivery is caught on its own day, on real 2013 data.

The real days of February and March (`real_days`) are the history; five March days after them land
damaged as upstream would deliver them, one kind of damage each, and are materialized on top of a
copy of that warehouse. Each damaged day must fail at least one check with ERROR (the carrier's
delay shift: at least WARN); the clean days before them must not fail these checks with ERROR.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from tarmac.days import days_between
from tarmac.paths import TarmacPaths
from tests.conftest import ONE_WRITER, Materialized, materialize
from tools.landing import fill_landing_zone

# landing columns by position
FLIGHTS = {name: i for i, name in enumerate(
    ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute", "time_hour"])}
WEATHER = {name: i for i, name in enumerate(
    ["origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib", "time_hour"])}


def rewrite(path: Path, change: Callable[[list[list[str]]], list[list[str]] | None]) -> None:
    """Rewrite a landing file's rows as upstream would have delivered them (header kept)."""
    lines = path.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    rows = change(rows) or rows
    path.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")


def numeric(rows, column: int, convert: Callable[[float], str]) -> None:
    for r in rows:
        if r[column] not in ("NA", ""):
            r[column] = convert(float(r[column]))


def shift_hhmm(value: str, minutes: int) -> str | None:
    total = int(value) // 100 * 60 + int(value) % 100 + minutes
    return None if total >= 1440 else str(total // 60 * 100 + total % 60)


def late_carrier(carrier: str, minutes: int):
    """Every departure and arrival of one carrier `minutes` later, its delays with them: the times
    stay consistent with each other (flights near midnight are left alone)."""

    def change(rows):
        for r in rows:
            if r[FLIGHTS["carrier"]] != carrier or "NA" in (r[FLIGHTS["dep_time"]], r[FLIGHTS["arr_time"]]):
                continue
            dep, arr = shift_hhmm(r[FLIGHTS["dep_time"]], minutes), shift_hhmm(r[FLIGHTS["arr_time"]], minutes)
            if dep is None or arr is None:
                continue
            r[FLIGHTS["dep_time"]], r[FLIGHTS["arr_time"]] = dep, arr
            for delay in ("dep_delay", "arr_delay"):
                if r[FLIGHTS[delay]] != "NA":
                    r[FLIGHTS[delay]] = str(int(r[FLIGHTS[delay]]) + minutes)

    return change


def two_hours_late(rows):
    """Every delay two hours longer, the actual times unchanged: the delays no longer match them."""
    for r in rows:
        for delay in ("dep_delay", "arr_delay"):
            if r[FLIGHTS[delay]] != "NA":
                r[FLIGHTS[delay]] = str(int(r[FLIGHTS[delay]]) + 120)


def shuffled(column: int, seed: int = 7):
    def change(rows):
        values = [r[column] for r in rows]
        random.Random(seed).shuffle(values)
        for r, v in zip(rows, values, strict=True):
            r[column] = v

    return change


MISSING = None  # the day's file never landed


@dataclass(frozen=True)
class Damage:
    what: str
    dataset: str
    change: Callable[[list[list[str]]], list[list[str]] | None] | None
    asset: str  # the check that must catch it
    check: str
    least: str  # its least severity: error or warn


DAMAGE = {
    "2013-03-14": Damage("distance in kilometres", "flights",
                         lambda rows: numeric(rows, FLIGHTS["distance"], lambda v: str(round(v * 1.609))),
                         "silver/flights", "value_ranges", "error"),
    "2013-03-15": Damage("JFK's flights never arrived", "flights",
                         lambda rows: [r for r in rows if r[FLIGHTS["origin"]] != "JFK"], "silver/flights", "volume", "error"),
    "2013-03-16": Damage("temperature in Celsius", "weather",
                         lambda rows: numeric(rows, WEATHER["temp"], lambda v: f"{(v - 32) / 1.8:.2f}"),
                         "silver/weather", "value_ranges", "error"),
    "2013-03-17": Damage("carrier codes renamed", "flights",
                         lambda rows: [[*r[:9], {"EV": "XE", "B6": "JB"}.get(r[9], r[9]), *r[10:]] for r in rows],
                         "silver/flights", "value_ranges", "error"),
    "2013-03-18": Damage("the day delivered twice", "flights", lambda rows: rows + rows, "silver/flights", "volume", "error"),
    "2013-03-19": Damage("one carrier an hour late", "flights", late_carrier("UA", 60), "silver/flights", "drift", "warn"),
    "2013-03-20": Damage("the weather file never landed", "weather", MISSING, "silver/weather", "missing_values", "error"),
    "2013-03-21": Damage("delays two hours longer than the times say", "flights", two_hours_late,
                         "gold/flight_features", "drift", "error"),
    "2013-03-22": Damage("distances shuffled between flights", "flights", shuffled(FLIGHTS["distance"]),
                         "gold/flight_features", "correlation", "warn"),
}
FIRST, LAST = min(DAMAGE), max(DAMAGE)


def evaluations(results) -> dict[tuple[str, str, str], dg.AssetCheckEvaluation]:
    """(asset, check, day) -> the evaluation the runs reported."""
    return {
        (e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name, e.event_specific_data.partition): e.event_specific_data
        for r in results for e in r.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.partition
    }


@pytest.fixture(scope="module")
def damaged(real_days: Materialized, tmp_path_factory: pytest.TempPathFactory):
    """The damaged days materialized on a copy of the real days' data dir, in an instance of their own."""
    root = tmp_path_factory.mktemp("damaged")
    paths = TarmacPaths(root / "data")
    shutil.copytree(real_days.paths.data_dir, paths.data_dir)
    fill_landing_zone(paths, days_between(FIRST, LAST))
    for day, damage in DAMAGE.items():
        if damage.change is MISSING:
            paths.landing_day_file(damage.dataset, day).unlink()
        else:
            rewrite(paths.landing_day_file(damage.dataset, day), damage.change)
    (root / "home").mkdir()
    with dg.instance_for_test(overrides=ONE_WRITER, set_dagster_home=False, temp_dir=str(root / "home")) as instance:
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("TARMAC_DATA_DIR", str(paths.data_dir))
            environment.delenv("TARMAC_SETTINGS", raising=False)
            results = materialize(instance, FIRST, LAST)
        yield evaluations(results)


@pytest.mark.parametrize("day", sorted(DAMAGE), ids=[DAMAGE[d].what for d in sorted(DAMAGE)])
def test_damage_is_caught_on_its_own_day(damaged, day):
    damage = DAMAGE[day]
    evaluation = damaged[(damage.asset, damage.check, day)]
    caught = {k[:2]: e.severity.value for k, e in damaged.items() if k[2] == day and not e.passed}
    assert not evaluation.passed, f"{damage.what}: {damage.asset}:{damage.check} passed on {day}: {evaluation.description}"
    if damage.least == "error":
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR, (damage.what, evaluation.description, caught)


# The checks of a delivery's integrity. Drift is left out here: it compares the days' features with
# their reference's, and a storm is a real drift (the year's report, docs/CHECKS.md, counts it).
INTEGRITY = {("silver/flights", "volume"), ("silver/flights", "value_ranges"), ("silver/weather", "volume"),
             ("silver/weather", "value_ranges"), ("silver/weather", "missing_values"),
             ("gold/flight_features", "value_ranges")}


def test_the_clean_days_raise_no_error_on_these_checks(real_days: Materialized):
    """The integrity checks on the real days the damage was compared with: nothing fails with ERROR
    once the days have a reference (a week of history for their weekday)."""
    clean = evaluations(real_days.results)
    checked = INTEGRITY
    assert checked >= {(d.asset, d.check) for d in DAMAGE.values() if d.check != "drift" and d.least == "error"}
    errors = {k: e.description for k, e in clean.items()
              if k[:2] in checked and k[2] >= "2013-02-18" and not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert not errors, errors
    judged = {k for k in clean if k[:2] in checked and k[2] >= "2013-02-18"}
    assert len(judged) == len(checked) * len(days_between("2013-02-18", "2013-03-13")) + len(checked) * 6  # 10-30..11-04
