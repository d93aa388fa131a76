"""The six data-quality checks (docs/design.md#checks), evaluated for one table and one
partition day.

Each evaluator returns an `Outcome`: the severity the settings give the measured numbers, the
numbers themselves (recorded in the monitoring table) and metadata for the UI. Thresholds come
from tarmac.yaml only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, Literal

import dagster as dg
import duckdb
import ibis
import pandera.ibis as pa

from tarmac.features.registry import feature_registry
from tarmac.quality import drift as dr
from tarmac.quality import ranges as rg
from tarmac.quality import statistics as st
from tarmac.quality import volume as vol
from tarmac.quality.contracts import CONTRACTS, feature_bounds
from tarmac.settings.loader import QualitySettings

Severity = Literal["ok", "warn", "error"]
RANK = {"ok": 0, "warn": 1, "error": 2}


@dataclass
class Outcome:
    asset_key: dg.AssetKey
    check_name: str
    partition: str | None
    severity: Severity
    summary: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.severity == "ok"


def worst(*severities: Severity) -> Severity:
    return max(severities, key=RANK.__getitem__, default="ok")


def table_name(key: dg.AssetKey) -> str:
    return ".".join(f'"{p}"' for p in key.path)


# ---------------------------------------------------------------- schema (Pandera on DuckDB)


def schema(
    warehouse: ibis.BaseBackend,
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    day_column: str | None,
    day: str | None,
    settings: QualitySettings,
) -> Outcome:
    """Validate the partition's rows against the table's contract, inside DuckDB."""
    contract = CONTRACTS[key]
    relation = warehouse.table(key.path[1], database=key.path[0])
    if day_column and day:
        relation = relation.filter(relation[day_column] == ibis.date(day))
    rows = relation.count().execute()
    try:
        _validator(contract, rows).validate(relation, lazy=True)
        failures: list[dict[str, Any]] = []
    except pa.errors.SchemaErrors as errors:
        failures = _failure_cases(errors)
    structural = [f for f in failures if _is_structural(f)]
    invalid_values = len(failures) - len(structural)
    severity: Severity = "ok"
    if structural:
        severity = "error"
    elif invalid_values:
        # bronze keeps bad lines for silver to quarantine: a few warn, a broken delivery blocks
        share = invalid_values / max(rows, 1)
        bronze = key.path[0] == "bronze"
        severity = "warn" if bronze and share <= settings.schema_.bronze_max_invalid_share else "error"
    cases = _locate(con, key, day_column, day, failures[: settings.max_failure_cases])
    return Outcome(
        key, "schema", day, severity,
        f"{len(failures)} failure case(s) in {rows} rows against {contract.__name__}",
        metrics={"rows": rows, "failure_cases": len(failures), "structural_failures": len(structural)},
        metadata={
            "contract": dg.MetadataValue.text(contract.__name__),
            "failure_cases": dg.MetadataValue.json(cases),
        },
    )


REJECTED_FILES = dg.AssetKey(["bronze", "rejected_files"])


def with_rejected_files(con: duckdb.DuckDBPyConnection, key: dg.AssetKey, outcomes: list[Outcome]) -> list[Outcome]:
    """A bronze day whose landing file could not be read fails its schema check with ERROR, whatever
    the (empty) rows say: the delivery itself is broken, and its day must not reach silver."""
    days = [o.partition for o in outcomes if o.partition]
    if key.path[0] != "bronze" or not days:
        return outcomes
    rejected = {
        day: (source_file, reason)
        for day, source_file, reason in con.execute(
            f"select landing_date::varchar, source_file, reason from {table_name(REJECTED_FILES)} "
            "where dataset = ? and landing_date between ? and ?",
            [key.path[1], min(days), max(days)],
        ).fetchall()
    }
    for outcome in outcomes:
        if outcome.partition in rejected:
            source_file, reason = rejected[outcome.partition]
            outcome.severity = "error"
            outcome.summary = f"landing file {source_file} was rejected, nothing of it reached bronze: {reason}"
            outcome.metrics["rejected_files"] = 1
            outcome.metadata["rejected_file"] = dg.MetadataValue.json({"file": source_file, "reason": reason})
    return outcomes


def _validator(contract: type[pa.DataFrameModel], rows: int) -> pa.DataFrameSchema:
    validator = contract.to_schema()
    if rows == 0:
        # pandera's ibis backend reports every non-nullable column of an empty table as failing;
        # an empty partition can only break the structure (columns, types), so check only that
        validator = pa.DataFrameSchema(
            {name: pa.Column(column.dtype, nullable=True) for name, column in validator.columns.items()},
            strict=True,
            name=validator.name,
        )
    return validator


def schema_window(
    warehouse: ibis.BaseBackend,
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    day_column: str,
    days: list[str],
    settings: QualitySettings,
) -> list[Outcome]:
    """Schema outcomes for every day of a run: one validation of the whole window when it is clean
    (a year's backfill costs one query set, not 365), day by day only where something failed."""
    if len(days) == 1:
        return [schema(warehouse, con, key, day_column, days[0], settings)]
    contract = CONTRACTS[key]
    relation = warehouse.table(key.path[1], database=key.path[0])
    relation = relation.filter(
        (relation[day_column] >= ibis.date(min(days))) & (relation[day_column] <= ibis.date(max(days)))
    )
    rows = dict(con.execute(
        f"select {day_column}::varchar, count(*) from {table_name(key)} "
        f"where {day_column} between ? and ? group by 1", [min(days), max(days)]
    ).fetchall())
    try:
        _validator(contract, sum(rows.values())).validate(relation, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = _failure_cases(errors)
        if all(_is_structural(f) for f in failures):
            # a wrong type or a missing column is the table's, the same for every day
            return [
                Outcome(key, "schema", day, "error", f"{len(failures)} structural failure(s) against {contract.__name__}",
                        metrics={"failure_cases": len(failures), "structural_failures": len(failures)},
                        metadata={"contract": dg.MetadataValue.text(contract.__name__),
                                  "failure_cases": dg.MetadataValue.json(failures[: settings.max_failure_cases])})
                for day in days
            ]
        return [schema(warehouse, con, key, day_column, day, settings) for day in days]
    return [
        Outcome(
            key, "schema", day, "ok", f"0 failure case(s) in {rows.get(day, 0)} rows against {contract.__name__}",
            metrics={"rows": rows.get(day, 0), "failure_cases": 0, "structural_failures": 0},
            metadata={"contract": dg.MetadataValue.text(contract.__name__), "failure_cases": dg.MetadataValue.json([]),
                      "validated_window": dg.MetadataValue.text(f"{min(days)}..{max(days)}")},
        )
        for day in days
    ]


def _is_structural(failure: dict[str, Any]) -> bool:
    """A missing column or a wrong type: the table's failure, not a value's."""
    return failure["column"] is None or failure["check"].startswith(("dtype", "column_in"))


def _failure_cases(errors: pa.errors.SchemaErrors) -> list[dict[str, Any]]:
    frame = errors.failure_cases
    out = []
    for record in frame.to_dict("records"):
        value = record.get("failure_case")
        column = record.get("column")
        if isinstance(value, dict) and len(value) == 1:  # row-wise checks report {column: value}
            column, value = next(iter(value.items()))
        if record.get("schema_context") == "DataFrameSchema" and record.get("check") == "column_in_dataframe":
            column, value = value, "column missing"
        out.append({"column": column, "check": str(record.get("check")), "value": None if value is None else str(value)})
    return out


def _locate(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str | None, day: str | None, cases: list[dict]
) -> list[dict]:
    """Add the landing file and line of each failing value, where the table carries lineage."""
    columns = {c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?", key.path
    ).fetchall()}
    if not {"source_file", "source_line_number"} <= columns:
        return cases
    located = []
    for case in cases:
        if case["column"] in columns and case["value"] is not None and not case["check"].startswith("dtype"):
            where = f"{day_column} = ? and " if day_column and day else ""
            row = con.execute(
                f'select source_file, source_line_number from {table_name(key)} '
                f'where {where}"{case["column"]}"::varchar = ? limit 1',
                ([day] if where else []) + [case["value"]],
            ).fetchone()
            if row:
                case = {**case, "file": row[0], "line": row[1]}
        located.append(case)
    return located


# ---------------------------------------------------------------- missing values


def missing_values(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, day: str, settings: QualitySettings
) -> Outcome:
    """One day's null rates (`missing_values_days` for several)."""
    return missing_values_days(con, key, day_column, [day], settings)[0]


def missing_values_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, days: list[str], settings: QualitySettings
) -> list[Outcome]:
    """Each day's null rate per column, and its rows against those expected, from one grouped query."""
    label = key.to_user_string()
    thresholds = settings.missing_values.null_rate[label]
    rates = st.null_rates(con, table_name(key), day_column, days, list(thresholds))
    return [_missing_values(key, day, *rates[day], settings) for day in days]


def _missing_values(
    key: dg.AssetKey, day: str, rows: int, rates: dict[str, float | None], settings: QualitySettings
) -> Outcome:
    config = settings.missing_values
    label = key.to_user_string()
    thresholds = config.null_rate[label]
    expected = config.expected_rows_per_day.get(label)
    completeness = None if expected is None else min(rows / expected, 1.0)
    severities = {c: ("error" if r is None else thresholds[c].severity(r)) for c, r in rates.items()}
    if completeness is not None:
        severities["completeness"] = config.min_completeness.severity(completeness)
    severity = worst(*severities.values())
    failing = sorted(c for c, s in severities.items() if s != "ok")
    return Outcome(
        key, "missing_values", day, severity,
        f"{rows} rows; " + (f"over threshold: {', '.join(failing)}" if failing else "null rates within thresholds"),
        metrics={"rows": rows, **({"completeness": completeness} if completeness is not None else {}),
                 **{f"null_rate:{c}": r for c, r in rates.items()}},
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "null_rates": dg.MetadataValue.json({c: None if r is None else round(r, 4) for c, r in rates.items()}),
            **({"completeness": dg.MetadataValue.float(round(completeness, 4))} if completeness is not None else {}),
            "over_threshold": dg.MetadataValue.json(failing),
        },
    )


# ---------------------------------------------------------------- value ranges


def value_ranges(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, window: st.Window, settings: QualitySettings
) -> Outcome:
    """One day's value ranges (`value_ranges_days` for several)."""
    return value_ranges_days(con, key, day_column, [window], settings)[0]


def value_ranges_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> list[Outcome]:
    """Each day's impossible values per column (a few warn; a share of a column's values is a broken
    delivery, ERROR), rows breaking a relation between columns, codes the reference never had, each
    column's scale against the reference days' own spread (tarmac/quality/ranges.py), and outliers
    (WARN). What the days need is read once for all of them (tarmac/quality/statistics.py)."""
    config = settings.value_ranges
    label, table = key.to_user_string(), table_name(key)
    examples = settings.max_failure_cases
    days = [w.day for w in windows]
    first, last = st.span(windows)
    violations = rg.rule_violations(con, table, day_column, days, config.rules.get(label, {}), examples)
    impossible_days = _impossible_values(con, key, day_column, days, examples)
    code_days = {c: dr.categorical_days(con, table, day_column, c, first, last)
                 for c in config.codes.columns.get(label, [])}
    scale_days = _scales(con, key, day_column, windows, settings)
    outlier_columns = config.columns.get(label, [])
    frame = st.DayColumns.fetch(con, table, day_column, outlier_columns, first, last) if outlier_columns else None
    outcomes = []
    for window in windows:
        day = window.day
        rows, broken, broken_rows = violations[day]
        impossible, impossible_examples = impossible_days[day]
        found: dict[str, Severity] = {}  # what was found, and its severity
        metrics: dict[str, float | None] = {"rows": rows, "domain_violations": sum(impossible.values())}
        for column, count in impossible.items():
            metrics[f"violation_share:{column}"] = share = count / max(rows, 1)
            found[f"{column}: {count} impossible value(s) ({share:.1%})"] = config.violation_share.severity(share)
        for name, count in broken.items():
            metrics[f"rule_share:{name}"] = share = count / max(rows, 1)
            found[f"{count} row(s) ({share:.1%}) break {name}"] = config.rule_share.severity(share)
        codes = {}
        for column, by_day in code_days.items():
            values, reference_days, new = rg.new_codes(by_day, window, examples)
            if reference_days:
                share = sum(new.values()) / max(values, 1)
                metrics[f"new_code_share:{column}"] = share
                found[f"{column}: codes never seen in the reference {sorted(new)} on {share:.1%} of rows"] = (
                    config.codes.new_share.severity(share))
            codes[column] = {"new_codes": new, "values": values, "reference_days": reference_days}
        scales = scale_days(day)
        for shift in scales:
            if shift.evaluated:
                metrics[f"scale_log_ratio:{shift.column}"] = shift.log_ratio
            if shift.broken:
                found[f"{shift.column}: scale {math.exp(shift.log_ratio) if shift.magnitude else 0:.3g}x the "
                      f"reference's (|log ratio| {shift.log_ratio:.2f} > {shift.threshold:.2f})"] = "error"
        outliers = {}
        for column in outlier_columns:
            count, n, low, high, n_ref = st.outliers(frame, window, column, config.iqr_multiplier)
            if n_ref < config.min_reference_values:
                outliers[column] = {"outliers": None, "values": n, "reference_values": n_ref,
                                    "note": f"not evaluated: fewer than {config.min_reference_values} reference values"}
                continue
            metrics[f"outlier_share:{column}"] = share = count / n if n else 0.0
            outliers[column] = {"outliers": count, "values": n, "low": low, "high": high, "reference_values": n_ref}
            found[f"{column}: {count} outlier(s) beyond {config.iqr_multiplier} IQR ({share:.1%})"] = (
                "warn" if share > config.max_outlier_share else "ok")
        severity, failing = _findings(found)
        summary = f"{rows} rows; " + ("; ".join(failing) if failing else (
            "no impossible value, every rule holds, no new code, scales and outliers within the reference's"))
        if impossible_examples:
            summary += " (" + "; ".join(_impossible_example(e) for e in impossible_examples[:3]) + ")"
        outcomes.append(Outcome(
            key, "value_ranges", day, severity, summary,
            metrics=metrics,
            metadata={
                "impossible_values": dg.MetadataValue.json(impossible_examples),
                "rules": dg.MetadataValue.json(
                    {n: {"rows": broken[n], "examples": broken_rows.get(n, [])} for n in broken}),
                "new_codes": dg.MetadataValue.json(codes),
                "scale": dg.MetadataValue.json({s.column: s.as_metadata() for s in scales}),
                "outliers": dg.MetadataValue.json(outliers),
            },
        ))
    return outcomes


def _findings(found: dict[str, Severity]) -> tuple[Severity, list[str]]:
    """The worst severity of what a check found, and its failing findings, the worst first."""
    failing = sorted((f for f, s in found.items() if s != "ok"), key=lambda f: -RANK[found[f]])
    return worst(*found.values()), failing


def _impossible_example(case: dict[str, Any]) -> str:
    where = f" at {case['file']}:{case['line']}" if "file" in case else f" ({case['flight_id']})"
    return f"{case['column']}={case['value']} breaks {case['rule']}{where}"


def _impossible_values(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, days: list[str], examples: int
) -> dict[str, tuple[dict[str, int], list[dict[str, Any]]]]:
    """Per day and column, the values outside their domain, and the first few of them: in silver the
    values its domain rules nulled (logged in silver.quarantine), in gold the features outside the
    registry's bounds."""
    out: dict[str, tuple[dict[str, int], list[dict[str, Any]]]] = {day: ({}, []) for day in days}
    first, last = min(days), max(days)
    if key.path[0] == "silver":
        for day, column, n in con.execute(
            "select landing_date::varchar, column_name, count(*) from silver.quarantine "
            "where landing_date between ? and ? and dataset = ? and action = 'value_nulled' group by 1, 2",
            [first, last, key.path[1]],
        ).fetchall():
            if day in out:
                out[day][0][column] = n
        for day, c, v, r, f, line in con.execute(
            "select landing_date::varchar, column_name, original_value, rule, source_file, source_line_number "
            "from silver.quarantine where landing_date between ? and ? and dataset = ? and action = 'value_nulled' "
            "qualify row_number() over (partition by landing_date order by source_line_number, column_name) <= ? "
            "order by landing_date, source_line_number, column_name",
            [first, last, key.path[1], examples],
        ).fetchall():
            if day in out:
                out[day][1].append({"column": c, "value": v, "rule": r, "file": f, "line": line})
        return out
    bounds = {name: feature_bounds(f) for name, f in feature_registry().items() if not f.categorical}
    bounds = {name: b for name, b in bounds.items() if b != (None, None)}
    if key != dg.AssetKey(["gold", "flight_features"]) or not bounds:
        return out
    outside = {name: " or ".join(p for p in (low is not None and f'"{name}" < {low}', high is not None and f'"{name}" > {high}') if p)
               for name, (low, high) in bounds.items()}
    table = table_name(key)
    counted = st.daily_counts(con, table, day_column, days, [f"count(*) filter (where {p})" for p in outside.values()])
    for day in days:
        _, *counts = counted.get(day, (0, *[0] * len(outside)))
        out[day][0].update({name: n for name, n in zip(outside, counts, strict=True) if n})
    for name in {name for counts, _ in out.values() for name in counts}:
        low, high = bounds[name]
        for day, flight_id, value in con.execute(
            f'select {day_column}::varchar, flight_id, "{name}" from {table} '
            f"where {day_column} between ? and ? and ({outside[name]}) "
            f"qualify row_number() over (partition by {day_column} order by flight_id) <= ? order by 1, 2",
            [first, last, examples],
        ).fetchall():
            if day in out:
                out[day][1].append(
                    {"column": name, "value": value, "rule": f"registry bounds [{low}, {high}]", "flight_id": flight_id})
    for day, (counts, cases) in out.items():
        # the registry's order of features, as the counts were found
        order = list(counts)
        out[day] = (counts, sorted(cases, key=lambda c: order.index(c["column"]))[:examples])
    return out


def _scales(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> Callable[[str], list[rg.ScaleShift]]:
    """Each day's scale shifts, from the days' magnitudes read once for every window."""
    config = settings.value_ranges.scale
    columns = config.columns.get(key.to_user_string(), [])
    references = {w.day: _reference_days(w.day, settings) for w in windows}
    if not columns or not any(references.values()):
        return lambda day: []
    magnitudes = rg.daily_magnitudes(con, table_name(key), day_column, columns, *st.span(windows))

    def shifts(day: str) -> list[rg.ScaleShift]:
        reference = references[day]
        if not reference:
            return []
        return [
            rg.scale_shift(c, magnitudes[c].get(day), [magnitudes[c][d] for d in reference if d in magnitudes[c]],
                           config.quantile, config.margin, config.floor, config.min_reference_days, config.min_values)
            for c in columns
        ]

    return shifts


# ---------------------------------------------------------------- volume


def volume(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, window: st.Window, settings: QualitySettings
) -> Outcome:
    """One day's volume (`volume_days` for several)."""
    return volume_days(con, key, day_column, [window], settings)[0]


def volume_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> list[Outcome]:
    """Each day's delivery against its weekday's, segment by segment, and what silver dropped of it
    (tarmac/quality/volume.py); the counts are read once for every day."""
    references = {w.day: _reference_days(w.day, settings) for w in windows}
    delivered = vol.Delivered.fetch(con, key, list(references), sorted({d for r in references.values() for d in r}),
                                    settings)
    outcomes = []
    for day, reference in references.items():
        found, metrics, metadata = vol.volume(delivered, day, reference, settings)
        severity, failing = _findings(found)
        summary = "; ".join(failing or [f for f, s in found.items() if s == "ok"] or [f"{metrics['rows']} rows"])
        outcomes.append(Outcome(key, "volume", day, severity, summary, metrics, metadata))
    return outcomes


# ---------------------------------------------------------------- drift


def drift(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, window: st.Window, settings: QualitySettings
) -> Outcome:
    """One day's drift (`drift_days` for several)."""
    return drift_days(con, key, day_column, [window], settings)[0]


def drift_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> list[Outcome]:
    """Each day's drift per column against its reference window, each judged against the
    reference's own day-to-day variation, and the table's verdict with persistence
    (tarmac/quality/drift.py). The days' summaries are fetched once for all of them."""
    config = settings.drift
    if key.to_user_string() not in config.columns:
        return segment_drift_days(con, key, day_column, windows, settings)
    columns = config.columns[key.to_user_string()]
    table = table_name(key)
    calibration = dr.Calibration(config.quantile, config.error_margin, config.gross_margin, config.min_reference_days)
    persistence = dr.Persistence(**config.persistence.model_dump())
    # each day and the days before it that persistence looks at, each with its own reference days
    judged = sorted({d for w in windows for d in [*dr.trailing_days(w.day, persistence.days - 1), w.day]})
    references = {d: _reference_days(d, settings) for d in judged}
    first = min([*judged, *(r[0] for r in references.values() if r)])
    last = max(judged)
    numeric = {c: dr.numeric_days(con, table, day_column, c, first, last, config.quantiles) for c in columns.numeric}
    categorical = {c: dr.categorical_days(con, table, day_column, c, first, last) for c in columns.categorical}

    @cache
    def judge(day: str) -> tuple[dr.ColumnDrift, ...]:
        reference = references[day]
        return (
            *(dr.numeric_drift(c, numeric[c], day, reference, config.min_rows, config.large_sample, calibration)
              for c in columns.numeric),
            *(dr.categorical_drift(c, categorical[c], day, reference, config.min_rows, config.large_sample, calibration,
                                   config.new_category_share) for c in columns.categorical),
        )

    outcomes = []
    for window in windows:
        today = list(judge(window.day))
        history = [dr.beyond_normal(list(judge(d)), config.error_share)
                   for d in dr.trailing_days(window.day, persistence.days - 1)]
        reference = f"[{window.reference_start}, {window.reference_end})"
        if all(c.level == "not evaluated" for c in today):
            # no verdict without a reference (the first days of a backfill): a warning that says so
            severity, summary = "warn", _drift_not_evaluated(today, config, reference)
        else:
            severity, reason = dr.verdict(today, history, config.warn_share, config.error_share, persistence)
            summary = f"{reason} (vs {reference})"
        outcomes.append(Outcome(
            key, "drift", window.day, severity, summary,
            metrics={f"{c.statistic}:{c.column}": c.value for c in today if c.statistic},
            metadata={
                "reference_window": dg.MetadataValue.text(reference),
                "statistics": dg.MetadataValue.json({c.column: c.as_metadata() for c in today}),
            },
        ))
    return outcomes


def segment_drift_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> list[Outcome]:
    """Each day's segment shifts (tarmac/quality/drift.py): WARN for a segment that moved alone."""
    config = settings.drift
    segments = config.segments[key.to_user_string()]
    references = {w.day: _reference_days(w.day, settings) for w in windows}
    first = min([*references, *(r[0] for r in references.values() if r)])
    by_segment = dr.segment_days(con, table_name(key), day_column, segments.by, segments.column, segments.value_quantile,
                                 first, max(references), segments.min_rows)
    outcomes = []
    for window in windows:
        # the segments seen on the day or its reference days (not those of the run's other days)
        seen = {window.day, *references[window.day]}
        shifts = [dr.segment_shift(s, by_day, window.day, references[window.day], segments.quantile, segments.margin,
                                   segments.floor, config.min_reference_days)
                  for s, by_day in sorted(by_segment.items()) if seen & by_day.keys()]
        judged = [s for s in shifts if s.threshold is not None]
        moved = [s for s in judged if s.shifted]
        reference = f"[{window.reference_start}, {window.reference_end})"
        what = f"{segments.column}'s {segments.value_quantile:g} quantile per {segments.by}, relative to the day's"
        if not judged:
            severity, summary = "warn", (f"no reference yet: no {segments.by} with {segments.min_rows} rows on "
                                         f"{config.min_reference_days} reference days ({what})")
        elif moved:
            severity = "warn"
            summary = "shifted alone: " + ", ".join(
                f"{segments.by}={s.segment} {s.value:+.0f} vs {s.reference:+.0f} (beyond {s.threshold:.0f})" for s in moved
            ) + f" ({what}; vs {reference})"
        else:
            severity, summary = "ok", f"no {segments.by} shifted alone ({len(judged)} judged; {what}; vs {reference})"
        outcomes.append(Outcome(
            key, "drift", window.day, severity, summary,
            metrics={f"segment_shift:{s.segment}": abs(s.value - s.reference) for s in judged},
            metadata={"reference_window": dg.MetadataValue.text(reference),
                      "segments": dg.MetadataValue.json({s.segment: s.as_metadata() for s in shifts})},
        ))
    return outcomes


def _reference_days(day: str, settings: QualitySettings) -> list[str]:
    """The reference days of `day`: the fixed window's (without the day itself), or the trailing
    window of the same length."""
    fixed = settings.reference_window
    if fixed.start and fixed.end:
        days = [(fixed.start + timedelta(days=i)).isoformat() for i in range((fixed.end - fixed.start).days)]
        return [d for d in days if d != day]
    return dr.trailing_days(day, fixed.days)


def _too_few_rows(n: int, n_ref: int, min_rows: int, reference: str) -> str:
    """Why a check with a reference gave no verdict: too few rows in the reference (the first days
    of a backfill), or in the day."""
    if n_ref < min_rows:
        return f"no reference yet: {n_ref} rows in the reference window {reference}, {min_rows} needed"
    return f"not evaluated: {n} rows in the day, {min_rows} needed"


def _drift_not_evaluated(columns: list[dr.ColumnDrift], config, reference: str) -> str:
    """Too few rows, or too few reference days to calibrate the thresholds on."""
    n = min((c.n for c in columns), default=0)
    n_ref = min((c.n_ref for c in columns), default=0)
    if n_ref < config.min_rows or n < config.min_rows:
        return _too_few_rows(n, n_ref, config.min_rows, reference)
    null_days = max((c.null_days for c in columns), default=0)
    return (f"no reference yet: {null_days} days of the reference window {reference} with {config.min_rows} rows, "
            f"{config.min_reference_days} needed to calibrate on")


# ---------------------------------------------------------------- correlation


def correlation(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, window: st.Window, settings: QualitySettings
) -> Outcome:
    """One day's correlations (`correlation_days` for several)."""
    return correlation_days(con, key, day_column, [window], settings)[0]


def correlation_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, windows: list[st.Window], settings: QualitySettings
) -> list[Outcome]:
    """Each day's change of pairwise correlation against its reference window, from the columns
    read once for every day."""
    columns = settings.correlation.columns[key.to_user_string()]
    frame = st.DayColumns.fetch(con, table_name(key), day_column, columns, *st.span(windows))
    return [_correlation(key, window, st.correlations(frame, window, columns), settings) for window in windows]


def _correlation(
    key: dg.AssetKey, window: st.Window, pairs: dict[tuple[str, str], tuple], settings: QualitySettings
) -> Outcome:
    config = settings.correlation
    deltas: dict[str, dict[str, Any]] = {}
    for (a, b), (r_day, r_ref, n, n_ref) in pairs.items():
        evaluated = n >= config.min_rows and n_ref >= config.min_rows and r_day is not None and r_ref is not None
        delta = abs(r_day - r_ref) if evaluated else None
        deltas[f"{a}~{b}"] = {"r": r_day, "r_reference": r_ref, "abs_delta": delta, "n": n, "n_ref": n_ref}
    # correlation changes are medium severity (docs/design.md#checks): they warn, whatever
    # their size
    severity: Severity = "warn" if any(config.max_abs_delta.severity(d["abs_delta"]) != "ok" for d in deltas.values()) else "ok"
    largest = max((d["abs_delta"] or 0 for d in deltas.values()), default=0)
    reference = f"[{window.reference_start}, {window.reference_end})"
    if all(d["abs_delta"] is None for d in deltas.values()):
        # no verdict without a reference (the first days of a backfill): a warning that says so
        severity, summary = "warn", _too_few_rows(
            min((d["n"] or 0 for d in deltas.values()), default=0),
            min((d["n_ref"] or 0 for d in deltas.values()), default=0), config.min_rows, reference,
        )
    else:
        summary = f"largest change of correlation {largest:.3f} vs {reference}"
    return Outcome(
        key, "correlation", window.day, severity, summary,
        metrics={f"corr_delta:{p}": d["abs_delta"] for p, d in deltas.items()},
        metadata={"pairs": dg.MetadataValue.json(
            {p: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()} for p, d in deltas.items()}
        )},
    )


# ---------------------------------------------------------------- freshness (event time)

# The local minute of the day of each landed row's event: a flight's scheduled departure, a
# weather observation's hour. Raw text, so parsed leniently; bad values are the schema check's.
EVENT_MINUTE = {
    "flights": "try_cast(sched_dep_time as integer) // 100 * 60 + try_cast(sched_dep_time as integer) % 100",
    "weather": "try_cast(hour as integer) * 60",
}


def freshness(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, day: str, settings: QualitySettings
) -> Outcome:
    """One day's freshness (`freshness_days` for several)."""
    return freshness_days(con, key, day_column, [day], settings)[0]


def freshness_days(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day_column: str, days: list[str], settings: QualitySettings
) -> list[Outcome]:
    """Each day's landed data covers its schedule: its latest event is close to the day's end."""
    limit = settings.freshness.max_event_lag_minutes[key.to_user_string()]
    latest_events = st.daily_counts(con, table_name(key), day_column, days, [f"max({EVENT_MINUTE[key.path[1]]})"])
    outcomes = []
    for day in days:
        rows, latest = latest_events.get(day, (0, None))
        lag = 1440 if latest is None else 1440 - latest
        severity: Severity = "error" if lag > limit else "ok"
        summary = (f"no rows landed for {day}" if rows == 0
                   else f"latest event at local minute {latest}: {lag} min before the day's end (limit {limit})")
        outcomes.append(Outcome(
            key, "freshness", day, severity, summary,
            metrics={"rows": rows, "event_lag_minutes": lag},
            metadata={"rows": dg.MetadataValue.int(rows), "event_lag_minutes": dg.MetadataValue.int(lag),
                      "limit_minutes": dg.MetadataValue.int(limit)},
        ))
    return outcomes
