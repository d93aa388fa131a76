"""Evaluating the asset checks alone, headlessly: the code behind `make check`.

Dagster runs asset checks inside materializations or from the UI's *Execute* button, and has no
command that runs them on their own. `run_checks` executes, in this process, runs of the code
location's asset job that select checks and no asset: one for the checks of the unpartitioned
tables (the reference tables), one over the range for every daily asset's checks (dbt tests, the
layers' checks, processing freshness, parity, model performance). Nothing is materialized: each
evaluation judges the latest materialization of its day, which it names as its target, so the
checks' Partitions views in the UI show the results as after a backfill. An asset that is not
materialized on every day of the range is left out, and said so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from assets.partitions import RANGE_END, RANGE_START
from definitions import defs
from tarmac.days import days_between
from tools.pipeline import execute_asset_run


@dataclass(frozen=True)
class CheckRun:
    """What `run_checks` did: its runs, their evaluations, and the assets left out, with the days
    of the range they have no materialization for."""

    results: list[dg.JobExecutionResult]
    evaluations: list[dg.AssetCheckEvaluation]
    left_out: dict[dg.AssetKey, list[str]] = field(default_factory=dict)

    @property
    def blocking_failures(self) -> list[dg.AssetCheckEvaluation]:
        return [e for e in self.evaluations if e.blocking and not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]

    @property
    def exit_status(self) -> int:
        """1 when a run failed or a blocking check failed with ERROR, else 0."""
        return 1 if self.blocking_failures or not all(r.success for r in self.results) else 0


def runs_alone(graph, key: dg.AssetCheckKey) -> bool:
    """Whether a check can be executed without materializing anything: not one that its asset's own
    step yields (the promotion gate judges the training it is part of)."""
    return not any(isinstance(k, dg.AssetKey) for k in graph.get_execution_set_asset_and_check_keys(key))


def run_checks(
    start: str, end: str, instance: dg.DagsterInstance, log: Callable[[str], None] = lambda _: None,
    run_tags: dict[str, str] | None = None,
) -> CheckRun:
    """Evaluate every asset check of the materialized assets for the local days start..end."""
    days = days_between(start, end)
    graph = defs.get_repository_def().asset_graph
    unpartitioned: set[dg.AssetCheckKey] = set()
    daily: set[dg.AssetCheckKey] = set()
    left_out: dict[dg.AssetKey, list[str]] = {}
    for asset in sorted({k.asset_key for k in graph.asset_check_keys}, key=str):
        if graph.get(asset).is_partitioned:
            materialized = instance.get_materialized_partitions(asset)
            missing = [d for d in days if d not in materialized]
        else:
            missing = [] if instance.get_latest_materialization_event(asset) else ["(never materialized)"]
        if missing:
            left_out[asset] = missing
            continue
        keys = graph.get_check_keys_for_assets({asset})
        bound = {k for k in keys if not runs_alone(graph, k)}
        for key in sorted(bound, key=str):
            log(f"{key.to_user_string()}: evaluated only when its asset materializes (the check is part of that step): not run")
        (daily if graph.get(asset).is_partitioned else unpartitioned).update(keys - bound)
    for asset, missing in left_out.items():
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        log(f"{asset.to_user_string()}: not materialized on {shown}: its checks are not run")
    results = []
    tags = dict(run_tags or {})
    if unpartitioned:
        log(f"{len(unpartitioned)} checks of the unpartitioned tables")
        results.append(execute_asset_run(instance, [], [], tags, check_keys=frozenset(unpartitioned)))
    if daily:
        log(f"{len(daily)} checks of the daily assets over {start}..{end}")
        results.append(execute_asset_run(
            instance, [], [], {**tags, RANGE_START: days[0], RANGE_END: days[-1]}, check_keys=frozenset(daily)
        ))
    evaluations = [e for r in results for e in r.get_asset_check_evaluations()]
    return CheckRun(results, evaluations, left_out)


def _result(evaluation: dg.AssetCheckEvaluation) -> str:
    return "PASS" if evaluation.passed else evaluation.severity.value


def _figures(evaluation: dg.AssetCheckEvaluation, limit: int = 4) -> str:
    """The evaluation's numeric metadata, as `name=value`, at most `limit` of them."""
    numbers = [
        f"{name}={value.value:.4g}" for name, value in evaluation.metadata.items()
        if isinstance(value, dg.FloatMetadataValue | dg.IntMetadataValue) and value.value is not None
    ]
    return " ".join(numbers[:limit]) + (f" (+{len(numbers) - limit})" if len(numbers) > limit else "")


def table(evaluations: Iterable[dg.AssetCheckEvaluation], width: int = 200) -> str:
    """One line per evaluation: check, day, result (PASS, WARN, ERROR; `*` when blocking), the
    figures and the summary; then the totals."""
    rows = sorted(
        (f"{e.asset_key.to_user_string()}:{e.check_name}", e.partition or "-",
         _result(e) + ("*" if e.blocking else ""), " | ".join(p for p in (_figures(e), e.description or "") if p))
        for e in evaluations
    )
    if not rows:
        return "no check was evaluated"
    widths = [max(len(r[i]) for r in [("check", "day", "result"), *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("check", "day", "result"), widths, strict=True)) + "  figures | summary"]
    for row in rows:
        line = "  ".join(v.ljust(w) for v, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    counts = Counter(r[2].rstrip("*") for r in rows)
    blocking = sum(1 for r in rows if r[2] in ("ERROR*",))
    lines.append(
        f"{len(rows)} evaluations: {counts['PASS']} passed, {counts['WARN']} warned, {counts['ERROR']} failed with ERROR"
        f" ({blocking} of them blocking); * marks a blocking check"
    )
    return "\n".join(lines)


def as_rows(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[dict[str, Any]]:
    """Each evaluation as a plain row: check, day, result, blocking, summary, figures."""
    return [
        {"asset": e.asset_key.to_user_string(), "check": e.check_name, "day": e.partition,
         "result": _result(e), "blocking": e.blocking, "summary": e.description,
         "figures": {n: v.value for n, v in e.metadata.items() if isinstance(v, dg.FloatMetadataValue | dg.IntMetadataValue)}}
        for e in evaluations
    ]


def write_json(evaluations: Iterable[dg.AssetCheckEvaluation], path: Path) -> None:
    """The evaluations as JSON lines (`as_rows`), for CI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for row in as_rows(evaluations):
            out.write(json.dumps(row, sort_keys=True) + "\n")
