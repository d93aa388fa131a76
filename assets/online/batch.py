"""What the online store takes from the warehouse in batch: the planes, and each day's flights
(the schedule the serving API looks flights up in) with gold's batch-computed features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from assets.ml.feature_registry import feature_registry

# silver.flights' columns a flight record carries: what gold's targets read
FLIGHT_ATTRIBUTES = ("flight_id", "flight_date", "year", "month", "hour", "carrier", "flight", "origin", "dest",
                     "tailnum", "distance", "sched_dep_ts")


def plane_records(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """silver.planes by tail number: the columns the registry's plane features read."""
    columns = sorted({f.value for f in feature_registry().values() if f.source == "planes"})
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
    con.execute("set TimeZone = 'UTC'")
    names = list(feature_registry())
    attributes = ", ".join(f"f.{c}" for c in FLIGHT_ATTRIBUTES)
    features = ", ".join(f"g.{n} as batch_{n}" for n in names)
    if flight_ids is None:
        # both sides filtered, so that each scans only the days' row groups
        where = "f.flight_date >= ? and f.flight_date < ? and g.flight_date >= ? and g.flight_date < ?"
        parameters = [start, end, start, end]
    else:
        where, parameters = "f.flight_id in (select unnest(?))", [list(flight_ids)]
    cursor = con.execute(f"""
        select {attributes}, g.prediction_ts, {features}
        from silver.flights f join gold.flight_features g using (flight_id)
        where {where}
        order by g.prediction_ts, f.flight_id
    """, parameters)
    columns = [d[0] for d in cursor.description]
    records = {}
    for row in cursor.fetchall():
        values = dict(zip(columns, row))
        record = {c: values[c] for c in (*FLIGHT_ATTRIBUTES, "prediction_ts")}
        record["flight_date"] = record["flight_date"].isoformat()
        record["sched_dep_ts"] = record["sched_dep_ts"].isoformat()
        record["prediction_ts"] = record["prediction_ts"].isoformat()
        record["batch"] = {n: values[f"batch_{n}"] for n in names}
        records[record["flight_id"]] = record
    return records
