"""Threshold pairs shared by every settings section: a statistic's WARN and ERROR levels."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictSettings(BaseModel):
    """A settings section: unknown keys are refused, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(StrictSettings):
    """A statistic that fails with WARN above `warn` and with ERROR above `error`."""

    warn: float = Field(ge=0)
    error: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warn > self.error:
            raise ValueError(f"warn ({self.warn}) must not exceed error ({self.error})")
        return self

    def severity(self, value: float | None) -> Literal["ok", "warn", "error"]:
        if value is None:
            return "ok"
        if value > self.error:
            return "error"
        if value > self.warn:
            return "warn"
        return "ok"


class FloorThresholds(StrictSettings):
    """A share that fails with WARN below `warn` and with ERROR below `error`."""

    warn: float = Field(ge=0, le=1)
    error: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> FloorThresholds:
        if self.error > self.warn:
            raise ValueError(f"error ({self.error}) must not exceed warn ({self.warn}) for a floor")
        return self

    def severity(self, value: float) -> Literal["ok", "warn", "error"]:
        if value < self.error:
            return "error"
        if value < self.warn:
            return "warn"
        return "ok"
