"""Bronze, silver and gold: every dbt model as a software-defined asset.

The daily-partitioned models are one dbt-backed definition per layer, so that a layer's blocking
quality checks run between it and the next one; each runs one `dbt build` over the run's whole
partition window, so a year's backfill is one invocation per layer. The reference tables are one
more. All write the warehouse's working copy (`writer/warehouse.duckdb`, published after each step)
and so share the `duckdb_warehouse` pool, whose limit of one
keeps DuckDB's single writer rule across runs.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster_dbt import dbt_assets

from assets.dbt_translator import TarmacDbtTranslator
from assets.partitions import daily_partitions
from assets.quality.evaluations import daily_evaluations, materialization_targets
from resources.dbt import DbtBuildResource
from tarmac.dbt_project import manifest_path
from tarmac.paths import LANDING_DATASETS
from tarmac.settings.loader import load_settings
from tarmac.warehouse import WAREHOUSE_POOL, loaded_landing_files, partition_row_counts

# Metadata key of a landing file's materialization: the md5 of its content as bronze loaded it.
LANDING_CHECKSUM = "tarmac/landing_md5"


def _build(context: dg.AssetExecutionContext, dbt: DbtBuildResource, dbt_vars: dict[str, Any]) -> Iterator[Any]:
    """Run `dbt build` for the selected models, then report row counts read from the warehouse
    (each day's materialization carries its day's `dagster/row_count`) and each dbt test of a
    daily model as one result per day of the run.

    The counts are read from the snapshot dbt's step published. A failed build is undone as a
    whole (its step's writes are rolled back), so it reports no materialization either: the
    warehouse and Dagster agree that nothing of the step happened.
    """
    with dbt.build(context, dbt_vars) as invocation:
        events = list(invocation.stream())
    if not invocation.is_successful():
        raise invocation.get_error() or RuntimeError("dbt build failed")
    keys = {id(e): _asset_key(context, e) for e in events}
    counts = partition_row_counts(
        dbt.warehouse.snapshot,
        [k for k in keys.values() if k is not None],
        (dbt_vars.get("min_date"), dbt_vars.get("max_date")),
    )
    targets = materialization_targets(context.instance, context.partition_keys if context.has_partition_key_range else ())
    # before bronze's own events, so that bronze records the files' versions as its inputs' and
    # is not shown stale against what it has just loaded
    _record_landing(context, dbt.warehouse.snapshot, [k for k in keys.values() if k is not None], dbt_vars)
    for event in events:
        key = keys[id(event)]
        if key in counts:
            metadata, per_day = counts[key]
            event = event.with_metadata({**event.metadata, **metadata})
            for day in context.partition_keys if per_day is not None else ():  # each day's own rows
                rows = dg.MetadataValue.int(per_day.get(day, 0))
                context.add_asset_metadata({"dagster/row_count": rows}, asset_key=key, partition_key=day)
        if isinstance(event, dg.AssetCheckResult) and context.has_partition_key_range:
            yield from _test_per_day(context, event, targets)
            continue
        yield event


def _test_per_day(
    context: dg.AssetExecutionContext, result: dg.AssetCheckResult, targets: Callable[[dg.AssetKey], Mapping[str, Any]]
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """A dbt test of a partitioned model ran once over the run's window: every day of the window
    gets its result, tied to the day's materialization, so no day of the test is left planned."""
    key = dg.AssetCheckKey(result.asset_key, result.check_name)
    spec = context.assets_def.get_spec_for_check_key(key)
    window = f"{context.partition_keys[0]}..{context.partition_keys[-1]}"
    yield from daily_evaluations(
        targets(key.asset_key), context.assets_def.get_output_name_for_asset_check_key(key), key, spec.blocking,
        (
            (day, result.passed, result.severity, f"dbt test over the run's days {window}",
             {**result.metadata, "dbt_test_window": dg.MetadataValue.text(window)})
            for day in context.partition_keys
        ),
    )


def _record_landing(
    context: dg.AssetExecutionContext, snapshot: Path, keys: list[dg.AssetKey], dbt_vars: dict[str, Any]
) -> None:
    """Report each landing file bronze loaded as a materialization of its landing asset partition,
    with the file's md5 as metadata and as its data version.

    The landing assets are external: Dagster never writes them, and a materialization reported
    for an external asset is how Dagster records that its data was delivered (its partitions then
    read as materialized in the UI; observations would leave them "Missing"). It is also the
    landing zone's ledger: the landing sensor compares it with the files on disk, so a file is
    processed once whoever launched the run (sensor, UI backfill, command line), and a corrected
    file, whose checksum differs, is processed again.
    """
    window = (dbt_vars.get("min_date"), dbt_vars.get("max_date"))
    reported = set()
    for key, source_file, checksum, rows in loaded_landing_files(snapshot, set(keys), window):
        partition = Path(source_file).stem if key.path[1] in LANDING_DATASETS else None
        landing = dg.AssetKey(["landing", key.path[1]])
        context.log_event(
            dg.AssetMaterialization(
                asset_key=landing,
                partition=partition,
                description=f"{source_file} as bronze loaded it",
                metadata={LANDING_CHECKSUM: checksum, "file": source_file, "rows": rows},
                tags={DATA_VERSION_TAG: checksum},
            )
        )
        reported.add(landing)
    # Dagster read the inputs' versions when the step started; bronze's provenance must name the
    # files it has just loaded, or the UI would show it stale against them
    step = context.op_execution_context._step_execution_context
    for landing in reported:
        step.wipe_input_asset_version_info(landing)


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
    def _models(context: dg.AssetExecutionContext, dbt: DbtBuildResource):
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
def reference_models(context: dg.AssetExecutionContext, dbt: DbtBuildResource):
    """Planes, airports and airlines: small reference tables rebuilt whole."""
    yield from _build(context, dbt, {"load_id": context.run.run_id})


def _reference_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Reference tables are not partitioned, so Dagster's asset freshness policy fits them."""
    settings = load_settings().processing_freshness
    policy = dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=settings.reference_fail_window_days),
        warn_window=timedelta(days=settings.reference_warn_window_days),
    )
    return spec.replace_attributes(freshness_policy=policy)


reference_models = reference_models.map_asset_specs(_reference_freshness)


def _day(moment: datetime) -> str:
    return moment.date().isoformat()
