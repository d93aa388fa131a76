"""Where Tarmac keeps its files: one place that resolves every path from the environment.

Nothing here touches the disk at import time; callers ask for paths when they need them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# The source data set covers one year; partitions and the landing writer share these bounds.
FIRST_DAY = "2013-01-01"
LAST_DAY = "2013-12-31"

# The airports' local time zone: flights' dates, HHMM times and weather hours are all local.
LOCAL_TIMEZONE = "America/New_York"

LANDING_DATASETS = ("flights", "weather")
REFERENCE_DATASETS = ("planes", "airports", "airlines")


@dataclass(frozen=True)
class TarmacPaths:
    """The data directory's layout (docs/design.md#data-directory)."""

    data_dir: Path

    @classmethod
    def from_env(cls) -> TarmacPaths:
        raw = os.environ.get("TARMAC_DATA_DIR") or str(PROJECT_ROOT / "data")
        return cls(Path(raw).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    def landing_day_file(self, dataset: str, day: str) -> Path:
        return self.landing / dataset / f"{day}.csv"

    def reference_file(self, name: str) -> Path:
        return self.landing / "reference" / f"{name}.csv"

    @property
    def warehouse(self) -> Path:
        """The warehouse as readers see it: a snapshot published after every writing step, which
        any number of processes may hold open without ever holding up a run."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def warehouse_writer(self) -> Path:
        """The pipeline's own working copy of the warehouse: only its writing steps (dbt, batch
        scoring) open it, one at a time (the warehouse pool), and each then publishes it."""
        return self.data_dir / "writer" / "warehouse.duckdb"

    @property
    def spark_warehouse(self) -> Path:
        """The Spark engine's tables: Parquet in Spark's layout, <schema>.db/<table>/."""
        return self.data_dir / "spark-warehouse"

    @property
    def spark_metastore(self) -> Path:
        """The Spark engine's catalog: an embedded Derby metastore."""
        return self.data_dir / "spark-metastore"

    @property
    def spark_scratch(self) -> Path:
        """Spark's and Hive's scratch space (shuffle files, session directories): the data dir's
        own, not the machine's /tmp, which other Spark applications share."""
        return self.data_dir / "spark-scratch"

    @property
    def monitoring(self) -> Path:
        """Check metrics history (written by check steps only)."""
        return self.data_dir / "monitoring.duckdb"

    @property
    def mlflow(self) -> Path:
        """MLflow tracking and model registry: mlflow.db (SQLite) and the artifacts beside it."""
        return self.data_dir / "mlflow"

    @property
    def dbt_partial_parse(self) -> Path:
        """dbt's parse of the project for this data dir (its profile), kept between invocations."""
        return self.data_dir / "dbt" / "partial_parse.msgpack"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"


def dbt_env(paths: TarmacPaths) -> dict[str, str]:
    """Environment for a dbt process: dbt's profile reads the data directory from it."""
    return {**os.environ, "TARMAC_DATA_DIR": str(paths.data_dir)}
