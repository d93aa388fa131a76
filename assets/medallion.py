"""Bronze, silver and gold: every dbt model as a software-defined asset.

The daily-partitioned models are one dbt-backed definition per layer, so that a layer's blocking
quality checks run between it and the next one; each runs one `dbt build` over the run's whole
partition window, so a year's backfill is one invocation per layer. The reference tables are one
more. All write warehouse.duckdb and so share the `duckdb_warehouse` pool, whose limit of one
keeps DuckDB's single writer rule across runs.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from assets.dbt_translator import TarmacDbtTranslator
from assets.partitions import daily_partitions
from resources.dbt import manifest_path
from resources.settings import TarmacPaths
from resources.warehouse import WAREHOUSE_POOL, partition_row_counts


def _build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, dbt_vars: dict[str, Any]
) -> Iterator[Any]:
    """Run `dbt build` for the selected models, then report row counts read from the warehouse.

    The counts are read after dbt has exited: DuckDB allows one process on the file while a
    writer holds it, so nothing may read alongside the dbt process.
    """
    # buildable: a test that reads several layers (row conservation) runs with the last of them
    invocation = dbt.cli(
        ["build", "--vars", json.dumps(dbt_vars), "--indirect-selection", "buildable"],
        context=context,
        raise_on_error=False,
    )
    events = list(invocation.stream())
    keys = {id(e): _asset_key(context, e) for e in events}
    counts = partition_row_counts(
        TarmacPaths.from_env().warehouse,
        [k for k in keys.values() if k is not None],
        (dbt_vars.get("min_date"), dbt_vars.get("max_date")),
    )
    for event in events:
        key = keys[id(event)]
        if key in counts:
            event = event.with_metadata({**event.metadata, **counts[key]})
        yield event
    if not invocation.is_successful():
        raise invocation.get_error() or RuntimeError("dbt build failed")


def _asset_key(context: dg.AssetExecutionContext, event: Any) -> dg.AssetKey | None:
    if isinstance(event, dg.Output):
        return context.asset_key_for_output(event.output_name)
    if isinstance(event, dg.AssetMaterialization):
        return event.asset_key
    return None


def daily_layer_models(layer: str) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=manifest_path(),
        select=f"tag:partitioned,tag:{layer}",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=TarmacDbtTranslator(),
        pool=WAREHOUSE_POOL,
        name=f"daily_{layer}_models",
    )
    def _models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        """The layer's models for the run's partition window [start, end) of local days."""
        start, end = context.partition_time_window
        yield from _build(
            context,
            dbt,
            {"min_date": _day(start), "max_date": _day(end), "load_id": context.run.run_id},
        )

    return _models


daily_bronze_models = daily_layer_models("bronze")
daily_silver_models = daily_layer_models("silver")
daily_gold_models = daily_layer_models("gold")


@dbt_assets(
    manifest=manifest_path(),
    exclude="tag:partitioned",
    dagster_dbt_translator=TarmacDbtTranslator(),
    pool=WAREHOUSE_POOL,
    name="reference_models",
)
def reference_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Planes, airports and airlines: small reference tables rebuilt whole."""
    yield from _build(context, dbt, {"load_id": context.run.run_id})


def _day(moment: datetime) -> str:
    return moment.date().isoformat()
