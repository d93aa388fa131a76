"""Freshness-check sensor: runs the partition freshness checks when time alone can change them.

Every run that materializes a daily asset evaluates its freshness check too. What no run notices
is a day that never arrives: its deadline passes in silence. Like Dagster's freshness-check sensor,
this one requests a check-only run for each check that has never run, or whose last result passed
and whose `fresh_until` (the next deadline, in wall time, from the pipeline clock) has passed. A
failed check is left to the run that brings its asset back, which evaluates it anyway.
"""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.quality.partition_freshness import FRESH_UNTIL, partition_freshness
from tarmac.settings.loader import load_settings

RUNNING = AssetCheckExecutionRecordStatus.PLANNED


def due_checks(instance: dg.DagsterInstance, now: float) -> list[dg.AssetCheckKey]:
    keys = list(partition_freshness.check_keys)
    summaries = instance.event_log_storage.get_asset_check_summary_records(keys)
    due = []
    for key in keys:
        summary = summaries[key]
        last = summary.last_check_execution_record
        if last is None:
            due.append(key)
            continue
        completed = summary.last_completed_check_execution_record
        if last.status == RUNNING or completed is None:
            continue  # an evaluation is on its way
        evaluation = completed.event.asset_check_evaluation if completed.event else None
        if evaluation is None or not evaluation.passed:
            continue
        fresh_until = evaluation.metadata.get(FRESH_UNTIL)
        if fresh_until is None or now >= fresh_until.value:
            due.append(key)
    return due


@dg.sensor(
    name="partition_freshness_sensor",
    minimum_interval_seconds=load_settings().sensors.freshness_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.checks(partition_freshness),
    description=__doc__.split("\n\n")[0],
)
def partition_freshness_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    import time

    due = due_checks(context.instance, time.time())
    if not due:
        return dg.SkipReason("no freshness check can have changed since its last evaluation")
    return dg.RunRequest(asset_selection=[], asset_check_keys=due, tags={"tarmac/trigger": "freshness"})
