"""The floor: gold.flight_features from the landing files by one hand-written DuckDB script.

    python -m bench.floor --data-dir DIR --out floor.duckdb

Runs `bench/floor.sql` over DIR/landing and writes its table `flight_features` to the output file;
prints the rows and seconds as JSON. `compare` checks it cell by cell against a warehouse's
gold.flight_features: a benchmark against a floor that computes something else proves nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

SCRIPT = Path(__file__).with_name("floor.sql")
# gold's columns that record when and by which run a row was computed, not what it holds
LINEAGE_COLUMNS = ("load_id", "computed_at")
# avg() over a window may add the same values in another order: floats are equal within this
FLOAT_TOLERANCE = 1e-9


def floor_sql(landing: Path) -> str:
    return SCRIPT.read_text().replace("${LANDING}", str(landing).replace("'", "''"))


def run_floor(data_dir: Path, out: Path) -> dict:
    """Run the floor script into `out` (replaced); its rows and the seconds it took."""
    out.unlink(missing_ok=True)
    sql = floor_sql(data_dir / "landing")
    con = duckdb.connect(str(out))
    con.execute("set enable_progress_bar = false")
    try:
        started = time.perf_counter()
        con.execute(sql)
        seconds = time.perf_counter() - started
        (rows,) = con.execute("select count(*) from flight_features").fetchone()
    finally:
        con.close()
    return {"rows": rows, "seconds": seconds}


@dataclass
class Comparison:
    floor_rows: int
    pipeline_rows: int
    only_in_floor: int
    only_in_pipeline: int
    columns: int
    differing_cells: dict[str, int] = field(default_factory=dict)
    max_float_difference: float = 0.0

    @property
    def equal(self) -> bool:
        return (
            self.floor_rows == self.pipeline_rows
            and not self.only_in_floor
            and not self.only_in_pipeline
            and not any(self.differing_cells.values())
        )

    def summary(self) -> str:
        if self.equal:
            return (f"equal: {self.floor_rows:,} rows x {self.columns} columns "
                    f"(largest float difference {self.max_float_difference:.1e})")
        differing = ", ".join(f"{c} {n:,}" for c, n in self.differing_cells.items() if n) or "none"
        return (f"NOT EQUAL: floor {self.floor_rows:,} rows, pipeline {self.pipeline_rows:,}; "
                f"{self.only_in_floor:,} flights only in the floor, {self.only_in_pipeline:,} only in the pipeline; "
                f"differing cells by column: {differing}")


def compare(floor_db: Path, warehouse: Path) -> Comparison:
    """The floor's flight_features against the warehouse's gold.flight_features, flight by flight.

    Strings, integers, dates and timestamps must be equal (NULL equals NULL); doubles within
    FLOAT_TOLERANCE. Both files are opened read-only.
    """
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    try:
        con.execute(f"attach '{floor_db}' as floor (read_only)")
        con.execute(f"attach '{warehouse}' as pipeline (read_only)")
        schema = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = 'pipeline' and table_schema = 'gold' and table_name = 'flight_features' "
            "order by ordinal_position"
        ).fetchall()
        columns = [(name, kind) for name, kind in schema if name not in LINEAGE_COLUMNS and name != "flight_id"]
        floor_columns = {name for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_catalog = 'floor' and table_name = 'flight_features'").fetchall()}
        missing = [name for name, _ in columns if name not in floor_columns]
        if missing:
            raise ValueError(f"the floor's flight_features lacks the pipeline's columns {missing}")
        (floor_rows,) = con.execute("select count(*) from floor.flight_features").fetchone()
        (pipeline_rows,) = con.execute("select count(*) from pipeline.gold.flight_features").fetchone()
        only_floor, only_pipeline = con.execute(
            "select count(*) filter (where p.flight_id is null), count(*) filter (where f.flight_id is null) "
            "from floor.flight_features f full join pipeline.gold.flight_features p using (flight_id)"
        ).fetchone()

        def differs(name: str, kind: str) -> str:
            if kind in ("DOUBLE", "FLOAT"):
                return (f"(f.{name} is null) <> (p.{name} is null) "
                        f"or abs(f.{name} - p.{name}) > {FLOAT_TOLERANCE}")
            return f"f.{name} is distinct from p.{name}"

        counts = ", ".join(f"count(*) filter (where {differs(n, k)}) as {n}" for n, k in columns)
        largest = " , ".join(f"coalesce(max(abs(f.{n} - p.{n})), 0)" for n, k in columns if k in ("DOUBLE", "FLOAT"))
        row = con.execute(
            f"select {counts}, greatest({largest}) from floor.flight_features f "
            "join pipeline.gold.flight_features p using (flight_id)"
        ).fetchone()
    finally:
        con.close()
    return Comparison(
        floor_rows, pipeline_rows, only_floor, only_pipeline, len(columns) + 1,
        dict(zip([n for n, _ in columns], row[:-1])), float(row[-1] or 0.0),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder holding landing/")
    parser.add_argument("--out", type=Path, required=True, help="the DuckDB file to write")
    parser.add_argument("--compare", type=Path, help="a warehouse.duckdb to compare the floor's output with")
    args = parser.parse_args(argv)
    result = run_floor(args.data_dir, args.out)
    if args.compare:
        comparison = compare(args.out, args.compare)
        result["comparison"] = {**asdict(comparison), "equal": comparison.equal, "summary": comparison.summary()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
