"""The settings file (tarmac.yaml): every data-quality threshold and window, validated at load.

A typo in a key, a threshold of the wrong type or a warn threshold above its error threshold is
refused with an error that names the file and the key, before any check runs.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from tarmac.paths import PROJECT_ROOT
from tarmac.settings.ml import MlSettings
from tarmac.settings.online import OnlineSettings
from tarmac.settings.thresholds import FloorThresholds, StrictSettings, Thresholds

DEFAULT_SETTINGS_FILE = PROJECT_ROOT / "tarmac.yaml"


class SchemaSettings(StrictSettings):
    blocking: bool = True
    bronze_max_invalid_share: float = Field(ge=0, le=1)


class DriftColumns(StrictSettings):
    numeric: list[str] = []
    categorical: list[str] = []


class PersistenceSettings(StrictSettings):
    days: int = Field(default=3, ge=1)
    min_days: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _within(self) -> PersistenceSettings:
        if self.min_days > self.days:
            raise ValueError(f"min_days ({self.min_days}) must not exceed days ({self.days})")
        return self


class SegmentSettings(StrictSettings):
    """A segment's (a carrier's) quantile of a column, relative to the whole day's, against its
    reference days: WARN when it moves beyond margin x the null's `quantile` (and beyond floor)."""

    by: str
    column: str
    value_quantile: float = Field(default=0.25, gt=0, lt=1)
    min_rows: int = Field(default=50, ge=1)
    quantile: float = Field(default=0.9, gt=0, le=1)
    margin: float = Field(default=4.0, ge=1)
    floor: float = Field(default=5.0, ge=0)


class DriftSettings(StrictSettings):
    blocking: bool = False
    min_rows: int = Field(ge=1)
    large_sample: int = Field(default=1000, ge=1)
    quantiles: int = Field(default=100, ge=10, le=1000)
    min_reference_days: int = Field(default=14, ge=2)
    quantile: float = Field(default=0.9, gt=0, le=1)
    error_margin: float = Field(default=2.0, ge=1)
    gross_margin: float = Field(default=5.0, ge=1)
    new_category_share: float = Field(default=0.01, ge=0, le=1)
    warn_share: float = Field(default=0.34, gt=0, le=1)
    error_share: float = Field(default=0.3, gt=0, le=1)
    persistence: PersistenceSettings = PersistenceSettings()
    columns: dict[str, DriftColumns] = {}
    segments: dict[str, SegmentSettings] = {}

    @model_validator(mode="after")
    def _margins(self) -> DriftSettings:
        if self.gross_margin < self.error_margin:
            raise ValueError(f"gross_margin ({self.gross_margin}) must not be below error_margin ({self.error_margin})")
        return self


class FreshnessSettings(StrictSettings):
    blocking: bool = False
    max_event_lag_minutes: dict[str, int]


class MissingValuesSettings(StrictSettings):
    blocking: bool = False
    null_rate: dict[str, dict[str, Thresholds]]
    expected_rows_per_day: dict[str, int] = {}
    min_completeness: FloorThresholds


class ScaleSettings(StrictSettings):
    """A column's magnitude (mean absolute value) against the reference days', judged against
    how far each reference day's magnitude lies from the other reference days'."""

    quantile: float = Field(default=0.9, gt=0, le=1)
    margin: float = Field(default=3.0, ge=1)
    floor: float = Field(default=0.1, ge=0)
    min_reference_days: int = Field(default=7, ge=2)
    min_values: int = Field(default=20, ge=1)
    columns: dict[str, list[str]] = {}


class CodeSettings(StrictSettings):
    """Categorical columns whose codes must have been seen in the reference window."""

    new_share: Thresholds
    columns: dict[str, list[str]] = {}


class ValueRangeSettings(StrictSettings):
    blocking: bool = False
    violation_share: Thresholds
    iqr_multiplier: float = Field(gt=0)
    max_outlier_share: float = Field(ge=0, le=1)
    min_reference_values: int = Field(ge=1)
    columns: dict[str, list[str]]
    scale: ScaleSettings
    rules: dict[str, dict[str, str]] = {}
    rule_share: Thresholds
    codes: CodeSettings


class RowThresholds(StrictSettings):
    """A day's rows over the rows expected of it: too few (a floor) or too many."""

    low: FloorThresholds
    high: Thresholds


class VolumeSettings(StrictSettings):
    blocking: bool = False
    rows: RowThresholds
    min_reference_days: int = Field(default=3, ge=1)
    segments: dict[str, list[str]]
    segment_rows: FloorThresholds
    min_segment_rows: int = Field(default=20, ge=1)
    duplicate_share: Thresholds
    quarantined_share: Thresholds


class CorrelationSettings(StrictSettings):
    blocking: bool = False
    min_rows: int = Field(ge=3)
    max_abs_delta: Thresholds
    columns: dict[str, list[str]]


class ReferenceWindow(StrictSettings):
    days: int = Field(default=28, ge=1, le=366)
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _fixed_or_trailing(self) -> ReferenceWindow:
        if (self.start is None) != (self.end is None):
            raise ValueError("a fixed reference window needs both start and end")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


class QualitySettings(StrictSettings):
    reference_window: ReferenceWindow
    max_failure_cases: int = Field(ge=1, le=1000)
    schema_: SchemaSettings = Field(alias="schema")
    drift: DriftSettings
    freshness: FreshnessSettings
    missing_values: MissingValuesSettings
    value_ranges: ValueRangeSettings
    volume: VolumeSettings
    correlation: CorrelationSettings


class AlertSettings(StrictSettings):
    jsonl_path: str = "alerts/alerts.jsonl"
    webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=5, gt=0)


class SensorSettings(StrictSettings):
    """How often each sensor ticks (the daemon's minimum interval between evaluations)."""

    landing_interval_seconds: int = Field(default=15, ge=1)
    refresh_interval_seconds: int = Field(default=15, ge=1)
    freshness_interval_seconds: int = Field(default=30, ge=1)
    alert_interval_seconds: int = Field(default=30, ge=1)
    dead_run_interval_seconds: int = Field(default=30, ge=1)


class ProcessingFreshnessSettings(StrictSettings):
    """Processing freshness: when a day's partition must be materialized, on the pipeline's clock,
    and how old the unpartitioned reference tables may get."""

    # a cron tick (local time) by which the previous day's partition must exist
    deadline_cron: str = "0 4 * * *"
    severity: Literal["warn", "error"] = "error"
    daily_assets: list[str]
    reference_warn_window_days: float = Field(default=30, gt=0)
    reference_fail_window_days: float = Field(default=35, gt=0)

    @model_validator(mode="after")
    def _valid_cron(self) -> ProcessingFreshnessSettings:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(self.deadline_cron):
            raise ValueError(f"deadline_cron {self.deadline_cron!r} is not a cron expression")
        if self.reference_warn_window_days > self.reference_fail_window_days:
            raise ValueError("reference_warn_window_days must not exceed reference_fail_window_days")
        return self


class ReplaySettings(StrictSettings):
    """`make replay`: one landing day every `seconds_per_day` seconds, starting at `start`."""

    seconds_per_day: float = Field(default=60, gt=0)
    start: date = date(2013, 1, 1)


class WarehouseSettings(StrictSettings):
    """The warehouse's writer: how long a writing step waits for another process to release the
    working copy (tarmac/warehouse.py) before it fails, naming that process."""

    lock_timeout_seconds: float = Field(default=300, gt=0)


class TarmacSettings(StrictSettings):
    quality: QualitySettings
    warehouse: WarehouseSettings = WarehouseSettings()
    alerts: AlertSettings = AlertSettings()
    sensors: SensorSettings = SensorSettings()
    processing_freshness: ProcessingFreshnessSettings
    replay: ReplaySettings = ReplaySettings()
    ml: MlSettings
    online: OnlineSettings = OnlineSettings()


class SettingsError(ValueError):
    pass


def settings_file() -> Path:
    return Path(os.environ.get("TARMAC_SETTINGS") or DEFAULT_SETTINGS_FILE).expanduser().resolve()


def load_settings(path: Path | None = None) -> TarmacSettings:
    """Read and validate the settings file; errors name the file and each offending key."""
    path = path or settings_file()
    return _load(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime: int) -> TarmacSettings:
    if not path.exists():
        raise SettingsError(f"settings file {path} does not exist (set TARMAC_SETTINGS or restore tarmac.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from error
    try:
        return TarmacSettings.model_validate(raw or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).replace('schema_', 'schema')}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise SettingsError(f"{path}: {problems}") from error
