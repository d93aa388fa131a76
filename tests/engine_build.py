"""Builds the dbt project on one engine, window after window, in one process, and copies every
table of the layers into DuckDB files to compare: what the Spark tests run in a subprocess (each
data dir gets a Spark driver of its own, with that data dir's metastore).

    python -m tests.engine_build ENGINE DATA_DIR STEP [STEP ...]

A STEP is build:START:END, a `dbt build` of the window [START, END) as the pipeline's runs pass
it (the run variables); run:START:END, a `dbt run` of it (the models without dbt's tests); or
copy=FILE.duckdb, a copy of every table as it is at that point (one table per schema.table). A
window that fails stops the build with a non-zero exit code. Each step's seconds go to stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

from resources.dbt import _release_duckdb
from tarmac.paths import DBT_PROJECT_DIR, TarmacPaths


def build(engine: str, data_dir: Path, windows: list[tuple[str, str]], command: str = "build") -> None:
    from dbt.cli.main import dbtRunner

    os.environ.update({"TARMAC_ENGINE": engine, "TARMAC_DATA_DIR": str(data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    (data_dir / "writer").mkdir(parents=True, exist_ok=True)
    target = data_dir / "dbt-target"
    for start, end in windows:
        os.environ.update({"TARMAC_RUN_MIN_DATE": start, "TARMAC_RUN_MAX_DATE": end, "TARMAC_RUN_LOAD_ID": f"{start}..{end}"})
        result = dbtRunner().invoke([command, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                                     "--target-path", str(target), "--quiet", "--log-path", str(target)])
        if not result.success:
            raise SystemExit(f"dbt build of [{start}, {end}) on {engine} failed: {result.exception or 'see the log above'}")
    _release_duckdb()  # dbt-duckdb keeps the database open in the process


def copy_tables(engine: str, data_dir: Path, copy: Path) -> None:
    paths = TarmacPaths(data_dir)
    if engine == "spark":
        from tarmac.spark import publish_views

        publish_views(paths)
        source = paths.warehouse
    else:
        source = paths.warehouse_writer
    copy.unlink(missing_ok=True)
    with duckdb.connect(str(copy)) as con:
        con.execute(f"attach '{source}' as source (read_only)")
        tables = con.execute("select schema_name, table_name from duckdb_tables() where database_name = 'source' "
                             "union all select schema_name, view_name from duckdb_views() where database_name = 'source' "
                             "and not internal order by all").fetchall()
        for schema, table in tables:
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(f'create table "{schema}"."{table}" as select * from source."{schema}"."{table}"')


def main(argv: list[str]) -> None:
    engine, data_dir, *steps = argv
    for step in steps:
        started = time.perf_counter()
        if step.startswith("copy="):
            copy_tables(engine, Path(data_dir), Path(step.removeprefix("copy=")))
        else:
            command, start, end = step.split(":")
            build(engine, Path(data_dir), [(start, end)], command)
        print(f"{engine} {step.split('=')[0]}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
