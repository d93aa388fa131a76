"""ML sensors: score what changed with the champion, and retrain when monitoring says the model decays.

- `batch_scoring_sensor` requests gold/predictions for every day whose features changed since it
  was scored (a day never scored, or recorded as not scored for want of a champion, counts as
  changed), and for every scored day when the champion changes; days whose feature run is still
  going, or whose blocking feature checks did not pass, wait.
- `model_retraining_sensor` reads the latest `model_performance` evaluation of the most recent
  scored days; when enough of them failed with ERROR (AUC decay, miscalibration or score drift)
  under the current champion, it requests one training run on a split that ends at the last
  labelled day. Its run key is the champion's version: one retraining per champion, so a retrained
  model that is refused promotion does not loop.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg

from assets.ml.model import MODEL_KEY
from assets.ml.predictions import FEATURES_KEY, PREDICTIONS_KEY, not_scored_days
from assets.partitions import RANGE_END, RANGE_START
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from sensors.landing import TRIGGER_TAG, contiguous_ranges
from sensors.refresh import run_coverage
from tarmac.ml.promotion import blocking_checks, failed_blocking_checks, latest_evaluations
from tarmac.paths import FIRST_DAY
from tarmac.settings.loader import load_settings

ACTIVE = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]
PERFORMANCE_CHECK = dg.AssetCheckKey(PREDICTIONS_KEY, "model_performance")


def active_days(instance: dg.DagsterInstance, keys: set[dg.AssetKey]) -> set[str]:
    """Days that a queued or running run of any of these assets covers."""
    return {day for key, day in run_coverage(instance, ACTIVE) if key in keys}


def stale_days(
    features: dict[str, int], scored: dict[str, int], rescore_all: bool, not_scored: set[str] = frozenset()
) -> set[str]:
    """Days whose features are newer than their scores, never scored or recorded as not scored
    (`not_scored`: their latest materialization holds no scores); every day with features when the
    champion changed."""
    if rescore_all:
        return set(features)
    return {
        day for day, storage_id in features.items() if day in not_scored or scored.get(day, -1) < storage_id
    }


@dg.sensor(
    name="batch_scoring_sensor",
    target=[PREDICTIONS_KEY],
    minimum_interval_seconds=load_settings().ml.scoring_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=__doc__.split("\n\n")[1].split("\n- ")[0].removeprefix("- "),
)
def batch_scoring_sensor(context: dg.SensorEvaluationContext, model_registry: ModelRegistryResource) -> dg.SensorResult:
    champion = model_registry.open().champion_version()
    if champion is None:
        return dg.SensorResult(skip_reason="no champion model yet")
    instance = context.instance
    storage = instance.event_log_storage
    features = dict(storage.get_latest_storage_id_by_partition(FEATURES_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION))
    scored = dict(storage.get_latest_storage_id_by_partition(PREDICTIONS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION))
    state = json.loads(context.cursor) if context.cursor else {"champion": _last_scoring_version(instance)}
    rescore_all = state.get("champion") != champion
    days = stale_days(features, scored, rescore_all, not_scored=not_scored_days(instance)) - active_days(
        instance, {FEATURES_KEY, PREDICTIONS_KEY}
    )
    cursor = json.dumps({"champion": champion})
    if not days:
        return dg.SensorResult(skip_reason=f"every day with features is scored by champion v{champion}", cursor=cursor)
    blocking = blocking_checks(context.repository_def.asset_graph, [FEATURES_KEY], upstream=False)
    failed = failed_blocking_checks(instance, blocking, sorted(days))
    held = {f.split("[")[1].split("]")[0] for f in failed if "[" in f}
    if held:
        context.log.warning(f"not scored, blocking feature checks did not pass: {', '.join(sorted(held)[:20])}")
    requests = [
        dg.RunRequest(
            run_key=f"score:v{champion}:{first}:{last}:{max(features[d] for d in days if first <= d <= last)}",
            asset_selection=[PREDICTIONS_KEY],
            tags={RANGE_START: first, RANGE_END: last, TRIGGER_TAG: "batch_scoring"},
        )
        for first, last in contiguous_ranges(days - held)
    ]
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _last_scoring_version(instance: dg.DagsterInstance) -> str | None:
    records = instance.fetch_materializations(PREDICTIONS_KEY, limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("model_version")
    return value.value if value is not None else None


def retraining_split(last_labelled_day: str, test_days: int, validate_days: int) -> dict[str, str]:
    """Train on everything before the last `validate_days + test_days` labelled days."""
    last = date.fromisoformat(last_labelled_day)
    test_start = last - timedelta(days=test_days - 1)
    validate_start = test_start - timedelta(days=validate_days)
    return {
        "train_start": FIRST_DAY, "train_end": (validate_start - timedelta(days=1)).isoformat(),
        "validate_start": validate_start.isoformat(), "validate_end": (test_start - timedelta(days=1)).isoformat(),
        "test_start": test_start.isoformat(), "test_end": last.isoformat(),
    }


def decayed_days(evaluations: dict[str, tuple[bool, str, str | None]], champion: str, window_days: int) -> list[str]:
    """Of the latest `window_days` evaluated days, those that failed with ERROR under this champion.

    `evaluations` maps a day to (passed, severity, model version) of its latest evaluation.
    """
    recent = sorted(evaluations, reverse=True)[:window_days]
    return sorted(
        day for day in recent
        if not evaluations[day][0] and evaluations[day][1] == "ERROR" and evaluations[day][2] == champion
    )


def recent_evaluations(instance: dg.DagsterInstance, window_days: int) -> dict[str, tuple[bool, str, str | None]]:
    """(passed, severity, model version) of the latest model_performance evaluation of the most
    recent evaluated days."""
    infos = instance.event_log_storage.get_asset_check_partition_info([PERFORMANCE_CHECK])
    days = sorted((i.partition_key for i in infos if i.partition_key), reverse=True)[:window_days]
    out = {}
    for day, evaluation in latest_evaluations(instance, PERFORMANCE_CHECK, days).items():
        version = evaluation.metadata.get("model_version")
        out[day] = (evaluation.passed, evaluation.severity.value, version.value if version else None)
    return out


@dg.sensor(
    name="model_retraining_sensor",
    target=[MODEL_KEY],
    minimum_interval_seconds=load_settings().ml.retraining_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains the delay model when enough recent days fail model_performance under the champion.",
)
def model_retraining_sensor(
    context: dg.SensorEvaluationContext, tarmac: TarmacConfig, model_registry: ModelRegistryResource
) -> dg.SensorResult:
    settings = tarmac.settings.ml.retraining
    champion = model_registry.open().champion_version()
    if champion is None:
        return dg.SensorResult(skip_reason="no champion model to monitor")
    evaluations = recent_evaluations(context.instance, settings.window_days)
    decayed = decayed_days(evaluations, champion, settings.window_days)
    if len(decayed) < settings.min_failed_days:
        return dg.SensorResult(
            skip_reason=f"{len(decayed)} of the latest {min(settings.window_days, len(evaluations))} scored days "
            f"failed model_performance under v{champion} (retrain at {settings.min_failed_days})"
        )
    labelled = context.instance.get_materialized_partitions(dg.AssetKey(["gold", "training_set"]))
    split = retraining_split(max(labelled), settings.test_days, settings.validate_days)
    context.log.info(f"champion v{champion} decayed on {', '.join(decayed)}: retraining on {split}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"retrain:v{champion}",
                asset_selection=[MODEL_KEY],
                run_config=dg.RunConfig(ops={"ml__flight_delay_model": {"config": split}}),
                tags={TRIGGER_TAG: "model_retraining", "tarmac/decayed_days": ",".join(decayed)},
            )
        ]
    )
