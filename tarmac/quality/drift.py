"""Drift calibrated on the reference itself: how far is a day from its reference, compared with how
far the reference's own days are from the rest of it?

A fixed threshold on a drift statistic is wrong both ways: the right number depends on the column
(a delay average moves with every storm, the carrier mix hardly at all) and on the sample sizes. So
each column's thresholds come from the reference window's own day-to-day variation, a
leave-one-day-out null distribution: every reference day with enough rows is compared with the
other reference days by the same statistic. The day drifts (WARN) above the null's high
`quantile`, is beyond normal (an ERROR candidate) above that quantile times `error_margin`, and is
broken (ERROR at once) above it times `gross_margin` (a unit or scale change). A high quantile
rather than the maximum: once a drift has lasted a day, that day is in the trailing reference and
its leave-one-out statistic would lift the maximum out of reach of the days that follow. A
categorical day whose rows carry codes the reference never had, above `new_category_share` of them,
is broken too.

The statistic follows the sample size, as the drift tools users know choose it (Evidently): with
more than `large_sample` reference rows, a distance that does not grow with n, the Wasserstein
distance normed by the reference's standard deviation (numeric) or the Jensen-Shannon distance
(categorical); with fewer, the two-sample Kolmogorov-Smirnov statistic and the chi-squared
statistic per row (phi squared, its p-value alongside).

The table's verdict: a day is *beyond normal* when at least `error_share` of its columns are ERROR
candidates. That is ERROR only when it persists (`persistence.min_days` of the last
`persistence.days` days, this one included), since a single stormy day is weather, not drift;
otherwise WARN, as is one column beyond normal, or `warn_share` of the columns drifted (one column
above its 95% quantile is what one clean day in twenty does). A broken column is ERROR at once.

Everything is computed from per-day summaries fetched in one query per column: a numeric day is a
quantile sketch (`quantiles` points, each carrying n/`quantiles` of its rows) with its exact count,
mean and variance; a categorical day, its counts per category. Pooling sketches gives any union of
days, so a null of 28 leave-one-out comparisons costs 28 small sorts, not 28 scans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import duckdb
import numpy as np

from tarmac.sql import quote_identifier as _q

Severity = Literal["ok", "warn", "error"]
Kind = Literal["numeric", "categorical"]


# ---------------------------------------------------------------- per-day summaries


@dataclass(frozen=True)
class NumericDay:
    n: int
    mean: float
    variance: float
    sketch: np.ndarray  # quantiles at (i + 0.5) / k


@dataclass(frozen=True)
class CategoricalDays:
    categories: list[str]
    counts: dict[str, np.ndarray]  # day -> count per category (aligned with `categories`)


def numeric_days(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, column: str, first: str, last: str, quantiles: int
) -> dict[str, NumericDay]:
    """Each day of [first, last] with values: count, mean, variance and quantile sketch."""
    points = [(i + 0.5) / quantiles for i in range(quantiles)]
    rows = con.execute(
        f"select {_q(day_column)}::varchar, count({_q(column)}), avg({_q(column)}::double), "
        f"var_pop({_q(column)}::double), quantile_cont({_q(column)}::double, {points}) "
        f"from {table} where {_q(day_column)} between ? and ? and {_q(column)} is not null group by 1",
        [first, last],
    ).fetchall()
    return {day: NumericDay(n, mean, variance or 0.0, np.asarray(sketch, dtype=float)) for day, n, mean, variance, sketch in rows}


def categorical_days(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, column: str, first: str, last: str
) -> CategoricalDays:
    """Each day's count of each category of `column` (NULLs left out) over [first, last]."""
    rows = con.execute(
        f"select {_q(day_column)}::varchar, {_q(column)}::varchar, count(*) from {table} "
        f"where {_q(day_column)} between ? and ? and {_q(column)} is not null group by 1, 2",
        [first, last],
    ).fetchall()
    categories = sorted({c for _, c, _ in rows})
    index = {c: i for i, c in enumerate(categories)}
    counts: dict[str, np.ndarray] = {}
    for day, category, count in rows:
        counts.setdefault(day, np.zeros(len(categories)))[index[category]] = count
    return CategoricalDays(categories, counts)


# ---------------------------------------------------------------- statistics


def _pooled(days: Iterable[NumericDay]) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The union of days as weighted points, its row count and its exact standard deviation."""
    days = list(days)
    n = sum(d.n for d in days)
    points = np.concatenate([d.sketch for d in days])
    weights = np.concatenate([np.full(len(d.sketch), d.n / len(d.sketch)) for d in days])
    mean = sum(d.n * d.mean for d in days) / n
    variance = sum(d.n * (d.variance + (d.mean - mean) ** 2) for d in days) / n
    return points, weights, n, float(np.sqrt(max(variance, 0.0)))


def _cdf_gap(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|F_a - F_b| on the merged support, and the widths it holds over."""
    x = np.concatenate([a, b])
    order = np.argsort(x, kind="stable")
    step_a = np.concatenate([wa / wa.sum(), np.zeros(len(b))])[order]
    step_b = np.concatenate([np.zeros(len(a)), wb / wb.sum()])[order]
    gap = np.abs(np.cumsum(step_a) - np.cumsum(step_b))
    return gap[:-1], np.diff(x[order])


def numeric_statistic(day: NumericDay, reference: list[NumericDay], large_sample: int) -> tuple[str, float, int]:
    """(statistic, value, reference rows): normed Wasserstein for a large reference, else KS."""
    points, weights, n_ref, std = _pooled(reference)
    gap, widths = _cdf_gap(day.sketch, np.full(len(day.sketch), 1.0), points, weights)
    if n_ref > large_sample:
        distance = float(np.sum(gap * widths))
        return "wasserstein_normed", distance / std if std > 0 else (0.0 if distance == 0 else float("inf")), n_ref
    return "ks", float(gap.max(initial=0.0)), n_ref


def categorical_statistic(day: np.ndarray, reference: np.ndarray, large_sample: int) -> tuple[str, float, int, float | None]:
    """(statistic, value, reference rows, p-value): Jensen-Shannon distance (base 2) for a large
    reference, else chi-squared per row (phi squared) with its p-value."""
    n_ref = int(reference.sum())
    p, q = day / max(day.sum(), 1), reference / max(n_ref, 1)
    if n_ref > large_sample:
        m = (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = lambda a: float(np.sum(np.where(a > 0, a * np.log2(a / m), 0.0)))  # noqa: E731
            return "jensen_shannon", float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0))), n_ref, None
    from scipy.stats import chi2  # scikit-learn's dependency

    seen = (day + reference) > 0
    table = np.vstack([day[seen], reference[seen]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1)))
    dof = max(int(seen.sum()) - 1, 1)
    return "chi2_per_row", statistic / table.sum(), n_ref, float(chi2.sf(statistic, dof))


# ---------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    quantile: float
    error_margin: float
    gross_margin: float
    min_reference_days: int


@dataclass
class ColumnDrift:
    column: str
    kind: Kind
    statistic: str | None = None
    value: float | None = None
    n: int = 0
    n_ref: int = 0
    null_days: int = 0
    warn: float | None = None
    error: float | None = None
    gross: float | None = None
    new_categories: dict[str, int] = field(default_factory=dict)
    new_share: float = 0.0
    p_value: float | None = None
    level: Literal["not evaluated", "ok", "drifted", "beyond normal", "broken"] = "not evaluated"
    note: str = ""

    def as_metadata(self) -> dict[str, Any]:
        def r(v):
            return None if v is None else (round(v, 4) if np.isfinite(v) else str(v))
        out = {"statistic": self.statistic, "value": r(self.value), "level": self.level, "n": self.n, "n_ref": self.n_ref,
               "null_days": self.null_days, "warn": r(self.warn), "error": r(self.error), "gross": r(self.gross)}
        if self.new_categories:
            out["new_categories"] = dict(list(self.new_categories.items())[:10])
            out["new_share"] = round(self.new_share, 4)
        if self.p_value is not None:
            out["p_value"] = r(self.p_value)
        if self.note:
            out["note"] = self.note
        return out


def _judge(drift: ColumnDrift, value: float, null: list[float], calibration: Calibration) -> ColumnDrift:
    drift.value = value
    if len(null) < calibration.min_reference_days:
        drift.note = f"{len(null)} reference days with enough rows, {calibration.min_reference_days} needed"
        return drift
    # a high quantile, not the maximum: once a drift has lasted a day or two, those days are in
    # the trailing reference too, and would lift its maximum out of reach of the days that follow
    high = float(np.quantile(null, calibration.quantile))
    drift.warn = high
    drift.error = high * calibration.error_margin
    drift.gross = high * calibration.gross_margin
    if value > drift.gross and value > drift.error:
        drift.level = "broken"
    elif value > drift.error:
        drift.level = "beyond normal"
    elif value > drift.warn:
        drift.level = "drifted"
    else:
        drift.level = "ok"
    return drift


def numeric_drift(
    column: str, days: dict[str, NumericDay], day: str, reference_days: list[str], min_rows: int,
    large_sample: int, calibration: Calibration,
) -> ColumnDrift:
    """One numeric column's drift on `day` against `reference_days`, with its leave-one-out null."""
    drift = ColumnDrift(column, "numeric")
    usable = [d for d in reference_days if d in days and days[d].n >= min_rows]
    drift.null_days = len(usable)
    today = days.get(day)
    drift.n = today.n if today else 0
    drift.n_ref = sum(days[d].n for d in usable)
    if today is None or today.n < min_rows or len(usable) < 2:
        drift.note = f"{drift.n} rows in the day, {drift.n_ref} in the reference; {min_rows} a day needed"
        return drift
    drift.statistic, value, _ = numeric_statistic(today, [days[d] for d in usable], large_sample)
    null = [numeric_statistic(days[r], [days[d] for d in usable if d != r], large_sample)[1] for r in usable]
    return _judge(drift, value, null, calibration)


def categorical_drift(
    column: str, data: CategoricalDays, day: str, reference_days: list[str], min_rows: int,
    large_sample: int, calibration: Calibration, new_category_share: float,
) -> ColumnDrift:
    """One categorical column's drift on `day` against `reference_days`, with its leave-one-out
    null, and the categories the day carries that the reference never had."""
    drift = ColumnDrift(column, "categorical")
    usable = [d for d in reference_days if d in data.counts and data.counts[d].sum() >= min_rows]
    drift.null_days = len(usable)
    today = data.counts.get(day)
    drift.n = int(today.sum()) if today is not None else 0
    if not usable:
        drift.note = f"{drift.n} rows in the day, none in the reference; {min_rows} a day needed"
        return drift
    reference = sum(data.counts[d] for d in usable)
    drift.n_ref = int(reference.sum())
    if today is None or drift.n < min_rows or len(usable) < 2:
        drift.note = f"{drift.n} rows in the day, {drift.n_ref} in the reference; {min_rows} a day needed"
        return drift
    unseen = (today > 0) & (reference == 0)
    drift.new_categories = {data.categories[i]: int(today[i]) for i in np.flatnonzero(unseen)}
    drift.new_share = float(today[unseen].sum() / today.sum())
    drift.statistic, value, _, drift.p_value = categorical_statistic(today, reference, large_sample)
    null = [categorical_statistic(data.counts[r], reference - data.counts[r], large_sample)[1] for r in usable]
    _judge(drift, value, null, calibration)
    if drift.new_share > new_category_share:
        drift.level = "broken"
        drift.note = f"{drift.new_share:.1%} of the day's rows carry categories the reference never had"
    return drift


# ---------------------------------------------------------------- the table's verdict


@dataclass(frozen=True)
class Persistence:
    days: int
    min_days: int


def beyond_normal(columns: list[ColumnDrift], error_share: float) -> bool:
    """Whether enough of the evaluated columns are ERROR candidates (beyond normal or broken)."""
    evaluated = [c for c in columns if c.level != "not evaluated"]
    if not evaluated:
        return False
    beyond = sum(c.level in ("beyond normal", "broken") for c in evaluated)
    return beyond > 0 and beyond / len(evaluated) >= error_share


def verdict(
    today: list[ColumnDrift], history: list[bool], warn_share: float, error_share: float, persistence: Persistence
) -> tuple[Severity, str]:
    """The day's severity and its reason, from its columns and whether each of the previous
    `persistence.days - 1` days (`history`, oldest first) was beyond normal."""
    broken = [c for c in today if c.level == "broken"]
    if broken:
        return "error", "broken: " + ", ".join(
            f"{c.column} ({c.note or f'{c.statistic} {c.value:.3g} > {c.gross:.3g}'})" for c in broken)
    evaluated = [c for c in today if c.level != "not evaluated"]
    beyond = [c.column for c in evaluated if c.level == "beyond normal"]
    drifted = [c.column for c in evaluated if c.level == "drifted"]
    if beyond_normal(today, error_share):
        recent = [*history[-(persistence.days - 1):], True] if persistence.days > 1 else [True]
        held = sum(recent)
        if held >= persistence.min_days:
            return "error", (f"beyond the reference's own variation on {held} of the last {len(recent)} days: "
                             + ", ".join(beyond))
        return "warn", (f"beyond the reference's own variation today only ({held} of the last {len(recent)} days, "
                        f"{persistence.min_days} make an error): " + ", ".join(beyond))
    if beyond:
        return "warn", "beyond the reference's own variation: " + ", ".join(beyond)
    if evaluated and len(drifted) / len(evaluated) >= warn_share:
        return "warn", f"{len(drifted)} of {len(evaluated)} columns drifted: " + ", ".join(drifted)
    if drifted:
        return "ok", f"no drift of the table ({len(drifted)} of {len(evaluated)} columns above their warn threshold: {', '.join(drifted)})"
    return "ok", "no drift"


def trailing_days(day: str, days: int) -> list[str]:
    first = date.fromisoformat(day)
    return [(first - timedelta(days=i)).isoformat() for i in range(days, 0, -1)]


# ---------------------------------------------------------------- segment shifts


@dataclass(frozen=True)
class SegmentShift:
    """One segment's (a carrier's) quantile of a column on the day, relative to the whole day's same
    quantile, against that relative value on the reference days: a shift of the segment alone (one
    carrier an hour late) stands out; a storm that delays everyone does not."""

    segment: str
    value: float | None  # the day's relative quantile
    reference: float | None  # the median of the reference days' relative quantiles
    threshold: float | None
    reference_days: int

    @property
    def shifted(self) -> bool:
        return self.threshold is not None and self.value is not None and abs(self.value - self.reference) > self.threshold

    def as_metadata(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {"relative": r(self.value), "reference": r(self.reference), "threshold": r(self.threshold),
                "reference_days": self.reference_days}


def segment_days(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, by: str, column: str, quantile: float,
    first: str, last: str, min_rows: int,
) -> dict[str, dict[str, float]]:
    """segment -> day -> the segment's `quantile` of `column` minus the whole day's, for the days of
    [first, last] where the segment has min_rows values."""
    d, b, c = _q(day_column), _q(by), _q(column)
    rows = con.execute(
        f"""
        with per as (
            select {d}::varchar as day, {b}::varchar as segment, quantile_cont({c}, {quantile}) as q, count({c}) as n
            from {table} where {d} between ? and ? group by grouping sets (({d}), ({d}, {b}))
        )
        select s.day, s.segment, s.q - a.q from per s join per a on a.day = s.day and a.segment is null
        where s.segment is not null and s.n >= {int(min_rows)}
        """,
        [first, last],
    ).fetchall()
    out: dict[str, dict[str, float]] = {}
    for day, segment, value in rows:
        out.setdefault(segment, {})[day] = value
    return out


def segment_shift(
    segment: str, by_day: dict[str, float], day: str, reference: list[str], quantile: float, margin: float,
    floor: float, min_reference_days: int,
) -> SegmentShift:
    """The day's relative value against the reference days', judged against each reference day's
    distance from the median of the others (shifted above max(floor, margin x its `quantile`))."""
    values = [by_day[d] for d in reference if d in by_day]
    if day not in by_day or len(values) < min_reference_days:
        return SegmentShift(segment, by_day.get(day), float(np.median(values)) if values else None, None, len(values))
    threshold = leave_one_out_threshold(values, lambda a, b: abs(a - b), quantile, margin, floor)
    return SegmentShift(segment, by_day[day], float(np.median(values)), threshold, len(values))


def leave_one_out_threshold(
    values: list[float], distance: Callable[[float, float], float], quantile: float, margin: float, floor: float
) -> float:
    """How far from the reference a day may lie: each reference day's distance from the median of the
    others is the null, and the bound is max(floor, margin x its `quantile`)."""
    null = [distance(v, float(np.median(values[:i] + values[i + 1:]))) for i, v in enumerate(values)]
    return max(floor, margin * float(np.quantile(null, quantile)))
