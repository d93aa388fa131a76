"""The Spark engine: the same dbt models on Apache Spark, with the layers as Parquet tables.

The engine is chosen by TARMAC_ENGINE (`duckdb`, the default, or `spark`). On Spark, dbt-spark's
session method makes the process that runs dbt the Spark driver (master `local[2]`, or a cluster's
URL in TARMAC_SPARK_MASTER), and the tables are Parquet in Spark's own layout under the data dir:
`spark-warehouse/<schema>.db/<table>/`, daily tables partitioned by their date column
(`<column>=<day>/part-*.parquet`), with an embedded Derby metastore beside them.

Everything else reads the layers as it does on DuckDB, through `warehouse.duckdb`: on Spark that
file holds no data, only one view per table over the table's Parquet files as they were when the
last writing step ended (`publish_views`, rebuilt after every step from Spark's catalog, so a table
that has no rows yet still has its columns and types).

Spark has no transaction over a layer: a step that fails part-way leaves the days it rewrote as
it left them, and its re-run (every model rewrites whole partitions) puts them right.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tarmac.paths import TarmacPaths
from tarmac.sql import quote_identifier as _quote
from tarmac.sql import quote_literal

ENGINES = ("duckdb", "spark")
DEFAULT_MASTER = "local[2]"
LAYERS = ("bronze", "silver", "gold")


class EngineError(RuntimeError):
    pass


def engine() -> str:
    """The engine TARMAC_ENGINE names (default duckdb); anything else is refused by name."""
    name = (os.environ.get("TARMAC_ENGINE") or "duckdb").strip().lower()
    if name not in ENGINES:
        raise EngineError(f"TARMAC_ENGINE={name!r} is not an engine Tarmac runs on: use one of {', '.join(ENGINES)}")
    return name


def master() -> str:
    return os.environ.get("TARMAC_SPARK_MASTER") or DEFAULT_MASTER


def session_config(paths: TarmacPaths) -> dict[str, str]:
    """The Spark session's settings: what dbt_project/profiles.yml gives dbt-spark (its `spark`
    output's server_side_parameters; tests/test_spark_tables.py holds the two equal)."""
    return {
        "spark.master": master(),
        "spark.app.name": "tarmac-dbt",
        "spark.sql.warehouse.dir": str(paths.spark_warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={paths.spark_metastore}/metastore_db;create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={paths.spark_metastore}",
        "spark.local.dir": str(paths.spark_scratch),
        "spark.hadoop.hive.exec.scratchdir": f"{paths.spark_scratch}/hive",
        "spark.hadoop.hive.exec.local.scratchdir": f"{paths.spark_scratch}/hive-local",
        "spark.hadoop.hive.downloaded.resources.dir": f"{paths.spark_scratch}/hive-resources",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parser.escapedStringLiterals": "true",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": os.environ.get("TARMAC_SPARK_SHUFFLE_PARTITIONS", "4"),
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }


def require_java() -> None:
    """Spark runs on a JVM: say how to get one rather than fail inside PySpark."""
    java_home = os.environ.get("JAVA_HOME")
    if (java_home and (Path(java_home) / "bin" / "java").exists()) or shutil.which("java"):
        return
    raise EngineError(
        "TARMAC_ENGINE=spark needs Java 17 (Spark's JVM), and no `java` is on PATH nor in JAVA_HOME: "
        "install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) and run again")


def session(paths: TarmacPaths) -> Any:
    """The process's Spark session: the one dbt-spark started (dbt runs in the step's process),
    or a new one with the same settings."""
    require_java()
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise EngineError(
            "TARMAC_ENGINE=spark needs the spark extra (pyspark, dbt-spark): "
            "`make setup SPARK=1` installs it") from error
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_config(paths).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@dataclass(frozen=True)
class SparkTable:
    schema: str
    name: str
    location: Path
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type), in the table's order
    partition_columns: tuple[str, ...]


# Spark's simple type names (DataType.simpleString) as DuckDB names them
_TYPES = {
    "string": "varchar", "int": "integer", "bigint": "bigint", "smallint": "smallint", "tinyint": "tinyint",
    "double": "double", "float": "float", "boolean": "boolean", "date": "date", "binary": "blob",
    "timestamp": "timestamptz", "timestamp_ntz": "timestamp",
}


def duckdb_type(spark_type: str) -> str:
    if spark_type in _TYPES:
        return _TYPES[spark_type]
    if match := re.fullmatch(r"decimal\((\d+),(\d+)\)", spark_type):
        return f"decimal({match[1]},{match[2]})"
    if match := re.fullmatch(r"array<(.+)>", spark_type):
        return duckdb_type(match[1]) + "[]"
    raise EngineError(f"no DuckDB type for Spark's {spark_type}")


def catalog_tables(paths: TarmacPaths, layers: Iterable[str] = LAYERS) -> list[SparkTable]:
    """Every table of the layers as Spark's catalog has it."""
    spark = session(paths)
    known = {row.namespace for row in spark.sql("show schemas").collect()}
    tables = []
    for schema in layers:
        if schema not in known:
            continue
        for table in spark.catalog.listTables(schema):
            if table.isTemporary:  # dbt's staging views (<model>__dbt_tmp), listed under every schema
                continue
            name = f"`{schema}`.`{table.name}`"
            columns = spark.catalog.listColumns(table.name, schema)
            types = {field.name: field.dataType.simpleString() for field in spark.table(name).schema}
            detail = {row.col_name: row.data_type for row in spark.sql(f"describe table extended {name}").collect()}
            tables.append(SparkTable(
                schema=schema,
                name=table.name,
                location=Path(re.sub(r"^file:(//)?", "", detail["Location"])),
                columns=tuple((c.name, duckdb_type(types[c.name])) for c in columns),
                partition_columns=tuple(c.name for c in columns if c.isPartition),
            ))
    return tables


def view_sql(table: SparkTable) -> str:
    """A DuckDB view of the table over its Parquet files, with the catalog's columns and types
    (a day column comes from the folder names); no rows when the table has no file yet."""
    columns = ", ".join(f"cast({_quote(name)} as {kind}) as {_quote(name)}" for name, kind in table.columns)
    target = f"{_quote(table.schema)}.{_quote(table.name)}"
    # the files as they are now, listed once: a pattern would list a folder per day at every query
    # (a year's table: 0.27 s a query against 0.06 s), and the view is rebuilt after every step
    files = _parquet_files(table.location, len(table.partition_columns))
    if files is None:
        nulls = ", ".join(f"cast(null as {kind}) as {_quote(name)}" for name, kind in table.columns)
        return f"create or replace view {target} as select {nulls} where false"
    hive = ", ".join(f"'{name}': '{kind}'" for name, kind in table.columns if name in table.partition_columns)
    options = f", hive_partitioning = true, hive_types = {{{hive}}}" if hive else ", hive_partitioning = false"
    return (f"create or replace view {target} as select {columns} "
            f"from read_parquet({files}, union_by_name = true{options})")


def _parquet_files(location: Path, partition_depth: int) -> str | None:
    """A table's Parquet files in Spark's layout (a folder per partition column above them), as
    the SQL list read_parquet takes; None when it has none."""
    files = sorted(location.glob("/".join(["*"] * partition_depth + ["*.parquet"])))
    return "[" + ", ".join(quote_literal(str(f)) for f in files) + "]" if files else None


def publish_views(paths: TarmacPaths) -> list[SparkTable]:
    """Write warehouse.duckdb as the views of every table of the layers, Spark's and those written
    as Parquet beside them (batch scoring's): staged beside it and renamed over it, so a reader
    opens the old file or the new one."""
    tables = catalog_tables(paths)
    tables += disk_tables(paths, tables)
    published = paths.warehouse
    published.parent.mkdir(parents=True, exist_ok=True)
    staged = published.with_name(f".{published.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with duckdb.connect(str(staged)) as con:
            for schema in sorted({t.schema for t in tables}):
                con.execute(f"create schema if not exists {_quote(schema)}")
            for table in tables:
                con.execute(view_sql(table))
        os.replace(staged, published)
    finally:
        staged.unlink(missing_ok=True)
    return tables


def disk_tables(paths: TarmacPaths, known: Iterable[SparkTable], layers: Iterable[str] = LAYERS) -> list[SparkTable]:
    """Parquet tables in Spark's layout that its catalog does not hold (batch scoring's, written
    by `replace_partitions`), with the columns their files carry."""
    seen = {(t.schema, t.name) for t in known}
    found = []
    for schema in layers:
        for folder in sorted((paths.spark_warehouse / f"{schema}.db").glob("*")):
            if (schema, folder.name) in seen or not folder.is_dir() or not any(folder.glob("**/*.parquet")):
                continue
            partitions = []
            level = folder
            while (subfolders := [p for p in level.iterdir() if p.is_dir() and "=" in p.name]):
                partitions.append(subfolders[0].name.split("=", 1)[0])
                level = subfolders[0]
            with duckdb.connect() as con:
                described = con.execute(
                    f"describe select * from read_parquet({_parquet_files(folder, len(partitions))}, "
                    f"hive_partitioning = {str(bool(partitions)).lower()}, union_by_name = true)").fetchall()
            found.append(SparkTable(schema=schema, name=folder.name, location=folder,
                                    columns=tuple((row[0], row[1]) for row in described),
                                    partition_columns=tuple(partitions)))
    return found


def replace_partitions(paths: TarmacPaths, schema: str, table: str, rows: Any, column: str, days: Iterable[str]) -> None:
    """Rewrite the days' partitions of a Parquet table in Spark's layout with `rows` (a DataFrame
    whose `column` holds each row's day): each day written in a folder of its own beside the table,
    then renamed into place; a day with no rows is left with no folder."""
    location = paths.spark_warehouse / f"{schema}.db" / table
    location.mkdir(parents=True, exist_ok=True)
    staging = location.with_name(f".{table}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if len(rows):
            with duckdb.connect() as con:
                con.register("partition_rows", rows)
                con.execute(f"copy (select * replace (cast({_quote(column)} as date) as {_quote(column)}) from partition_rows) "
                            f"to '{staging}' (format parquet, partition_by ({_quote(column)}))")
        for day in days:
            target = location / f"{column}={day}"
            written = staging / f"{column}={day}"
            retired = location.with_name(f".{table}.{column}={day}.{uuid.uuid4().hex[:8]}.old")
            if target.exists():
                os.replace(target, retired)
            if written.exists():
                os.replace(written, target)
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def release(paths: TarmacPaths) -> None:
    """Stop this process's Spark session and close the embedded metastore, so that another
    process (the next run's step) can open it: Derby admits one process per database, and a run's
    process lives on after its Spark step. A later step of this process starts a new session."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return
    # dbt-spark's session is the process's default one, active on the thread that ran dbt's models
    active = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if active is None:
        return
    jvm = active._jvm
    active.stop()
    try:
        jvm.java.sql.DriverManager.getConnection(f"jdbc:derby:;databaseName={paths.spark_metastore / 'metastore_db'};shutdown=true")
    except Exception as error:  # Derby reports a database it has shut down as SQLState 08006
        state = getattr(getattr(error, "java_exception", None), "getSQLState", lambda: None)()
        if state not in ("08006", "XJ004"):  # XJ004: the database was not booted in this process
            raise
