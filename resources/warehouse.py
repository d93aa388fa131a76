"""The warehouse: a published snapshot for readers, and the writing steps of the engine that
builds the layers (DuckDB, or Spark's Parquet tables behind a snapshot of views)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from resources.config import TarmacConfig
from tarmac import spark, warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Readers open the snapshot read-only, never holding up a run; writers (dbt's layers, batch
    scoring) write one step at a time (the `duckdb_warehouse` pool), and each step ends by
    publishing what readers see.

    On DuckDB (the default engine) a step writes the working copy and publishes it when it
    succeeds, or undoes it when it fails. On Spark (TARMAC_ENGINE=spark) dbt writes Parquet tables
    in place and the snapshot is rebuilt as views over them after every step (`tarmac.spark`).
    """

    config: TarmacConfig

    @property
    def engine(self) -> str:
        return spark.engine()

    @property
    def snapshot(self) -> Path:
        return self.config.paths.warehouse

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return warehouse.read_only(self.snapshot)

    @property
    def lock_timeout_seconds(self) -> float:
        return self.config.settings.warehouse.lock_timeout_seconds

    def writing_step(self, log: Callable[[str], None]) -> AbstractContextManager[Callable[[bool], None]]:
        """One writing step: published if it reports success, undone otherwise on DuckDB (see
        `tarmac.warehouse.writing_step`); on Spark, published either way (what Spark wrote stays)."""
        if self.engine == "spark":
            return self._spark_step(log)
        return warehouse.writing_step(self.config.paths, self.lock_timeout_seconds, log)

    @contextmanager
    def _spark_step(self, log: Callable[[str], None]) -> Iterator[Callable[[bool], None]]:
        outcome: list[bool] = []
        try:
            yield outcome.append
        finally:
            if outcome != [True]:
                log("the step failed: on Spark what it wrote stays until its re-run rewrites those days")
            try:
                spark.publish_views(self.config.paths)
            finally:
                spark.release(self.config.paths)  # the metastore free for the next run's process

    def replace_days(self, schema: str, table: str, ddl: str, rows: Any, column: str, days: Sequence[str],
                     log: Callable[[str], None]) -> None:
        """Rewrite a daily table's rows of `days` (a DataFrame whose `column` is each row's day) as
        one writing step: in the DuckDB working copy (the table created by `ddl`, the days deleted
        and inserted in one transaction), or as those days' Parquet partitions where Spark keeps the
        layer."""
        with self.writing_step(log) as done:
            if self.engine == "spark":
                spark.replace_partitions(self.config.paths, schema, table, rows, column, days)
            else:
                with warehouse.writer_connection(self.config.paths, self.lock_timeout_seconds, log) as con:
                    con.execute(ddl)
                    con.execute("begin transaction")
                    con.execute(f'delete from "{schema}"."{table}" where {column} >= ? and {column} <= ?',
                                [min(days), max(days)])
                    con.register("replacement_rows", rows)
                    con.execute(f'insert into "{schema}"."{table}" by name select * from replacement_rows')
                    con.unregister("replacement_rows")
                    con.execute("commit")
            done(True)
