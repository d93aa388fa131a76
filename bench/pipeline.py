"""The pipeline's runs as the benchmark drives them, each in a workspace of its own, and their profile.

A workspace is a DAGSTER_HOME and a TARMAC_DATA_DIR under the benchmark's work folder, so nothing
touches the project's own instance or warehouse. Every command runs in a subprocess, timed with
its process tree's peak memory (bench.measure). After a run, `profile` reads the instance's run
and step records and the dbt run results of each dbt step: where the time went.

    python -m bench.pipeline daily --day 2013-07-01    # (in a workspace's env) the daily stage of one day
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median

from bench.measure import Measured, python, run_measured
from tarmac.paths import PROJECT_ROOT

DBT_TARGET = PROJECT_ROOT / "dbt_project" / "target"
# the steps that build gold.flight_features from the landing files (the floor's work)
MEDALLION_STEPS = ("reference_models", "daily_bronze_models", "daily_silver_models", "daily_gold_models")


@dataclass
class Workspace:
    root: Path
    engine: str = "duckdb"  # TARMAC_ENGINE of every command run in it

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        return {"DAGSTER_HOME": str(self.home), "TARMAC_DATA_DIR": str(self.data), "TARMAC_ENGINE": self.engine}

    def create(self) -> Workspace:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.home.mkdir(parents=True)
        self.data.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", self.home / "dagster.yaml")
        return self

    def run(self, name: str, *args: str) -> Measured:
        return run_measured(python(*args), env=self.env, cwd=PROJECT_ROOT, log=self.root / f"{name}.log").check()

    def land(self, start: str, end: str, scale_factor: int) -> Measured:
        return self.run("landing", "-m", "tools.cli", "landing", "--start", start, "--end", end,
                        "--scale-factor", str(scale_factor))

    def backfill(self, start: str, end: str, scale_factor: int) -> Measured:
        """`make backfill`'s command: every stage of the pipeline for the days, as a user runs it."""
        return self.run("backfill", "-m", "tools.cli", "backfill", "--start", start, "--end", end,
                        "--scale-factor", str(scale_factor))

    def daily(self, day: str, name: str = "daily") -> Measured:
        """The daily stage of one day (bronze, silver, gold, online and their checks), as a sensor launches it."""
        return self.run(name, "-m", "bench.pipeline", "daily", "--day", day)

    def floor(self) -> tuple[Measured, dict]:
        measured = self.run("floor", "-m", "bench.floor", "--data-dir", str(self.data),
                            "--out", str(self.root / "floor.duckdb"))
        return measured, json.loads(measured.output.strip().splitlines()[-1])

    def run_ids(self) -> list[str]:
        with self.instance() as instance:
            return [r.run_id for r in instance.get_runs()]

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))


@dataclass
class Step:
    run_id: str
    key: str
    seconds: float
    kind: str  # "materialization" or "check"
    start: float = 0.0
    dbt_seconds: float = 0.0  # dbt's own elapsed time inside the step
    dbt_before_nodes: float = 0.0  # from the step's start to dbt's first node (starting dbt, loading the project)
    dbt_after_nodes: float = 0.0  # from dbt's last node to the step's end (events, row counts, observations)
    dbt_test_seconds: float = 0.0  # wall time of the dbt tests dbt build ran inside the step
    dbt_nodes: list[tuple[str, float]] = field(default_factory=list)
    # from the step's first result event (a materialization, check evaluation or observation) to its
    # end: writing the step's records to the Dagster instance, one event per asset partition
    recording_seconds: float = 0.0


@dataclass
class Profile:
    runs: list[tuple[str, float]]  # (run id, wall seconds)
    steps: list[Step]

    @property
    def run_seconds(self) -> float:
        return sum(s for _, s in self.runs)

    def seconds(self, kind: str) -> float:
        return sum(s.seconds for s in self.steps if s.kind == kind)

    @property
    def dbt_test_seconds(self) -> float:
        return sum(s.dbt_test_seconds for s in self.steps)

    @property
    def dbt_before_nodes(self) -> float:
        return sum(s.dbt_before_nodes for s in self.steps)

    @property
    def dbt_after_nodes(self) -> float:
        return sum(s.dbt_after_nodes for s in self.steps)

    def recording_seconds(self, kind: str) -> float:
        return sum(s.recording_seconds for s in self.steps if s.kind == kind)

    @property
    def dbt_steps_seconds(self) -> float:
        return sum(s.seconds for s in self.steps if s.dbt_seconds)

    @property
    def medallion_seconds(self) -> float:
        return sum(s.seconds for s in self.steps if s.key in MEDALLION_STEPS)

    def by_step(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for s in self.steps:
            totals[s.key] = totals.get(s.key, 0.0) + s.seconds
        return totals

    def dbt_nodes(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for s in self.steps:
            for node, seconds in s.dbt_nodes:
                totals[node] = totals.get(node, 0.0) + seconds
        return totals

    def as_dict(self) -> dict:
        return {
            "runs": len(self.runs), "run_seconds": self.run_seconds,
            "materialization_seconds": self.seconds("materialization"), "check_seconds": self.seconds("check"),
            "dbt_test_seconds": self.dbt_test_seconds, "medallion_seconds": self.medallion_seconds,
            "dbt_steps_seconds": self.dbt_steps_seconds, "dbt_seconds": sum(s.dbt_seconds for s in self.steps),
            "dbt_step_keys": sorted({s.key for s in self.steps if s.dbt_seconds}),
            "dbt_before_nodes": self.dbt_before_nodes,
            "dbt_after_nodes": self.dbt_after_nodes,
            "materialization_recording_seconds": self.recording_seconds("materialization"),
            "check_recording_seconds": self.recording_seconds("check"),
            "steps": self.by_step(), "dbt_nodes": self.dbt_nodes(),
        }


def profile(workspace: Workspace, run_ids: list[str]) -> Profile:
    """Where the runs' time went: each run's wall time, each step's, and dbt's share of its steps."""
    from dagster import DagsterEventType

    result_events = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_CHECK_EVALUATION,
                     DagsterEventType.ASSET_OBSERVATION}
    runs, steps = [], []
    with workspace.instance() as instance:
        for run_id in run_ids:
            record = instance.get_run_record_by_id(run_id)
            runs.append((run_id, (record.end_time or 0) - (record.start_time or 0)))
            materializing, first_result = set(), {}
            for r in instance.get_records_for_run(run_id, of_type=result_events, limit=10_000_000).records:
                entry = r.event_log_entry
                if entry.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
                    materializing.add(entry.step_key)
                first_result[entry.step_key] = min(first_result.get(entry.step_key, entry.timestamp), entry.timestamp)
            for stats in instance.get_run_step_stats(run_id):
                if stats.start_time is None or stats.end_time is None:
                    continue
                step = Step(run_id, stats.step_key, stats.end_time - stats.start_time,
                            "materialization" if stats.step_key in materializing else "check", stats.start_time)
                if stats.step_key in first_result:
                    step.recording_seconds = max(stats.end_time - first_result[stats.step_key], 0.0)
                _add_dbt_timings(step)
                steps.append(step)
    return Profile(runs, steps)


def _add_dbt_timings(step: Step) -> None:
    for results in DBT_TARGET.glob(f"{step.key}-{step.run_id[:7]}-*/run_results.json"):
        data = json.loads(results.read_text())
        step.dbt_seconds += data.get("elapsed_time", 0.0)
        tests, instants = [], []
        for node in data["results"]:
            step.dbt_nodes.append((node["unique_id"], node.get("execution_time", 0.0)))
            timing = {t["name"]: t for t in node.get("timing", []) if t.get("started_at")}
            instants += [_instant(t[k]) for t in timing.values() for k in ("started_at", "completed_at")]
            if node["unique_id"].startswith("test.") and "execute" in timing:
                tests.append((_instant(timing["execute"]["started_at"]), _instant(timing["execute"]["completed_at"])))
        step.dbt_test_seconds += _union_seconds(tests)
        if instants:
            step.dbt_before_nodes = min(instants) - step.start
            step.dbt_after_nodes = step.start + step.seconds - max(instants)


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """The wall time covered by the intervals (dbt runs tests on several threads at once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def repeated_daily(workspace: Workspace, day: str, repeats: int) -> dict:
    """Re-materialize one day's daily stage `repeats` times; the median run and its profile."""
    results = []
    for i in range(repeats):
        before = set(workspace.run_ids())
        measured = workspace.daily(day, name=f"daily-{i}")
        new = [r for r in workspace.run_ids() if r not in before]
        results.append((measured, profile(workspace, new)))
    results.sort(key=lambda mp: mp[1].run_seconds)
    measured, prof = results[len(results) // 2]
    return {
        "repeats": repeats,
        "process_seconds": [m.seconds for m, _ in results],
        "median_process_seconds": median(m.seconds for m, _ in results),
        "run_seconds": [p.run_seconds for _, p in results],
        **{f"median_{k}": v for k, v in prof.as_dict().items()},
    }


def _daily(day: str) -> int:
    """The daily stage of `day` in this process's instance: what the landing sensor's run does."""
    import dagster as dg

    from definitions import defs
    from tarmac.orchestration.instance import dagster_instance
    from tools.pipeline import checks_for, stage_assets

    daily = stage_assets(defs, partitioned=True, ml=False)
    with dagster_instance() as instance:
        result = dg.materialize([*daily, *checks_for(defs, daily)], instance=instance, resources=defs.resources,
                                partition_key=day, raise_on_error=False)
    print(json.dumps({"run_id": result.run_id, "success": result.success}))
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    daily = commands.add_parser("daily", help="materialize one day's daily stage in DAGSTER_HOME's instance")
    daily.add_argument("--day", required=True)
    args = parser.parse_args(argv)
    return _daily(args.day)


if __name__ == "__main__":
    raise SystemExit(main())
