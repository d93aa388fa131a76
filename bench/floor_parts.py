"""Floors for the pipeline's other parts, so that each part's ratio means something: the checks'
statistics as one hand-written DuckDB pass, the online load as one bulk write, the model's fit alone.

    python -m bench.floor_parts checks --warehouse W [--start DAY --end DAY] [--repeats 3]
    python -m bench.floor_parts online --warehouse W --out DIR [--start DAY --end DAY] [--repeats 3]
    python -m bench.floor_parts model --warehouse W [--repeats 3]

Each reads a materialized warehouse read-only and prints its figures as JSON: the best of
`--repeats` timings of its own work (no interpreter start, no imports), with what it measured.
`part_floors` runs the three in subprocesses of a workspace after its backfill, as the gold floor
runs (bench/floor.py), and the report sets them beside the steps that do the same work.

- checks: `bench/floor_checks.sql` over the range's days (its header says what it computes and what
  it leaves out); against the check steps of bronze, silver, gold and the reference tables.
- online: the range's flight records, the JSON the online load writes (tarmac/online/batch.py,
  built by the same function, but for the whole range in one query), written into a fresh SQLite
  store file in one transaction by one executemany; against the `online/flights` step, which
  writes each day through the store, one day per transaction.
- model: `fit_model` on gold.training_set read and split as the model asset does; no MLflow, no
  registry, no evaluation, no promotion; against the `ml/flight_delay_model` step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from bench.pipeline import Workspace

CHECKS_SCRIPT = Path(__file__).with_name("floor_checks.sql")
# the script's tables of days rather than statistics
CHECKS_CALENDAR = ("judged", "reference", "span", "volume_basis")
# the pipeline's steps whose work each floor does: the check steps whose statistics the checks'
# floor computes (not the online step's parity replay, nor the ml step's model performance), the
# online load (`online/flight_features` before it was `online/flights`) and the model's training
CHECK_STEPS = ("bronze_daily_checks", "silver_daily_checks", "gold_daily_checks", "reference_checks")
ONLINE_STEPS = ("online__flights", "online__flight_features")
MODEL_STEP = "ml__flight_delay_model"


def _range(con, start: str | None, end: str | None) -> tuple[str, str]:
    """The days to measure: the given ones, else every day gold holds."""
    if start and end:
        return start, end
    first, last = con.execute("select min(flight_date), max(flight_date) from gold.flight_features").fetchone()
    return start or first.isoformat(), end or last.isoformat()


def _days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


def checks_floor(warehouse: Path, start: str | None = None, end: str | None = None, repeats: int = 3) -> dict:
    """The checks' statistics for every day of [start, end] by the floor script; each run on a
    fresh read-only connection, so that none reuses another's temp tables."""
    import duckdb

    runs, statistics = [], 0
    for _ in range(repeats):
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            con.execute("set enable_progress_bar = false")
            start, end = _range(con, start, end)
            sql = CHECKS_SCRIPT.read_text().replace("${FIRST}", start).replace("${LAST}", end)
            began = time.perf_counter()
            con.execute(sql)
            runs.append(time.perf_counter() - began)
            tables = [name for (name,) in con.execute("select table_name from duckdb_tables() where temporary").fetchall()
                      if name not in CHECKS_CALENDAR]
            statistics = sum(con.execute(f'select count(*) from "{name}"').fetchone()[0] for name in tables)
            (rows,) = con.execute("select count(*) from gold.flight_features where flight_date between ? and ?",
                                  [start, end]).fetchone()
        finally:
            con.close()
    return {"seconds": min(runs), "runs": runs, "days": _days(start, end), "start": start, "end": end,
            "flights": rows, "statistic_rows": statistics}


def online_floor(warehouse: Path, out: Path, start: str | None = None, end: str | None = None, repeats: int = 3) -> dict:
    """The range's flight records into a fresh SQLite store file in one transaction: the DuckDB
    query that builds them (one for the whole range) and the bulk write, each timed."""
    from tarmac.online.batch import flight_record_json
    from tarmac.online.retrieval import FLIGHT
    from tarmac.online.store import SqliteOnlineStore
    from tarmac.warehouse import read_only

    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(repeats):
        path = out / f"online_store_{i}.sqlite"
        _remove(path)
        SqliteOnlineStore(path).close()  # the store's own file: its tables, index and WAL mode
        with read_only(warehouse) as con:
            start, end = _range(con, start, end)
            after = (date.fromisoformat(end) + timedelta(days=1)).isoformat()
            began = time.perf_counter()
            records = flight_record_json(con, start, after)
            read = time.perf_counter() - began
        began = time.perf_counter()
        # each flight in its day's group, as the online load keys them (a flight_id ends with its
        # local day, YYYYMMDD), in key order, as the store writes them
        rows = sorted((FLIGHT, key, f"{key[-8:-4]}-{key[-4:-2]}-{key[-2:]}", record) for key, record in records.items())
        store = sqlite3.connect(str(path), isolation_level=None)
        store.execute("pragma synchronous = normal")  # the store's setting; WAL mode is the file's
        store.execute("begin")
        store.executemany("insert into records values (?, ?, ?, ?)", rows)
        store.execute("commit")
        store.close()
        write = time.perf_counter() - began
        runs.append({"seconds": read + write, "read_seconds": read, "write_seconds": write,
                     "rows": len(rows), "bytes": path.stat().st_size})
        del records, rows
        _remove(path)
    with contextlib.suppress(OSError):  # the folder, unless it holds something else
        out.rmdir()
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "runs": [r["seconds"] for r in runs], "days": _days(start, end), "start": start, "end": end}


def _remove(path: Path) -> None:
    """A SQLite file and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def model_floor(warehouse: Path, repeats: int = 3) -> dict:
    """`fit_model` alone on the split's training set, read and split as the model asset does."""
    from tarmac.ml import training
    from tarmac.settings.loader import load_settings

    settings = load_settings().ml
    split = settings.split
    began = time.perf_counter()
    frame = training.load_training_set(warehouse, split.first_day.isoformat(), split.last_day.isoformat())
    read = time.perf_counter() - began
    needed = [d for period in (split.train, split.validate_, split.test) for d in period.days()]
    missing = sorted(set(needed) - {d.isoformat() for d in frame["flight_date"].unique()})
    if missing:  # as the backfill, which trains no model then
        return {"skipped": f"{len(missing)} days of the split {split.first_day}..{split.last_day} have no training set"}
    periods = training.split_by_time(frame, split)
    runs, iterations = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        model = training.fit_model(periods, settings.model)
        runs.append(time.perf_counter() - began)
        iterations = int(model.named_steps["classify"].n_iter_)
    return {"seconds": min(runs), "runs": runs, "read_seconds": read, "days": len(needed),
            "rows": {name: len(part) for name, part in periods.items()}, "boosting_iterations": iterations}


def part_floors(workspace: Workspace, start: str, end: str, repeats: int = 3) -> dict:
    """The three floors on a workspace's warehouse after its backfill, each in a process of its own
    (its figures, plus the process's wall time and peak memory)."""
    warehouse = str(workspace.data / "warehouse.duckdb")
    commands = {
        "checks": ["checks", "--start", start, "--end", end],
        "online": ["online", "--start", start, "--end", end, "--out", str(workspace.root / "floor_online")],
        "model": ["model"],
    }
    floors = {}
    for part, args in commands.items():
        measured = workspace.run(f"floor_{part}", "-m", "bench.floor_parts", *args, "--warehouse", warehouse,
                                 "--repeats", str(repeats))
        figures = json.loads(measured.output.strip().splitlines()[-1])
        floors[part] = {**figures, "process_seconds": measured.seconds, "peak_rss_bytes": measured.peak_rss_bytes}
    return floors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["checks", "online", "model"])
    parser.add_argument("--warehouse", type=Path, required=True, help="a materialized warehouse.duckdb (read-only)")
    parser.add_argument("--start", help="the first day (default: gold's first)")
    parser.add_argument("--end", help="the last day (default: gold's last)")
    parser.add_argument("--out", type=Path, help="online: a folder for the store files (each removed once measured)")
    parser.add_argument("--repeats", type=int, default=3, help="timings to take the best of")
    args = parser.parse_args(argv)
    if args.part == "checks":
        result = checks_floor(args.warehouse, args.start, args.end, args.repeats)
    elif args.part == "online":
        if not args.out:
            parser.error("online needs --out")
        result = online_floor(args.warehouse, args.out, args.start, args.end, args.repeats)
    else:
        result = model_floor(args.warehouse, args.repeats)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
