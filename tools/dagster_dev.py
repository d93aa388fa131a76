"""A real `dagster dev` (webserver + daemon) on a free localhost port, driven through its GraphQL API.

The end-to-end tests, the GraphQL backfill benchmark and the README screenshot all start one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tarmac.paths import PROJECT_ROOT

LOCATION = "tarmac"  # workspace.yaml
REPOSITORY = "__repository__"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T], timeout: float, every: float = 2.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _sensor_selector(name: str) -> dict[str, str]:
    return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}


class DagsterDev:
    """`dagster dev` on a free 127.0.0.1 port with its own DAGSTER_HOME and data directory."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w")
        dagster = Path(sys.executable).with_name("dagster")
        self.process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon and code server stop together
        )
        self.log_path = log

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def wait_until_loaded(self, timeout: float = 180) -> None:
        def loaded() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}: {self.log_tail()}")
            try:
                data = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                    "locationOrLoadError { __typename } } } } }"
                )
            except (urllib.error.URLError, ConnectionError, RuntimeError):
                return False
            entries = data["workspaceOrError"].get("locationEntries", [])
            for entry in entries:
                if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED":
                    kind = entry["locationOrLoadError"]["__typename"]
                    if kind != "RepositoryLocation":
                        raise RuntimeError(f"code location failed to load: {kind}: {self.log_tail()}")
                    return True
            return False

        wait_for("the code location to load", loaded, timeout)

    def set_sensor(self, name: str, running: bool) -> None:
        selector = _sensor_selector(name)
        if running:
            data = self.graphql(
                "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename "
                "... on Sensor { sensorState { status } } ... on PythonError { message } } }",
                {"s": selector},
            )["startSensor"]
            assert data["__typename"] == "Sensor", data
            return
        sensor_id = self.graphql(
            "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { id } } }",
            {"s": selector},
        )["sensorOrError"]["id"]
        data = self.graphql(
            "mutation($id: String!) { stopSensor(id: $id) { __typename ... on PythonError { message } } }",
            {"id": sensor_id},
        )["stopSensor"]
        assert data["__typename"] == "StopSensorMutationResult", data

    def sensor_ticks(self, name: str, after: float) -> list[dict[str, Any]]:
        """The sensor's ticks that started after `after` (a Unix time), newest first: status,
        timestamp, runIds and the error message, as the sensor's page in the UI lists them."""
        selector = _sensor_selector(name)
        return self.graphql(
            "query($s: SensorSelector!, $after: Float) { sensorOrError(sensorSelector: $s) { ... on Sensor { "
            "sensorState { ticks(afterTimestamp: $after, limit: 50) { status timestamp runIds error { message } } } } } }",
            {"s": selector, "after": after},
        )["sensorOrError"]["sensorState"]["ticks"]

    def launch_backfill(self, partitions_by_assets: list[dict[str, Any]], title: str) -> str:
        data = self.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack } "
            "... on InvalidSubsetError { message } } }",
            {"p": {"partitionsByAssets": partitions_by_assets, "title": title}},
        )["launchPartitionBackfill"]
        assert data["__typename"] == "LaunchBackfillSuccess", data
        return data["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        return self.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }",
            {"id": backfill_id},
        )["partitionBackfillOrError"]["status"]

    def run(self, run_id: str) -> dict[str, Any]:
        """A run as the run page reads it: job, status, origin, and whether it can be re-executed."""
        return self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId pipelineName status "
            "hasReExecutePermission pipelineSnapshotId repositoryOrigin { repositoryLocationName repositoryName } } } }",
            {"id": run_id},
        )["runOrError"]

    def reexecute(self, run_id: str, strategy: str = "ALL_STEPS") -> str:
        """Re-execute a run as the run page's Re-execute button does; the new run's id."""
        data = self.graphql(
            "mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack } "
            "... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }",
            {"p": {"parentRunId": run_id, "strategy": strategy}},
        )["launchRunReexecution"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def check_partition_statuses(self, asset_key: list[str]) -> dict[str, dict[str, str]]:
        """Each partitioned check of the asset, with the status of each day it has one for, as its
        Partitions view in the UI reads them (SUCCEEDED, FAILED, IN_PROGRESS, SKIPPED,
        EXECUTION_FAILED; a day with none is Missing)."""
        node = self.graphql(
            "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetChecksOrError { "
            "... on AssetChecks { checks { name partitionStatuses { __typename "
            "... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } } }",
            {"k": {"path": asset_key}},
        )["assetNodeOrError"]
        statuses: dict[str, dict[str, str]] = {}
        for check in node["assetChecksOrError"]["checks"]:
            if check["partitionStatuses"] is None:  # an unpartitioned check
                continue
            days = statuses.setdefault(check["name"], {})
            for span in check["partitionStatuses"].get("ranges", []):
                day = span["startKey"]
                while day <= span["endKey"]:
                    days[day] = span["status"]
                    day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        return statuses

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left of the group (code server, daemon) goes too
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._log.close()
