"""The alert sensor: failed checks and failed runs reach the JSONL sink and the webhook, once each.

Real in-process runs on conftest's `instance` (dg.instance_for_test, run-sharded SQLite like .dagster).
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resources.config import TarmacConfig
from sensors.alerts import alert_sensor
from tarmac.paths import PROJECT_ROOT, TarmacPaths

TINY = dg.AssetKey(["silver", "tiny"])


@dg.asset(key=TINY)
def tiny() -> int:
    return 1


@dg.asset_check(asset=TINY)
def tiny_warns() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description="null rate above warn",
        metadata={
            "null_rate": 0.2,
            "column": "temp",
            "report": dg.MetadataValue.md("# too many nulls"),
            "file": dg.MetadataValue.path("/tmp/cases.csv"),
        },
    )


@dg.asset_check(asset=TINY)
def tiny_errors() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata={"bad_rows": 3})


@dg.asset_check(asset=TINY)
def tiny_passes() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"bad_rows": 0})


@dg.asset(key=["gold", "boom"])
def boom() -> None:
    raise ValueError("kaboom")


def use_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook_url: str | None = None) -> None:
    """Point TARMAC_SETTINGS at a copy of tarmac.yaml with this webhook (written before any load)."""
    raw = yaml.safe_load((PROJECT_ROOT / "tarmac.yaml").read_text(encoding="utf-8"))
    raw["alerts"] = {"jsonl_path": "alerts/alerts.jsonl", "webhook_url": webhook_url, "webhook_timeout_seconds": 2}
    path = tmp_path / "tarmac.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("TARMAC_SETTINGS", str(path))


def read_sink(paths: TarmacPaths) -> list[dict]:
    sink = paths.data_dir / "alerts" / "alerts.jsonl"
    return [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()] if sink.exists() else []


def tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[str, str | None]:
    # the environment's data dir and settings file (use_settings), as the sensor's resource reads them
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"tarmac": TarmacConfig()})
    result = alert_sensor(context)
    assert isinstance(result, dg.SkipReason)
    return result.skip_message, context.cursor


def run_failures(instance: dg.DagsterInstance) -> tuple[str, str]:
    """One run whose checks warn, fail and pass, and one run that fails; returns their run ids."""
    checked = dg.materialize([tiny, tiny_warns, tiny_errors, tiny_passes], instance=instance, raise_on_error=False)
    assert checked.success  # non-blocking check failures do not fail the run
    failed = dg.materialize([boom], instance=instance, raise_on_error=False)
    assert not failed.success
    return checked.run_id, failed.run_id


def test_failures_are_written_once(paths, tmp_path, monkeypatch, instance) -> None:
    use_settings(tmp_path, monkeypatch)
    checked_run, failed_run = run_failures(instance)

    message, cursor = tick(instance, None)
    assert message == f"3 alerts written to {paths.data_dir / 'alerts' / 'alerts.jsonl'}"
    alerts = read_sink(paths)
    checks = {a["check_name"]: a for a in alerts if a["kind"] == "check_failed"}
    runs = [a for a in alerts if a["kind"] == "run_failed"]
    assert len(alerts) == 3 and set(checks) == {"tiny_warns", "tiny_errors"}  # the passed check is absent
    warn, error = checks["tiny_warns"], checks["tiny_errors"]
    assert (warn["severity"], warn["asset_key"], warn["run_id"]) == ("WARN", "silver/tiny", checked_run)
    assert warn["metadata"] == {
        "null_rate": 0.2,
        "column": "temp",
        "report": "# too many nulls",
        "file": "/tmp/cases.csv",
    }
    assert warn["description"] == "null rate above warn" and warn["partition"] is None
    assert (error["severity"], error["asset_key"], error["metadata"]) == ("ERROR", "silver/tiny", {"bad_rows": 3})
    (run,) = runs
    assert (run["run_id"], run["severity"], run["job_name"]) == (failed_run, "ERROR", "__ephemeral_asset_job__")
    assert "kaboom" in run["message"] and run["check_name"] is None
    for alert in alerts:
        assert datetime.fromisoformat(alert["timestamp"]).utcoffset() == timedelta(0)

    # The next tick resumes after the cursor: nothing new, nothing repeated.
    assert tick(instance, cursor) == ("no new failures", cursor)
    assert read_sink(paths) == alerts

    # A later failure is picked up, alone.
    later = dg.materialize([boom], instance=instance, raise_on_error=False)
    message, newer = tick(instance, cursor)
    assert message.startswith("1 alerts written") and int(newer) > int(cursor)
    assert read_sink(paths)[:3] == alerts
    assert [(a["kind"], a["run_id"]) for a in read_sink(paths)[3:]] == [("run_failed", later.run_id)]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict]

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []
    server = HTTPServer(("127.0.0.1", 0), type("Hook", (_Hook,), {"received": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_webhook_receives_the_same_alerts(paths, tmp_path, monkeypatch, instance, webhook) -> None:
    url, received = webhook
    use_settings(tmp_path, monkeypatch, url)
    run_failures(instance)
    message, _ = tick(instance, None)
    assert message.startswith("3 alerts written") and "; webhook" not in message
    assert len(received) == 3 and received == read_sink(paths)


def test_dead_webhook_keeps_the_file_and_reports(paths, tmp_path, monkeypatch, instance, capfd) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_settings(tmp_path, monkeypatch, f"http://127.0.0.1:{port}/alerts")
    run_failures(instance)
    capfd.readouterr()  # drop the runs' own output
    message, cursor = tick(instance, None)
    assert message.startswith("3 alerts written") and f"webhook http://127.0.0.1:{port}/alerts failed" in message
    assert len(read_sink(paths)) == 3 and cursor is not None
    # context.log.warning goes to Dagster's console logger (it does not propagate to caplog)
    assert re.search(r"WARNING - webhook http://127\.0\.0\.1:\d+/alerts failed after 0 of 3", capfd.readouterr().err)


def test_small_batches_skip_nothing_and_repeat_nothing(paths, tmp_path, monkeypatch, instance) -> None:
    """With batches of 2, the check stream fills first: the run failure waits a tick, not lost."""
    monkeypatch.setattr("sensors.alerts.BATCH", 2)
    use_settings(tmp_path, monkeypatch)
    run_failures(instance)
    cursor, messages = None, []
    for _ in range(10):
        message, cursor = tick(instance, cursor)
        messages.append(message)
        if message == "no new failures":
            break
    alerts = read_sink(paths)
    assert len(messages) > 2 and messages[-1] == "no new failures"
    assert sorted((a["kind"], a["check_name"]) for a in alerts) == [
        ("check_failed", "tiny_errors"),
        ("check_failed", "tiny_warns"),
        ("run_failed", None),
    ]
    assert [a["storage_id"] for a in alerts] == sorted({a["storage_id"] for a in alerts})
