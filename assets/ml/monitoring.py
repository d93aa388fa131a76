"""Model monitoring: once a scored day's labels are known, how good were its predictions?

Per day of gold.predictions: ROC AUC and calibration error (mean predicted probability minus the
observed delay rate) against the labels in gold.training_set, and PSI of the day's scores against
the champion's scores on its validation period (prediction drift, which needs no labels). The
`model_performance` check reports them; the retraining sensor reads its failures.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
from sklearn.metrics import roc_auc_score

from assets.quality.evaluate import Outcome, worst
from resources.quality_settings import load_settings
from resources.settings import TarmacPaths

SCORE_REFERENCE_TAG = "tarmac/score_reference"


@cache
def score_reference(data_dir: str, version: str) -> dict[str, list[float]]:
    """The score histogram a model version was registered with (see training.score_histogram)."""
    from assets.ml.model_registry import ModelRegistry

    settings = load_settings().ml
    registry = ModelRegistry(TarmacPaths(Path(data_dir)), settings.model_name, settings.experiment)
    return json.loads(registry.get(version).tags[SCORE_REFERENCE_TAG])


def psi(reference: dict[str, list[float]], scores: np.ndarray) -> float:
    """Population stability index of scores over the reference's bins (empty bins floored at 1e-4)."""
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=np.asarray(reference["edges"]))
    actual = np.maximum(counts / max(len(scores), 1), 1e-4)
    expected = np.maximum(np.asarray(reference["shares"]), 1e-4)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def model_performance(con: duckdb.DuckDBPyConnection, key: dg.AssetKey, day: str) -> Outcome:
    settings = load_settings().ml.monitoring
    rows = con.execute(
        "select p.delay_probability, p.model_version, t.is_delayed from gold.predictions p "
        "left join gold.training_set t on t.flight_id = p.flight_id and t.flight_date = p.flight_date "
        "where p.flight_date = ?",
        [day],
    ).fetchall()
    if not rows:
        return Outcome(key, "model_performance", day, "error", f"no predictions for {day}")
    versions = sorted({r[1] for r in rows})
    scores = np.array([r[0] for r in rows], dtype=float)
    labelled = [(r[0], r[2]) for r in rows if r[2] is not None]
    metrics: dict[str, float | None] = {"scored": float(len(rows)), "labelled": float(len(labelled))}
    severities = []
    notes = []
    if len(versions) == 1:
        reference = score_reference(str(TarmacPaths.from_env().data_dir), versions[0])
        metrics["prediction_psi"] = psi(reference, scores)
        severities.append(settings.prediction_psi.severity(metrics["prediction_psi"]))
    else:
        notes.append(f"scored by several versions {versions}: drift not measured")
    y = np.array([bool(lab) for _, lab in labelled], dtype=int)
    if len(labelled) >= settings.min_labelled and 0 < y.sum() < len(y):
        p = np.array([s for s, _ in labelled], dtype=float)
        metrics["roc_auc"] = float(roc_auc_score(y, p))
        metrics["calibration_error"] = float(p.mean() - y.mean())
        severities += [
            settings.roc_auc.severity(metrics["roc_auc"]),
            settings.calibration_error.severity(abs(metrics["calibration_error"])),
        ]
    else:
        notes.append(f"{len(labelled)} labelled flights (< {settings.min_labelled} or one class): performance not measured")
    severity = worst(*severities)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k not in ("scored", "labelled") and v is not None)
    summary = f"model {', '.join(versions)} on {day}: {shown or 'no figures'}" + (f" ({'; '.join(notes)})" if notes else "")
    metadata = {
        "model_version": dg.MetadataValue.text(", ".join(versions)),
        **{name: dg.MetadataValue.float(value) for name, value in metrics.items() if value is not None},
    }
    return Outcome(key, "model_performance", day, severity, summary, metrics, metadata)
