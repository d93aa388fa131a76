"""`ml/flight_delay_model`: train, evaluate, register and (maybe) promote the delay model.

One materialization is one training run: gold.training_set over the split's days, a seeded
HistGradientBoostingClassifier and the carrier x hour baseline scored side by side, everything
logged to MLflow with lineage tags, then the promotion gate decides whether the new version takes
the `champion` alias. The gate's verdict is the `promotion_gate` check: a refusal is visible as a
WARN, not an error, because keeping the current champion is the system working as designed.
"""


import hashlib
import json
import subprocess
from typing import Any

import dagster as dg
from pydantic import Field

from assets.partitions import daily_partitions
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from resources.training_gate import TrainingGateResource
from tarmac.features.registry import feature_versions, features_fingerprint
from tarmac.ml.monitoring import SCORE_REFERENCE_TAG
from tarmac.ml.promotion import decide, failed_blocking_checks
from tarmac.ml.registry import FEATURE_VERSIONS_TAG
from tarmac.paths import PROJECT_ROOT
from tarmac.quality.monitoring import inline_image
from tarmac.settings.ml import DayRange, PromotionSettings, TimeSplit
from tarmac.warehouse import WAREHOUSE_POOL

ML_GROUP = "ml"
MODEL_KEY = dg.AssetKey(["ml", "flight_delay_model"])
TRAINING_SET_KEY = dg.AssetKey(["gold", "training_set"])


def ml_code_version() -> str:
    """The ML code's version: its modules' source and the feature definitions it learns from."""
    digest = hashlib.sha256()
    modules = [*(PROJECT_ROOT / "assets" / "ml").glob("*.py"), *(PROJECT_ROOT / "tarmac" / "ml").glob("*.py")]
    for path in sorted(modules):
        digest.update(path.read_bytes())
    return f"{digest.hexdigest()[:12]}-f{features_fingerprint()}"


def _day_field(period: str, bound: str) -> Any:
    return Field(
        default=None,
        description=f"{bound.capitalize()} day of the {period} period, YYYY-MM-DD, included; unset: "
        f"ml.split.{period}.{bound} in tarmac.yaml. Every day of the split needs a materialized gold/training_set partition.",
    )


class TrainingConfig(dg.Config):
    """Override the settings' time split (ml.split in tarmac.yaml) for one run, e.g. a retraining on
    the latest days: train, then validate (the promotion gate's metrics), then test, in date order."""

    train_start: str | None = _day_field("train", "start")
    train_end: str | None = _day_field("train", "end")
    validate_start: str | None = _day_field("validate", "start")
    validate_end: str | None = _day_field("validate", "end")
    test_start: str | None = _day_field("test", "start")
    test_end: str | None = _day_field("test", "end")

    def split(self, default: TimeSplit) -> TimeSplit:
        def period(name: str, fallback: DayRange) -> dict[str, str]:
            start, end = getattr(self, f"{name}_start"), getattr(self, f"{name}_end")
            return {"start": start or fallback.start.isoformat(), "end": end or fallback.end.isoformat()}

        return TimeSplit.model_validate({
            "train": period("train", default.train),
            "validate": period("validate", default.validate_),
            "test": period("test", default.test),
        })


def _git_commit() -> str:
    """The checkout's commit, marked `+dirty` when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return f"{commit}+dirty" if status.stdout.strip() else commit


@dg.asset(
    key=MODEL_KEY,
    deps=[TRAINING_SET_KEY],
    group_name=ML_GROUP,
    kinds={"sklearn", "mlflow"},
    code_version=ml_code_version(),
    pool=WAREHOUSE_POOL,  # it reads the warehouse: never beside a dbt writer
    owners=["team:ml-features"],
    check_specs=[
        dg.AssetCheckSpec(
            "promotion_gate",
            asset=MODEL_KEY,
            description="The new version became champion: upstream blocking checks passed, it beat the "
            "baseline on the test days, and the champion by more than noise (the lower bound of the "
            "gain's bootstrap interval over the test days).",
        )
    ],
)
def flight_delay_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    tarmac: TarmacConfig,
    model_registry: ModelRegistryResource,
    training_gate: TrainingGateResource,
) -> dg.MaterializeResult:
    """The flight-delay classifier, trained on gold.training_set with a time-based split."""
    from tarmac.ml import training  # scikit-learn and pandas: a training step's cost, not every process's

    settings = tarmac.settings.ml
    paths = tarmac.paths
    split = config.split(settings.split)
    frame = training.load_training_set(paths.warehouse, split.first_day.isoformat(), split.last_day.isoformat())
    periods = training.split_by_time(frame, split)
    context.log.info(", ".join(f"{name}: {len(part)} labelled flights" for name, part in periods.items()))

    model = training.fit_model(periods, settings.model)
    baseline = training.Baseline.fit(periods["train"], settings.baseline)
    metrics, scores = training.evaluate(model, baseline, periods)
    run_dir = paths.reports / "models" / context.run.run_id
    plot = training.calibration_plot(
        {"model": (periods["test"][training.LABEL], scores["test"]),
         "baseline": (periods["test"][training.LABEL], scores["baseline_test"])},
        f"test {split.test.start}..{split.test.end}",
        run_dir / "calibration_test.png",
    )
    reference = training.score_histogram(scores["validate"], settings.monitoring.psi_bins)
    # what normal score drift was: each week of the validation period against the whole of it
    reference["psi_null"] = training.window_psi_null(
        reference, periods["validate"]["flight_date"], scores["validate"], settings.monitoring.window_days)
    # the days it learned from (fit and early stopping): monitoring records them, never judges them
    reference["learned_from"] = [split.train.start.isoformat(), split.validate_.end.isoformat()]
    (run_dir / "score_reference.json").write_text(json.dumps(reference, indent=2))
    tags = _lineage_tags(context, split, training.training_set_digest(frame))
    params = {**settings.model.model_dump(), "model": "HistGradientBoostingClassifier",
              "features": ",".join(training.model_features()), "baseline_prior_flights": settings.baseline.prior_flights}
    registry = model_registry.open()
    candidate = registry.log_model(
        model, training.model_input(periods["test"].head(1000)), params, metrics,
        {**tags, SCORE_REFERENCE_TAG: json.dumps(reference)}, [plot, run_dir / "score_reference.json"],
    )
    gate = _promotion_gate(
        context, settings.promotion, training_gate, registry, candidate, periods["test"], scores["test"], metrics, split
    )
    return dg.MaterializeResult(
        metadata={
            "model_version": dg.MetadataValue.text(candidate.version),
            "champion": dg.MetadataValue.bool(gate.passed),
            "mlflow_run_id": dg.MetadataValue.text(candidate.run_id),
            "mlflow_tracking_uri": dg.MetadataValue.text(registry.uri),
            "metrics": dg.MetadataValue.md(_metrics_table(metrics)),
            **{f"tarmac/{k}": dg.MetadataValue.float(v) for k, v in metrics.items()},
            **{k.removeprefix("tarmac/"): dg.MetadataValue.text(tags[k]) for k in
               ("tarmac/partition_range", "tarmac/training_set_sha256", "tarmac/code_version")},
            "calibration_plot": dg.MetadataValue.md(inline_image(plot, "calibration on the test days")),
        },
        check_results=[gate],
    )


def _lineage_tags(context: dg.AssetExecutionContext, split: TimeSplit, digest: str) -> dict[str, str]:
    """What the model was made from: the days, the rows' content hash, the code and the features."""
    periods = {"train": split.train, "validate": split.validate_, "test": split.test}
    return {
        "tarmac/partition_range": f"{split.first_day}..{split.last_day}",
        "tarmac/split": json.dumps({k: [str(v.start), str(v.end)] for k, v in periods.items()}),
        "tarmac/training_set_sha256": digest,
        "tarmac/code_version": ml_code_version(),
        "tarmac/git_commit": _git_commit(),
        FEATURE_VERSIONS_TAG: json.dumps(feature_versions(), sort_keys=True),
        "tarmac/dagster_run_id": context.run.run_id,
    }


def _promotion_gate(
    context,
    settings: PromotionSettings,
    gate: TrainingGateResource,
    registry,
    candidate,
    test,
    test_scores,
    metrics: dict[str, float],
    split: TimeSplit,
) -> dg.AssetCheckResult:
    """Decide, move the alias if the candidate wins, tag the version with the verdict, and report it."""
    from tarmac.ml import training  # see flight_delay_model
    from tarmac.ml.bootstrap import paired_bootstrap

    champion = registry.champion()
    champion_test = improvement = None
    if champion is not None:  # judged on the same test days as the candidate
        champion_scores = training.delay_probability(registry.load(champion.version), test)
        champion_test = training.classification_metrics(test[training.LABEL], champion_scores)
        bootstrap = settings.bootstrap
        improvement = paired_bootstrap(
            settings.metric, test[training.LABEL].astype(int), test_scores, champion_scores, test["flight_date"],
            bootstrap.resamples, bootstrap.confidence, bootstrap.seed,
        )
    failed = []
    if settings.require_upstream_checks:
        failed = failed_blocking_checks(context.instance, gate.checks, _partition_days(split))
    test_metrics = {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}
    baseline_test = {k.removeprefix("baseline_test_"): v for k, v in metrics.items() if k.startswith("baseline_test_")}
    decision = decide(settings, test_metrics, baseline_test, champion_test, failed, improvement)
    if decision.promote:
        registry.promote(candidate.version)
    verdict = "champion" if decision.promote else "refused"
    registry.tag_version(candidate.version, {"tarmac/promotion": verdict, "tarmac/promotion_reasons": "; ".join(decision.reasons)})
    context.log.info(f"version {candidate.version}: {verdict}" + (f" ({'; '.join(decision.reasons)})" if decision.reasons else ""))

    metric = settings.metric
    metadata = {
        "challenger_version": dg.MetadataValue.text(candidate.version),
        f"challenger_test_{metric}": dg.MetadataValue.float(test_metrics[metric]),
        f"baseline_test_{metric}": dg.MetadataValue.float(baseline_test[metric]),
        "failed_upstream_checks": dg.MetadataValue.int(len(failed)),
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons) or "none"),
    }
    if champion is not None:
        metadata["previous_champion_version"] = dg.MetadataValue.text(champion.version)
        metadata[f"previous_champion_test_{metric}"] = dg.MetadataValue.float(champion_test[metric])
        metadata["gain"] = dg.MetadataValue.float(improvement.estimate)
        metadata["gain_interval_low"] = dg.MetadataValue.float(improvement.low)
        metadata["gain_interval_high"] = dg.MetadataValue.float(improvement.high)
        metadata["gain_interval"] = dg.MetadataValue.text(improvement.describe())
    return dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"version {candidate.version}: {verdict}",
        metadata=metadata,
    )


def _metrics_table(metrics: dict[str, float]) -> str:
    header = "| period | scorer | ROC AUC | PR AUC | log loss | Brier |\n|---|---|---|---|---|---|\n"
    return header + "\n".join(
        f"| {period} | {who} | " + " | ".join(f"{metrics[f'{prefix}{period}_{m}']:.4f}" for m in ("roc_auc", "pr_auc", "log_loss", "brier")) + " |"
        for period in ("validate", "test")
        for who, prefix in (("model", ""), ("baseline", "baseline_"))
    )


def _partition_days(split: TimeSplit) -> list[str]:
    keys = set(daily_partitions.get_partition_keys())
    return [d for d in DayRange(start=split.first_day, end=split.last_day).days() if d in keys]
