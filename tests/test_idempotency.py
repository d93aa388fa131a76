"""Re-running is safe: a partition materialized again, or a range run instead of day by day,
leaves exactly the same warehouse contents (load metadata aside)."""

import json
import os
import subprocess
import sys

import dagster as dg

from definitions import defs
from resources.dbt import DbtBuildResource, dbt_cli
from tarmac.days import days_between
from tarmac.paths import DBT_PROJECT_DIR, TarmacPaths
from tests.conftest import table_hash
from tools.landing import fill_landing_zone
from tools.pipeline import stage_assets

TABLES = [
    "bronze.flights",
    "bronze.weather",
    "silver.flights",
    "silver.weather",
    "silver.quarantine",
    "silver.load_audit",
    "gold.flight_features",
    "gold.training_set",
]


def hashes(paths: TarmacPaths) -> dict[str, tuple[int, str]]:
    return {table: table_hash(paths, table) for table in TABLES}


def test_a_range_run_equals_day_by_day_runs_and_rerunning_a_day_changes_nothing(
    paths, land, run_days, instance, query, tmp_path, monkeypatch
):
    """Three days in one run give the same tables as the three days run one at a time in date order,
    including the features that read earlier days' flights; materializing one of them again
    replaces its rows instead of adding to them, the second time with dbt as a subprocess per step
    instead of in the step's process."""
    start, end = "2013-02-11", "2013-02-13"
    day = "2013-02-12"  # has an impossible 1,048 mph wind, so the quarantine table is not empty
    days = days_between(start, end)
    land(start, end)
    run_days(start, end)
    range_run = hashes(paths)
    assert all(count > 0 for count, _ in range_run.values()), range_run
    # The comparison covers history: features of later days that only earlier days can explain
    # (a 7-day route rate known before the route's first departure of the day).
    (from_earlier_days,) = query(
        "select count(*) from gold.flight_features f "
        "where f.flight_date > ? and f.route_dep_delay15_rate_7d is not null and not exists ("
        "  select 1 from silver.flights s where s.flight_date = f.flight_date "
        "  and s.origin = f.origin and s.dest = f.dest and s.dep_ts <= f.prediction_ts)",
        [start],
    )[0]
    assert from_earlier_days > 100

    # dbt ran in this process and let go of the working copy: another process may open it to write
    opened = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                             str(paths.warehouse_writer)], capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr

    subprocess_dbt = DbtBuildResource(cli=dbt_cli(in_process=False), warehouse=defs.resources["warehouse"])
    reference_run, daily_run = run_days(day, day, resources={"dbt": subprocess_dbt})

    assert hashes(paths) == range_run
    # the run's values reach dbt through the environment (run_var): its lineage names this run
    assert query("select distinct load_id from gold.flight_features where flight_date = ?", [day]) == [(daily_run.run_id,)]
    assert query("select distinct load_id from bronze.flights where landing_date = ?", [day]) == [(daily_run.run_id,)]
    # and the second round parsed the project at most once: its first dbt process, unless this data
    # dir already had a partial parse of its own (written by the first round if that round's
    # process parsed, not if it ran from an earlier test's parse); every later one reused it
    logs = {run.run_id: list((DBT_PROJECT_DIR / "target").glob(f"*-{run.run_id[:7]}-*/dbt.log"))
            for run in (reference_run, daily_run)}
    assert [len(found) for found in logs.values()] == [1, 3]  # reference; bronze, silver, gold
    reparsed = [log.parent.name for log in logs[daily_run.run_id] if "UnableToPartialParse" in log.read_text()]
    assert reparsed == [], reparsed
    logs = [log for found in logs.values() for log in found]
    # each of them was a dbt process of its own
    pids = {json.loads(log.read_text().splitlines()[0])["info"]["pid"] for log in logs}
    assert len(pids) == 4 and os.getpid() not in pids, pids

    second_dir = tmp_path / "day_by_day"
    second_dir.mkdir()
    monkeypatch.setenv("TARMAC_DATA_DIR", str(second_dir))
    day_by_day = TarmacPaths(second_dir)
    fill_landing_zone(day_by_day, days)
    run_days(days[0], days[0])  # the reference tables and the first day
    daily = stage_assets(defs, partitioned=True, ml=False)
    for later in days[1:]:  # in date order: each day's features see the days before it (checks change no table)
        result = dg.materialize(daily, instance=instance, resources=defs.resources, partition_key=later,
                                raise_on_error=False)
        assert result.success, later

    assert hashes(day_by_day) == range_run
