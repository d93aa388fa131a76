"""The same dbt models on Spark: equal to DuckDB cell by cell, idempotent, and the same on a cluster.

One landing zone, a week that holds the change to daylight saving time (2013-03-10), with damaged
files whose every fault both engines must treat alike: a value of the wrong type, a line cut
short, an exact and a conflicting duplicate, a blank line, an impossible value, a quoted field
with a comma and a doubled quote, a file with CRLF line ends, a byte-order mark and its header
reordered, a weather observation whose time_hour disagrees with its local hour, a file that is
not UTF-8 and a file whose header lacks a column. Each engine builds it in a process of its own
(tests/engine_build.py): Spark in session mode on local[2], and on a standalone cluster of a
master and two workers on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tarmac.paths import PROJECT_ROOT, TarmacPaths
from tools.landing import fill_landing_zone

pytestmark = [pytest.mark.spark, pytest.mark.pipeline, pytest.mark.slow, pytest.mark.xdist_group("spark")]

FIRST, LAST, END = "2013-03-04", "2013-03-10", "2013-03-11"  # the week, END exclusive
REBUILT, NEXT = "2013-03-06", "2013-03-07"  # the day rebuilt alone on Spark
# built one at a time on the cluster, after the days before: the day whose flights file is rejected,
# and the change to daylight saving time
BY_DAY = ["2013-03-09", "2013-03-10"]
# columns a build stamps with its own run or time: equal only within one build
VOLATILE = {"load_id", "ingested_at", "loaded_at", "quarantined_at", "audited_at", "computed_at", "rejected_at"}
DEP_TIME, DEP_DELAY, TAILNUM = 3, 5, 11


@pytest.fixture(scope="module", autouse=True)
def spark_installed() -> None:
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        message = "the Spark tests need the spark extra and Java 17 (make setup SPARK=1)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI runs them", pytrace=False)
        pytest.skip(message)


def _damage(landing: Path) -> None:
    """Faults in the week's files, written with plain Python (the test checks what each becomes)."""
    def lines_of(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").splitlines()

    def write(path: Path, lines: list[str], end: str = "\n", final: bool = True, bom: bool = False) -> None:
        text = ("\ufeff" if bom else "") + end.join(lines) + (end if final else "")
        path.write_bytes(text.encode("utf-8"))

    flights = landing / "flights"
    # 03-05: wrong type, an impossible value, duplicates, a blank line, a quoted field, a cut last line
    path = flights / "2013-03-05.csv"
    lines = lines_of(path)
    departed = [i for i in range(1, len(lines)) if lines[i].split(",")[DEP_DELAY] not in ("NA", "")]
    fields = lines[departed[5]].split(",")
    fields[DEP_DELAY] = "abc"
    lines[departed[5]] = ",".join(fields)
    fields = lines[departed[6]].split(",")
    fields[DEP_DELAY] = "5000"  # beyond the possible range: nulled, the row kept
    lines[departed[6]] = ",".join(fields)
    fields = lines[departed[7]].split(",")
    fields[TAILNUM] = '"N1,""Q"""'  # one field: N1,"Q"
    lines[departed[7]] = ",".join(fields)
    conflicting = lines[departed[9]].split(",")
    conflicting[DEP_DELAY] = str(int(conflicting[DEP_DELAY]) + 1)
    lines += [lines[departed[8]], ",".join(conflicting), lines[departed[10]][: len(lines[departed[10]]) // 2]]
    lines.insert(40, "")
    write(path, lines, final=False)
    # 03-07: CRLF, a byte-order mark, the header reordered, in upper case and quoted
    path = flights / "2013-03-07.csv"
    lines = lines_of(path)
    header = lines[0].split(",")
    order = [header.index(c) for c in sorted(header)]
    lines = [",".join(f'"{c.upper()}"' for c in sorted(header))] + [
        ",".join(line.split(",")[i] for i in order) if '"' not in line else line for line in lines[1:]]
    write(path, lines, end="\r\n", bom=True)
    # 03-09: a header without the column `dest`: the file is rejected, the day fails alone
    path = flights / "2013-03-09.csv"
    lines = lines_of(path)
    lines[0] = lines[0].replace(",dest,", ",destination,")
    write(path, lines)
    weather = landing / "weather"
    # 03-06: a byte that is not UTF-8 in the middle of the file: rejected, with its line and offset
    path = weather / "2013-03-06.csv"
    data = path.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 5
    path.write_bytes(data[:cut] + b"\xff" + data[cut:])
    # 03-08: a time_hour that is not the row's local hour, and a wind direction beyond 360
    path = weather / "2013-03-08.csv"
    lines = lines_of(path)
    header = lines[0].split(",")
    fields = lines[10].split(",")
    stamp = fields[header.index("time_hour")]  # 2013-03-08T15:00:00Z
    fields[header.index("time_hour")] = f"{stamp[:11]}{(int(stamp[11:13]) + 3) % 24:02d}{stamp[13:]}"
    lines[10] = ",".join(fields)
    fields = lines[20].split(",")
    fields[header.index("wind_dir")] = "365"
    lines[20] = ",".join(fields)
    write(path, lines)


def _build(engine: str, data_dir: Path, *steps: str, environment: dict[str, str] | None = None) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.engine_build", engine, str(data_dir), *steps],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, **(environment or {})}, timeout=900,
    )
    assert completed.returncode == 0, (
        f"{engine} build of {data_dir} failed ({completed.returncode}):\n{completed.stdout[-3000:]}\n{completed.stderr[-6000:]}")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The damaged week built on DuckDB; on Spark local[2] as one range, then one day rebuilt; and on
    a standalone cluster (a master and two workers on 127.0.0.1) day by day for the days around
    the change to daylight saving time. Each entry: a copy of every table (tests/engine_build.py).

    The cluster's build is also the day-by-day one: equal to the local range, it proves both that a
    cluster gives the same tables and that day-by-day runs give the range's (each Spark build costs
    about 20 s of fixed work, so they share it)."""
    from tools.spark_cluster import _free_port, start, stop

    root = tmp_path_factory.mktemp("spark")
    landing = TarmacPaths(root / "landing-source")
    fill_landing_zone(landing, [f"2013-03-{d:02d}" for d in range(4, 11)])
    _damage(landing.landing)
    for name in ("duckdb", "spark", "cluster"):
        shutil.copytree(landing.landing, root / name / "landing")
    copies = {"root": root}
    _build("duckdb", root / "duckdb", f"build:{FIRST}:{END}", f"copy={root / 'duckdb.duckdb'}")
    copies["duckdb"] = root / "duckdb.duckdb"
    # dbt's tests run on Spark in the range build; the rebuilds run the models alone (`dbt run`)
    _build("spark", root / "spark", f"build:{FIRST}:{END}", f"copy={root / 'spark.duckdb'}",
           f"run:{REBUILT}:{NEXT}", f"copy={root / 'spark_rebuilt.duckdb'}")
    copies["spark"], copies["spark_rebuilt"] = root / "spark.duckdb", root / "spark_rebuilt.duckdb"
    cluster = start(root / "spark-cluster", port=_free_port(), workers=2, cores=1, memory="1g")
    try:
        _build("spark", root / "cluster", f"run:{FIRST}:{BY_DAY[0]}",
               *[f"run:{day}:{after}" for day, after in zip(BY_DAY, [*BY_DAY[1:], END], strict=True)],
               f"copy={root / 'cluster.duckdb'}", environment={"TARMAC_SPARK_MASTER": cluster.url})
        copies["executors"] = sorted((root / "spark-cluster").glob("worker-*/app-*/*"))
    finally:
        stop(root / "spark-cluster")
    copies["cluster"] = root / "cluster.duckdb"
    return copies


def _tables(copy: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(copy), read_only=True) as con:
        rows = con.execute("select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() "
                           "where schema_name in ('bronze', 'silver', 'gold') order by schema_name, table_name, column_name").fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return tables


def _rows(copy: Path, table: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """The table's rows, ordered by every column (floats last), without the volatile columns."""
    exact = [c for c, kind in columns if c not in VOLATILE and kind not in ("DOUBLE", "FLOAT")]
    floats = [c for c, kind in columns if c not in VOLATILE and kind in ("DOUBLE", "FLOAT")]
    names = ", ".join(f'"{c}"' for c in exact + floats)
    with duckdb.connect(str(copy), read_only=True) as con:
        return con.execute(f"select {names} from {table} order by all").fetchall()


def assert_same_tables(expected: Path, actual: Path, tolerance: float = 0.0) -> dict[str, int]:
    """Every table of the layers: the same columns with the same types, and the same rows, cell by
    cell (floats within `tolerance`); the row count of each table."""
    left, right = _tables(expected), _tables(actual)
    assert sorted(left) == sorted(right), f"tables differ: {sorted(set(left) ^ set(right))}"
    counts = {}
    for table, columns in left.items():
        assert columns == right[table], f"{table}: columns differ:\n{columns}\n{right[table]}"
        a, b = _rows(expected, table, columns), _rows(actual, table, columns)
        assert len(a) == len(b), f"{table}: {len(a)} rows, {len(b)} rows"
        floats = sum(1 for c, kind in columns if c not in VOLATILE and kind in ("DOUBLE", "FLOAT"))
        for row_a, row_b in zip(a, b, strict=True):
            exact_a, exact_b = row_a[: len(row_a) - floats], row_b[: len(row_b) - floats]
            assert exact_a == exact_b, f"{table}: rows differ:\n{row_a}\n{row_b}"
            for x, y in zip(row_a[len(row_a) - floats:], row_b[len(row_b) - floats:], strict=True):
                assert (x is None) == (y is None) and (x is None or math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance)), (
                    f"{table}: floats differ:\n{row_a}\n{row_b}")
        counts[table] = len(a)
    return counts


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


def test_a_standalone_cluster_building_day_by_day_gives_the_range_s_tables(week: dict[str, Path]) -> None:
    workers = {path.parent.parent.name for path in week["executors"]}
    assert workers == {"worker-1", "worker-2"}, f"the build's executors did not run on both workers: {week['executors']}"
    assert_same_tables(week["spark"], week["cluster"])
