"""Check results per day, as Dagster's partition status for a check reads them.

A run over a range of days (a single-run backfill) evaluates each partitioned check once per day.
Dagster shows a day of a check as passed or failed only when that day's evaluation names the
materialization it judged (its target): a result without one counts as out of date once the day
is materialized, and the day reads "Missing". A check step's returned `AssetCheckResult` names
one partition at most, so these evaluations are yielded one per day, each with its day's latest
materialization as target, followed by the check's output, which is what the next layer's step
waits for. Failed blocking evaluations with ERROR severity fail the step, as a result would.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

Target = AssetCheckEvaluationTargetMaterializationData


def latest_materializations(instance: dg.DagsterInstance, key: dg.AssetKey, days: Iterable[str]) -> dict[str, Target]:
    """Each day's latest materialization of `key` (the one the check judged), by day."""
    ids = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(days))
    if not ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=list(ids.values())), limit=len(ids)
    ).records
    return {
        r.partition_key: Target(storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp)
        for r in records
        if r.partition_key is not None
    }


def materialization_targets(
    instance: dg.DagsterInstance, days: Iterable[str]
) -> Callable[[dg.AssetKey], dict[str, Target]]:
    """The days' latest materializations of an asset, looked up once per asset: a step's checks
    (a dbt layer has dozens of tests) share them. Ask only once the step's own materializations of
    the asset have been recorded."""
    days = tuple(days)
    return cache(lambda key: latest_materializations(instance, key, days))


def daily_evaluations(
    targets: Mapping[str, Target],
    output_name: str,
    check: dg.AssetCheckKey,
    blocking: bool,
    results: Iterable[tuple[str, bool, dg.AssetCheckSeverity, str | None, Mapping[str, Any]]],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation per (day, passed, severity, description, metadata), each tied to the day's
    latest materialization in `targets`, then the check's output."""
    for day, passed, severity, description, metadata in results:
        yield dg.AssetCheckEvaluation(
            asset_key=check.asset_key, check_name=check.name, passed=passed, severity=severity,
            description=description, metadata=metadata, blocking=blocking, partition=day,
            target_materialization_data=targets.get(day),
        )
    yield dg.Output(None, output_name=output_name)


def planned_partitions(instance: dg.DagsterInstance, check: dg.AssetCheckKey, run_id: str) -> set[str | None]:
    """The partitions (None: the check as a whole) this run planned to evaluate `check` for and has
    not evaluated yet: what its step must answer so that no plan is left open after the run."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=10_000, status={AssetCheckExecutionRecordStatus.PLANNED}
    )
    return {r.partition for r in records if r.run_id == run_id}
