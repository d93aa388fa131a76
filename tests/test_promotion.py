"""The promotion gate's rules, one at a time: each refusal names its rule and its numbers."""

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
