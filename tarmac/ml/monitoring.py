"""Model monitoring: once a scored day's labels are known, how good were its predictions?

Per day of gold.predictions, over the trailing week that ends with it: ROC AUC and calibration error
(mean predicted probability minus the observed delay rate) against the labels in gold.training_set,
and PSI of the scores against the champion's scores on its validation period (prediction drift,
which needs no labels), judged against what each week of that period drifted from the whole of it. A day the model learned from (its training and validation periods) is
recorded but never judged: its figures are in-sample. The
`model_performance` check reports them; the retraining sensor reads its failures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from tarmac.days import next_day
from tarmac.ml.registry import ModelRegistry
from tarmac.quality.evaluate import Outcome, worst
from tarmac.settings.ml import MonitoringSettings
from tarmac.settings.thresholds import Thresholds

SCORE_REFERENCE_TAG = "tarmac/score_reference"


def score_references(open_registry: Callable[[], ModelRegistry]) -> Callable[[str], dict[str, list[float]]]:
    """The score histogram each model version was registered with (see training.score_histogram),
    read once per version; the registry is opened on the first read."""
    registry = cache(open_registry)

    @cache
    def reference(version: str) -> dict[str, list[float]]:
        return json.loads(registry().get(version).tags[SCORE_REFERENCE_TAG])

    return reference


def psi(reference: dict[str, list[float]], scores: np.ndarray) -> float:
    """Population stability index of scores over the reference's bins (empty bins floored at 1e-4)."""
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=np.asarray(reference["edges"]))
    actual = np.maximum(counts / max(len(scores), 1), 1e-4)
    expected = np.maximum(np.asarray(reference["shares"]), 1e-4)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def model_performance_days(
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    days: list[str],
    settings: MonitoringSettings,
    score_reference: Callable[[str], dict[str, list[float]]],
) -> list[Outcome]:
    """Each day's figures over its trailing window, from the predictions and labels of every day's
    window read in one query."""
    first = (date.fromisoformat(min(days)) - timedelta(days=settings.window_days - 1)).isoformat()
    frame = con.execute(
        "select p.flight_date, p.delay_probability, p.model_version, t.is_delayed from gold.predictions p "
        "left join gold.training_set t on t.flight_id = p.flight_id and t.flight_date = p.flight_date "
        "where p.flight_date between ? and ? order by p.flight_date",
        [first, max(days)],
    ).df()
    dates = frame["flight_date"].to_numpy(dtype="datetime64[D]")
    return [_model_performance(key, day, frame, dates, settings, score_reference) for day in days]


def _model_performance(
    key: dg.AssetKey,
    day: str,
    predictions: pd.DataFrame,
    dates: np.ndarray,
    settings: MonitoringSettings,
    score_reference: Callable[[str], dict[str, list[float]]],
) -> Outcome:
    """The champion's figures over the `window_days` days ending at `day`, among the flights scored
    by the version that scored `day`: one day's ~900 flights make a noisy AUC, and a day's weather
    moves all its scores together, so a trailing week is what the thresholds judge."""
    first = (date.fromisoformat(day) - timedelta(days=settings.window_days - 1)).isoformat()
    start, today_start, end = np.searchsorted(dates, np.array([first, day, next_day(day)], dtype="datetime64[D]"))
    frame = predictions.iloc[start:end]
    today = predictions.iloc[today_start:end]
    if today.empty:
        return Outcome(key, "model_performance", day, "error", f"no predictions for {day}")
    versions = sorted(today["model_version"].unique())
    window = frame[frame["model_version"].isin(versions)]
    labelled = window.dropna(subset=["is_delayed"])
    metrics: dict[str, float | None] = {
        "scored": float(len(today)), "window_scored": float(len(window)), "window_labelled": float(len(labelled)),
    }
    severities, notes = [], []
    if len(versions) == 1:
        reference = score_reference(versions[0])
        metrics["prediction_psi"] = psi(reference, window["delay_probability"].to_numpy(dtype=float))
        thresholds = psi_thresholds(reference, settings)
        metrics |= {"prediction_psi_warn": thresholds.warn, "prediction_psi_error": thresholds.error}
        severities.append(thresholds.severity(metrics["prediction_psi"]))
    else:
        notes.append(f"scored by several versions {versions}: drift not measured")
    y = labelled["is_delayed"].astype(bool).to_numpy(dtype=int)
    if len(labelled) >= settings.min_labelled and 0 < y.sum() < len(y):
        # scikit-learn takes about 1 s to import: not in every process that loads the definitions
        from sklearn.metrics import roc_auc_score

        p = labelled["delay_probability"].to_numpy(dtype=float)
        metrics["roc_auc"] = float(roc_auc_score(y, p))
        metrics["calibration_error"] = float(p.mean() - y.mean())
        severities += [
            settings.roc_auc.severity(metrics["roc_auc"]),
            settings.calibration_error.severity(abs(metrics["calibration_error"])),
        ]
    else:
        notes.append(f"{len(labelled)} labelled flights (< {settings.min_labelled} or one class): performance not measured")
    severity = worst(*severities)
    learned = [v for v in versions if _learned_from(score_reference(v), day)]
    if learned:  # in-sample figures say how well it memorised, not how it serves: recorded, not judged
        severity = "ok"
        start, end = score_reference(learned[0])["learned_from"]
        notes.insert(0, f"{day} is one of the days model {learned[0]} learned from ({start}..{end}): recorded, not judged")
    shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "calibration_error", "prediction_psi") if k in metrics)
    summary = (f"model {', '.join(versions)}, {first}..{day}: {shown or 'no figures'}"
               + (f" ({'; '.join(notes)})" if notes else ""))
    metadata = {
        "model_version": dg.MetadataValue.text(", ".join(versions)),
        "window": dg.MetadataValue.text(f"{first}..{day}"),
        **{name: dg.MetadataValue.float(value) for name, value in metrics.items() if value is not None},
    }
    return Outcome(key, "model_performance", day, severity, summary, metrics, metadata)


def psi_thresholds(reference: dict, settings: MonitoringSettings) -> Thresholds:
    """The score PSI's thresholds for a model version: the settings' floors, raised where the
    version's own validation weeks drifted more than that from the whole validation period
    (`psi_null`, stored with its score reference; versions registered before it keep the floors)."""
    null = reference.get("psi_null") or []
    floors, calibration = settings.prediction_psi, settings.psi_calibration
    if not null:
        return floors
    normal = float(np.quantile(null, calibration.quantile))
    return Thresholds(warn=max(floors.warn, calibration.warn_margin * normal),
                      error=max(floors.error, calibration.error_margin * normal))


def _learned_from(reference: dict, day: str) -> bool:
    """Whether `day` is one of the days a model version learned from (its training and validation
    periods, recorded with its score reference; versions registered before that record say nothing)."""
    span = reference.get("learned_from")
    return bool(span) and span[0] <= day <= span[1]
