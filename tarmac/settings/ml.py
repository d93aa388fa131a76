"""The `ml` section of tarmac.yaml: the model's time split, hyper-parameters, promotion gate,
monitoring thresholds and retraining policy. Validated like every other section."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, model_validator

from tarmac.settings.thresholds import FloorThresholds, StrictSettings, Thresholds


class DayRange(StrictSettings):
    """Local days, both ends included."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def days(self) -> list[str]:
        return [(self.start + timedelta(days=i)).isoformat() for i in range((self.end - self.start).days + 1)]


class TimeSplit(StrictSettings):
    """Train on the past, choose on the next period, report on the one after: never shuffled."""

    train: DayRange
    validate_: DayRange = Field(alias="validate")
    test: DayRange

    model_config = StrictSettings.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _in_time_order(self) -> TimeSplit:
        if not self.train.end < self.validate_.start <= self.validate_.end < self.test.start:
            raise ValueError("the split must be train < validate < test in time, without overlap")
        return self

    @property
    def first_day(self) -> date:
        return self.train.start

    @property
    def last_day(self) -> date:
        return self.test.end


class ModelParameters(StrictSettings):
    """scikit-learn HistGradientBoostingClassifier; early stopping watches the validation period."""

    learning_rate: float = Field(default=0.1, gt=0)
    max_iter: int = Field(default=300, ge=1)
    max_leaf_nodes: int = Field(default=31, ge=2)
    min_samples_leaf: int = Field(default=50, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0)
    n_iter_no_change: int = Field(default=20, ge=1)
    random_state: int = 7


class BaselineSettings(StrictSettings):
    """The historical delay rate per carrier x departure hour, shrunk toward the carrier's rate."""

    prior_flights: float = Field(default=50, ge=0)


class BootstrapSettings(StrictSettings):
    """The paired bootstrap of the gain over the champion: whole test days resampled."""

    resamples: int = Field(default=1000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = 7


class PromotionSettings(StrictSettings):
    """When a newly trained model may take the `champion` alias."""

    metric: Literal["roc_auc", "pr_auc", "log_loss", "brier"] = "roc_auc"
    # the challenger must beat the champion, both scored on the same test days: the lower bound of
    # the gain's bootstrap interval must be above this
    min_improvement: float = 0.0
    bootstrap: BootstrapSettings = BootstrapSettings()
    # and beat the baseline on the test days
    require_beats_baseline: bool = True
    # and every blocking check upstream must have passed on every day the model learned from
    require_upstream_checks: bool = True


class PsiCalibration(StrictSettings):
    quantile: float = Field(default=0.9, gt=0, le=1)
    warn_margin: float = Field(default=2.0, ge=1)
    error_margin: float = Field(default=5.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> PsiCalibration:
        if self.warn_margin > self.error_margin:
            raise ValueError(f"warn_margin ({self.warn_margin}) must not exceed error_margin ({self.error_margin})")
        return self


class MonitoringSettings(StrictSettings):
    """Per-partition model performance once labels are known, and drift of the scores."""

    # each day is judged on the trailing window of this many days that ends with it
    window_days: int = Field(default=7, ge=1)
    min_labelled: int = Field(default=200, ge=10)
    roc_auc: FloorThresholds
    # |mean predicted probability - observed delay rate| of the day
    calibration_error: Thresholds
    # PSI of the day's scores against the champion's scores on its validation period: the larger
    # of these floors and the margins times a quantile of the PSI of each window of the validation
    # period against the whole of it (what normal was for this model)
    prediction_psi: Thresholds
    psi_calibration: PsiCalibration = Field(default_factory=lambda: PsiCalibration())
    psi_bins: int = Field(default=10, ge=2)


class RetrainingSettings(StrictSettings):
    """When monitoring asks for a new model."""

    # look at the latest evaluation of this many most recent scored days
    window_days: int = Field(default=14, ge=1)
    # retrain when at least this many of them failed with ERROR (decay or drift)
    min_failed_days: int = Field(default=3, ge=1)
    # the retrained model's periods, ending at the last labelled day
    test_days: int = Field(default=14, ge=1)
    validate_days: int = Field(default=14, ge=1)


class MlSettings(StrictSettings):
    model_name: str = "tarmac-flight-delay"
    experiment: str = "tarmac-flight-delay"
    split: TimeSplit
    model: ModelParameters = ModelParameters()
    baseline: BaselineSettings = BaselineSettings()
    promotion: PromotionSettings = PromotionSettings()
    monitoring: MonitoringSettings
    retraining: RetrainingSettings = RetrainingSettings()
    scoring_interval_seconds: int = Field(default=30, ge=1)
    retraining_interval_seconds: int = Field(default=60, ge=1)
