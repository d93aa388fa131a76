"""The damaged week the Spark tests build on each engine, and how they compare the results.

One landing zone, a week that holds the change to daylight saving time (2013-03-10), with damaged
files whose every fault both engines must treat alike: a value of the wrong type, a line cut
short, an exact and a conflicting duplicate, a blank line, an impossible value, a quoted field
with a comma and a doubled quote, a file with CRLF line ends, a byte-order mark and its header
reordered, a weather observation whose time_hour disagrees with its local hour, a file that is
not UTF-8 and a file whose header lacks a column. Each engine builds it in a process of its own
(tests/engine_build.py), and every table of the layers is compared cell by cell.
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

FIRST, LAST, END = "2013-03-04", "2013-03-10", "2013-03-11"  # the week, END exclusive
REBUILT, NEXT = "2013-03-06", "2013-03-07"  # the day rebuilt alone on Spark
# built one at a time on the cluster, after the days before: the day whose flights file is rejected,
# and the change to daylight saving time
BY_DAY = ["2013-03-09", "2013-03-10"]
# columns a build stamps with its own run or time: equal only within one build
VOLATILE = {"load_id", "ingested_at", "loaded_at", "quarantined_at", "audited_at", "computed_at", "rejected_at"}
DEP_TIME, DEP_DELAY, TAILNUM = 3, 5, 11
# Every JVM of a test build (Spark's driver, a cluster's daemons and their executors) lives a minute
# or two over a week of data: C1's quick compilation and the serial collector cost it less CPU than
# the C2 compiler's and G1's threads (the cluster's build, alone on 2 cores: 286 -> 176 CPU-seconds),
# and the suite is bound by CPU. Java's arithmetic is the same under either compiler. C1 alone shrinks
# the JVM's default code cache from 240 MB to 48 MB, and the classes Spark generates for a week's
# build need about 60 MB (jcmd Compiler.codecache): at 48 MB the cache filled, and a build failed
# with "Out of space in CodeCache for adapters" when flushing could not keep up. The cache is given
# back its usual size: reserved address space, of which only what is used is ever touched.
JVM_OPTIONS = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -XX:+UseSerialGC"}


def require_spark() -> None:
    """Skip without the spark extra or Java; in CI, where the Spark tests must run, fail instead."""
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        message = "the Spark tests need the spark extra and Java 17 (make setup SPARK=1)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI runs them", pytrace=False)
        pytest.skip(message)


def damaged_week(root: Path, *engines: str) -> None:
    """The damaged week's landing zone, a copy of it under root/<engine>/landing for each engine."""
    landing = TarmacPaths(root / "landing-source")
    fill_landing_zone(landing, [f"2013-03-{d:02d}" for d in range(4, 11)])
    damage(landing.landing)
    for name in engines:
        shutil.copytree(landing.landing, root / name / "landing")


def damage(landing: Path) -> None:
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


def build(engine: str, data_dir: Path, *steps: str, environment: dict[str, str] | None = None) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.engine_build", engine, str(data_dir), *steps],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, **JVM_OPTIONS, **(environment or {})}, timeout=900,
    )
    if completed.returncode != 0:
        # dbt (--quiet) prints only its errors, each a message and then a Java stack trace: the
        # start of its output names the model and the cause, the end the last step; the whole is kept
        log = data_dir.parent / f"{data_dir.name}-build.log"
        log.write_text(f"$ {' '.join(completed.args)}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}")
        causes = [line for line in completed.stdout.splitlines() + completed.stderr.splitlines()
                  if ("Error" in line or "Exception" in line) and not line.lstrip().startswith("at ")]
        pytest.fail(f"{engine} build of {data_dir} failed ({completed.returncode}); the whole output is in {log}\n"
                    f"first errors:\n" + "\n".join(causes[:15]) + f"\n--- stdout, start:\n{completed.stdout[:3000]}"
                    f"\n--- stderr, end:\n{completed.stderr[-3000:]}", pytrace=False)


def table_columns(copy: Path) -> dict[str, list[tuple[str, str]]]:
    with duckdb.connect(str(copy), read_only=True) as con:
        rows = con.execute("select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() "
                           "where schema_name in ('bronze', 'silver', 'gold') order by schema_name, table_name, column_name").fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        found.setdefault(table, []).append((column, kind))
    return found


def table_rows(copy: Path, table: str, columns: list[tuple[str, str]]) -> list[tuple]:
    """The table's rows, ordered by every column (floats last), without the volatile columns."""
    exact = [c for c, kind in columns if c not in VOLATILE and kind not in ("DOUBLE", "FLOAT")]
    floats = [c for c, kind in columns if c not in VOLATILE and kind in ("DOUBLE", "FLOAT")]
    names = ", ".join(f'"{c}"' for c in exact + floats)
    with duckdb.connect(str(copy), read_only=True) as con:
        return con.execute(f"select {names} from {table} order by all").fetchall()


def assert_same_tables(expected: Path, actual: Path, tolerance: float = 0.0) -> dict[str, int]:
    """Every table of the layers: the same columns with the same types, and the same rows, cell by
    cell (floats within `tolerance`); the row count of each table."""
    left, right = table_columns(expected), table_columns(actual)
    assert sorted(left) == sorted(right), f"tables differ: {sorted(set(left) ^ set(right))}"
    counts = {}
    for table, columns in left.items():
        assert columns == right[table], f"{table}: columns differ:\n{columns}\n{right[table]}"
        a, b = table_rows(expected, table, columns), table_rows(actual, table, columns)
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


