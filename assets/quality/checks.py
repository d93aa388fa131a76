"""The six checks as Dagster asset checks: one check step per layer, evaluated per partition.

A step reads the warehouse read-only (inside the warehouse pool, so never beside a dbt writer),
evaluates every check of its layer's tables for every day of the run, records the numbers in the
monitoring table and reports one evaluation per check and partition. Blocking checks (schema, by
default) that fail with ERROR stop the next layer's step in the same run.

Every day of a run gets an evaluation of its own, tied to that day's materialization, so that
the check's Partitions view in the UI shows each day passed or failed (assets/quality/evaluations.py).
"""


from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import ibis

from assets.ml.predictions import PREDICTIONS_KEY, not_scored_days, not_scored_reason
from assets.partitions import daily_partitions, partition_days
from assets.quality.evaluations import daily_evaluations, materialization_targets
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from resources.warehouse import WarehouseResource
from tarmac.ml.monitoring import model_performance_days, score_references
from tarmac.online.parity import parity_outcomes
from tarmac.paths import TarmacPaths
from tarmac.quality import evaluate, monitoring
from tarmac.quality.statistics import Window
from tarmac.settings.loader import QualitySettings, TarmacSettings, load_settings
from tarmac.warehouse import PARTITION_COLUMNS, WAREHOUSE_POOL

CHECK_DESCRIPTIONS = {
    "schema": "Pandera contract of the table (columns, types, nullability, domains), validated in DuckDB.",
    "freshness": "Event time: the day's landed data covers its schedule up to close to midnight.",
    "missing_values": "Null rate per column (and expected rows) against thresholds.",
    "value_ranges": "Impossible values per column (silver's domain rules, the feature registry's bounds), rows "
    "breaking a relation between columns, codes the reference never had, each column's scale against the "
    "reference days' own spread, and outliers vs the reference window.",
    "volume": "The day's rows against the same weekday's in the reference window, each origin and carrier "
    "against its own share, and the rows silver dropped as duplicates or quarantined.",
    "drift": "Features: each column's distance from the reference window (normed Wasserstein, Jensen-Shannon; "
    "KS, chi-squared on small samples), judged against the reference's own day-to-day variation; ERROR when "
    "it persists or a column is broken (a scale change, codes never seen). Flights: each carrier's lower "
    "quartile of departure delay relative to the day's, against its reference days (WARN: one carrier shifted).",
    "correlation": "Change of pairwise correlation of the day vs the reference window.",
    "training_serving_parity": "Sampled flights of the day replayed through the online path (speed layer, "
    "online store, serving reads) up to their prediction_ts and compared with gold.flight_features.",
    "model_performance": "Once labels are known: ROC AUC and calibration error of the day's predictions, "
    "and PSI of its scores against the champion's validation scores.",
}

DAILY_CHECKS: dict[str, dict[tuple[str, str], list[str]]] = {
    "bronze": {("bronze", "flights"): ["schema", "freshness"], ("bronze", "weather"): ["schema", "freshness"]},
    "silver": {
        ("silver", "flights"): ["schema", "volume", "missing_values", "value_ranges", "drift"],
        ("silver", "weather"): ["schema", "volume", "missing_values", "value_ranges"],
        ("silver", "quarantine"): ["schema"],
        ("silver", "load_audit"): ["schema"],
    },
    "gold": {
        ("gold", "flight_features"): ["schema", "missing_values", "value_ranges", "drift", "correlation"],
        ("gold", "training_set"): ["schema"],
    },
    "ml": {("gold", "predictions"): ["schema", "model_performance"]},
    "online": {("online", "flights"): ["training_serving_parity"]},
}
REFERENCE_TABLES = [
    (layer, name) for layer in ("bronze", "silver") for name in ("planes", "airports", "airlines")
] + [("silver", "reference_quarantine")]


def _blocking(settings: QualitySettings, check: str) -> bool:
    if check == "model_performance":
        return False  # a decaying model asks for retraining; it does not stop scoring
    if check == "training_serving_parity":
        return load_settings().online.parity.blocking
    return getattr(settings, "schema_" if check == "schema" else check).blocking


def _specs(checks: dict[tuple[str, str], list[str]], partitioned: bool) -> list[dg.AssetCheckSpec]:
    settings = load_settings().quality
    return [
        dg.AssetCheckSpec(
            name=check,
            asset=dg.AssetKey(list(table)),
            description=CHECK_DESCRIPTIONS[check],
            blocking=_blocking(settings, check),
            partitions_def=daily_partitions if partitioned else None,
        )
        for table, names in checks.items()
        for check in names
    ]


@dataclass(frozen=True)
class CheckInputs:
    """What a check step evaluates with besides the warehouse: the settings, the data dir, and the
    score references of the model versions (`model_performance`)."""

    settings: TarmacSettings
    paths: TarmacPaths
    score_reference: Callable[[str], dict[str, list[float]]]

    @property
    def quality(self) -> QualitySettings:
        return self.settings.quality

    @classmethod
    def from_resources(cls, tarmac: TarmacConfig, model_registry: ModelRegistryResource) -> "CheckInputs":
        return cls(tarmac.settings, tarmac.paths, score_references(model_registry.open))


def run_days(tags: dict[str, str]) -> list[str]:
    """The local days a run covers, from its partition tags."""
    days = partition_days(tags)
    if days is not None:
        return days
    raise dg.Failure("daily checks need a partition or a partition range: launch them with their asset's partitions")


def _window(settings: QualitySettings, day: str) -> Window:
    reference = settings.reference_window
    if reference.start and reference.end:
        return Window(day, reference.start.isoformat(), reference.end.isoformat())
    return Window.trailing(day, reference.days)


# the checks whose days are evaluated together: each reads what its days need once (tarmac/quality/statistics.py)
BY_DAYS = {"freshness": evaluate.freshness_days, "missing_values": evaluate.missing_values_days}
BY_WINDOWS = {"value_ranges": evaluate.value_ranges_days, "volume": evaluate.volume_days,
              "correlation": evaluate.correlation_days, "drift": evaluate.drift_days}


def evaluate_days(
    warehouse: ibis.BaseBackend, con, key: dg.AssetKey, check: str, days: list[str | None], inputs: CheckInputs
) -> list[evaluate.Outcome]:
    """One check over every day of a run, each day with an outcome of its own. The days' statistics
    come from one read of the run's window, not one query per day; a daily table's schema is
    validated for the whole window at once (day by day only where it fails)."""
    settings = inputs.quality
    column = PARTITION_COLUMNS.get(tuple(key.path))
    if check == "training_serving_parity":  # one replay for every day of the run
        online = inputs.settings.online
        return parity_outcomes(con, key, days, online, inputs.paths, settings.max_failure_cases)
    if check in BY_WINDOWS:
        return BY_WINDOWS[check](con, key, column, [_window(settings, d) for d in days], settings)
    if check in BY_DAYS:
        return BY_DAYS[check](con, key, column, days, settings)
    if check == "schema" and column:
        return evaluate.with_rejected_files(con, key, evaluate.schema_window(warehouse, con, key, column, days, settings))
    if check == "schema":
        return [evaluate.schema(warehouse, con, key, column, day, settings) for day in days]
    if check == "model_performance":
        return model_performance_days(con, key, days, inputs.settings.ml.monitoring, inputs.score_reference)
    raise ValueError(f"no evaluator for the check {check!r}")


def _evaluate(
    context: dg.AssetCheckExecutionContext,
    tarmac: TarmacConfig,
    warehouse_resource: WarehouseResource,
    model_registry: ModelRegistryResource,
    specs: list[dg.AssetCheckSpec],
    days: list[str | None],
) -> list[evaluate.Outcome]:
    inputs = CheckInputs.from_resources(tarmac, model_registry)
    paths = inputs.paths
    unscored = _not_scored(context.instance, specs, days)
    outcomes = [
        evaluate.Outcome(PREDICTIONS_KEY, spec.name, day, "warn", f"not scored: {not_scored_reason(inputs.settings.ml.model_name)}")
        for spec in specs
        if spec.asset_key == PREDICTIONS_KEY
        for day in days
        if day in unscored
    ]
    with warehouse_resource.reader() as con:
        warehouse = ibis.duckdb.from_connection(con.cursor())  # its own cursor: DuckDB 2 refuses interleaved results
        for spec in specs:
            judged = [day for day in days if not (spec.asset_key == PREDICTIONS_KEY and day in unscored)]
            if judged:
                outcomes += evaluate_days(warehouse, con, spec.asset_key, spec.name, judged, inputs)
    recorded = monitoring.record(paths.monitoring, context.run.run_id, outcomes)
    context.log.info(f"{len(outcomes)} check evaluations, {recorded} metrics recorded in {paths.monitoring}")
    for outcome in outcomes:  # a chart for the days that warn or fail: the ones someone will open
        if outcome.check_name == "drift" and not outcome.passed and "statistics" in outcome.metadata:
            _attach_drift_report(outcome, paths)
    return outcomes


def _not_scored(instance: dg.DagsterInstance, specs: list[dg.AssetCheckSpec], days: list[str | None]) -> set[str]:
    """The run's days recorded as not scored for want of a champion: there are no predictions to
    judge, so their checks warn with the reason instead of failing on an empty day."""
    if not any(spec.asset_key == PREDICTIONS_KEY for spec in specs):
        return set()
    return {day for day in days if day} & not_scored_days(instance)


def _attach_drift_report(outcome: evaluate.Outcome, paths: TarmacPaths) -> None:
    path = paths.reports / "drift" / "/".join(outcome.asset_key.path) / f"{outcome.partition}.png"
    monitoring.drift_report(outcome, path)
    outcome.metadata["report"] = dg.MetadataValue.path(str(path))
    outcome.metadata["report_image"] = dg.MetadataValue.md(monitoring.inline_image(path))


def _severity(outcome_severity: str) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome_severity == "error" else dg.AssetCheckSeverity.WARN


def _with_figures(outcome: evaluate.Outcome) -> dict[str, Any]:
    """The outcome's metadata and its figures as numbers, which the check's page plots over time."""
    figures = {name: dg.MetadataValue.float(float(value)) for name, value in outcome.metrics.items() if value is not None}
    return {**figures, **outcome.metadata}


def _report(
    context: dg.AssetCheckExecutionContext, specs: list[dg.AssetCheckSpec], outcomes: list[evaluate.Outcome]
) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output]:
    """An unpartitioned check's one result; a partitioned check's evaluation of every day of the
    run, each tied to the day's materialization (assets/quality/evaluations.py)."""
    by_check = defaultdict(list)
    for outcome in outcomes:
        by_check[(outcome.asset_key, outcome.check_name)].append(outcome)
    assets_def = context.op_execution_context.assets_def
    targets = materialization_targets(context.instance, sorted({o.partition for o in outcomes if o.partition}))
    for spec in specs:
        results = by_check[(spec.asset_key, spec.name)]
        if spec.partitions_def is None:
            (outcome,) = results
            yield dg.AssetCheckResult(
                asset_key=spec.asset_key, check_name=spec.name, passed=outcome.passed,
                severity=_severity(outcome.severity), description=outcome.summary, metadata=_with_figures(outcome),
            )
            continue
        yield from daily_evaluations(
            targets(spec.asset_key), assets_def.get_output_name_for_asset_check_key(spec.key), spec.key, spec.blocking,
            ((o.partition, o.passed, _severity(o.severity), o.summary, _with_figures(o)) for o in results),
        )


def _selected(context: dg.AssetCheckExecutionContext, specs: list[dg.AssetCheckSpec]) -> list[dg.AssetCheckSpec]:
    keys = context.selected_asset_check_keys
    return [spec for spec in specs if spec.key in keys]


def daily_checks(layer: str) -> dg.AssetChecksDefinition:
    specs = _specs(DAILY_CHECKS[layer], partitioned=True)

    # subsettable: a run that rebuilds only the flights side of a day evaluates only its checks
    @dg.multi_asset_check(specs=specs, name=f"{layer}_daily_checks", pool=WAREHOUSE_POOL, can_subset=True)
    def _checks(
        context: dg.AssetCheckExecutionContext,
        tarmac: TarmacConfig,
        warehouse: WarehouseResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[dg.AssetCheckResult]:
        days = run_days(context.run.tags)
        selected = _selected(context, specs)
        outcomes = _evaluate(context, tarmac, warehouse, model_registry, selected, days)
        yield from _report(context, selected, outcomes)

    return _checks


def reference_checks() -> dg.AssetChecksDefinition:
    specs = _specs({table: ["schema"] for table in REFERENCE_TABLES}, partitioned=False)

    @dg.multi_asset_check(specs=specs, name="reference_checks", pool=WAREHOUSE_POOL, can_subset=True)
    def _checks(
        context: dg.AssetCheckExecutionContext,
        tarmac: TarmacConfig,
        warehouse: WarehouseResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[dg.AssetCheckResult]:
        selected = _selected(context, specs)
        outcomes = _evaluate(context, tarmac, warehouse, model_registry, selected, [None])
        yield from _report(context, selected, outcomes)

    return _checks


quality_checks = [daily_checks("bronze"), daily_checks("silver"), daily_checks("gold"), reference_checks()]
prediction_checks = daily_checks("ml")
online_checks = daily_checks("online")
