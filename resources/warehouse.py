"""The DuckDB warehouse: a published snapshot for readers, a working copy for the one writer."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import duckdb

from resources.config import TarmacConfig
from tarmac import warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Readers open the snapshot read-only, never holding up a run; writers (dbt's layers, batch
    scoring) open the working copy one step at a time (the `duckdb_warehouse` pool) and publish it
    when the step succeeds."""

    config: TarmacConfig

    @property
    def snapshot(self) -> Path:
        return self.config.paths.warehouse

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return warehouse.read_only(self.snapshot)

    @property
    def lock_timeout_seconds(self) -> float:
        return self.config.settings.warehouse.lock_timeout_seconds

    def writing_step(self, log: Callable[[str], None]) -> AbstractContextManager[Callable[[bool], None]]:
        """One writing step: published if it reports success, undone otherwise (see
        `tarmac.warehouse.writing_step`)."""
        return warehouse.writing_step(self.config.paths, self.lock_timeout_seconds, log)

    def writer(self, log: Callable[[str], None]) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """The working copy, waiting a bounded time for another writer's lock."""
        return warehouse.writer_connection(self.config.paths, self.lock_timeout_seconds, log)
