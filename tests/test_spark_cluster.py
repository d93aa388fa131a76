"""The same dbt models on a standalone Spark cluster (a master and two workers on 127.0.0.1), day
by day: every table equal to DuckDB's range build of the damaged week (tests/spark_week.py).

A group of its own (xdist), beside tests/test_spark.py's local builds: each Spark build is minutes
of one worker, and the two need nothing from each other but DuckDB's reference, built again here
in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.spark_week import BY_DAY, END, FIRST, JVM_OPTIONS, assert_same_tables, build, damaged_week, require_spark

pytestmark = [pytest.mark.spark, pytest.mark.pipeline, pytest.mark.slow, pytest.mark.xdist_group("spark-cluster")]


@pytest.fixture(scope="module")
def cluster_week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | list[Path]]:
    """The damaged week built on DuckDB as one range, and on the cluster day by day for the days
    around the change to daylight saving time: the days before as one window, then the day whose
    flights file is rejected and the day of the change, each alone."""
    require_spark()
    from tools.spark_cluster import _free_port, start, stop

    root = tmp_path_factory.mktemp("spark-cluster")
    damaged_week(root, "duckdb", "cluster")
    build("duckdb", root / "duckdb", f"build:{FIRST}:{END}", f"copy={root / 'duckdb.duckdb'}")
    cluster = start(root / "spark-cluster", port=_free_port(), workers=2, cores=1, memory="1g", environment=JVM_OPTIONS)
    try:
        build("spark", root / "cluster", f"run:{FIRST}:{BY_DAY[0]}",
              *[f"run:{day}:{after}" for day, after in zip(BY_DAY, [*BY_DAY[1:], END], strict=True)],
              f"copy={root / 'cluster.duckdb'}", environment={"TARMAC_SPARK_MASTER": cluster.url})
        executors = sorted((root / "spark-cluster").glob("worker-*/app-*/*"))
    finally:
        stop(root / "spark-cluster")
    return {"duckdb": root / "duckdb.duckdb", "cluster": root / "cluster.duckdb", "executors": executors}


def test_a_standalone_cluster_building_day_by_day_gives_duckdb_s_range(cluster_week: dict) -> None:
    workers = {path.parent.parent.name for path in cluster_week["executors"]}
    assert workers == {"worker-1", "worker-2"}, f"the build's executors did not run on both workers: {cluster_week['executors']}"
    counts = assert_same_tables(cluster_week["duckdb"], cluster_week["cluster"], tolerance=1e-9)
    assert counts["gold.flight_features"] > 5 * 900 and counts["silver.quarantine"] > 0
