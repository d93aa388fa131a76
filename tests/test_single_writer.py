"""DuckDB allows one writer per file: overlapping runs must queue on the warehouse pool, not crash,
and no reader outside the pipeline may ever hold a run up.

Two `backfill` processes share one instance configured by the project's own `.dagster/dagster.yaml`
and one data directory, and start together, as a backfill and a sensor run would.
"""

import os
import shutil
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from tarmac.days import days_between
from tarmac.paths import PROJECT_ROOT
from tarmac.warehouse import WarehouseLockedError, writer_connection, writing_step
from tools.landing import fill_landing_zone


@pytest.mark.pipeline
def test_overlapping_runs_share_the_warehouse_without_lock_errors(paths, tmp_path, query):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TARMAC_DATA_DIR": str(paths.data_dir)}

    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "backfill", "--start", day, "--end", day],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in ("2013-02-01", "2013-02-02")
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]

    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
        assert "Could not set lock" not in output
    # both days landed in every layer: neither run lost its write to the other
    assert query("select count(distinct flight_date) from gold.flight_features")[0][0] == 2
    assert query("select count(distinct landing_date) from bronze.weather")[0][0] == 2


HOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print(con.execute("select count(*) from gold.flight_features").fetchone()[0] if sys.argv[2] == "read" else "held", flush=True)
sys.stdin.readline()  # held until the test says so
if sys.argv[2] == "read":
    print(con.execute("select count(*) from gold.flight_features").fetchone()[0], flush=True)
"""


def _hold(path, mode: str) -> tuple[subprocess.Popen, str]:
    """A process that opens `path` (read-only, or for writing) and holds it until told to close."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def test_an_outside_reader_never_fails_a_run_and_a_held_writer_is_waited_for(paths, run_days, instance):
    """A notebook holding warehouse.duckdb open read-only for a whole backfill holds nobody up: it
    keeps its snapshot, the next reader gets the new one. A process that holds the working copy
    itself is waited for, with its PID named, and the run goes on once it lets go."""
    fill_landing_zone(paths, days_between("2013-02-01", "2013-02-03"))
    run_days("2013-02-01", "2013-02-01")
    reader, first_count = _hold(paths.warehouse, "read")
    holder, _ = _hold(paths.warehouse_writer, "write")
    try:
        threading.Timer(4.0, lambda: holder.communicate("\n", timeout=30)).start()  # lets go after 4 s
        results = run_days("2013-02-02", "2013-02-03")
        assert all(r.success for r in results)
        # the reader's snapshot is the one it opened; a new reader sees both days
        assert reader.communicate("\n", timeout=30)[0].strip() == first_count
    finally:
        for process in (reader, holder):
            process.kill()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("select count(distinct flight_date) from gold.flight_features").fetchone() == (3,)
    waited = [
        e.message for r in results for e in instance.all_logs(r.run_id)
        if f"is held by PID {holder.pid}" in (e.message or "")
    ]
    assert waited, "the writer did not say which process it waited for"


def test_a_writer_held_past_the_timeout_fails_naming_the_holder(paths):
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("create table t as select 1 as x")
    holder, _ = _hold(paths.warehouse, "write")
    try:
        paths.warehouse_writer.parent.mkdir()
        os.link(paths.warehouse, paths.warehouse_writer)  # the holder's file is the working copy
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError, match=rf"is held by PID {holder.pid} .* within 2 s"):
            with writer_connection(paths, timeout_seconds=2.0):
                pass
        assert time.monotonic() - started < 10
    finally:
        holder.kill()


def _value(path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select x from t").fetchone()[0]


def test_a_writing_step_commits_as_a_whole_or_not_at_all(paths):
    """A step's writes reach readers when it succeeds, are undone when it fails, and a step that
    crashed (its dirty mark left behind) is undone before the next one starts."""
    with writing_step(paths, 5) as done:
        with writer_connection(paths, 5) as con:
            con.execute("create table t as select 1 as x")
        done(True)
    assert _value(paths.warehouse) == _value(paths.warehouse_writer) == 1

    with writing_step(paths, 5) as done:  # bronze.flights commits, then bronze.weather fails
        with writer_connection(paths, 5) as con:
            con.execute("update t set x = 2")
        done(False)
    assert _value(paths.warehouse) == _value(paths.warehouse_writer) == 1

    with pytest.raises(RuntimeError), writing_step(paths, 5):
        with writer_connection(paths, 5) as con:
            con.execute("update t set x = 3")
        raise RuntimeError("the step's code failed")
    assert _value(paths.warehouse_writer) == 1

    # a crash: the working copy was changed and the step never ended
    paths.warehouse_writer.with_name("step-in-progress").write_text("12345")
    with writer_connection(paths, 5) as con:
        con.execute("update t set x = 4")
    with writing_step(paths, 5) as done:
        assert _value(paths.warehouse_writer) == 1  # undone before the new step writes
        with writer_connection(paths, 5) as con:
            con.execute("update t set x = 5")
        done(True)
    assert _value(paths.warehouse) == 5
    assert not paths.warehouse_writer.with_name("step-in-progress").exists()
