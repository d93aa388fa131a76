"""The ML layer on a month of real data: training, lineage in the registry, determinism, the
promotion gate and batch scoring, through the same runs `make backfill` makes.

The split is shrunk to March 2013 (train 1st-20th, validate 21st-24th, test 25th-31st) so that a
month stands in for the year.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from tarmac.features.registry import feature_versions
from tarmac.ml.registry import ModelRegistry
from tests.test_quality import rewrite_flights

FIRST, LAST = "2013-03-01", "2013-03-31"
SPLIT = {
    "train": {"start": "2013-03-01", "end": "2013-03-20"},
    "validate": {"start": "2013-03-21", "end": "2013-03-24"},
    "test": {"start": "2013-03-25", "end": "2013-03-31"},
}
DEP_DELAY = 5


def _registry(paths) -> ModelRegistry:
    return ModelRegistry.from_settings(paths)


def _train(instance) -> dg.ExecuteInJobResult:
    from assets.ml.model import flight_delay_model
    from definitions import defs

    return dg.materialize([flight_delay_model], instance=instance, resources=defs.resources)


def _gate(result: dg.ExecuteInJobResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_gate"]
    return evaluation


@pytest.mark.slow
def test_train_register_gate_and_score(paths, land, run_days, instance, settings, query):
    settings(ml__split=SPLIT)
    land(FIRST, LAST)

    # make backfill's stages: reference, daily models, the model (its split is materialized), scores
    results = run_days(FIRST, LAST)
    assert len(results) == 4
    registry = _registry(paths)
    champion = registry.champion()
    assert champion is not None and champion.version == "1"
    first = registry.get("1")
    assert first.metrics["test_roc_auc"] > first.metrics["baseline_test_roc_auc"]
    assert first.tags["tarmac/partition_range"] == f"{FIRST}..{LAST}"
    assert len(first.tags["tarmac/training_set_sha256"]) == 64
    assert json.loads(first.tags["tarmac/feature_versions"]) == feature_versions()
    assert first.tags["tarmac/code_version"] and first.tags["tarmac/promotion"] == "champion"
    labelled = query("select count(*) from gold.training_set where flight_date between ? and ?", [FIRST, "2013-03-20"])
    assert first.metrics["train_rows"] == labelled[0][0]

    # every flight of every day scored by the champion, its version on each row
    scored = query("select count(*), count(distinct flight_id), min(model_version), max(model_version), "
                   "min(delay_probability), max(delay_probability) from gold.predictions")[0]
    features = query("select count(*) from gold.flight_features")[0][0]
    assert scored[:4] == (features, features, "1", "1")
    assert 0 < scored[4] < scored[5] < 1
    performance = [e for e in results[-1].get_asset_check_evaluations() if e.check_name == "model_performance" and e.partition]
    assert len(performance) == 31
    assert all("roc_auc" in e.metadata and "prediction_psi" in e.metadata for e in performance)
    # the days it learned from are recorded, never judged: in-sample figures; the test days are judged
    for e in performance:
        learned = e.partition <= SPLIT["validate"]["end"]
        assert ("learned from (2013-03-01..2013-03-24): recorded, not judged" in e.description) == learned, e.description
        if learned:
            assert e.passed, e.description

    # the same data and code again: the same model, to the last digit, and no promotion
    again = _train(instance)
    second = registry.get("2")
    assert second.metrics == first.metrics
    assert second.tags["tarmac/training_set_sha256"] == first.tags["tarmac/training_set_sha256"]
    gate = _gate(again)
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert "does not beat the champion by more than noise" in gate.metadata["reasons"].value
    # the identical model's gain is zero on every resample of the test days
    assert (gate.metadata["gain"].value, gate.metadata["gain_interval_low"].value) == (0.0, 0.0)
    assert registry.champion().version == "1"

    # a blocking check upstream fails on one day: refused, even when the metric rule would promote
    day = "2013-03-05"

    def bad_type(rows):
        rows[10][DEP_DELAY] = "abc"

    rewrite_flights(paths.landing_day_file("flights", day), bad_type)
    settings(ml__split=SPLIT, ml__promotion__min_improvement=-1.0, quality__schema__bronze_max_invalid_share=0)
    assert not run_days(day, day, expect_success=False)[-1].success
    refused = _gate(_train(instance))
    reasons = refused.metadata["reasons"].value
    assert not refused.passed
    assert f"bronze/flights:schema[{day}] failed" in reasons
    assert len(reasons.splitlines()) == 1  # the only rule that refused
    assert registry.champion().version == "1"
    assert registry.get("3").tags["tarmac/promotion"] == "refused"
    # each version's feature set, as the serving API's feature services read it from the registry
    assert registry.feature_sets() == {"1": feature_versions(), "2": feature_versions(), "3": feature_versions()}
    # the registry lives in the data dir only: MLflow's default store in the working directory is never made
    assert not (Path.cwd() / "mlflow.db").exists() and not (Path.cwd() / "mlruns").exists()

    # the scoring sensor: nothing to do while every day is scored by the champion; a new champion
    # rescores every day with features, except the day whose latest run failed its blocking checks
    from definitions import defs
    from sensors.ml import batch_scoring_sensor

    def tick(cursor=None):
        resources = {"model_registry": defs.resources["model_registry"]}
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources) as context:
            return batch_scoring_sensor(context)

    idle = tick()
    assert not idle.run_requests and "scored by champion v1" in idle.skip_reason.skip_message
    registry.promote("2")
    rescore = tick(idle.cursor)
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in rescore.run_requests] == [(FIRST, "2013-03-04"), ("2013-03-06", LAST)]
    assert rescore.run_requests[0].run_key.startswith("score:v2:")
