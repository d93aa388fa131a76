"""What the online store takes from the warehouse in batch: the planes, and each day's flights
(the schedule the serving API looks flights up in) with gold's batch-computed features."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from tarmac.features.registry import feature_registry

# silver.flights' columns a flight record carries: what gold's targets read
FLIGHT_ATTRIBUTES = ("flight_id", "flight_date", "year", "month", "hour", "carrier", "flight", "origin", "dest",
                     "tailnum", "distance", "sched_dep_ts")


def plane_records(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """silver.planes by tail number: the columns the registry's plane features read; none while the
    reference tables have never been built (gold's plane features are then NULL too)."""
    columns = sorted({f.value for f in feature_registry().values() if f.source == "planes"})
    built = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'silver' and table_name = 'planes'"
    ).fetchone()[0]
    if not built:
        return {}
    rows = con.execute(f"select tailnum, {', '.join(columns)} from silver.planes").fetchall()
    return {tailnum: dict(zip(columns, values)) for tailnum, *values in rows}


def flight_records(
    con: duckdb.DuckDBPyConnection,
    start: str | None = None,
    end: str | None = None,
    flight_ids: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The flights of the local days [start, end), or the given flights: silver's attributes,
    gold's prediction_ts and, under `batch`, gold's feature vector (as of prediction_ts)."""
    return {key: json.loads(record) for key, record in flight_record_json(con, start, end, flight_ids).items()}


def flight_record_json(
    con: duckdb.DuckDBPyConnection,
    start: str | None = None,
    end: str | None = None,
    flight_ids: Sequence[str] | None = None,
) -> dict[str, str]:
    """flight_records as the online store keeps them, JSON text by flight_id, built inside DuckDB
    rather than as a Python dict and a json.dumps per flight (a year at SF=10 is 3.4 million).
    Dates and instants are ISO 8601 text in UTC, as datetime.isoformat writes them (event times are
    whole minutes); tests/test_online_parity holds the records equal to ones built in Python."""
    con.execute("set TimeZone = 'UTC'")
    fields = [f"{c} := {_json_value(f'f.{c}', c)}" for c in FLIGHT_ATTRIBUTES]
    fields.append(f"prediction_ts := {_json_value('g.prediction_ts', 'prediction_ts')}")
    batch = ", ".join(f"{n} := g.{n}" for n in feature_registry())
    if flight_ids is None:
        # both sides filtered, so that each scans only the days' row groups
        where = "f.flight_date >= ? and f.flight_date < ? and g.flight_date >= ? and g.flight_date < ?"
        parameters = [start, end, start, end]
    else:
        where, parameters = "f.flight_id in (select unnest(?))", [list(flight_ids)]
    rows = con.execute(f"""
        select f.flight_id, to_json(struct_pack({', '.join(fields)}, batch := struct_pack({batch})))::varchar
        from silver.flights f join gold.flight_features g using (flight_id)
        where {where}
        order by g.prediction_ts, f.flight_id
    """, parameters).fetchall()
    return dict(rows)


def _json_value(expression: str, column: str) -> str:
    if column == "flight_date":
        return f"strftime({expression}, '%Y-%m-%d')"
    if column.endswith("_ts"):
        return f"strftime({expression}, '%Y-%m-%dT%H:%M:%S+00:00')"
    return expression
