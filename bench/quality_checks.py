"""Benchmark: the cost of the quality checks on a materialized warehouse.

    uv run python -m bench.quality_checks [--days N]

Prints (1) the time of every daily check over every materialized day, per check, evaluated exactly
as the check steps do, and (2) Pandera's schema validation of gold.flight_features in DuckDB
(ibis backend, in-database) versus the same contract on the table pulled into pandas.
Reads TARMAC_DATA_DIR's warehouse read-only; run `make backfill` first.
"""

import argparse
import time
from collections import defaultdict

import dagster as dg
import ibis

from assets.quality.checks import DAILY_CHECKS, CheckInputs, evaluate_days
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from tarmac.quality.contracts import GoldFlightFeatures
from tarmac.warehouse import read_only


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=0, help="only the first N days (0: all)")
    args = parser.parse_args()
    config = TarmacConfig()  # the environment's data dir and settings, as a check step gets them
    inputs = CheckInputs.from_resources(config, ModelRegistryResource(config=config))
    with read_only(inputs.paths.warehouse) as con:
        days = [d.isoformat() for (d,) in con.execute(
            "select distinct flight_date from gold.flight_features order by 1").fetchall()]
        days = days[: args.days] if args.days else days
        warehouse = ibis.duckdb.from_connection(con.cursor())
        seconds: dict[str, float] = defaultdict(float)
        started = time.perf_counter()
        tables = set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
        for layer in DAILY_CHECKS.values():
            for table, checks in layer.items():
                if table[0] in ("bronze", "silver", "gold") and table not in tables:
                    print(f"  {'/'.join(table)}: not materialized, its checks skipped ({', '.join(checks)})")
                    continue
                for check in checks:
                    t = time.perf_counter()
                    # as a single-run backfill's check steps do
                    evaluate_days(warehouse, con, dg.AssetKey(list(table)), check, days, inputs)
                    seconds[check] += time.perf_counter() - t
        total = time.perf_counter() - started
        print(f"all daily checks, {len(days)} days: {total:.1f} s ({total / len(days) * 1000:.0f} ms per day)")
        for check, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
            print(f"  {check:24s} {s:7.1f} s")

        gold = warehouse.table("flight_features", database="gold")
        rows = gold.count().execute()
        t = time.perf_counter()
        GoldFlightFeatures.validate(gold, lazy=True)
        in_duckdb = time.perf_counter() - t
        import pandera.pandas as ppd

        t = time.perf_counter()
        frame = con.execute("select * from gold.flight_features").df()
        fetched = time.perf_counter() - t
        pandas_contract = _pandas_contract(ppd)
        t = time.perf_counter()
        pandas_contract.validate(frame, lazy=True)
        in_pandas = time.perf_counter() - t
        print(f"pandera on gold.flight_features ({rows:,} rows): DuckDB/ibis {in_duckdb:.2f} s; "
              f"pandas {fetched + in_pandas:.2f} s (fetch {fetched:.2f} s + validate {in_pandas:.2f} s); "
              f"ratio pandas/DuckDB {(fetched + in_pandas) / in_duckdb:.1f}x; "
              f"pandas frame {frame.memory_usage(deep=True).sum() / 1e6:.0f} MB in memory")


def _pandas_contract(ppd):
    """The gold contract's columns and checks, as a pandas schema (types checked by the ibis run)."""
    schema = GoldFlightFeatures.to_schema()
    return ppd.DataFrameSchema(
        {
            name: ppd.Column(
                nullable=column.nullable,
                unique=column.unique,
                checks=[getattr(ppd.Check, c.name)(*c.statistics.values()) for c in column.checks],
            )
            for name, column in schema.columns.items()
        },
        strict=True,
    )


if __name__ == "__main__":
    main()
