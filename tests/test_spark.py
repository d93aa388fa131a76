"""The same dbt models on Spark (session mode, local[2]): equal to DuckDB cell by cell, damage
included, and idempotent. The damaged week and the comparison are in tests/spark_week.py; the
standalone cluster's build is in tests/test_spark_cluster.py, a group of its own, which another
worker can run meanwhile."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.spark_week import END, FIRST, NEXT, REBUILT, assert_same_tables, build, damaged_week, require_spark

pytestmark = [pytest.mark.spark, pytest.mark.pipeline, pytest.mark.slow, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The damaged week built on DuckDB, and on Spark local[2] as one range, then one day rebuilt.
    Each entry: a copy of every table (tests/engine_build.py)."""
    require_spark()
    root = tmp_path_factory.mktemp("spark")
    damaged_week(root, "duckdb", "spark")
    build("duckdb", root / "duckdb", f"build:{FIRST}:{END}", f"copy={root / 'duckdb.duckdb'}")
    # dbt's tests run on Spark in the range build; the rebuild runs the models alone (`dbt run`)
    build("spark", root / "spark", f"build:{FIRST}:{END}", f"copy={root / 'spark.duckdb'}",
          f"run:{REBUILT}:{NEXT}", f"copy={root / 'spark_rebuilt.duckdb'}")
    return {"root": root, "duckdb": root / "duckdb.duckdb", "spark": root / "spark.duckdb",
            "spark_rebuilt": root / "spark_rebuilt.duckdb"}


def test_spark_builds_every_table_equal_to_duckdb_damage_included(week: dict[str, Path]) -> None:
    counts = assert_same_tables(week["duckdb"], week["spark"], tolerance=1e-9)
    # the comparison covered the faults, not empty tables: every fault is where it should be
    with duckdb.connect(str(week["spark"]), read_only=True) as con:
        rejected = con.execute("select landing_date::varchar, dataset, reason, line_number, byte_offset "
                               "from bronze.rejected_files order by all").fetchall()
        quarantined = con.execute("select landing_date::varchar, dataset, action, rule from silver.quarantine order by all").fetchall()
        quoted = con.execute("select count(*) from silver.flights where tailnum = 'N1,\"Q\"'").fetchone()[0]
        reordered = con.execute("select count(*) from silver.flights where flight_date = '2013-03-07'").fetchone()[0]
    assert [(d, s) for d, s, *_ in rejected] == [("2013-03-06", "weather"), ("2013-03-09", "flights")], rejected
    assert "not UTF-8 text: byte 0xFF" in rejected[0][2] and rejected[0][3] > 1 and rejected[0][4] > 0, rejected[0]
    assert "missing columns [dest], unexpected columns [destination]" in rejected[1][2], rejected[1]
    assert sorted({(d, s, a, r) for d, s, a, r in quarantined}) == [
        ("2013-03-05", "flights", "row_quarantined", "conflicting_duplicate"),
        ("2013-03-05", "flights", "row_quarantined", "invalid_type"),
        ("2013-03-05", "flights", "row_quarantined", "malformed_line"),
        ("2013-03-05", "flights", "value_nulled", "impossible_value"),
        ("2013-03-08", "weather", "row_quarantined", "time_hour_mismatch"),
        ("2013-03-08", "weather", "value_nulled", "impossible_value"),
    ], quarantined
    assert quoted == 1 and reordered > 900
    # the daylight-saving day is in gold, and gold is where the issue says it is
    assert counts["gold.flight_features"] > 5 * 900
    assert any((week["root"] / "spark" / "spark-warehouse" / "gold.db" / "flight_features" / "flight_date=2013-03-10").glob("*.parquet"))


def test_rebuilding_a_day_on_spark_changes_nothing(week: dict[str, Path]) -> None:
    assert_same_tables(week["spark"], week["spark_rebuilt"])
