"""Alert sink: every failed asset check and every failed run becomes a JSON line
(docs/design.md#checks).

No failure may be silent: a WARN check does not fail its run and a failed run may go unnoticed,
so this sensor reads both from the instance's event log after a storage-id cursor and appends
them to `<data dir>/<alerts.jsonl_path>`, optionally POSTing each one to `alerts.webhook_url`.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from resources.config import TarmacConfig
from tarmac.settings.loader import AlertSettings, load_settings

BATCH = 1000  # records per event type per tick: a first tick on a long history stays bounded
MAX_TEXT = 4000  # characters of one metadata value kept in an alert


def _plain(value: Any) -> Any:
    """A metadata value as plain JSON: text, numbers, booleans as they are, anything else as str."""
    raw = value.value if isinstance(value, dg.MetadataValue) else value
    if raw is None or isinstance(raw, (int, bool)) or (isinstance(raw, float) and math.isfinite(raw)):
        return raw
    text = str(raw)
    # an inline image (the drift report) is no alert text: its file path is in the same metadata
    return text if len(text) <= MAX_TEXT else f"<{len(text):,} characters left out>"


def _alert(instance: dg.DagsterInstance, storage_id: int, entry: dg.EventLogEntry) -> dict[str, Any] | None:
    event = entry.dagster_event
    alert: dict[str, Any] = {
        "storage_id": storage_id,  # lets a consumer drop an at-least-once duplicate
        "run_id": entry.run_id,
        "job_name": entry.job_name,
        "timestamp": datetime.fromtimestamp(entry.timestamp, tz=UTC).isoformat(),
    }
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation: dg.AssetCheckEvaluation = event.event_specific_data
        if evaluation.passed:
            return None
        return alert | {
            "kind": "check_failed",
            "severity": evaluation.severity.value,
            "asset_key": evaluation.asset_key.to_user_string(),
            "check_name": evaluation.check_name,
            "partition": evaluation.partition,
            "description": evaluation.description,
            "metadata": {key: _plain(value) for key, value in evaluation.metadata.items()},
        }
    # RUN_FAILURE: the run holds partition and targeted assets, the error chain holds the cause.
    run = instance.get_run_by_id(entry.run_id)
    assets = sorted(key.to_user_string() for key in (run and run.asset_selection) or ())
    causes, error = [], getattr(event.event_specific_data, "error", None)
    while error is not None:
        causes.append(error.message.strip())
        error = error.cause
    return alert | {
        "kind": "run_failed",
        "severity": "ERROR",
        "asset_key": ", ".join(assets) or None,
        "check_name": None,
        "partition": run.tags.get("dagster/partition") if run else None,
        "description": event.message,
        "message": " <- ".join(causes) or event.message,
    }


def collect_alerts(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Alerts for failures stored after `cursor` (a storage id), and the cursor to resume from."""
    after = int(cursor) if cursor else -1
    # Both reads page by the cross-run index's storage ids (SQLite's index shard, Postgres's table).
    # instance.get_event_records is deprecated, and on run-sharded SQLite it refuses such a cursor
    # for check evaluations: read them the way Dagster's own event-log consumer daemon does.
    checks = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after, dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=BATCH
    )
    runs = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_FAILURE, after_storage_id=after), BATCH, ascending=True
    ).records
    batches = [sorted(checks.items()), [(r.storage_id, r.event_log_entry) for r in runs]]
    # A full batch may have more behind it: stop both streams where the first full one ends,
    # so one storage-id cursor neither skips nor repeats a record of the other stream.
    horizon = min((batch[-1][0] for batch in batches if len(batch) == BATCH), default=math.inf)
    records = sorted((pair for batch in batches for pair in batch if pair[0] <= horizon), key=lambda p: p[0])
    alerts = [a for a in (_alert(instance, sid, entry) for sid, entry in records) if a is not None]
    return alerts, str(records[-1][0]) if records else cursor


def write_alerts(alerts: list[dict[str, Any]], settings: AlertSettings, data_dir: Path) -> tuple[Path, list[str]]:
    """Append alerts to the JSONL sink (one fsynced write), then POST them; returns webhook errors."""
    path = Path(data_dir) / settings.jsonl_path
    if not alerts:
        return path, []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as sink:
        sink.write("".join(json.dumps(alert, sort_keys=True) + "\n" for alert in alerts))
        sink.flush()
        os.fsync(sink.fileno())
    errors: list[str] = []
    for sent, alert in enumerate(alerts if settings.webhook_url else []):
        body, headers = json.dumps(alert).encode(), {"Content-Type": "application/json"}
        request = urllib.request.Request(settings.webhook_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=settings.webhook_timeout_seconds) as response:
                response.read()
        except Exception as error:  # any failure: the alerts are already in the file
            # Stop at the first failure so a dead endpoint costs one timeout, not one per alert.
            errors.append(f"webhook {settings.webhook_url} failed after {sent} of {len(alerts)} alerts: {error!r}")
            break
    return path, errors


@dg.sensor(
    name="alert_sensor",
    minimum_interval_seconds=load_settings().sensors.alert_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_sensor(context: dg.SensorEvaluationContext, tarmac: TarmacConfig) -> dg.SkipReason:
    """Append failed checks and failed runs to the alert sink; launches no runs."""
    alerts, cursor = collect_alerts(context.instance, context.cursor)
    path, errors = write_alerts(alerts, tarmac.settings.alerts, tarmac.paths.data_dir)
    for error in errors:
        context.log.warning(error)
    context.update_cursor(cursor)
    if not alerts:
        return dg.SkipReason("no new failures")
    return dg.SkipReason(f"{len(alerts)} alerts written to {path}" + "".join(f"; {e}" for e in errors))
