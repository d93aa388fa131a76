"""Drift and correlation give no verdict without a reference: on the first days of a backfill
(fewer than `min_rows` rows in the reference window) they warn "no reference yet", never "passed,
no drift"; with a reference, the same day is judged."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pytest

from tarmac.quality import evaluate
from tarmac.quality.statistics import Window
from tarmac.settings.loader import load_settings

KEY = dg.AssetKey(["gold", "flight_features"])
DAY = "2013-03-10"


@pytest.fixture
def con():
    settings = load_settings().quality
    numeric = settings.drift.columns[KEY.to_user_string()].numeric
    categorical = settings.drift.columns[KEY.to_user_string()].categorical
    correlated = settings.correlation.columns[KEY.to_user_string()]
    columns = sorted({*numeric, *correlated})
    rng = np.random.default_rng(7)
    con = duckdb.connect()
    con.execute("create schema gold")
    con.execute(
        "create table gold.flight_features (flight_date date, "
        + ", ".join(f'"{c}" double' for c in columns) + ", " + ", ".join(f'"{c}" varchar' for c in categorical) + ")"
    )
    rows = []
    for offset in range(0, 29):  # the day and the 28 days before it, 200 rows each
        day = np.datetime64(DAY) - offset
        for _ in range(200):
            rows.append((str(day), *rng.normal(size=len(columns)).tolist(), *(str(rng.integers(3)) for _ in categorical)))
    con.executemany(f"insert into gold.flight_features values ({', '.join('?' * (1 + len(columns) + len(categorical)))})", rows)
    yield con
    con.close()


@pytest.mark.parametrize("check", ["drift", "correlation"])
def test_no_reference_warns_and_a_reference_gives_a_verdict(con, check):
    settings = load_settings().quality
    with_reference = getattr(evaluate, check)(con, KEY, "flight_date", Window.trailing(DAY, 28), settings)
    assert with_reference.passed, with_reference.summary  # the same distribution every day
    assert "no reference" not in with_reference.summary

    con.execute("delete from gold.flight_features where flight_date < ?", [DAY])
    alone = getattr(evaluate, check)(con, KEY, "flight_date", Window.trailing(DAY, 28), settings)
    assert not alone.passed and alone.severity == "warn", alone
    assert alone.summary == f"no reference yet: 0 rows in the reference window [2013-02-10, {DAY}), 50 needed"
