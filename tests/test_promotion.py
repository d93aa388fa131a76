"""The promotion gate's rules, one at a time: each refusal names its rule and its numbers; and the
paired bootstrap that tells a gain over the champion from the noise of the test days."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from tarmac.ml.bootstrap import Improvement, paired_bootstrap, weighted_metric
from tarmac.ml.promotion import decide
from tarmac.settings.ml import PromotionSettings

GATE = PromotionSettings(metric="roc_auc", min_improvement=0.005)
BASELINE = {"roc_auc": 0.62, "log_loss": 0.56}


def test_a_better_model_on_clean_data_is_promoted():
    decision = decide(GATE, {"roc_auc": 0.72}, BASELINE, {"roc_auc": 0.70}, failed_checks=[])
    assert decision.promote and decision.reasons == []
    # the first model has no champion to beat
    assert decide(GATE, {"roc_auc": 0.72}, BASELINE, None, failed_checks=[]).promote


def test_a_failed_upstream_blocking_check_refuses_promotion():
    decision = decide(GATE, {"roc_auc": 0.80}, BASELINE, {"roc_auc": 0.70}, ["silver/flights:schema[2013-03-05] failed"])
    assert not decision.promote
    assert decision.reasons == ["1 upstream blocking check evaluations did not pass: silver/flights:schema[2013-03-05] failed"]
    # a setting can lift that rule, and only that rule
    lifted = PromotionSettings(min_improvement=0.005, require_upstream_checks=False)
    assert decide(lifted, {"roc_auc": 0.80}, BASELINE, {"roc_auc": 0.70}, ["x failed"]).promote


def test_a_challenger_that_is_not_better_by_the_margin_is_refused():
    decision = decide(GATE, {"roc_auc": 0.704}, BASELINE, {"roc_auc": 0.70}, [])
    assert not decision.promote
    assert decision.reasons == ["test roc_auc 0.7040 does not beat the champion's 0.7000 on the same days by more than 0.005"]
    assert not decide(GATE, {"roc_auc": 0.69}, BASELINE, {"roc_auc": 0.70}, []).promote


def test_a_challenger_no_better_than_the_baseline_is_refused():
    decision = decide(GATE, {"roc_auc": 0.61}, BASELINE, None, [])
    assert decision.reasons == ["test roc_auc 0.6100 does not beat the baseline's 0.6200"]


def test_lower_is_better_for_losses():
    by_loss = PromotionSettings(metric="log_loss", min_improvement=0.0)
    assert decide(by_loss, {"log_loss": 0.50}, BASELINE, {"log_loss": 0.52}, []).promote
    assert not decide(by_loss, {"log_loss": 0.53}, BASELINE, {"log_loss": 0.52}, []).promote


# ---------------------------------------------------------------- the gain over the champion, beyond noise



def _test_days(n_days: int = 30, flights: int = 400, seed: int = 3):
    """Labels with a day effect (a day's weather delays many flights at once) and a true score."""
    rng = np.random.default_rng(seed)
    days = np.repeat(np.arange(n_days), flights)
    signal = rng.normal(size=days.size) + rng.normal(scale=0.8, size=n_days)[days]
    y = (signal + rng.normal(size=days.size) > 1.0).astype(int)
    return rng, days, y, signal


def test_the_weighted_metrics_equal_scikit_learns_with_and_without_weights():
    rng, _, y, signal = _test_days(n_days=5, flights=300)
    p = 1 / (1 + np.exp(-np.round(signal, 1)))  # rounded: ties, as a tree model gives
    weights = rng.integers(0, 4, size=y.size).astype(float)
    for w in (None, weights):
        for name, reference in (("roc_auc", roc_auc_score), ("pr_auc", average_precision_score),
                                ("log_loss", log_loss), ("brier", brier_score_loss)):
            assert weighted_metric(name, y, p, w) == pytest.approx(reference(y, p, sample_weight=w), abs=1e-9), name


def test_a_gain_inside_the_noise_of_the_test_days_is_refused_and_a_real_one_promoted():
    rng, days, y, signal = _test_days()
    champion = 1 / (1 + np.exp(-(signal + rng.normal(scale=1.0, size=y.size))))
    # the same model seen through other noise: a point gain, if any, is luck
    lucky = 1 / (1 + np.exp(-(signal + rng.normal(scale=1.0, size=y.size))))
    noise = paired_bootstrap("roc_auc", y, lucky, champion, days, resamples=400)
    assert noise.low < 0 < noise.high and abs(noise.estimate) < 0.01, noise
    decision = decide(PromotionSettings(), {"roc_auc": 0.8}, BASELINE, {"roc_auc": 0.79}, [], noise)
    assert not decision.promote
    assert decision.reasons[0].startswith(
        f"does not beat the champion by more than noise: gain in test roc_auc over the champion {noise.estimate:+.4f} (95% interval")
    assert "resamples of 30 test days), whose lower bound does not clear 0.0" in decision.reasons[0]

    better = 1 / (1 + np.exp(-(signal + rng.normal(scale=0.5, size=y.size))))  # half the noise
    real = paired_bootstrap("roc_auc", y, better, champion, days, resamples=400)
    assert real.low > 0.01, real
    assert decide(PromotionSettings(), {"roc_auc": 0.85}, BASELINE, {"roc_auc": 0.79}, [], real).promote
    # ... unless min_improvement asks for more than the interval guarantees
    demanding = PromotionSettings(min_improvement=real.high)
    assert not decide(demanding, {"roc_auc": 0.85}, BASELINE, {"roc_auc": 0.79}, [], real).promote


def test_the_bootstrap_is_paired_reproducible_and_points_losses_the_right_way():
    rng, days, y, signal = _test_days(n_days=10)
    champion = 1 / (1 + np.exp(-(signal + rng.normal(size=y.size))))
    same = paired_bootstrap("roc_auc", y, champion, champion, days, resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)  # paired: identical scores never differ
    better = 1 / (1 + np.exp(-signal))
    by_loss = paired_bootstrap("log_loss", y, better, champion, days, resamples=200)
    assert by_loss.estimate == pytest.approx(log_loss(y, champion) - log_loss(y, better))  # positive: better
    assert by_loss.estimate > 0
    assert paired_bootstrap("log_loss", y, better, champion, days, resamples=200) == by_loss
    assert isinstance(by_loss, Improvement) and by_loss.days == 10 and by_loss.resamples == 200
