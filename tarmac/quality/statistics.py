"""The statistics behind the checks, computed in DuckDB: null rates, quantiles, KS, PSI, correlation.

Every function takes a read-only connection, a table, its partition column and a day, and returns
plain numbers; nothing is pulled into pandas, so a check costs what its aggregate query costs.
A reference window is, by default, the N local days before the partition, or a fixed range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from tarmac.sql import quote_identifier as _q

EPSILON = 1e-4  # PSI's floor for a category absent on one side


@dataclass(frozen=True)
class Window:
    """A partition `day` and its reference window [reference_start, reference_end)."""

    day: str
    reference_start: str
    reference_end: str

    @classmethod
    def trailing(cls, day: str, days: int) -> Window:
        """The `days` local days before the partition."""
        return cls(day, (date.fromisoformat(day) - timedelta(days=days)).isoformat(), day)

    @property
    def params(self) -> dict[str, str]:
        return {"day": self.day, "ref_start": self.reference_start, "ref_end": self.reference_end}


def row_count(con: duckdb.DuckDBPyConnection, table: str, day_column: str, day: str) -> int:
    return con.execute(f"select count(*) from {table} where {_q(day_column)} = ?", [day]).fetchone()[0]


def null_rates(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, day: str, columns: list[str]
) -> tuple[int, dict[str, float | None]]:
    """Row count and each column's share of NULLs in the partition (None when it has no rows)."""
    counts = ", ".join(f"count({_q(c)})" for c in columns)
    row = con.execute(f"select count(*), {counts} from {table} where {_q(day_column)} = ?", [day]).fetchone()
    rows = row[0]
    return rows, {c: (None if rows == 0 else 1 - row[i + 1] / rows) for i, c in enumerate(columns)}


def ks_statistic(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, window: Window, column: str
) -> tuple[float | None, int, int]:
    """Two-sample Kolmogorov-Smirnov statistic of `column`, partition vs reference window."""
    c, d = _q(column), _q(day_column)
    return con.execute(
        f"""
        with sample as (
            select {c}::double as v, ({d} = $day) as in_day from {table}
            where ({d} = $day or ({d} >= $ref_start and {d} < $ref_end)) and {c} is not null
        ),
        sizes as (select count(*) filter (in_day) as n_day, count(*) filter (not in_day) as n_ref from sample),
        steps as (select v, count(*) filter (in_day) as a, count(*) filter (not in_day) as b from sample group by v),
        cdf as (
            select sum(a) over (order by v) / nullif(n_day, 0) as f_day,
                   sum(b) over (order by v) / nullif(n_ref, 0) as f_ref
            from steps, sizes
        )
        select (select max(abs(f_day - f_ref)) from cdf), n_day, n_ref from sizes
        """,
        window.params,
    ).fetchone()


def psi(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, window: Window, column: str
) -> tuple[float | None, int, int]:
    """Population stability index of a categorical column, partition vs reference window."""
    c, d = _q(column), _q(day_column)
    return con.execute(
        f"""
        with counts as (
            select {c}::varchar as category,
                   count(*) filter ({d} = $day) as a,
                   count(*) filter ({d} <> $day) as b
            from {table}
            where ({d} = $day or ({d} >= $ref_start and {d} < $ref_end)) and {c} is not null
            group by 1
        ),
        shares as (
            select greatest(a / nullif(sum(a) over (), 0), {EPSILON}) as p_day,
                   greatest(b / nullif(sum(b) over (), 0), {EPSILON}) as p_ref,
                   sum(a) over () as n_day, sum(b) over () as n_ref
            from counts
        )
        select sum((p_day - p_ref) * ln(p_day / p_ref)), coalesce(max(n_day), 0)::bigint, coalesce(max(n_ref), 0)::bigint
        from shares
        """,
        window.params,
    ).fetchone()


def correlations(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, window: Window, columns: list[str]
) -> dict[tuple[str, str], tuple[float | None, float | None, int, int]]:
    """Pearson correlation of each column pair: (partition, reference, n partition, n reference)."""
    pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]]
    d = _q(day_column)
    selects = ", ".join(
        f"corr({_q(a)}, {_q(b)}) filter (is_day), corr({_q(a)}, {_q(b)}) filter (not is_day), "
        f"count(*) filter (is_day and {_q(a)} is not null and {_q(b)} is not null), "
        f"count(*) filter (not is_day and {_q(a)} is not null and {_q(b)} is not null)"
        for a, b in pairs
    )
    row = con.execute(
        f"select {selects} from (select *, {d} = $day as is_day from {table} "
        f"where {d} = $day or ({d} >= $ref_start and {d} < $ref_end))",
        window.params,
    ).fetchone()
    return {pair: tuple(row[4 * i : 4 * i + 4]) for i, pair in enumerate(pairs)}


def outliers(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, window: Window, column: str, iqr_multiplier: float
) -> tuple[int, int, float | None, float | None, int]:
    """Values of the partition beyond the reference window's quartiles by k interquartile ranges:
    (outlier count, non-null count, low fence, high fence, reference values)."""
    c, d = _q(column), _q(day_column)
    return con.execute(
        f"""
        with ref as (
            select quantile_cont({c}, 0.25) as q1, quantile_cont({c}, 0.75) as q3, count({c}) as n_ref
            from {table} where {d} >= $ref_start and {d} < $ref_end and {d} <> $day
        ),
        fences as (select q1 - $k * (q3 - q1) as low, q3 + $k * (q3 - q1) as high, n_ref from ref)
        select count(*) filter ({c} < low or {c} > high), count({c}), any_value(low), any_value(high), any_value(n_ref)
        from {table}, fences where {d} = $day
        """,
        {**window.params, "k": iqr_multiplier},
    ).fetchone()
