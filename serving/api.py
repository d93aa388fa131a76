"""The serving API: a flight's features and its delay probability, from the online store.

    GET  /features/{flight_id}?as_of=...  the flight's features as of an instant (default: its
                                          prediction_ts), from the speed layer's histories
    POST /predict                         flight fields -> delay probability, the model version and
                                          the features it was given
    GET  /health                          the store, its watermark and the champion version

Features are read exactly as the parity check reads them (assets/online/retrieval.py), and the
champion is scored by the function batch scoring uses. Bad input gets a 4xx whose `detail` says
what was wrong: 422 for a malformed request, 404 for an unknown flight, 409 when the online store
cannot give exact values for that instant, 503 when there is no champion model.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import FastAPI, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from threadpoolctl import threadpool_limits

from assets.ml.feature_registry import feature_registry, feature_versions
from assets.online.events import from_us, to_us
from assets.online.retrieval import FLIGHT, FeaturesNotAvailable, OnlineFeatures, open_online_store
from assets.online.store import OnlineStore
from resources.online_settings import OnlineSettings
from resources.settings import LOCAL_TIMEZONE, TarmacPaths

FLIGHT_ID = re.compile(r"^[A-Z0-9]{2}-\d{1,4}-[A-Z]{3}-\d{8}$")
LOCAL = ZoneInfo(LOCAL_TIMEZONE)


def _freeze_heap() -> None:
    """Move what start-up allocated (MLflow, scikit-learn, the model: half a million objects) out of
    the garbage collector's reach: a full collection over them takes 0.3 s here, a stall that would
    land on whichever request triggers it."""
    gc.collect()
    gc.freeze()


class Champion:
    """The registry's champion, loaded once and looked up again every `refresh_seconds`."""

    def __init__(self, paths: TarmacPaths, refresh_seconds: float):
        self.paths, self.refresh_seconds = paths, refresh_seconds
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self.name: str | None = None
        self.version: str | None = None
        self.model: Any = None

    def get(self) -> tuple[str, str, Any] | None:
        with self._lock:
            if time.monotonic() - self._checked >= self.refresh_seconds:
                self._refresh()
            return (self.name, self.version, self.model) if self.model is not None else None

    def _refresh(self) -> None:
        from assets.ml.model_registry import ModelRegistry

        self._checked = time.monotonic()
        if not (self.paths.mlflow / "mlflow.db").exists():
            return
        registry = ModelRegistry.from_settings(self.paths)
        version = registry.champion_version()
        if version is not None and version != self.version:
            self.model, self.version, self.name = registry.load(version), version, registry.model_name
            _freeze_heap()


class PredictRequest(BaseModel):
    """A flight as the schedule gives it; features are looked up as of its prediction time."""

    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="Two-letter carrier code, e.g. UA.")
    flight: int = Field(ge=1, le=9999, description="Flight number.")
    origin: str = Field(description="Origin airport.")
    dest: str = Field(pattern=r"^[A-Z]{3}$", description="Destination airport (FAA code).")
    sched_dep_ts: AwareDatetime = Field(description="Scheduled departure, with its UTC offset.")
    tailnum: str | None = Field(default=None, max_length=8, description="Tail number, if known.")
    distance: int | None = Field(default=None, ge=1, le=10_000, description="Miles.")
    as_of: AwareDatetime | None = Field(
        default=None, description="Read features as of this instant instead of sched_dep_ts - horizon."
    )

    @field_validator("origin")
    @classmethod
    def _known_origin(cls, origin: str) -> str:
        allowed = feature_registry()["origin"].isin or ()
        if allowed and origin not in allowed:
            raise ValueError(f"{origin!r} is not an origin the model knows ({', '.join(allowed)})")
        return origin

    def flight_record(self) -> dict[str, Any]:
        """The request as the record gold's features read (silver.flights' columns)."""
        local = self.sched_dep_ts.astimezone(LOCAL)
        return {
            "flight_id": f"{self.carrier}-{self.flight}-{self.origin}-{local:%Y%m%d}",
            "flight_date": local.date().isoformat(), "year": local.year, "month": local.month, "hour": local.hour,
            "carrier": self.carrier, "flight": self.flight, "origin": self.origin, "dest": self.dest,
            "tailnum": self.tailnum, "distance": self.distance,
            "sched_dep_ts": pd.Timestamp(self.sched_dep_ts).tz_convert("UTC").isoformat(),
        }


def _parse_instant(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"as_of {text!r} is not an ISO 8601 time such as 2013-06-10T08:00:00Z") from None
    if moment.tzinfo is None:
        raise HTTPException(422, f"as_of {text!r} has no time zone: give an offset such as Z or -04:00")
    return to_us(moment)


def create_app(
    online: OnlineSettings | None = None,
    paths: TarmacPaths | None = None,
    store: OnlineStore | None = None,
    horizon_minutes: int | None = None,
) -> FastAPI:
    """The API over the configured online store (or `store`), with the registry's champion."""
    from assets.ml.offline_store import default_horizon_minutes
    from resources.quality_settings import load_settings

    online = (online or load_settings().online).with_environment()
    paths = paths or TarmacPaths.from_env()
    horizon_us = (default_horizon_minutes() if horizon_minutes is None else horizon_minutes) * 60_000_000

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # a request scores one row: OpenMP's threads gain nothing there and cost their start-up on
        # every call (a single-row predict takes 18 ms on one thread, 24 ms on two, here)
        threadpool_limits(limits=1, user_api="openmp")
        app.state.store = store or open_online_store(online, paths)
        app.state.features = OnlineFeatures(app.state.store)
        app.state.champion = Champion(paths, online.serve.model_refresh_seconds)
        app.state.champion.get()  # load it now, not on the first request
        _freeze_heap()
        yield
        if store is None:
            app.state.store.close()

    app = FastAPI(title="Tarmac serving", version="1", lifespan=lifespan)

    def vector(record: dict[str, Any], as_of_us: int) -> dict[str, Any]:
        try:
            return app.state.features.for_flight(record, as_of_us)
        except FeaturesNotAvailable as reason:
            raise HTTPException(409, str(reason)) from None

    @app.get("/health")
    def health() -> dict[str, Any]:
        coverage = app.state.store.coverage()
        champion = app.state.champion.get()
        return {
            "status": "ok",
            "store": app.state.store.backend,
            "watermark": from_us(coverage.watermark_us).isoformat() if coverage.watermark_us is not None else None,
            "flights": app.state.store.count_records(FLIGHT),
            "model": {"name": champion[0], "version": champion[1]} if champion else None,
        }

    @app.get("/features/{flight_id}")
    def features(
        flight_id: str,
        as_of: str | None = Query(default=None, description="ISO 8601 instant with an offset; default prediction_ts"),
    ) -> dict[str, Any]:
        if not FLIGHT_ID.match(flight_id):
            raise HTTPException(422, f"{flight_id!r} is not a flight id: carrier-flight-origin-YYYYMMDD, "
                                     "e.g. UA-1545-EWR-20130101")
        record = app.state.store.get_record(FLIGHT, flight_id)
        if record is None:
            raise HTTPException(404, f"flight {flight_id} is not in the online store: its day must be loaded "
                                     "(materialize online/flight_features for it)")
        prediction_us = to_us(pd.Timestamp(record["prediction_ts"]))
        as_of_us = prediction_us if as_of is None else _parse_instant(as_of)
        try:
            values, source = app.state.features.for_flight(record, as_of_us), "stream"
        except FeaturesNotAvailable as reason:
            # the batch vector answers for the prediction time itself; any other instant needs the stream
            if as_of_us != prediction_us or "batch" not in record:
                raise HTTPException(409, str(reason)) from None
            values, source = record["batch"], "batch"
        return {
            "flight_id": flight_id, "as_of": from_us(as_of_us).isoformat(),
            "prediction_ts": record["prediction_ts"], "source": source,
            "features": values, "feature_versions": feature_versions(),
        }

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        from assets.ml.training import delay_probability

        record = request.flight_record()
        prediction_us = to_us(request.sched_dep_ts) - horizon_us
        as_of_us = to_us(request.as_of) if request.as_of is not None else prediction_us
        if as_of_us > prediction_us:
            raise HTTPException(422, f"as_of {from_us(as_of_us).isoformat()} is after the prediction time "
                                     f"{from_us(prediction_us).isoformat()} (sched_dep_ts - horizon): "
                                     "features must not see later events")
        values = vector(record, as_of_us)
        champion = app.state.champion.get()
        if champion is None:
            raise HTTPException(503, "no model holds the champion alias in the registry: train one "
                                     "(materialize ml/flight_delay_model, or make backfill)")
        name, version, model = champion
        probability = float(delay_probability(model, pd.DataFrame([values]))[0])
        return {
            "flight_id": record["flight_id"], "prediction_ts": from_us(prediction_us).isoformat(),
            "as_of": from_us(as_of_us).isoformat(), "delay_probability": probability,
            "model_name": name, "model_version": version, "features": values,
        }

    return app
