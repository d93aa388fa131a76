"""Score drift judged against what normal was for the model: the PSI of each week of its validation
period against the whole of it (stored with the model) raises the thresholds where the model's own
weeks vary; a model whose weeks agree keeps the settings' floors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tarmac.ml.monitoring import psi, psi_thresholds
from tarmac.ml.training import score_histogram, window_psi_null
from tarmac.settings.loader import load_settings

MONITORING = load_settings().ml.monitoring


def _period(rng, weekly_shift: float) -> tuple[pd.Series, np.ndarray]:
    """31 days of 900 scores; every other week's scores shifted by `weekly_shift` on the logit scale."""
    days, scores = [], []
    for i in range(31):
        shift = weekly_shift if (i // 7) % 2 else 0.0
        logit = rng.normal(-1.2 + shift, 1.0, 900)
        days += [pd.Timestamp("2013-10-01") + pd.Timedelta(days=i)] * 900
        scores.append(1 / (1 + np.exp(-logit)))
    return pd.Series(days), np.concatenate(scores)


def test_a_model_whose_weeks_agree_keeps_the_floors():
    days, scores = _period(np.random.default_rng(3), weekly_shift=0.0)
    reference = score_histogram(scores, MONITORING.psi_bins)
    null = window_psi_null(reference, days, scores, MONITORING.window_days)
    assert len(null) == 31 - MONITORING.window_days + 1 and max(null) < 0.01
    thresholds = psi_thresholds({**reference, "psi_null": null}, MONITORING)
    assert (thresholds.warn, thresholds.error) == (MONITORING.prediction_psi.warn, MONITORING.prediction_psi.error)


def test_a_model_whose_weeks_vary_gets_wider_thresholds_and_still_sees_a_real_shift():
    rng = np.random.default_rng(5)
    days, scores = _period(rng, weekly_shift=1.6)
    reference = score_histogram(scores, MONITORING.psi_bins)
    null = window_psi_null(reference, days, scores, MONITORING.window_days)
    thresholds = psi_thresholds({**reference, "psi_null": null}, MONITORING)
    normal = float(np.quantile(null, MONITORING.psi_calibration.quantile))
    assert thresholds.warn == MONITORING.psi_calibration.warn_margin * normal > MONITORING.prediction_psi.warn
    # a week like the validation's shifted weeks is normal for this model; one far beyond is not
    like_validation = 1 / (1 + np.exp(-rng.normal(-1.2 + 1.6, 1.0, 6300)))
    assert thresholds.severity(psi(reference, like_validation)) == "ok"
    far = 1 / (1 + np.exp(-rng.normal(3.5, 1.0, 6300)))
    assert thresholds.severity(psi(reference, far)) == "error"


def test_a_model_registered_without_a_null_keeps_the_floors():
    days, scores = _period(np.random.default_rng(3), weekly_shift=0.0)
    thresholds = psi_thresholds(score_histogram(scores, MONITORING.psi_bins), MONITORING)
    assert thresholds == MONITORING.prediction_psi
