"""Downstream refresh: when a day changes, refresh the later days whose look-back windows read it.

`gold.flight_features` for day D reads silver flights of D-10..D and weather of D-1..D (the dbt
models' `partition_lookback_days`, which the asset graph carries as time-window partition
mappings). A run that rebuilds silver for a day (a corrected landing file) rebuilds gold for that
same day, but the later gold days that read it are stale. Dagster's eager automation condition only
considers the latest time partition and every 2013 day is historical, so this sensor does the
propagation over the asset graph itself:

- it reads new materializations of every asset that a daily asset depends on through a look-back
  (or of an unpartitioned asset, such as a reference table, that every day depends on);
- it waits until the run that made them has finished, and skips a partition whose blocking checks
  did not all pass in that run: bad data never propagates;
- it targets the downstream partitions that have been materialized before, but not since the
  upstream change (a day that has never been built is built by its own landing run; a day rebuilt
  later, in the same run or another, is already fresh), and that no queued run already covers;
- it requests one single-run backfill per range of consecutive days, over those assets and every
  daily asset downstream of them, so whatever sits on top of gold is refreshed in the same run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

import dagster as dg
from dagster._core.definitions.partitions.mapping import IdentityPartitionMapping, TimeWindowPartitionMapping

from assets.ml.model import ML_GROUP
from assets.partitions import RANGE_END, RANGE_START, partition_days
from sensors.landing import TRIGGER_TAG, contiguous_ranges
from tarmac.settings.loader import load_settings

BATCH = 1000
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
NOT_STARTED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def _is_identity(mapping: dg.PartitionMapping | None) -> bool:
    return mapping is None or isinstance(mapping, IdentityPartitionMapping) or (
        isinstance(mapping, TimeWindowPartitionMapping) and mapping.start_offset == 0 and mapping.end_offset == 0
    )


def lookback_children(asset_graph) -> dict[dg.AssetKey, list[dg.AssetKey]]:
    """Upstream asset -> the daily assets that read more than its same day (look-back or whole table)."""
    out: dict[dg.AssetKey, list[dg.AssetKey]] = defaultdict(list)
    for key in asset_graph.materializable_asset_keys:
        node = asset_graph.get(key)
        if not node.is_partitioned or node.group_name == ML_GROUP:  # batch_scoring_sensor's
            continue
        for parent in node.parent_keys:
            parent_node = asset_graph.get(parent)
            if not parent_node.is_materializable:
                continue
            if not parent_node.is_partitioned or not _is_identity(asset_graph.get_partition_mapping(key, parent)):
                out[parent].append(key)
    return dict(out)


def daily_downstream(asset_graph, roots: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    """The roots and every daily-partitioned pipeline asset downstream of them (predictions are the
    batch scoring sensor's: it scores a day once its features are fresh)."""
    keys = dg.AssetSelection.assets(*roots).downstream().resolve(asset_graph)
    nodes = (asset_graph.get(k) for k in keys)
    return sorted(
        (n.key for n in nodes if n.is_materializable and n.is_partitioned and n.group_name != ML_GROUP),
        key=lambda k: k.to_user_string(),
    )


class RunFacts:
    """Per-run facts the sensor needs, fetched once per tick."""

    def __init__(self, instance: dg.DagsterInstance):
        self._instance = instance
        self._status: dict[str, dg.DagsterRunStatus | None] = {}
        self._checks: dict[str, dict[tuple[dg.AssetCheckKey, str | None], bool]] = {}

    def finished(self, run_id: str) -> bool:
        if run_id not in self._status:
            run = self._instance.get_run_by_id(run_id)
            self._status[run_id] = run.status if run else None
        return self._status[run_id] in FINISHED or self._status[run_id] is None

    def check_passed(self, run_id: str, check: dg.AssetCheckKey, partition: str | None) -> bool:
        """Whether the run evaluated `check` for `partition` and it passed (a WARN still passes the gate)."""
        if run_id not in self._checks:
            outcomes: dict[tuple[dg.AssetCheckKey, str | None], bool] = {}
            cursor = None
            while True:
                page = self._instance.get_records_for_run(
                    run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=BATCH
                )
                for record in page.records:
                    evaluation: dg.AssetCheckEvaluation = record.event_log_entry.dagster_event.event_specific_data
                    ok = evaluation.passed or evaluation.severity == dg.AssetCheckSeverity.WARN
                    outcomes[(evaluation.asset_check_key, evaluation.partition)] = ok
                cursor = page.cursor
                if not page.has_more:
                    break
            self._checks[run_id] = outcomes
        outcomes = self._checks[run_id]
        # a one-day run's result may carry the run's partition, or none
        return outcomes.get((check, partition), outcomes.get((check, None), False))


def run_coverage(
    instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus] = NOT_STARTED
) -> set[tuple[dg.AssetKey, str]]:
    """(asset, day) pairs that runs in these states (by default: not started yet) will build: no
    need to ask again."""
    covered: set[tuple[dg.AssetKey, str]] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=statuses)):
        days = partition_days(run.tags)
        if days is None:
            continue
        covered.update((key, day) for key in run.asset_selection or () for day in days)
    return covered


@dg.sensor(
    name="downstream_refresh_sensor",
    target=dg.AssetSelection.all(),  # what it may request; each run request narrows it
    minimum_interval_seconds=load_settings().sensors.refresh_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=__doc__.split("\n\n")[0],
)
def downstream_refresh_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    asset_graph = context.repository_def.asset_graph
    children = lookback_children(asset_graph)
    state = json.loads(context.cursor) if context.cursor else {}
    after = state.get("after")
    if after is None:
        # a new sensor takes the instance as consistent up to now and propagates what comes next
        latest = [
            r.storage_id
            for key in children
            for r in instance.fetch_materializations(key, limit=1).records
        ]
        return dg.SensorResult(
            skip_reason="started: watching changes from now on",
            cursor=json.dumps({"after": max(latest, default=0)}),
        )

    records, horizon = [], None
    for key in children:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=BATCH, ascending=True
        )
        records.extend(page.records)
        if page.has_more:  # an asset with more to read bounds how far this tick may go for all
            last = page.records[-1].storage_id
            horizon = last if horizon is None else min(horizon, last)
    records = sorted((r for r in records if horizon is None or r.storage_id <= horizon), key=lambda r: r.storage_id)
    runs = RunFacts(instance)
    targets: dict[dg.AssetKey, set[str]] = defaultdict(set)
    latest_built: dict[dg.AssetKey, dict[str, int]] = {}
    held_back: list[str] = []
    for record in records:
        if not runs.finished(record.run_id):
            break  # its checks are not in yet: take it (and everything after it) next tick
        upstream = record.asset_key
        partition = record.partition_key
        blocking = [
            k for k in asset_graph.get_check_keys_for_assets({upstream}) if asset_graph.get_check_spec(k).blocking
        ]
        if not all(runs.check_passed(record.run_id, k, partition) for k in blocking):
            held_back.append(f"{upstream.to_user_string()}[{partition}]")
        else:
            for child in children[upstream]:
                child_def = asset_graph.get(child).partitions_def
                if partition is None:
                    downstream = set(child_def.get_partition_keys())
                else:
                    mapping = asset_graph.get_partition_mapping(child, upstream)
                    upstream_def = asset_graph.get(upstream).partitions_def
                    subset = upstream_def.empty_subset().with_partition_keys([partition])
                    downstream = set(
                        mapping.get_downstream_partitions_for_partitions(subset, upstream_def, child_def).get_partition_keys()
                    )
                if child not in latest_built:
                    latest_built[child] = dict(
                        instance.event_log_storage.get_latest_storage_id_by_partition(
                            child, dg.DagsterEventType.ASSET_MATERIALIZATION
                        )
                    )
                built = latest_built[child]
                targets[child].update(q for q in downstream if q in built and built[q] < record.storage_id)
        after = record.storage_id

    if held_back:
        context.log.warning(f"not propagated, blocking checks did not pass: {', '.join(held_back[:20])}")
    covered = run_coverage(instance) if targets else set()
    days = {q for child, qs in targets.items() for q in qs if (child, q) not in covered}
    cursor = json.dumps({"after": after})
    if not days:
        return dg.SensorResult(skip_reason="no downstream partition is stale", cursor=cursor)
    selection = daily_downstream(asset_graph, [c for c, qs in targets.items() if qs])
    requests = [
        dg.RunRequest(
            run_key=f"refresh:{first}:{last}:{after}",
            asset_selection=selection,
            tags={RANGE_START: first, RANGE_END: last, TRIGGER_TAG: "downstream_refresh"},
        )
        for first, last in contiguous_ranges(days)
    ]
    context.log.info(
        f"refreshing {len(days)} partitions of {', '.join(k.to_user_string() for k in selection)}: "
        + ", ".join(f"{r.tags[RANGE_START]}..{r.tags[RANGE_END]}" for r in requests)
    )
    return dg.SensorResult(run_requests=requests, cursor=cursor)
