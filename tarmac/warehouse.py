"""The warehouse: one writer's working copy, and the snapshot every reader opens.

DuckDB allows one process to write a file and no other process to open it meanwhile; a notebook
or `duckdb -readonly` that holds warehouse.duckdb open would make the next dbt step fail on the
lock. So the pipeline writes a working copy of its own (`writer/warehouse.duckdb`: dbt's profile,
batch scoring), one step at a time (the `duckdb_warehouse` pool), and each writing step ends by
publishing it: a checkpoint, a copy beside `warehouse.duckdb`, and an atomic rename over it. A
reader keeps reading the snapshot it opened (the old file lives on until it closes it) and the
next reader gets the new one; no reader ever takes a lock the writer needs. A run that dies
mid-step leaves the snapshot as it was and its working copy marked dirty: the next writing step
restores the working copy from the snapshot before it starts (`writing_step`).

Should anything else hold the working copy (a process left over from a crash), the writer waits
for it with bounded backoff, naming the holder's PID, and fails with that name if it never lets go.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from tarmac.paths import TarmacPaths

# Every process that writes the warehouse (dbt steps, batch scoring) or reads it inside a run
# (check steps) runs in this pool, whose limit of one keeps DuckDB's single-writer rule across runs.
WAREHOUSE_POOL = "duckdb_warehouse"
LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseLockedError(RuntimeError):
    pass


def _holder(pid: str, program: str) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    command = " ".join(command.split()) or program
    return f"PID {pid} ({command if len(command) <= 120 else command[:117] + '...'})"


@contextmanager
def writer_connection(
    paths: TarmacPaths, timeout_seconds: float, log: Callable[[str], None] = lambda _: None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the working copy, once no other process holds it: waits with
    backoff (0.5 s doubling to 10 s) up to `timeout_seconds`, saying who holds it. A data dir from
    before the working copy existed starts it from the published file."""
    writer = paths.warehouse_writer
    writer.parent.mkdir(parents=True, exist_ok=True)
    if not writer.exists() and paths.warehouse.exists():
        shutil.copyfile(paths.warehouse, writer)
    deadline, pause = time.monotonic() + timeout_seconds, 0.5
    while True:
        try:
            connection = duckdb.connect(str(writer))
            break
        except duckdb.IOException as error:
            match = LOCK_HOLDER.search(str(error))
            if not match:
                raise
            holder = _holder(match["pid"], match["program"])
            if time.monotonic() + pause > deadline:
                raise WarehouseLockedError(
                    f"{writer} is held by {holder} and was not released within {timeout_seconds:.0f} s "
                    "(warehouse.lock_timeout_seconds): end that process; readers should open the "
                    "published warehouse.duckdb instead") from None
            log(f"{writer} is held by {holder}: waiting {pause:.1f} s for it")
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def writing_step(
    paths: TarmacPaths, timeout_seconds: float, log: Callable[[str], None] = lambda _: None
) -> Iterator[Callable[[bool], None]]:
    """One writing step as one transaction over the whole warehouse, as readers see it.

    dbt commits model by model: a layer whose second model fails would leave the first committed
    while Dagster records the step as failed. So the step marks the working copy dirty, and its end
    decides: `done(True)` publishes the working copy, anything else (a failure, an exception, a
    crash before the end) restores it from the published snapshot, which is the state after the
    last step that succeeded. A dirty mark found at the start is a crashed step: undone first.
    """
    dirty = paths.warehouse_writer.with_name("step-in-progress")
    if dirty.exists():
        log(f"{paths.warehouse_writer}: a writing step did not finish (a crash): restoring the last published state")
        _restore(paths)
    with writer_connection(paths, timeout_seconds, log):
        pass  # wait here, with a message, for anything that holds it
    dirty.write_text(str(os.getpid()))
    outcome: list[bool] = []
    try:
        yield outcome.append
    finally:
        if outcome == [True]:
            publish(paths, timeout_seconds, log)
        else:
            log(f"{paths.warehouse_writer}: the step failed: its writes are undone (restored from {paths.warehouse.name})")
            _restore(paths)
        dirty.unlink(missing_ok=True)


def _restore(paths: TarmacPaths) -> None:
    """The working copy back to the published snapshot (or to nothing, before the first publish)."""
    writer = paths.warehouse_writer
    writer.with_name(writer.name + ".wal").unlink(missing_ok=True)
    if paths.warehouse.exists():
        staged = writer.with_name(f".{writer.name}.{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(paths.warehouse, staged)
        os.replace(staged, writer)
    else:
        writer.unlink(missing_ok=True)


def publish(paths: TarmacPaths, timeout_seconds: float, log: Callable[[str], None] = lambda _: None) -> None:
    """Publish the working copy as the readers' snapshot: checkpoint it (nothing left in its log),
    copy it beside the snapshot and rename the copy over it, atomically."""
    if not paths.warehouse_writer.exists():
        return
    with writer_connection(paths, timeout_seconds, log) as con:
        con.execute("checkpoint")
    published = paths.warehouse
    staged = published.with_name(f".{published.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(paths.warehouse_writer, staged)
        os.replace(staged, published)
    finally:
        staged.unlink(missing_ok=True)
    # a log beside the snapshot could only come from someone writing to it: it belongs to no snapshot
    published.with_name(published.name + ".wal").unlink(missing_ok=True)


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
    # On Spark the snapshot's tables are views over Parquet files (tarmac/spark.py), and each query
    # would read the footers of every file it might touch again: a day's query over a year's
    # silver.flights took 100 ms, 52 ms with the footers kept for the connection's life (a check
    # step runs hundreds of them on one connection). The files are immutable: Spark writes new
    # ones, under new names, and DuckDB's own tables are not affected.
    connection.execute("load parquet; set parquet_metadata_cache = true")
    try:
        yield connection
    finally:
        connection.close()


def partition_row_counts(
    warehouse: Path, keys: Iterable[dg.AssetKey], window: tuple[str | None, str | None]
) -> dict[dg.AssetKey, tuple[dict[str, dg.MetadataValue], dict[str, int] | None]]:
    """Each table's metadata (its row count; for a daily table, the window and its rows in it) and,
    for a daily table, the row count of each day of the window [start, end) that has rows (None for
    any other table): a multi-day run's materialization of each day carries that day's count."""
    keys = [k for k in keys if len(k.path) == 2]
    if not keys or not warehouse.exists():
        return {}
    out: dict[dg.AssetKey, tuple[dict[str, dg.MetadataValue], dict[str, int] | None]] = {}
    with read_only(warehouse) as con:
        for key in keys:
            schema, table = key.path
            total = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            metadata = {"tarmac/table_row_count": dg.MetadataValue.int(total)}
            per_day: dict[str, int] | None = None
            column = PARTITION_COLUMNS.get((schema, table))
            if column and window[0] and window[1]:
                per_day = {
                    day.isoformat(): count
                    for day, count in con.execute(
                        f'select {column}::date, count(*) from "{schema}"."{table}" '
                        f"where {column} >= ? and {column} < ? group by 1",
                        [window[0], window[1]],
                    ).fetchall()
                }
                metadata["tarmac/window"] = dg.MetadataValue.text(f"[{window[0]}, {window[1]})")
                metadata["tarmac/window_row_count"] = dg.MetadataValue.int(sum(per_day.values()))
            else:
                metadata["dagster/row_count"] = dg.MetadataValue.int(total)
            out[key] = (metadata, per_day)
    return out


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
