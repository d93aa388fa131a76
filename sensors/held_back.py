"""Held-back days: a run stopped by one day's blocking checks is run again for its other days.

Dagster gates a step as a whole: when one day of a run's range fails a blocking check (its landing
file cannot be read, say), the run's later layers are skipped for every day of the range and the
run fails. This sensor reads each failed run, and when its only failures are blocking checks that
name days, requests the run's assets again for every range of consecutive days that passed: one
bad day fails that day only, whether the run came from a UI backfill or the landing sensor. (`make
backfill` does the same in-process for its own runs, so runs carrying a backfill process's tag are
left to it.) A re-run that fails on another day is split again the same way.
"""

from __future__ import annotations

import dagster as dg

from assets.partitions import RANGE_END, RANGE_START, partition_days
from sensors.landing import TRIGGER_TAG
from tarmac.days import contiguous_ranges
from tarmac.orchestration.recovery import command_process
from tarmac.orchestration.runs import held_back_days
from tarmac.settings.loader import load_settings

BATCH = 200


def rerun_requests(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.RunRequest]:
    """The runs that materialize a failed run's days again, but for the days its blocking checks
    held back; none when it failed for another reason, or covered a single day."""
    days = partition_days(run.tags)
    if not days or len(days) < 2 or command_process(run):
        return []
    blocked = held_back_days(instance, run.run_id)
    if not blocked:
        return []
    # what the run set out to materialize (a job run, unlike a UI or sensor run, names no selection)
    planned = run.asset_selection or {
        r.event_log_entry.dagster_event.asset_key
        for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=100_000
        ).records
    }
    return [
        dg.RunRequest(
            run_key=f"held-back:{run.run_id}:{first}:{last}",
            asset_selection=sorted(planned, key=lambda k: k.to_user_string()),
            tags={RANGE_START: first, RANGE_END: last, TRIGGER_TAG: "held_back_rerun"},
        )
        for first, last in contiguous_ranges(d for d in days if d not in blocked)
    ]


@dg.sensor(
    name="held_back_days_sensor",
    target=dg.AssetSelection.all(),  # what it may request; each run request narrows it
    minimum_interval_seconds=load_settings().sensors.refresh_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=__doc__.split("\n\n")[0],
)
def held_back_days_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    failures = dg.RunStatusChangeRecordsFilter(
        dg.DagsterEventType.RUN_FAILURE, after_storage_id=int(context.cursor) if context.cursor else None
    )
    records = instance.fetch_run_status_changes(failures, BATCH, ascending=True).records
    if not records:
        return dg.SensorResult(skip_reason="no failed run since the last tick", cursor=context.cursor)
    requests = []
    for record in records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        if run is not None:
            requests.extend(rerun_requests(instance, run))
    cursor = str(records[-1].storage_id)
    if not requests:
        return dg.SensorResult(skip_reason=f"{len(records)} failed runs, none held back by one day's checks",
                               cursor=cursor)
    context.log.info("the days that passed, again: " + ", ".join(
        f"{r.tags[RANGE_START]}..{r.tags[RANGE_END]}" for r in requests))
    return dg.SensorResult(run_requests=requests, cursor=cursor)
