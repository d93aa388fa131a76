"""Drift judged against the reference's own day-to-day variation (tarmac/quality/drift.py), on
synthetic days: the statistics equal their textbook definitions, clean days with a day effect do not
fail, and each kind of damage lands where it should (a one-day excursion warns, a persistent one
fails, a scale change or codes never seen fail at once)."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from tarmac.quality import drift as dr
from tarmac.quality import evaluate
from tarmac.quality.statistics import Window
from tarmac.settings.loader import load_settings

KEY = dg.AssetKey(["gold", "flight_features"])
SETTINGS = load_settings().quality
COLUMNS = SETTINGS.drift.columns[KEY.to_user_string()]
SHIFT = 15.0
CARRIERS = ["9E", "AA", "B6", "DL", "EV", "MQ", "UA", "US", "WN"]


def _day(rng, n: int = 900, shift: float = 0.0, scale: float = 1.0, carriers=CARRIERS) -> list[tuple]:
    """One day of flights: delay features with a day effect (the day's weather), stable categories;
    `shift` minutes more delay, or every delay `scale` times what it was."""
    weather = rng.normal(scale=3.0)
    delay = lambda: (rng.gamma(2.0, 6.0, n) + weather + shift) * scale  # noqa: E731
    share = np.array([0.16, 0.10, 0.16, 0.14, 0.16, 0.08, 0.17, 0.02, 0.01])
    return list(zip(
        delay(), delay(), rng.beta(2, 8, n),
        rng.choice(carriers, n, p=share / share.sum()), rng.choice(["EWR", "JFK", "LGA"], n),
        rng.integers(5, 23, n).astype(str), strict=True,
    ))


def _table(days: dict[str, list[tuple]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema gold")
    numeric = ", ".join(f'"{c}" double' for c in COLUMNS.numeric)
    categorical = ", ".join(f'"{c}" varchar' for c in COLUMNS.categorical)
    con.execute(f"create table gold.flight_features (flight_date date, {numeric}, {categorical})")
    frame = pd.DataFrame(
        [(day, *row) for day, day_rows in days.items() for row in day_rows],
        columns=["flight_date", *COLUMNS.numeric, *COLUMNS.categorical],
    )
    con.register("frame", frame)
    con.execute("insert into gold.flight_features select flight_date::date, * exclude (flight_date) from frame")
    return con


def _days(first: str, count: int) -> list[str]:
    return [(date.fromisoformat(first) + timedelta(days=i)).isoformat() for i in range(count)]


def _drift(con, day: str, reference_days: int = 28) -> evaluate.Outcome:
    return evaluate.drift(con, KEY, "flight_date", Window.trailing(day, reference_days), SETTINGS)


def test_the_statistics_from_sketches_equal_their_definitions():
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 6.0, 900), rng.gamma(2.2, 6.0, 25_000)
    quantiles = SETTINGS.drift.quantiles

    def day(values):
        sketch = np.quantile(values, (np.arange(quantiles) + 0.5) / quantiles)
        return dr.NumericDay(len(values), float(values.mean()), float(values.var()), sketch)

    name, value, _ = dr.numeric_statistic(day(a), [day(b[:12_500]), day(b[12_500:])], large_sample=1000)
    assert name == "wasserstein_normed"
    assert value == pytest.approx(wasserstein_distance(a, b) / b.std(), rel=0.05)
    name, value, _ = dr.numeric_statistic(day(a[:60]), [day(b[:400])], large_sample=1000)
    assert name == "ks" and value == pytest.approx(ks_2samp(a[:60], b[:400]).statistic, abs=0.03)

    p, q = np.array([50.0, 30, 20, 0]), np.array([4000.0, 3500, 2400, 100])
    name, value, _, _ = dr.categorical_statistic(p, q, large_sample=1000)
    assert name == "jensen_shannon" and value == pytest.approx(jensenshannon(p, q, base=2))
    name, value, _, p_value = dr.categorical_statistic(p, q / 20, large_sample=1000)
    assert name == "chi2_per_row" and 0 < p_value < 1


def test_clean_days_with_weather_do_not_fail_and_rarely_warn():
    rng = np.random.default_rng(2)
    days = _days("2013-09-01", 28 + 40)
    con = _table({d: _day(rng) for d in days})
    outcomes = [_drift(con, d) for d in days[28:]]
    severities = [o.severity for o in outcomes]
    assert "error" not in severities, [o.summary for o in outcomes if o.severity == "error"]
    assert severities.count("warn") <= 4, [o.summary for o in outcomes if o.severity == "warn"]
    stats = outcomes[0].metadata["statistics"].value
    assert stats["carrier_dep_delay_avg_24h"]["statistic"] == "wasserstein_normed"
    assert stats["carrier"]["statistic"] == "jensen_shannon" and stats["carrier"]["null_days"] == 28


def test_a_scale_change_or_codes_never_seen_fail_on_their_own_day():
    rng = np.random.default_rng(3)
    days = _days("2013-09-01", 30)
    data = {d: _day(rng) for d in days}
    data[days[28]] = _day(rng, scale=60.0)  # minutes written as seconds
    data[days[29]] = _day(rng, carriers=["ZZ", *CARRIERS[1:]])  # a code the reference never had
    con = _table(data)
    scaled, coded = _drift(con, days[28]), _drift(con, days[29], reference_days=28)
    assert scaled.severity == "error" and scaled.summary.startswith("broken: origin_dep_delay_avg_1h"), scaled.summary
    assert coded.severity == "error" and "carrier" in coded.summary, coded.summary
    assert coded.metadata["statistics"].value["carrier"]["new_categories"] == {"ZZ": pytest.approx(140, abs=60)}


def test_a_shift_warns_on_its_first_day_and_fails_when_it_persists():
    rng = np.random.default_rng(4)
    days = _days("2013-09-01", 31)
    data = {d: _day(rng) for d in days[:28]}
    for d in days[28:]:  # from the 29th day on, every delay SHIFT minutes later
        data[d] = _day(rng, shift=SHIFT)
    con = _table(data)
    first, second = _drift(con, days[28]), _drift(con, days[29])
    assert first.severity == "warn" and "today only (1 of the last 3 days" in first.summary, first.summary
    assert second.severity == "error" and "on 2 of the last 3 days" in second.summary, second.summary


def test_without_enough_reference_days_there_is_no_verdict():
    rng = np.random.default_rng(5)
    days = _days("2013-09-01", 14)
    con = _table({d: _day(rng) for d in days})
    alone = _drift(con, days[-1])
    assert alone.severity == "warn"
    assert alone.summary.startswith("no reference yet: 13 days of the reference window"), alone.summary
    assert alone.summary.endswith("14 needed to calibrate on")
    second = _drift(con, days[1])  # one reference day: no null at all
    assert second.summary.startswith("no reference yet: 1 days of the reference window"), second.summary
