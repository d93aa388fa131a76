"""Processing freshness of the daily assets: is every day that is due materialized?

Freshness has two halves (docs/design.md#checks). The event-time half (is a landed day's data
complete up to midnight?) is the `freshness` check of the bronze tables. This is the processing
half: by each tick of `processing_freshness.deadline_cron` (local time), the day that ended before
it must be materialized, and so must every earlier day since the clock's first day: a run that
never ran fails it (and, on the replay clock, a landing day that never arrives).

It is Dagster's time-partition freshness check with one change that 2013 data needs: "now" is the
pipeline clock (tarmac/clock.py), so a replay of 2013 is judged against the replayed moment, and
otherwise against the landing zone's deliveries: only delivered days are due, the latest one by
its deadline after its files landed, so a backfill of two weeks is not red for the rest of 2013.
It reads only the Dagster instance, never the warehouse. It runs in every run that materializes
its asset, and `partition_freshness_sensor` runs it when a deadline passes with no run at all.

The check is about the asset, not a day, yet Dagster may plan a check on a partitioned asset once
per partition of a run over days (it does in a run that materializes the asset), and would leave
those plans open forever if the run answered once. So the step answers what its run planned: the
asset's verdict once, and for each planned day (tied to the day's materialization,
assets/quality/evaluations.py).
"""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._utils.schedules import get_latest_completed_cron_tick, get_next_cron_tick

from assets.partitions import partition_days
from assets.quality.evaluations import daily_evaluations, materialization_targets, planned_partitions
from resources.config import TarmacConfig
from tarmac.clock import Clock, pipeline_clock
from tarmac.paths import FIRST_DAY, LAST_DAY, LOCAL_TIMEZONE
from tarmac.settings.loader import ProcessingFreshnessSettings, load_settings

CHECK_NAME = "partition_freshness"
FRESH_UNTIL = "tarmac/fresh_until"  # wall time at which the outcome can next change by time alone
MAX_LISTED = 20


def due_days(clock: Clock, deadline_cron: str) -> tuple[list[str], datetime, datetime]:
    """The days that must be materialized now, the deadline that made them due, and the next one."""
    now = clock.now().astimezone(ZoneInfo(LOCAL_TIMEZONE))
    deadline = get_latest_completed_cron_tick(deadline_cron, now, LOCAL_TIMEZONE)
    following = get_next_cron_tick(deadline_cron, now, LOCAL_TIMEZONE)
    # a day is due once its window [D, D+1) has ended by the deadline
    last_due = min(deadline.date() - timedelta(days=1) if deadline else date.min, date.fromisoformat(LAST_DAY))
    if clock.replay:
        first = date.fromisoformat(clock.replay.data_start[:10]) - timedelta(days=1)
    elif clock.deliveries is not None:
        if not clock.deliveries.days:
            return [], deadline, following  # nothing delivered, nothing due
        first = date.fromisoformat(min(clock.deliveries.days))
    else:
        first = date.fromisoformat(FIRST_DAY)
    first = max(first, date.fromisoformat(FIRST_DAY))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last_due - first).days + 1)]
    if clock.replay is None and clock.deliveries is not None:
        days = [d for d in days if d in clock.deliveries.days]  # a day never delivered is upstream's gap
    return days, deadline, following


def evaluate(
    instance: dg.DagsterInstance, key: dg.AssetKey, clock: Clock, settings: ProcessingFreshnessSettings
) -> dg.AssetCheckResult:
    days, deadline, following = due_days(clock, settings.deadline_cron)
    materialized = instance.get_materialized_partitions(key)
    missing = [d for d in days if d not in materialized]
    latest = max(materialized, default=None)
    metadata = {
        "clock": dg.MetadataValue.text(clock.mode),
        "clock_now": dg.MetadataValue.text(clock.now().astimezone(ZoneInfo(LOCAL_TIMEZONE)).isoformat(timespec="minutes")),
        "deadline": dg.MetadataValue.text(deadline.isoformat(timespec="minutes") if deadline else "none yet"),
        "deadline_cron": dg.MetadataValue.text(settings.deadline_cron),
        "expected_latest_partition": dg.MetadataValue.text(days[-1] if days else "none due yet"),
        "latest_materialized_partition": dg.MetadataValue.text(latest or "none"),
        "due_partitions": dg.MetadataValue.int(len(days)),
        "missing_partitions": dg.MetadataValue.int(len(missing)),
        FRESH_UNTIL: dg.MetadataValue.timestamp(clock.wall_time_of(following)),
    }
    if missing:
        metadata["missing"] = dg.MetadataValue.json(missing[:MAX_LISTED])
    severity = dg.AssetCheckSeverity.ERROR if settings.severity == "error" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=not missing,
        severity=severity,
        description=(
            f"{len(missing)} of {len(days)} due partitions are not materialized (first: {missing[0]})"
            if missing
            else f"every due partition is materialized, up to {days[-1] if days else 'none due yet'}"
        ),
        metadata=metadata,
    )


def partition_freshness_checks() -> dg.AssetChecksDefinition:
    settings = load_settings().processing_freshness
    specs = [
        dg.AssetCheckSpec(
            name=CHECK_NAME,
            asset=dg.AssetKey.from_user_string(asset),
            description=f"Processing freshness: every day due by the '{settings.deadline_cron}' deadline is materialized.",
            blocking=False,
        )
        for asset in settings.daily_assets
    ]

    @dg.multi_asset_check(specs=specs, name="partition_freshness_checks", can_subset=True)
    def _checks(
        context: dg.AssetCheckExecutionContext, tarmac: TarmacConfig
    ) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output]:
        clock = pipeline_clock(tarmac.paths)
        current = tarmac.settings.processing_freshness
        assets_def = context.op_execution_context.assets_def
        targets = materialization_targets(context.instance, partition_days(context.run.tags) or ())
        for spec in specs:
            if spec.key not in context.selected_asset_check_keys:
                continue
            result = evaluate(context.instance, spec.asset_key, clock, current)
            days = sorted(d for d in planned_partitions(context.instance, spec.key, context.run.run_id) if d)
            if not days:
                yield result
                continue
            # the planned days, then the asset as a whole, which the check's page shows as its latest
            yield from (e for e in daily_evaluations(
                targets(spec.asset_key), assets_def.get_output_name_for_asset_check_key(spec.key), spec.key,
                spec.blocking,
                ((day, result.passed, result.severity, result.description, result.metadata) for day in days),
            ) if not isinstance(e, dg.Output))
            yield result

    return _checks


partition_freshness = partition_freshness_checks()
