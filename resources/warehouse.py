"""Read-only access to warehouse.duckdb for the Python side (metadata, checks, tests).

Writers are dbt runs serialized by the `duckdb_warehouse` pool; everything here opens the file
read-only, so it can never take the writer's lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb

# Every process that writes warehouse.duckdb (dbt steps) or reads it while runs may write (check
# steps) runs in this pool, whose limit of one keeps DuckDB's single-writer rule across runs.
WAREHOUSE_POOL = "duckdb_warehouse"

# The column that keys each partitioned table's rows to its day.
PARTITION_COLUMNS = {
    ("bronze", "flights"): "landing_date",
    ("bronze", "weather"): "landing_date",
    ("bronze", "rejected_files"): "landing_date",
    ("silver", "flights"): "flight_date",
    ("silver", "weather"): "obs_date",
    ("silver", "quarantine"): "landing_date",
    ("silver", "load_audit"): "landing_date",
    ("gold", "flight_features"): "flight_date",
    ("gold", "training_set"): "flight_date",
    ("gold", "predictions"): "flight_date",
}


@contextmanager
def read_only(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse} does not exist: materialize the pipeline first (make backfill)")
    connection = duckdb.connect(str(warehouse), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def partition_row_counts(
    warehouse: Path, keys: Iterable[dg.AssetKey], window: tuple[str | None, str | None]
) -> dict[dg.AssetKey, dict[str, dg.MetadataValue]]:
    """Row count of each table (and of its rows in the partition window, when it has one)."""
    keys = [k for k in keys if len(k.path) == 2]
    if not keys or not warehouse.exists():
        return {}
    out: dict[dg.AssetKey, dict[str, dg.MetadataValue]] = {}
    with read_only(warehouse) as con:
        for key in keys:
            schema, table = key.path
            total = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            metadata = {"tarmac/table_row_count": dg.MetadataValue.int(total)}
            column = PARTITION_COLUMNS.get((schema, table))
            if column and window[0] and window[1]:
                # a multi-day run reports one materialization per day with the same metadata,
                # so the count is the window's, labelled as such
                in_window = con.execute(
                    f'select count(*) from "{schema}"."{table}" where {column} >= ? and {column} < ?',
                    [window[0], window[1]],
                ).fetchone()[0]
                metadata["tarmac/window"] = dg.MetadataValue.text(f"[{window[0]}, {window[1]})")
                metadata["tarmac/window_row_count"] = dg.MetadataValue.int(in_window)
                if _days(window) == 1:
                    metadata["dagster/row_count"] = dg.MetadataValue.int(in_window)
            else:
                metadata["dagster/row_count"] = dg.MetadataValue.int(total)
            out[key] = metadata
    return out


def _days(window: tuple[str | None, str | None]) -> int:
    return (date.fromisoformat(window[1]) - date.fromisoformat(window[0])).days


def conservation_totals(warehouse: Path, start: str, end: str) -> list[tuple]:
    """Per dataset over start..end: bronze, silver, quarantined and dropped-duplicate row totals."""
    with read_only(warehouse) as con:
        return con.execute(
            "select dataset, sum(bronze_rows)::bigint, sum(silver_rows)::bigint, "
            "sum(quarantined_rows)::bigint, sum(duplicates_dropped)::bigint "
            "from silver.load_audit where landing_date between ? and ? group by dataset order by dataset",
            [start, end],
        ).fetchall()


def loaded_landing_files(
    warehouse: Path, keys: Iterable[dg.AssetKey], window: tuple[str | None, str | None]
) -> list[tuple[dg.AssetKey, str, str, int]]:
    """(bronze key, source file, md5 of its content, rows) of every landing file a bronze table holds
    for the window (the whole table when it is not partitioned): what was actually loaded. A file
    bronze.rejected_files holds was processed too, with no rows: it is not loaded again until
    upstream delivers other bytes."""
    out = []
    bronze = [k for k in keys if len(k.path) == 2 and k.path[0] == "bronze"]
    if not bronze or not warehouse.exists():
        return out
    with read_only(warehouse) as con:
        for key in bronze:
            column = PARTITION_COLUMNS.get(tuple(key.path))
            where, params = "", []
            if column and window[0] and window[1]:
                where, params = f"where {column} >= ? and {column} < ?", [window[0], window[1]]
            if key.path[1] == "rejected_files":
                rows = con.execute(
                    f'select dataset, source_file, file_checksum from "bronze"."rejected_files" {where} order by all',
                    params,
                ).fetchall()
                out.extend((dg.AssetKey(["bronze", dataset]), file, checksum, 0) for dataset, file, checksum in rows)
                continue
            rows = con.execute(
                f'select source_file, file_checksum, count(*) from "bronze"."{key.path[1]}" {where} '
                "group by all order by source_file",
                params,
            ).fetchall()
            out.extend((key, file, checksum, count) for file, checksum, count in rows)
    return out
