"""What the value_ranges check measures besides outliers, in DuckDB: impossible values per column,
rows breaking a relation between columns, codes the reference never had, and each column's scale
judged against the reference days' own day-to-day spread.

A unit change (miles to kilometres, Fahrenheit to Celsius, minutes to seconds) keeps most values
possible and moves a stable column's distribution as a whole; the scale statistic catches it on a
column whose days agree with each other (distance, pressure), the rules on a column whose days do
not (a stormy day's delays), and the domain bounds wherever the new unit leaves them.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from tarmac.quality import statistics as st
from tarmac.quality.drift import CategoricalDays, leave_one_out_threshold
from tarmac.sql import quote_identifier as _q

# the log ratio reported for a day whose magnitude is zero against a non-zero reference (or the reverse)
MAX_LOG_RATIO = 20.0


@dataclass(frozen=True)
class ScaleShift:
    """A column's scale on the day against the reference days': |log(day / median of the reference
    days)| of the mean absolute value, and the level above which that is broken."""

    column: str
    magnitude: float | None  # the day's mean absolute value
    reference: float | None  # the median of the reference days' mean absolute values
    log_ratio: float | None
    threshold: float | None
    reference_days: int

    @property
    def evaluated(self) -> bool:
        return self.log_ratio is not None and self.threshold is not None

    @property
    def broken(self) -> bool:
        return self.evaluated and self.log_ratio > self.threshold

    def as_metadata(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"magnitude": r(self.magnitude), "reference": r(self.reference), "log_ratio": r(self.log_ratio),
                "threshold": r(self.threshold), "reference_days": self.reference_days}


def _log_ratio(a: float, b: float) -> float:
    if a == b:
        return 0.0
    if a <= 0 or b <= 0:
        return MAX_LOG_RATIO
    return min(abs(math.log(a / b)), MAX_LOG_RATIO)


def scale_shift(
    column: str,
    day: tuple[float | None, int] | None,
    reference: list[tuple[float | None, int]],
    quantile: float,
    margin: float,
    floor: float,
    min_reference_days: int,
    min_values: int,
) -> ScaleShift:
    """The day's (mean |value|, values) against the reference days' ones. The normal spread is the
    leave-one-day-out null: each reference day's log ratio to the median of the others; the day is
    broken above max(floor, margin x its `quantile`). Medians and a quantile keep one damaged day in
    the reference from hiding the next."""
    usable = [m for m, n in reference if m is not None and n >= min_values]
    if day is None or day[0] is None or day[1] < min_values or len(usable) < min_reference_days:
        return ScaleShift(column, day[0] if day else None, statistics.median(usable) if usable else None,
                          None, None, len(usable))
    threshold = leave_one_out_threshold(usable, _log_ratio, quantile, margin, floor)
    median = statistics.median(usable)
    return ScaleShift(column, day[0], median, _log_ratio(day[0], median), threshold, len(usable))


def daily_magnitudes(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, columns: list[str], first: str, last: str
) -> dict[str, dict[str, tuple[float | None, int]]]:
    """Each column's (mean absolute value, non-null values) per day of [first, last]."""
    if not columns:
        return {}
    measures = ", ".join(f"avg(abs({_q(c)}::double)), count({_q(c)})" for c in columns)
    rows = con.execute(
        f"select {_q(day_column)}::varchar, {measures} from {table} "
        f"where {_q(day_column)} between ? and ? group by 1", [first, last],
    ).fetchall()
    return {c: {row[0]: (row[1 + 2 * i], row[2 + 2 * i]) for row in rows} for i, c in enumerate(columns)}


def rule_violations(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, days: list[str], rules: dict[str, str], examples: int
) -> dict[str, tuple[int, dict[str, int], dict[str, list[dict[str, Any]]]]]:
    """For each day: its rows, how many break each rule (a NULL satisfies it), and the first few
    breaking rows of each rule, with their landing file and line where the table carries them. One
    grouped count for every day, and one query per rule that some day breaks."""
    counts = [f"count(*) filter (where not coalesce({rule}, true))" for rule in rules.values()]
    counted = st.daily_counts(con, table, day_column, days, counts)
    per_day = {day: counted.get(day, (0, *[0] * len(rules))) for day in days}
    d = _q(day_column)
    found: dict[str, dict[str, list[dict[str, Any]]]] = {day: {} for day in days}
    if any(any(broken) for _, *broken in per_day.values()):
        columns = {c for (c,) in con.execute(f"select column_name from (describe {table})").fetchall()}
        lineage = [c for c in ("source_file", "source_line_number") if c in columns]
        for i, (name, rule) in enumerate(rules.items()):
            broken_days = sorted(day for day, (_, *broken) in per_day.items() if broken[i])
            if not broken_days:
                continue
            # each day's first rows in the order of all their columns, as `order by all limit n` per day
            cursor = con.execute(
                f"select * from {table} where {d} between ? and ? and not coalesce({rule}, true) order by all",
                [broken_days[0], broken_days[-1]],
            )
            names = [desc[0] for desc in cursor.description]
            wanted = [c for c in names if re.search(rf"\b{re.escape(c)}\b", rule) or c in lineage]
            at = names.index(day_column)
            for row in cursor.fetchall():
                day = str(row[at])
                cases = found.get(day)
                if cases is not None and len(cases.setdefault(name, [])) < examples:
                    cases[name].append({c: _plain(row[names.index(c)]) for c in wanted})
    return {
        day: (rows, dict(zip(rules, broken, strict=True)), found[day]) for day, (rows, *broken) in per_day.items()
    }


def new_codes(codes: CategoricalDays, window: st.Window, examples: int) -> tuple[int, int, dict[str, int]]:
    """Non-null values of the column on the day, reference days with values, and the day's codes the
    reference window [start, end) never had, with their rows (the most frequent first)."""
    today = codes.counts.get(window.day, np.zeros(len(codes.categories)))
    reference = [d for d in codes.counts if window.reference_start <= d < window.reference_end and d != window.day]
    values = int(today.sum())
    if not reference:
        return values, 0, {}
    seen = np.sum([codes.counts[d] for d in reference], axis=0) > 0
    new = sorted(((codes.categories[i], int(today[i])) for i in np.flatnonzero((today > 0) & ~seen)),
                 key=lambda x: (-x[1], x[0]))
    return values, len(reference), dict(new[:examples]) | (
        {"...": sum(n for _, n in new[examples:])} if len(new) > examples else {})


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | None) else str(value)
