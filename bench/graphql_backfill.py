"""A backfill launched as the UI launches it: `dagster dev`, GraphQL, the daemon's run queue.

    python -m bench.graphql_backfill [--start 2013-01-01] [--end 2013-12-31] [--workdir DIR]

Starts `dagster dev` on a free 127.0.0.1 port with a fresh DAGSTER_HOME and data directory (under
--workdir, default a temporary folder), lands the range, launches one asset backfill of every asset
through GraphQL and waits for it. Prints the number of runs, each run's assets and duration, the
wall time, whether any DuckDB lock error appeared in the event log, and the row-conservation totals.
The landing sensor is stopped first, so the backfill alone does the work.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from tarmac.days import days_between
from tarmac.paths import PROJECT_ROOT, TarmacPaths
from tarmac.warehouse import conservation_totals
from tools.dagster_dev import DagsterDev, wait_for
from tools.landing import fill_landing_zone

LOCK_ERRORS = ("Could not set lock on file", "Conflicting lock is held")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2013-12-31")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tarmac-graphql-backfill-"))
    home, data = workdir / "dagster_home", workdir / "data"
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), "TARMAC_DATA_DIR": str(data)}
    days = days_between(args.start, args.end)
    paths = TarmacPaths(data)

    server = DagsterDev(env, workdir / "dagster_dev.log")
    try:
        server.wait_until_loaded()
        server.set_sensor("landing_file_sensor", running=False)
        print(f"landing zone: {fill_landing_zone(paths, days).summary()}")
        from definitions import defs

        graph = defs.get_repository_def().asset_graph
        selection = [
            {
                "assetKey": {"path": key.path},
                "partitions": {"range": {"start": days[0], "end": days[-1]}} if graph.get(key).is_partitioned else None,
            }
            for key in sorted(graph.materializable_asset_keys, key=str)
        ]
        started = time.perf_counter()
        backfill_id = server.launch_backfill(selection, title=f"graphql backfill {days[0]}..{days[-1]}")
        status = wait_for(
            "the backfill to finish",
            lambda: (s := server.backfill_status(backfill_id)) not in ("REQUESTED", "CANCELING") and s,
            timeout=4 * 3600,
            every=5,
        )
        elapsed = time.perf_counter() - started
    finally:
        server.stop()

    instance = dg.DagsterInstance.from_config(str(home))
    runs = sorted(
        instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})),
        key=lambda r: instance.get_run_record_by_id(r.run_id).start_time or 0,
    )
    lock_errors = 0
    print(f"backfill {backfill_id}: {status} in {elapsed:.0f} s wall, {len(runs)} runs for {len(days)} days")
    for run in runs:
        record = instance.get_run_record_by_id(run.run_id)
        layers = "+".join(sorted({k.path[0] for k in run.asset_selection or ()}))
        window = f"{run.tags.get('dagster/asset_partition_range_start', '-')}..{run.tags.get('dagster/asset_partition_range_end', '-')}"
        print(f"  run {run.run_id[:8]} {run.status.value:8} {layers:14} {window:23} {record.end_time - record.start_time:7.1f} s")
        for event in instance.all_logs(run.run_id):
            text = event.message or ""
            if event.dagster_event and event.dagster_event.is_failure:
                text += str(getattr(event.dagster_event.event_specific_data, "error", ""))
            lock_errors += any(marker in text for marker in LOCK_ERRORS)
    print(f"DuckDB lock errors in the event log: {lock_errors}")
    if status == "COMPLETED_SUCCESS":
        for dataset, bronze, silver, quarantined, dropped in conservation_totals(paths.warehouse, days[0], days[-1]):
            print(f"{dataset}: bronze {bronze:,} = silver {silver:,} + quarantined {quarantined:,} + duplicates {dropped:,}")
    instance.dispose()
    return 0 if status == "COMPLETED_SUCCESS" and lock_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
