"""The volume check: did the day's delivery bring what its weekday brings, all of it, once?

Counted on bronze (every landed line, before silver's rules) and on silver's load audit:
- rows: the day's bronze rows over the median of the same weekday's days in the reference window
  (flights follow a weekly schedule: a Saturday is not a short Monday);
- segments: each origin's (and carrier's) rows over its own expectation, relative to the day's
  ratio, so a holiday that thins every segment alike passes and an origin that never arrived fails;
- duplicates and quarantined rows: shares of the day's bronze rows that silver dropped as
  byte-identical copies (a delivery landed twice) or quarantined.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
import duckdb

from tarmac.settings.loader import QualitySettings


def _weekday(day: str) -> int:
    return date.fromisoformat(day).weekday()


def _basis(day: str, counts: dict[str, int], reference: list[str]) -> list[str]:
    """The reference days the day is compared with: those of its weekday, else every one with rows."""
    with_rows = [d for d in reference if counts.get(d, 0) > 0]
    same = [d for d in with_rows if _weekday(d) == _weekday(day)]
    return same or with_rows


@dataclass(frozen=True)
class Delivered:
    """What the volume check reads for a run: bronze rows per day and per segment, over the run's
    days and their reference days, and silver's load audit of the run's days, each in one query."""

    counts: dict[str, int]  # day -> bronze rows
    segments: dict[tuple[str, str], dict[str, int]]  # (column, value) -> day -> bronze rows
    audit: dict[str, tuple[int, int, int]]  # day -> bronze rows, duplicates dropped, quarantined rows

    @classmethod
    def fetch(
        cls, con: duckdb.DuckDBPyConnection, key: dg.AssetKey, days: list[str], reference_days: list[str],
        settings: QualitySettings,
    ) -> Delivered:
        dataset = key.path[1]
        counted = _counts(con, f'"bronze"."{dataset}"', sorted({*days, *reference_days}),
                          settings.volume.segments.get(key.to_user_string(), []))
        audit = {
            day: (bronze, duplicates, quarantined)
            for day, bronze, duplicates, quarantined in con.execute(
                "select landing_date::varchar, coalesce(sum(bronze_rows), 0), coalesce(sum(duplicates_dropped), 0), "
                "coalesce(sum(quarantined_rows), 0) from silver.load_audit "
                "where landing_date between ? and ? and dataset = ? group by 1",
                [min(days), max(days), dataset],
            ).fetchall()
        }
        return cls(counted.pop(None, {}), counted, audit)


def volume(
    delivered: Delivered, day: str, reference: list[str], settings: QualitySettings
) -> tuple[dict[str, str], dict[str, float | None], dict[str, Any]]:
    """What the day's volume for a silver table found (each finding with its severity), its metrics
    and metadata."""
    config = settings.volume
    counts = delivered.counts
    rows = counts.get(day, 0)
    audit = delivered.audit.get(day, (0, 0, 0))
    found: dict[str, str] = {}
    metrics: dict[str, float | None] = {"rows": rows, "duplicates_dropped": audit[1], "quarantined_rows": audit[2]}
    duplicate_share = audit[1] / max(audit[0], 1)
    quarantined_share = audit[2] / max(audit[0], 1)
    metrics |= {"duplicate_share": duplicate_share, "quarantined_share": quarantined_share}
    if audit[1]:
        found[f"{audit[1]} duplicated row(s) dropped ({duplicate_share:.1%}, a delivery landed twice?)"] = (
            config.duplicate_share.severity(duplicate_share))
    if audit[2]:
        found[f"{audit[2]} row(s) quarantined ({quarantined_share:.1%})"] = config.quarantined_share.severity(quarantined_share)

    basis = _basis(day, counts, reference)
    metadata: dict[str, Any] = {"rows": dg.MetadataValue.int(rows)}
    if len([d for d in reference if counts.get(d, 0) > 0]) < config.min_reference_days:
        found[f"no reference yet: {len(basis)} reference day(s) with rows, {config.min_reference_days} needed"] = "warn"
    else:
        expected = statistics.median(counts[d] for d in basis)
        ratio = rows / expected
        metrics |= {"expected_rows": expected, "rows_ratio": ratio}
        described = f"{rows} rows, {ratio:.2f}x the {expected:g} expected (median of {_describe(day, basis)})"
        too_few = config.rows.low.severity(ratio)  # a ratio is never both too low and too high
        found[described] = too_few if too_few != "ok" else config.rows.high.severity(ratio)
        segments = _segments(delivered.segments, day, basis, ratio, config.min_segment_rows)
        low = []
        for segment in segments:
            severity = config.segment_rows.severity(segment["relative"])
            if severity != "ok":
                low.append(segment)
                found[f"{segment['column']}={segment['value']}: {segment['rows']} rows of {segment['expected']:g} "
                      f"expected ({segment['relative']:.2f}x the day's ratio)"] = severity
        if segments:
            metrics["lowest_segment_ratio"] = min(s["relative"] for s in segments)
        metadata |= {"expected_rows": dg.MetadataValue.float(float(expected)),
                     "reference_days": dg.MetadataValue.json(basis),
                     "short_segments": dg.MetadataValue.json(low)}
    return found, metrics, metadata


def _describe(day: str, basis: list[str]) -> str:
    if all(_weekday(d) == _weekday(day) for d in basis):
        return f"{len(basis)} {date.fromisoformat(day).strftime('%A')}(s) before it"
    return f"{len(basis)} reference day(s)"


def _counts(
    con: duckdb.DuckDBPyConnection, bronze: str, days: list[str], columns: list[str]
) -> dict[tuple[str, str] | None, dict[str, int]]:
    """Bronze rows per day (key None) and per day of each value of each segment column (key
    (column, value)), in one scan."""
    sets = ", ".join(["(landing_date)", *(f'(landing_date, "{c}")' for c in columns)])
    picks = "".join(f'"{c}", grouping("{c}"), ' for c in columns)
    rows = con.execute(
        f"select landing_date::varchar, {picks}count(*) from {bronze} "
        f"where landing_date in (select unnest(?::date[])) group by grouping sets ({sets})", [days],
    ).fetchall()
    out: dict[tuple[str, str] | None, dict[str, int]] = {}
    for day, *values, n in rows:
        # grouping(c) is 0 where the row is grouped by c (whose value may itself be NULL)
        keys = [(c, values[2 * i]) for i, c in enumerate(columns) if values[2 * i + 1] == 0]
        out.setdefault(keys[0] if keys else None, {})[day] = n
    return out


def _segments(
    counted: dict[tuple[str, str], dict[str, int]], day: str, basis: list[str], ratio: float, min_rows: int
) -> list[dict[str, Any]]:
    """Each segment's rows, its expected rows (the median over the basis days, 0 where absent) and
    its ratio relative to the day's; segments expected to bring fewer than min_rows are left out."""
    out = []
    for (column, value), by_day in sorted(counted.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        expected = statistics.median(by_day.get(d, 0) for d in basis)
        if expected < min_rows or ratio <= 0:
            continue
        n = by_day.get(day, 0)
        out.append({"column": column, "value": value, "rows": n, "expected": expected,
                    "relative": round(n / expected / ratio, 4)})
    return out
