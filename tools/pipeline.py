"""Materializing the pipeline headlessly: the code behind `make backfill` and the graph tests."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import dagster as dg
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.snap import snapshot_from_execution_plan
from dagster._core.workspace.load import location_origins_from_yaml_paths

from assets.ml.model import ML_GROUP
from assets.ml.predictions import PREDICTIONS_KEY, not_scored_days
from assets.partitions import RANGE_END, RANGE_START
from definitions import defs
from tarmac.days import contiguous_ranges, days_between
from tarmac.ml.registry import champion_version
from tarmac.orchestration.recovery import stranded_steps_watchdog
from tarmac.orchestration.runs import held_back_days
from tarmac.paths import PROJECT_ROOT
from tarmac.settings.loader import load_settings
from tools.dagster_dev import LOCATION


def stage_assets(defs: dg.Definitions, partitioned: bool, ml: bool) -> list[dg.AssetsDefinition]:
    """The assets of one stage: (un)partitioned, in the ml group or not."""
    return [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition)
        and (a.partitions_def is not None) == partitioned
        and any(a.group_names_by_key.get(k) == ML_GROUP for k in a.keys) == ml
    ]


def checks_for(defs: dg.Definitions, assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """The asset checks that target only `assets`."""
    keys = {k for a in assets for k in a.keys}
    return [c for c in defs.asset_checks if {spec.asset_key for spec in c.check_specs} <= keys]


@cache
def _origins() -> tuple[RemoteJobOrigin, JobPythonOrigin]:
    """Where the webserver finds the asset job: the `tarmac` location of workspace.yaml, whose
    repository holds `__ASSET_JOB`, and the same job as a Python module would load it."""
    (location,) = [o for o in location_origins_from_yaml_paths([str(PROJECT_ROOT / "workspace.yaml")])
                   if o.location_name == LOCATION]
    remote = RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), IMPLICIT_ASSET_JOB_NAME)
    code = (ReconstructableRepository.for_module("definitions", "defs", str(PROJECT_ROOT))
            .get_reconstructable_job(IMPLICIT_ASSET_JOB_NAME).get_python_origin())
    return remote, code


def execute_asset_run(
    instance: dg.DagsterInstance,
    assets: list[dg.AssetsDefinition],
    checks: list[dg.AssetChecksDefinition],
    tags: dict[str, str],
    resources: dict[str, object] | None = None,
    check_keys: frozenset[dg.AssetCheckKey] | None = None,
) -> dg.JobExecutionResult:
    """Materialize `assets` with `checks` in this process, as a run of the code location's asset
    job: the UI labels it with the location, lists it on the overview timeline and can re-execute
    it (`dg.materialize` makes a run of an ephemeral job, which the UI can do none of that with).
    `resources` replace the definitions' resources of the same names for this run (a re-execution
    from the UI runs with the code location's own). `check_keys` instead of the assets' and
    `checks`' own: with no `assets`, a run that evaluates those checks and materializes nothing."""
    definitions = defs
    if resources:
        definitions = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks,
                                     resources={**defs.resources, **resources}, executor=defs.executor)
    job = definitions.resolve_implicit_global_asset_job_def()
    asset_keys = frozenset(k for a in assets for k in a.keys)
    if check_keys is None:
        check_keys = frozenset(k for d in [*assets, *checks] for k in d.check_keys)
    subset = job.get_subset(asset_selection=asset_keys, asset_check_selection=check_keys)
    run_tags = {**job.run_tags, **tags}
    plan = create_execution_plan(subset, run_config={}, tags=run_tags,
                                 instance_ref=instance.get_ref() if instance.is_persistent else None)
    remote_origin, code_origin = _origins()
    run = instance.create_run(
        job_name=IMPLICIT_ASSET_JOB_NAME, run_id=None, run_config={}, status=dg.DagsterRunStatus.NOT_STARTED,
        tags=run_tags, root_run_id=None, parent_run_id=None, step_keys_to_execute=plan.step_keys_to_execute,
        execution_plan_snapshot=snapshot_from_execution_plan(plan, subset.get_job_snapshot_id()),
        job_snapshot=subset.get_job_snapshot(), parent_job_snapshot=subset.get_parent_job_snapshot(),
        asset_selection=asset_keys, asset_check_selection=check_keys, resolved_op_selection=None, op_selection=None,
        remote_job_origin=remote_origin, job_code_origin=code_origin, asset_graph=job.asset_layer.asset_graph,
    )
    with stranded_steps_watchdog(instance):  # no daemon beside an in-process run (recovery.py)
        return execute_run(InMemoryJob(job), run, instance)


def materialize_days(
    start: str,
    end: str,
    instance: dg.DagsterInstance,
    log: Callable[[str], None] = lambda _: None,
    skip_materialized: bool = False,
    run_tags: dict[str, str] | None = None,
    resources: dict[str, object] | None = None,
) -> list[dg.JobExecutionResult]:
    """Materialize every asset for the local days start..end (both included), in stages.

    1. the unpartitioned reference tables, 2. the daily bronze, silver and gold models over the
    whole range in one run (their single-run backfill policy), 3. the delay model, when every day
    of its time split has a training set, 4. the champion's predictions for the range. Each stage
    runs only if the one before succeeded; with `skip_materialized`, a stage whose output is
    already there is skipped. Every run carries `run_tags` (the command line's process identity,
    by which a run whose process died is recognised and released); `resources` replace the
    definitions' resources of the same names.

    A day whose blocking checks fail (a landing file that cannot be read, say) stops its run's
    later layers for every day of the run, since Dagster gates a step as a whole. Its run fails,
    so the day's later layers show as failed; the other days are then materialized again in runs
    of their own, one per range of consecutive days, and scored: one bad day fails that day only.
    """
    reference = stage_assets(defs, partitioned=False, ml=False)
    daily = stage_assets(defs, partitioned=True, ml=False)
    model = stage_assets(defs, partitioned=False, ml=True)
    scoring = stage_assets(defs, partitioned=True, ml=True)
    results: list[dg.JobExecutionResult] = []

    def run(assets: list[dg.AssetsDefinition], tags: dict[str, str] | None = None) -> bool:
        result = execute_asset_run(instance, assets, checks_for(defs, assets), {**(run_tags or {}), **(tags or {})},
                                   resources)
        results.append(result)
        return result.success


    days = days_between(start, end)
    ranges = [(start, end)]
    if not (skip_materialized and not missing_days(instance, days)):
        if not run(reference):
            return results
        ranges = []
        pending = [(start, end)]
        while pending:
            first, last = pending.pop(0)
            if run(daily, {RANGE_START: first, RANGE_END: last}):
                ranges.append((first, last))
                continue
            blocked = held_back_days(instance, results[-1].run_id)
            if not blocked:
                return results
            log(f"{first}..{last}: blocking checks failed on " + "; ".join(
                f"{day}: {reason}" for day, reason in sorted(blocked.items())))
            pending.extend(contiguous_ranges(d for d in days_between(first, last) if d not in blocked))
        if not ranges:
            return results
    else:
        log(f"{start}..{end}: gold is already materialized")
    if model:
        ready, reason = _model_ready(instance, skip_materialized)
        if ready:
            if not run(model):
                return results
        else:
            log(f"{model[0].key.to_user_string()}: not trained ({reason})")
    if scoring:
        champion = champion_version()
        if champion is None:
            log("gold/predictions: not scored (no champion model)")
        elif skip_materialized and not (
            missing_days(instance, days, PREDICTIONS_KEY) or set(days) & not_scored_days(instance)
        ):
            log(f"{start}..{end}: predictions are already materialized")
        else:
            for first, last in ranges:
                run(scoring, {RANGE_START: first, RANGE_END: last})
    return results


def _model_ready(instance: dg.DagsterInstance, skip_materialized: bool) -> tuple[bool, str]:
    """Whether to train: every day of the split has a training set, and (when skipping) no champion yet."""
    split = load_settings().ml.split
    needed = [d for period in (split.train, split.validate_, split.test) for d in period.days()]
    missing = missing_days(instance, needed, dg.AssetKey(["gold", "training_set"]))
    if missing:
        return False, f"{len(missing)} days of its split {split.first_day}..{split.last_day} have no training set"
    if skip_materialized and champion_version() is not None:
        return False, "a champion exists"
    return True, ""


def missing_days(
    instance: dg.DagsterInstance, days: list[str], key: dg.AssetKey = dg.AssetKey(["gold", "flight_features"])
) -> list[str]:
    """Days whose partition of `key` (gold features by default) was never materialized in this instance."""
    done = instance.get_materialized_partitions(key)
    return [d for d in days if d not in done]
