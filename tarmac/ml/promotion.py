"""The promotion gate: a new model takes the `champion` alias only when the data behind it passed its
blocking checks and it beats both the baseline and the current champion on the same test days,
the champion by more than noise: the lower bound of the gain's paired bootstrap interval over the
test days (tarmac/ml/bootstrap.py) must clear `min_improvement`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from tarmac.ml.bootstrap import LOWER_IS_BETTER, Improvement
from tarmac.settings.ml import PromotionSettings


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def _better(metric: str, challenger: float, incumbent: float, margin: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return challenger < incumbent - margin
    return challenger > incumbent + margin


def decide(
    settings: PromotionSettings,
    challenger: Mapping[str, float],
    baseline: Mapping[str, float],
    champion: Mapping[str, float] | None,
    failed_checks: list[str],
    improvement: Improvement | None = None,
) -> Decision:
    """Every rule that refuses the promotion is named, with its numbers; no rule refusing means promote.

    Against a champion, the gain's bootstrap interval (`improvement`) decides: its lower bound must
    clear `min_improvement`. Without one, the point estimates are compared (the rule's figures
    alone, as for the baseline)."""
    metric = settings.metric
    reasons = []
    if settings.require_upstream_checks and failed_checks:
        shown = ", ".join(failed_checks[:10]) + (f" and {len(failed_checks) - 10} more" if len(failed_checks) > 10 else "")
        reasons.append(f"{len(failed_checks)} upstream blocking check evaluations did not pass: {shown}")
    if settings.require_beats_baseline and not _better(metric, challenger[metric], baseline[metric], 0.0):
        reasons.append(f"test {metric} {challenger[metric]:.4f} does not beat the baseline's {baseline[metric]:.4f}")
    if champion is not None and improvement is not None:
        if not improvement.low > settings.min_improvement:
            reasons.append(f"does not beat the champion by more than noise: {improvement.describe()}, "
                           f"whose lower bound does not clear {settings.min_improvement}")
    elif champion is not None and not _better(metric, challenger[metric], champion[metric], settings.min_improvement):
        reasons.append(
            f"test {metric} {challenger[metric]:.4f} does not beat the champion's {champion[metric]:.4f} "
            f"on the same days by more than {settings.min_improvement}"
        )
    return Decision(promote=not reasons, reasons=reasons)


def blocking_checks(asset_graph, asset_keys: Iterable[dg.AssetKey], upstream: bool = True) -> dict[dg.AssetCheckKey, bool]:
    """The blocking checks of the given assets (and of everything upstream of them), each with
    whether it is evaluated per day (partitioned) or once."""
    keys = dg.AssetSelection.assets(*asset_keys).upstream().resolve(asset_graph) if upstream else set(asset_keys)
    return {
        k: asset_graph.get_check_spec(k).partitions_def is not None
        for k in sorted(asset_graph.get_check_keys_for_assets(keys), key=lambda k: k.to_user_string())
        if asset_graph.get_check_spec(k).blocking
    }


def failed_blocking_checks(instance: dg.DagsterInstance, checks: Mapping[dg.AssetCheckKey, bool], days: list[str]) -> list[str]:
    """`asset:check[day]` for every blocking check whose latest evaluation of a day did not pass.

    A daily check must have been evaluated for every day; an unpartitioned one (reference tables)
    once. A WARN is a pass, as it is for the blocking gate inside a run. A never-evaluated check
    counts as not passed: nothing vouches for that data.
    """
    failed: list[str] = []
    storage = instance.event_log_storage
    for key, partitioned in checks.items():
        wanted = days if partitioned else [None]
        infos = {
            info.partition_key: info
            for info in storage.get_asset_check_partition_info([key], partition_keys=days if partitioned else None)
        }
        failed_latest = [d for d in wanted if d in infos and infos[d].latest_execution_status == FAILED]
        evaluations = latest_evaluations(instance, key, failed_latest, statuses={FAILED}) if failed_latest else {}
        for day in wanted:
            info = infos.get(day)
            label = f"{key.to_user_string()}" + (f"[{day}]" if day else "")
            if info is None:
                failed.append(f"{label} never evaluated")
            elif info.latest_execution_status == FAILED:
                evaluation = evaluations.get(day)
                if evaluation is None or evaluation.severity != dg.AssetCheckSeverity.WARN:
                    failed.append(f"{label} failed")
            elif info.latest_execution_status != AssetCheckExecutionRecordStatus.SUCCEEDED:
                failed.append(f"{label} {info.latest_execution_status.value.lower()}")
    return failed


FAILED = AssetCheckExecutionRecordStatus.FAILED


def latest_evaluations(
    instance: dg.DagsterInstance,
    key: dg.AssetCheckKey,
    partitions: list[str | None],
    statuses: set[AssetCheckExecutionRecordStatus] | None = None,
    page: int = 1000,
) -> dict[str | None, dg.AssetCheckEvaluation]:
    """The latest evaluation of a check for each of these partitions (of those statuses), newest first
    from the check's execution history: it holds the evaluation events in every storage."""
    wanted, found, cursor = set(partitions), {}, None
    while wanted - found.keys():
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=page, cursor=cursor, status=statuses
        )
        for record in records:
            if record.partition in wanted and record.partition not in found and record.event is not None:
                evaluation = record.event.dagster_event.event_specific_data
                if isinstance(evaluation, dg.AssetCheckEvaluation):
                    found[record.partition] = evaluation
        if len(records) < page:
            break
        cursor = records[-1].id
    return found
