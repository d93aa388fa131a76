"""Materializing the pipeline headlessly: the code behind `make backfill` and the graph tests."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from assets.ml.model import ML_GROUP
from assets.ml.predictions import PREDICTIONS_KEY, not_scored_days
from assets.partitions import RANGE_END, RANGE_START
from definitions import defs
from tarmac.days import contiguous_ranges, days_between
from tarmac.ml.registry import champion_version
from tarmac.orchestration.runs import held_back_days
from tarmac.settings.loader import load_settings


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


def materialize_days(
    start: str,
    end: str,
    instance: dg.DagsterInstance,
    log: Callable[[str], None] = lambda _: None,
    skip_materialized: bool = False,
    run_tags: dict[str, str] | None = None,
    resources: dict[str, object] | None = None,
) -> list[dg.ExecuteInJobResult]:
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
    results: list[dg.ExecuteInJobResult] = []

    def run(assets: list[dg.AssetsDefinition], tags: dict[str, str] | None = None) -> bool:
        result = dg.materialize(
            [*assets, *checks_for(defs, assets)], instance=instance, resources={**defs.resources, **(resources or {})},
            tags={**(run_tags or {}), **(tags or {})}, raise_on_error=False,
        )
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
