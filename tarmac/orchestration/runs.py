"""What a run's event log says about its days."""

from __future__ import annotations

import dagster as dg


def held_back_days(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """The days whose blocking checks failed with ERROR in a run that failed for that reason alone,
    each with the first failure's description; empty when the run failed for any other reason
    (a step's error is no day's fault) or no evaluation names a day."""
    failures = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    if any(
        getattr(r.event_log_entry.dagster_event.event_specific_data.error, "cls_name", None)
        != "DagsterAssetCheckFailedError"
        for r in failures
    ):
        return {}
    blocked: dict[str, str] = {}
    cursor = None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000
        )
        for record in page.records:
            evaluation: dg.AssetCheckEvaluation = record.event_log_entry.dagster_event.event_specific_data
            if (
                evaluation.partition
                and evaluation.blocking
                and not evaluation.passed
                and evaluation.severity == dg.AssetCheckSeverity.ERROR
            ):
                blocked.setdefault(
                    evaluation.partition,
                    f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}: {evaluation.description}",
                )
        cursor = page.cursor
        if not page.has_more:
            return blocked
