"""`make bench`: the pipeline against its physical floor, at scale, in one run; writes BENCHMARKS.md.

    python -m bench [--quick] [--workdir DIR] [--keep] [--out BENCHMARKS.md] [--scale-factors 1 10]

Every figure comes from this one invocation, so ratios compare runs on the same machine at the
same time. Each part works in a workspace of its own (a DAGSTER_HOME and data directory under the
work folder); the project's own instance and warehouse are not touched.

1. For each scale factor: land the year (SF copies of each day's flights), run the floor (one
   hand-written DuckDB script, bench/floor.sql) and the pipeline's full-year backfill (`make
   backfill`'s command), compare their flight_features cell by cell, and profile the backfill.
   On the SF=1 year, the floors of the other parts too (bench.floor_parts): the checks' statistics
   in one SQL pass, the online load as one bulk write, the model's fit alone.
2. Fixed overhead: a one-day backfill in a fresh workspace versus the floor over that one day.
3. Incremental cost: one day's daily stage re-materialized with 30 days, then with the whole
   year, already materialized (median of --repeats).
4. Validation overhead: the asset-check steps (and the dbt tests inside dbt build) versus the
   materialization steps of the SF=1 backfill.
5. Memory: each command's peak resident memory, its process tree summed.
6. The real-time path (bench.online) and the per-check costs (bench.quality_checks) on the SF=1
   warehouse.
7. The SF=1 year's backfill on Spark local[2] beside DuckDB's, both compared with the floor
   (bench.engines), and a Spark session's start-up.

--quick runs the same parts on 14 days at SF 1 and 2 with a 3-day history: a smoke run of the
harness, not figures to quote.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.engines import engines, jvm_start_seconds
from bench.floor import compare
from bench.floor_parts import part_floors
from bench.measure import commit, machine, versions
from bench.pipeline import Workspace, profile, repeated_daily
from bench.report import without_noise
from tarmac.days import days_between
from tarmac.paths import PROJECT_ROOT

FULL = {"start": "2013-01-01", "end": "2013-12-31", "scale_factors": [1, 10], "day": "2013-07-01",
        "history": ("2013-06-02", "2013-07-01"), "repeats": 3, "online": []}
QUICK = {"start": "2013-06-01", "end": "2013-06-14", "scale_factors": [1, 2], "day": "2013-06-14",
         "history": ("2013-06-12", "2013-06-14"), "repeats": 1,
         "online": ["--get-seconds", "2", "--post-seconds", "2"]}


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def measured(m) -> dict:
    return {"seconds": m.seconds, "peak_rss_bytes": m.peak_rss_bytes}


def scale(root: Path, sf: int, start: str, end: str) -> tuple[Workspace, dict]:
    """Land the range at scale factor `sf`, then the floor and the pipeline over it, compared."""
    ws = Workspace(root / f"sf{sf}_{start}_{end}").create()
    log(f"SF={sf} {start}..{end}: landing")
    landing = ws.land(start, end, sf)
    log(f"SF={sf}: floor")
    floor_run, floor = ws.floor()
    log(f"SF={sf}: floor {floor['seconds']:.1f} s, {floor['rows']:,} rows; pipeline backfill")
    backfill = ws.backfill(start, end, sf)
    log(f"SF={sf}: backfill {backfill.seconds:.1f} s; comparing and profiling")
    comparison = compare(ws.root / "floor.duckdb", ws.data / "warehouse.duckdb")
    log(f"SF={sf}: {comparison.summary()}")
    return ws, {
        "scale_factor": sf, "start": start, "end": end, "days": len(days_between(start, end)),
        "flights": floor["rows"], "landing": measured(landing), "landing_bytes": _size(ws.data / "landing"),
        "floor": {**measured(floor_run), "sql_seconds": floor["seconds"]},
        "pipeline": {**measured(backfill), "profile": profile(ws, ws.run_ids()).as_dict(),
                     "warehouse_bytes": _size(ws.data / "warehouse.duckdb")},
        "comparison": {"equal": comparison.equal, "summary": comparison.summary(),
                       "differing_cells": comparison.differing_cells,
                       "max_float_difference": comparison.max_float_difference},
    }


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 14 days, SF 1 and 2")
    parser.add_argument("--workdir", type=Path, help="where the workspaces go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces afterwards")
    parser.add_argument("--out", type=Path, help="the report (default: BENCHMARKS.md; --quick: in the work folder)")
    parser.add_argument("--scale-factors", type=int, nargs="+", help="override the scale factors")
    args = parser.parse_args(argv)
    config = dict(QUICK if args.quick else FULL)
    if args.scale_factors:
        config["scale_factors"] = sorted(set(args.scale_factors) | {1})
    root = args.workdir or Path(tempfile.mkdtemp(prefix="tarmac-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    out = args.out or (root / "BENCHMARKS.md" if args.quick else PROJECT_ROOT / "BENCHMARKS.md")
    results: dict = {"mode": "quick" if args.quick else "full", "started": datetime.now(UTC).isoformat(timespec="seconds"),
                     "machine": machine(), "versions": versions(), "commit": commit(PROJECT_ROOT), "config": config}
    save = lambda: (root / "results.json").write_text(json.dumps(results, indent=1))  # noqa: E731
    began = time.perf_counter()
    try:
        # 1. the year at SF=1, then the parts that need its warehouse
        sf1, results_sf1 = scale(root, 1, config["start"], config["end"])
        results["scales"] = [results_sf1]
        save()
        log("part floors: the checks' statistics, the online load and the model fit, each by hand")
        results_sf1["part_floors"] = part_floors(sf1, config["start"], config["end"])
        save()
        log("engines: the same backfill on Spark local[2], beside DuckDB's")
        results["engines"] = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "commit": results["commit"],
                              "jvm_start_seconds": jvm_start_seconds(),
                              "scales": [engines(root, 1, config["start"], config["end"], floor_workspace=sf1,
                                                 duckdb={**results_sf1["pipeline"], "comparison": results_sf1["comparison"]})]}
        save()
        day = config["day"]
        log(f"incremental: {day} with {results_sf1['days']} days materialized, x{config['repeats']}")
        results["incremental"] = [{"history_days": results_sf1["days"], **repeated_daily(sf1, day, config["repeats"])}]
        save()
        log("real-time path: bench.online")
        online = sf1.run("online", "-m", "bench.online", "--json", str(sf1.root / "online.json"), *config["online"])
        results["online"] = {**json.loads((sf1.root / "online.json").read_text()), "output": without_noise(online.output)}
        log("per-check costs: bench.quality_checks")
        results["quality_checks"] = without_noise(sf1.run("quality_checks", "-m", "bench.quality_checks").output)
        save()

        # 3. incremental cost: the same day with a short history
        first, last = config["history"]
        history = Workspace(root / "history").create()
        log(f"incremental: {first}..{last} backfilled, then {day} x{config['repeats']}")
        setup = history.backfill(first, last, 1)
        results["incremental"].insert(0, {"history_days": len(days_between(first, last)),
                                          "setup_seconds": setup.seconds,
                                          **repeated_daily(history, day, config["repeats"])})
        save()

        # 2. fixed overhead: one day, end to end, in a fresh workspace
        _, results["one_day"] = scale(root, 1, day, day)
        save()

        # 1. the larger scale factors
        for sf in config["scale_factors"][1:]:
            ws, result = scale(root, sf, config["start"], config["end"])
            results["scales"].append(result)
            save()
            if not args.keep:
                shutil.rmtree(ws.root)
    finally:
        results["seconds"] = time.perf_counter() - began
        save()
    from bench.report import write_report

    write_report(results, out)
    if results["mode"] == "full":  # the figures beside the plots, to re-render or compare later runs
        figures = out.parent / "docs" / "benchmarks" / "results.json"
        figures.write_text((root / "results.json").read_text())
    log(f"{out} written ({results['seconds'] / 60:.1f} min); figures in {root / 'results.json'}")
    if not args.keep and not args.workdir:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
