"""The checks' per-day statistics, computed from one read of a run's window, against their plain
one-day SQL definitions, on real days of 2013; and a run's outcomes against each day evaluated alone.

A check step judges every day of its run from columns and counts read once for the whole window
(tarmac/quality/statistics.py). These tests hold that to the statistic's definition as one
aggregate query over the day and its reference window, the way a reader would write it by hand.
"""

import math

import dagster as dg
import ibis
import pytest

from assets.quality.checks import BY_DAYS, BY_WINDOWS, DAILY_CHECKS, CheckInputs, evaluate_days
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from tarmac.quality import drift as dr
from tarmac.quality import ranges as rg
from tarmac.quality import statistics as st
from tarmac.quality.evaluate import table_name
from tarmac.settings.loader import load_settings
from tarmac.warehouse import PARTITION_COLUMNS, read_only

SETTINGS = load_settings().quality


def _params(window: st.Window) -> dict[str, str]:
    return {"day": window.day, "ref_start": window.reference_start, "ref_end": window.reference_end}


def sql_outliers(con, table: str, d: str, window: st.Window, c: str, k: float) -> tuple:
    return con.execute(
        f"""
        with ref as (
            select quantile_cont("{c}", 0.25) as q1, quantile_cont("{c}", 0.75) as q3, count("{c}") as n_ref
            from {table} where {d} >= $ref_start and {d} < $ref_end and {d} <> $day
        ),
        fences as (select q1 - $k * (q3 - q1) as low, q3 + $k * (q3 - q1) as high, n_ref from ref)
        select count(*) filter ("{c}" < low or "{c}" > high), count("{c}"), any_value(low), any_value(high),
               any_value(n_ref)
        from {table}, fences where {d} = $day
        """,
        {**_params(window), "k": k},
    ).fetchone()


def sql_correlation(con, table: str, d: str, window: st.Window, a: str, b: str) -> tuple:
    both = f'"{a}" is not null and "{b}" is not null'
    return con.execute(
        f"""select corr("{a}", "{b}") filter (is_day), corr("{a}", "{b}") filter (not is_day),
                   count(*) filter (is_day and {both}), count(*) filter (not is_day and {both})
            from (select *, {d} = $day as is_day from {table}
                  where {d} = $day or ({d} >= $ref_start and {d} < $ref_end))""",
        _params(window),
    ).fetchone()


def sql_new_codes(con, table: str, d: str, window: st.Window, c: str) -> tuple[int, int, set[str]]:
    rows = con.execute(
        f"""
        with base as (
            select "{c}"::varchar as code, {d} as day from {table}
            where ({d} = $day or ({d} >= $ref_start and {d} < $ref_end)) and "{c}" is not null
        )
        select code, count(*) filter (where day = $day), count(*) filter (where day <> $day),
               (select count(distinct day) from base where day <> $day)
        from base group by 1
        """,
        _params(window),
    ).fetchall()
    reference_days = rows[0][3] if rows else 0
    new = {code for code, today, seen, _ in rows if today and not seen} if reference_days else set()
    return sum(r[1] for r in rows), reference_days, new


@pytest.fixture(scope="module")
def warehouse(real_days):
    with read_only(real_days.paths.warehouse) as con:
        days = {
            table: [d for (d,) in con.execute(
                f"select distinct {PARTITION_COLUMNS[table]}::varchar from {table_name(dg.AssetKey(list(table)))} "
                "order by 1").fetchall()]
            for table in [("silver", "flights"), ("silver", "weather"), ("gold", "flight_features")]
        }
        yield con, days


def _windows(days: list[str]) -> list[st.Window]:
    # trailing windows, and a fixed one that holds some of the days themselves
    fixed = [st.Window(d, "2013-02-20", "2013-03-06") for d in days]
    return [st.Window.trailing(d, SETTINGS.reference_window.days) for d in days] + fixed


@pytest.mark.parametrize("label", sorted(SETTINGS.value_ranges.columns))
def test_outliers_equal_the_one_day_quantile_query(warehouse, label):
    con, days = warehouse
    table_key = tuple(label.split("/"))
    table, d = table_name(dg.AssetKey(list(table_key))), PARTITION_COLUMNS[table_key]
    windows = _windows(days[table_key])
    frame = st.DayColumns.fetch(con, table, d, SETTINGS.value_ranges.columns[label], *st.span(windows))
    k = SETTINGS.value_ranges.iqr_multiplier
    evaluated = 0
    for window in windows:
        for column in SETTINGS.value_ranges.columns[label]:
            expected = sql_outliers(con, table, d, window, column, k)
            count, n, low, high, n_ref = st.outliers(frame, window, column, k)
            assert (count, n, n_ref) == (expected[0], expected[1], expected[4] or 0), (window, column)
            for got, fence in [(low, expected[2]), (high, expected[3])]:
                assert (got is None and fence is None) or math.isclose(got, fence, rel_tol=1e-12), (window, column)
            evaluated += bool(expected[4])
    assert evaluated > len(windows)  # most days had a reference


def test_correlations_equal_duckdbs_corr(warehouse):
    con, days = warehouse
    table_key = ("gold", "flight_features")
    columns = SETTINGS.correlation.columns["gold/flight_features"]
    table, d = table_name(dg.AssetKey(list(table_key))), PARTITION_COLUMNS[table_key]
    windows = _windows(days[table_key])
    frame = st.DayColumns.fetch(con, table, d, columns, *st.span(windows))
    for window in windows:
        for (a, b), (r, r_ref, n, n_ref) in st.correlations(frame, window, columns).items():
            e_r, e_ref, e_n, e_n_ref = sql_correlation(con, table, d, window, a, b)
            assert (n, n_ref) == (e_n, e_n_ref)
            for got, expected in [(r, e_r), (r_ref, e_ref)]:
                assert (got is None) == (expected is None), window
                if got is not None:
                    assert math.isclose(got, expected, abs_tol=1e-9) or (math.isnan(got) and math.isnan(expected))


@pytest.mark.parametrize("label", sorted(SETTINGS.value_ranges.codes.columns))
def test_new_codes_equal_the_one_day_query(warehouse, label):
    con, days = warehouse
    table_key = tuple(label.split("/"))
    table, d = table_name(dg.AssetKey(list(table_key))), PARTITION_COLUMNS[table_key]
    windows = _windows(days[table_key])
    for column in SETTINGS.value_ranges.codes.columns[label]:
        codes = dr.categorical_days(con, table, d, column, *st.span(windows))
        for window in windows:
            values, reference_days, new = rg.new_codes(codes, window, examples=1000)
            assert (values, reference_days, set(new)) == sql_new_codes(con, table, d, window, column), window


def test_quantile_cont_is_duckdbs():
    import duckdb
    import numpy as np

    rng = np.random.default_rng(7)
    with duckdb.connect() as con:
        for n in [1, 2, 3, 4, 5, 10, 97, 1000]:
            values = np.round(rng.normal(0, 50, n), 1)
            for q in [0.0, 0.25, 0.5, 0.75, 1.0]:
                expected = con.execute("select quantile_cont(v, ?) from (select unnest(?::double[]) as v)",
                                       [q, values.tolist()]).fetchone()[0]
                assert math.isclose(st.quantile_cont(values, q), expected, rel_tol=1e-12, abs_tol=1e-12), (n, q)
    assert st.quantile_cont(np.array([]), 0.5) is None


def same(a, b) -> bool:
    """Equal, floats to 1e-12 (a sum over more categories, some of them 0, rounds its own way)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_a_runs_outcomes_equal_each_day_evaluated_alone(warehouse, real_days):
    """Batching is an optimisation: each day's outcome (severity, summary, figures, metadata) is the
    one it gets when its check runs for that day alone, as the landing sensor's one-day runs do."""
    con, _ = warehouse
    config = TarmacConfig(data_dir=str(real_days.paths.data_dir))
    inputs = CheckInputs.from_resources(config, ModelRegistryResource(config=config))
    ibis_backend = ibis.duckdb.from_connection(con.cursor())
    run = ["2013-02-11", "2013-02-12", "2013-03-09", "2013-03-10", "2013-03-13", "2013-11-03"]
    compared = 0
    for layer in ("bronze", "silver", "gold"):
        for table, checks in DAILY_CHECKS[layer].items():
            key = dg.AssetKey(list(table))
            for check in checks:
                if check not in BY_DAYS and check not in BY_WINDOWS:
                    continue
                together = evaluate_days(ibis_backend, con, key, check, run, inputs)
                alone = [evaluate_days(ibis_backend, con, key, check, [day], inputs)[0] for day in run]
                for a, b in zip(together, alone, strict=True):
                    assert (a.partition, a.severity, a.summary) == (b.partition, b.severity, b.summary)
                    assert same(a.metrics, b.metrics), (key, check, a.partition)
                    metadata = [{k: v.value for k, v in o.metadata.items()} for o in (a, b)]
                    assert same(*metadata), (key, check, a.partition)
                    compared += 1
    assert compared == 6 * sum(
        c in BY_DAYS or c in BY_WINDOWS for layer in ("bronze", "silver", "gold")
        for checks in DAILY_CHECKS[layer].values() for c in checks)
