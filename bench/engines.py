"""Benchmark: the same backfill on DuckDB and on Spark local[2], side by side, with the equality check.

    python -m bench.engines [--start 2013-01-01 --end 2013-12-31] [--scale-factors 1] [--workdir DIR]
                            [--merge docs/benchmarks/results.json]

For each scale factor: land the range once, run the floor (bench/floor.sql, the reference the
equality check compares gold.flight_features with, flight by flight), then `make backfill`'s
command in two workspaces that differ only by TARMAC_ENGINE, each timed with its process tree's
peak memory and profiled step by step. Spark's fixed cost is measured apart: a Python process that
starts a Spark session (the JVM) and runs one query, against the same process without the query.

`make bench` runs this part after its own; `--merge` adds a standalone run's figures to an
existing results file (as `engines`), which `python -m bench.report` renders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.floor import compare
from bench.measure import commit, python, run_measured
from bench.pipeline import Workspace, profile
from tarmac.days import days_between
from tarmac.paths import PROJECT_ROOT

JVM_PROBE = """
import time, tempfile
started = time.perf_counter()
from tarmac.paths import TarmacPaths
from tarmac.spark import session
spark = session(TarmacPaths(__import__('pathlib').Path(tempfile.mkdtemp())))
spark.sql('select 1').collect()
print(time.perf_counter() - started)
"""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def jvm_start_seconds() -> float:
    """A Spark session started and one query answered, in a fresh process (what each run pays)."""
    measured = run_measured(python("-c", JVM_PROBE), cwd=PROJECT_ROOT).check()
    return float(measured.output.strip().splitlines()[-1])


def engines(root: Path, sf: int, start: str, end: str, floor_workspace: Workspace | None = None,
            duckdb: dict | None = None) -> dict:
    """The range at scale factor `sf` on both engines. `floor_workspace`: one whose landing zone and
    floor.duckdb hold this range already; `duckdb`: its DuckDB backfill's figures, not run again
    (make bench's own SF=1 workspace)."""
    if floor_workspace is None:
        floor_workspace = Workspace(root / f"floor_sf{sf}").create()
        log(f"SF={sf} {start}..{end}: landing")
        floor_workspace.land(start, end, sf)
        log(f"SF={sf}: floor")
        floor_workspace.floor()
    result: dict = {"scale_factor": sf, "start": start, "end": end, "days": len(days_between(start, end))}
    if duckdb is not None:
        result["duckdb"] = duckdb
    for engine in ("duckdb", "spark"):
        if engine in result:
            continue
        ws = Workspace(root / f"{engine}_sf{sf}", engine=engine).create()
        shutil.copytree(floor_workspace.data / "landing", ws.data / "landing")
        log(f"SF={sf}: {engine} backfill")
        backfill = ws.backfill(start, end, sf)
        comparison = compare(floor_workspace.root / "floor.duckdb", ws.data / "warehouse.duckdb")
        log(f"SF={sf}: {engine} {backfill.seconds:.1f} s; {comparison.summary()}")
        result[engine] = {
            "seconds": backfill.seconds, "peak_rss_bytes": backfill.peak_rss_bytes,
            "profile": profile(ws, ws.run_ids()).as_dict(),
            "comparison": {"equal": comparison.equal, "summary": comparison.summary(),
                           "differing_cells": comparison.differing_cells,
                           "max_float_difference": comparison.max_float_difference},
        }
        shutil.rmtree(ws.root)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2013-12-31")
    parser.add_argument("--scale-factors", type=int, nargs="+", default=[1])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--merge", type=Path, help="a results.json to add these figures to (as `engines`)")
    args = parser.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="tarmac-bench-engines-"))
    root.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    log("Spark session start-up in a fresh process")
    figures = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(PROJECT_ROOT),
               "jvm_start_seconds": jvm_start_seconds(), "scales": []}
    for sf in args.scale_factors:
        figures["scales"].append(engines(root, sf, args.start, args.end))
    figures["seconds"] = time.perf_counter() - began
    print(json.dumps(figures, indent=1))
    if args.merge:
        results = json.loads(args.merge.read_text())
        results["engines"] = figures
        args.merge.write_text(json.dumps(results, indent=1))
        log(f"added to {args.merge}: render with python -m bench.report {args.merge}")
    if not args.workdir:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
