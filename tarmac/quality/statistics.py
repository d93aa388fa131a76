"""The statistics behind the checks: per-day figures of a run's days, and their reference windows.

A check step evaluates every day of its run, and each day is judged against a reference window of
the days before it, so the windows of neighbouring days overlap. Asking the warehouse once per day
and statistic would read the same rows up to 28 times and, over Parquet views (the Spark engine),
plan every query against every file of the table: a year's checks would cost the square of its
days. Instead, each statistic's inputs are read once for the run's whole span (a grouped count, or
a column's values ordered by day, `DayColumns`), and each day's figure is computed from them here,
equal to what the one-day SQL aggregate gives, up to floating-point rounding
(tests/test_quality_statistics.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np

from tarmac.days import next_day
from tarmac.sql import quote_identifier as _q

EPOCH = date(1970, 1, 1)


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


def span(windows: list[Window]) -> tuple[str, str]:
    """The first and last day that any of the windows reads: its days and their reference days."""
    last_reference = [(date.fromisoformat(w.reference_end) - timedelta(days=1)).isoformat() for w in windows]
    days = [w.day for w in windows]
    return min(days + [w.reference_start for w in windows]), max(days + last_reference)


def day_number(day: str) -> int:
    return (date.fromisoformat(day) - EPOCH).days


@dataclass(frozen=True)
class DayColumns:
    """Numeric columns of a table over a span of days, read in one scan and ordered by day: NaN
    stands for NULL. Each day's rows, and a reference window's, are slices of the arrays."""

    days: np.ndarray  # the day of each row, as days since 1970-01-01
    columns: dict[str, np.ndarray]

    @classmethod
    def fetch(
        cls, con: duckdb.DuckDBPyConnection, table: str, day_column: str, columns: list[str], first: str, last: str
    ) -> DayColumns:
        d = _q(day_column)
        picked = "".join(f", {_q(c)}::double as {_q(c)}" for c in columns)
        fetched = con.execute(
            f"select ({d}::date - date '1970-01-01')::integer as __day{picked} from {table} "
            f"where {d} between ? and ? order by __day",
            [first, last],
        ).fetchnumpy()
        arrays = {
            c: (v.filled(np.nan) if isinstance(v, np.ma.MaskedArray) else v).astype(np.float64, copy=False)
            for c, v in fetched.items() if c != "__day"
        }
        return cls(np.asarray(fetched["__day"], dtype=np.int64), arrays)

    def rows(self, start: str, end: str) -> slice:
        """The rows of the days [start, end)."""
        return slice(*np.searchsorted(self.days, [day_number(start), day_number(end)]))

    def day_rows(self, day: str) -> slice:
        return self.rows(day, next_day(day))

    def reference_rows(self, window: Window) -> np.ndarray:
        """The rows of the window's reference days, the day itself left out."""
        whole, own = self.rows(window.reference_start, window.reference_end), self.day_rows(window.day)
        index = np.arange(whole.start, whole.stop)
        return index[(index < own.start) | (index >= own.stop)]

    def day(self, column: str, day: str) -> np.ndarray:
        """The column's non-null values on the day."""
        return _present(self.columns[column][self.day_rows(day)])

    def reference(self, column: str, window: Window) -> np.ndarray:
        """The column's non-null values in the window's reference days, the day itself left out."""
        return _present(self.columns[column][self.reference_rows(window)])

    def pairs(self, a: str, b: str, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both columns on the rows where neither is NULL."""
        x, y = self.columns[a][rows], self.columns[b][rows]
        both = ~(np.isnan(x) | np.isnan(y))
        return x[both], y[both]


def _present(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def quantile_cont(values: np.ndarray, q: float) -> float | None:
    """quantile_cont: linear interpolation between the order statistics around (n - 1) q (equal to
    DuckDB's up to the rounding of the last bit, which orders its arithmetic its own way)."""
    n = len(values)
    if n == 0:
        return None
    position = (n - 1) * q
    low, high = math.floor(position), math.ceil(position)
    ordered = np.partition(values, [low, high])
    lo, hi = ordered[low], ordered[high]
    return float(lo) if low == high else float(lo + (hi - lo) * (position - low))


def outliers(
    frame: DayColumns, window: Window, column: str, iqr_multiplier: float
) -> tuple[int, int, float | None, float | None, int]:
    """Values of the day beyond the reference window's quartiles by k interquartile ranges:
    (outlier count, non-null count, low fence, high fence, reference values)."""
    reference = frame.reference(column, window)
    today = frame.day(column, window.day)
    if len(reference) == 0:
        return 0, len(today), None, None, 0
    q1, q3 = quantile_cont(reference, 0.25), quantile_cont(reference, 0.75)
    low, high = q1 - iqr_multiplier * (q3 - q1), q3 + iqr_multiplier * (q3 - q1)
    return int(np.count_nonzero((today < low) | (today > high))), len(today), low, high, len(reference)


def correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r as DuckDB's corr gives it: NULL without rows, NaN when a column is constant."""
    if len(x) == 0:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator else math.nan


def correlations(
    frame: DayColumns, window: Window, columns: list[str]
) -> dict[tuple[str, str], tuple[float | None, float | None, int, int]]:
    """Pearson correlation of each column pair: (partition, reference, n partition, n reference)."""
    today, reference = frame.day_rows(window.day), frame.reference_rows(window)
    out = {}
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            x, y = frame.pairs(a, b, today)
            rx, ry = frame.pairs(a, b, reference)
            out[(a, b)] = (correlation(x, y), correlation(rx, ry), len(x), len(rx))
    return out


def daily_counts(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, days: list[str], measures: list[str]
) -> dict[str, tuple]:
    """Each day's count(*) and the given aggregate measures, for the days of [min(days), max(days)],
    in one grouped query: {day: (rows, *measures)}."""
    d = _q(day_column)
    picked = "".join(f", {m}" for m in measures)
    return {
        day: tuple(rest)
        for day, *rest in con.execute(
            f"select {d}::varchar, count(*){picked} from {table} where {d} between ? and ? group by 1",
            [min(days), max(days)],
        ).fetchall()
    }


def null_rates(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, days: list[str], columns: list[str]
) -> dict[str, tuple[int, dict[str, float | None]]]:
    """Each day's row count and each column's share of NULLs (None on a day without rows)."""
    counted = daily_counts(con, table, day_column, days, [f"count({_q(c)})" for c in columns])
    out = {}
    for day in days:
        rows, *present = counted.get(day, (0, *[0] * len(columns)))
        out[day] = (rows, {c: (None if rows == 0 else 1 - present[i] / rows) for i, c in enumerate(columns)})
    return out
