"""The serving API: a flight's features and its delay probability, from the online store.

    GET  /features/{flight_id}?as_of=...  the flight's features as of an instant (default: its
                                          prediction_ts), from the speed layer's histories
    POST /predict                         flight fields -> delay probability, the model version and
                                          the features it was given
    GET  /health                          the store, its watermark and the champion version

Features are read exactly as the parity check reads them (tarmac/online/retrieval.py), and the
champion gives the probability batch scoring gives, computed for one row (tarmac/ml/scoring.py).
Bad input gets a 4xx whose `detail` says what was wrong: 422 for a malformed request (a time
outside 1970-01-01..2100-01-01 UTC included), 404 for an unknown flight, 409 when the online store
cannot give exact values for that instant, 413 for a body over online.serve.max_body_bytes, 401
without the bearer token when TARMAC_API_TOKEN is set; 503 when there is no champion model or the
online store does not answer. A store unreachable at start-up is a start-up error (StartupError),
not a server that answers 500s.
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
import re
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from tarmac.features.registry import feature_registry, feature_versions
from tarmac.ml.registry import ModelRegistry
from tarmac.online.events import from_us, to_us
from tarmac.online.retrieval import FLIGHT, FeaturesNotAvailable, OnlineFeatures, open_online_store
from tarmac.online.store import OnlineStore
from tarmac.orchestration.instance import redact_url
from tarmac.paths import LOCAL_TIMEZONE, TarmacPaths
from tarmac.settings.loader import load_settings
from tarmac.settings.online import OnlineSettings

# matched whole (fullmatch), ASCII digits only: "...\n" or full-width digits are not an id
FLIGHT_ID = re.compile(r"[A-Z0-9]{2}-[0-9]{1,4}-[A-Z]{3}-[0-9]{8}", re.ASCII)
LOCAL = ZoneInfo(LOCAL_TIMEZONE)
TOKEN_ENV = "TARMAC_API_TOKEN"
log = logging.getLogger("tarmac.serving")

# Every time a request gives (and the prediction time, sched_dep_ts - horizon) must lie in this
# range: far inside what the store's microsecond timestamps (pandas, 1677..2262) can represent.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_US, LATEST_US = to_us(EARLIEST), to_us(LATEST)
ACCEPTED_RANGE = "instants from 1970-01-01T00:00:00Z to 2100-01-01T00:00:00Z"


def _out_of_range(field: str, moment: datetime) -> str | None:
    """Why `moment` (tz-aware) is refused, or None. Compared as instants: no conversion can overflow."""
    if EARLIEST <= moment <= LATEST:
        return None
    return f"{field} {moment.isoformat()} is outside the accepted range: {ACCEPTED_RANGE}"


def _store_errors() -> tuple[type[Exception], ...]:
    """What the store backends raise when their server or file does not answer."""
    errors: list[type[Exception]] = [sqlite3.DatabaseError]  # OperationalError among them
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency; the SQLite store works without it
        pass
    else:
        errors.append(redis.RedisError)  # ConnectionError, TimeoutError among them
    return tuple(errors)


STORE_ERRORS = _store_errors()


class StartupError(RuntimeError):
    """The API cannot start: one line saying what is wrong and what to do."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _store_location(store: OnlineStore, online: OnlineSettings | None = None) -> str:
    """Where the store lives, for messages (no password)."""
    if store.backend == "sqlite":
        return str(getattr(store, "path", "?"))
    if online is not None and online.store == "redis":
        return redact_url(online.redis_url)
    kwargs = getattr(getattr(getattr(store, "client", None), "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _unreachable(backend: str, where: str, error: BaseException) -> StartupError:
    todo = ("start Redis there, or point online.redis_url / TARMAC_REDIS_URL at a running server "
            "(or serve the embedded store: online.store sqlite)" if backend == "redis" else
            "check that the file's directory exists and is writable, and that no other process holds the file")
    reason = _one_line(error).rstrip(".")
    return StartupError(f"the online store ({backend} at {where}) is unreachable: {reason}; {todo}")


def probe_store(store: OnlineStore, online: OnlineSettings | None = None) -> OnlineStore:
    """`store`, once it has answered a read of its coverage; StartupError if it does not."""
    try:
        store.coverage()
    except STORE_ERRORS as error:
        raise _unreachable(store.backend, _store_location(store, online), error) from None
    return store


def open_checked_store(online: OnlineSettings, paths: TarmacPaths) -> OnlineStore:
    """The configured online store, probed: StartupError, one line, if it cannot be opened or read."""
    online = online.with_environment()
    try:
        store = open_online_store(online, paths)
    except (*STORE_ERRORS, OSError) as error:  # OSError: the SQLite file's directory cannot be made
        where = redact_url(online.redis_url) if online.store == "redis" else str(paths.data_dir / online.sqlite_path)
        raise _unreachable(online.store, where, error) from None
    try:
        return probe_store(store, online)
    except StartupError:
        store.close()
        raise


class BodyTooLarge(HTTPException):
    def __init__(self, detail: str):
        super().__init__(413, detail, headers={"Connection": "close"})


class BodySizeLimit:
    """ASGI middleware: a request body over `max_body_bytes` gets 413 before anything parses it.

    A Content-Length over the limit is refused without calling the app; a body without one
    (chunked) is counted as it streams in, and the read that passes the limit fails, so the app
    never sees more than the limit. Whatever response the app then starts is replaced by the 413."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    def _too_large(self, size: str) -> BodyTooLarge:
        return BodyTooLarge(f"the request body ({size}) is larger than the {self.max_body_bytes:,} bytes this API "
                            "accepts (online.serve.max_body_bytes): a request describes one flight")

    @staticmethod
    async def _respond(scope: Scope, receive: Receive, send: Send, error: HTTPException) -> None:
        await JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name.lower() != b"content-length":
                continue
            if not value.strip().isdigit():
                error = HTTPException(400, f"Content-Length {value.decode('latin-1')!r} is not a number of bytes",
                                      headers={"Connection": "close"})
                await self._respond(scope, receive, send, error)
                return
            if int(value) > self.max_body_bytes:
                await self._respond(scope, receive, send, self._too_large(f"Content-Length {int(value):,} bytes"))
                return

        received, refused, started, replaced = 0, None, False, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = self._too_large("streamed without Content-Length")
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                if refused is not None:  # the app answered a body it could not read: answer 413 instead
                    replaced = True
                    await self._respond(scope, receive, send, refused)
                    return
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge as error:
            if started:
                raise
            if not replaced:
                await self._respond(scope, receive, send, error)


def _freeze_heap() -> None:
    """Move what start-up allocated (MLflow, scikit-learn, the model: half a million objects) out of
    the garbage collector's reach: a full collection over them takes 0.3 s here, a stall that would
    land on whichever request triggers it."""
    gc.collect()
    gc.freeze()


class Champion:
    """The registry's champion, loaded at start-up and looked up again every `refresh_seconds`.

    The look-up runs in a thread of its own, never in a request: it is an MLflow query, and a new
    version a load of seconds, which the endpoints (coroutines on the event loop) would otherwise
    wait for. Until it is done, requests get the champion loaded so far; a look-up that fails is
    logged and tried again a period later."""

    def __init__(self, paths: TarmacPaths, refresh_seconds: float):
        self.paths, self.refresh_seconds = paths, refresh_seconds
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._looking = False
        self._current: tuple[str, str, Any] | None = None  # (name, version, model), replaced whole

    def load(self) -> None:
        """Look the champion up now and wait for it (start-up)."""
        self._checked = time.monotonic()
        self._refresh()

    def get(self) -> tuple[str, str, Any] | None:
        if time.monotonic() - self._checked >= self.refresh_seconds:
            with self._lock:
                if not self._looking and time.monotonic() - self._checked >= self.refresh_seconds:
                    self._looking, self._checked = True, time.monotonic()
                    threading.Thread(target=self._refresh_in_background, name="champion-refresh", daemon=True).start()
        return self._current

    def _refresh_in_background(self) -> None:
        try:
            self._refresh()
        except Exception:  # the loaded champion keeps serving
            log.exception("model registry: looking up the champion failed")
        finally:
            self._looking = False

    def _refresh(self) -> None:
        if not (self.paths.mlflow / "mlflow.db").exists():
            return
        registry = ModelRegistry.from_settings(self.paths)
        version = registry.champion_version()
        if version is not None and (self._current is None or version != self._current[1]):
            from tarmac.ml.scoring import row_scorer  # scikit-learn: only once there is a model

            model = registry.load(version)
            row_scorer(model)  # its tree walk is built here, not in the first request
            self._current = (registry.model_name, version, model)
            _freeze_heap()


class PredictRequest(BaseModel):
    """A flight as the schedule gives it; features are looked up as of its prediction time."""

    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="Two-letter carrier code, e.g. UA.")
    flight: int = Field(ge=1, le=9999, description="Flight number.")
    origin: str = Field(description="Origin airport.")
    dest: str = Field(pattern=r"^[A-Z]{3}$", description="Destination airport (FAA code).")
    sched_dep_ts: AwareDatetime = Field(
        description="Scheduled departure, with its UTC offset, between 1970-01-01 and 2100-01-01 UTC."
    )
    tailnum: str | None = Field(default=None, max_length=8, description="Tail number, if known.")
    distance: int | None = Field(default=None, ge=1, le=10_000, description="Miles.")
    as_of: AwareDatetime | None = Field(
        default=None, description="Read features as of this instant instead of sched_dep_ts - horizon."
    )

    @field_validator("sched_dep_ts", "as_of")
    @classmethod
    def _in_range(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        if moment is not None and (reason := _out_of_range(info.field_name, moment)):
            raise ValueError(reason)
        return moment

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
    if reason := _out_of_range("as_of", moment):
        raise HTTPException(422, reason)
    return to_us(moment)


def create_app(
    online: OnlineSettings | None = None,
    paths: TarmacPaths | None = None,
    store: OnlineStore | None = None,
    horizon_minutes: int | None = None,
    api_token: str | None = None,
) -> FastAPI:
    """The API over the configured online store (or `store`), with the registry's champion.

    `api_token` (default: the environment's TARMAC_API_TOKEN; "" for none) makes /features and
    /predict require `Authorization: Bearer <token>`. Start-up (the lifespan) raises StartupError
    when the store does not answer."""
    from tarmac.features.offline_store import default_horizon_minutes  # dagster-dbt: only without a horizon given

    online = (online or load_settings().online).with_environment()
    paths = paths or TarmacPaths.from_env()
    horizon_minutes = default_horizon_minutes() if horizon_minutes is None else horizon_minutes
    horizon_us = horizon_minutes * 60_000_000
    token = os.environ.get(TOKEN_ENV, "") if api_token is None else api_token
    if token != "".join(token.split()):
        raise StartupError(f"{TOKEN_ENV} must not hold whitespace: a bearer token is sent as one word")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # a request scores one row: OpenMP's threads gain nothing there and cost their start-up on
        # every call (a single-row predict takes 18 ms on one thread, 24 ms on two, here)
        threadpool_limits(limits=1, user_api="openmp")
        app.state.store = open_checked_store(online, paths) if store is None else probe_store(store)
        try:
            app.state.features = OnlineFeatures(app.state.store)
            app.state.champion = Champion(paths, online.serve.model_refresh_seconds)
            app.state.champion.load()  # now, not on the first request
            _freeze_heap()
            yield
        finally:
            if store is None:
                app.state.store.close()

    app = FastAPI(title="Tarmac serving", version="1", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_body_bytes=online.serve.max_body_bytes)

    def unavailable(error: Exception) -> str:
        log.warning("online store (%s) error: %s: %s", app.state.store.backend, type(error).__name__, _one_line(error))
        return (f"the online store ({app.state.store.backend}) is unavailable: {type(error).__name__}: "
                f"{_one_line(error).rstrip('.')}; try again when it is back")

    async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": unavailable(error)}, status_code=503)

    for error_class in STORE_ERRORS:
        app.add_exception_handler(error_class, store_unavailable)

    bearer = HTTPBearer(auto_error=False, description=f"the token in {TOKEN_ENV}")

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None:
            raise HTTPException(401, "this API needs `Authorization: Bearer <token>` (the server's TARMAC_API_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})
        # the header's bytes (Starlette decodes them as latin-1) against the token's UTF-8
        if not hmac.compare_digest(credentials.credentials.encode("latin-1"), token.encode("utf-8")):
            raise HTTPException(401, "the bearer token is not this API's token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    protected = [Depends(require_token)] if token else []

    def vector(record: dict[str, Any], as_of_us: int) -> dict[str, Any]:
        try:
            return app.state.features.for_flight(record, as_of_us)
        except FeaturesNotAvailable as reason:
            raise HTTPException(409, str(reason)) from None

    @app.get("/health", response_model=None)
    def health() -> dict[str, Any] | JSONResponse:
        try:
            coverage = app.state.store.coverage()
            flights = app.state.store.count_records(FLIGHT)
        except STORE_ERRORS as error:
            return JSONResponse({"status": "unavailable", "store": app.state.store.backend,
                                 "detail": unavailable(error)}, status_code=503)
        champion = app.state.champion.get()
        return {
            "status": "ok",
            "store": app.state.store.backend,
            "watermark": from_us(coverage.watermark_us).isoformat() if coverage.watermark_us is not None else None,
            "flights": flights,
            "model": {"name": champion[0], "version": champion[1]} if champion else None,
        }

    # The two endpoints are coroutines: their work is a few reads of the online store (SQLite in WAL
    # mode, where a read does not wait for the speed layer's writes, or Redis on a short round
    # trip) and, for /predict, a tree walk of a tenth of a millisecond. Run on the event loop, a
    # request costs no hop to the thread pool and back, nor the wait for the GIL between the two
    # threads that came with it. /health stays a function: it counts the flights.
    @app.get("/features/{flight_id}", dependencies=protected)
    async def features(
        flight_id: str,
        as_of: str | None = Query(default=None, description="ISO 8601 instant with an offset; default prediction_ts"),
    ) -> dict[str, Any]:
        if not FLIGHT_ID.fullmatch(flight_id):
            raise HTTPException(422, f"{flight_id!r} is not a flight id: carrier-flight-origin-YYYYMMDD, "
                                     "e.g. UA-1545-EWR-20130101")
        requested_us = None if as_of is None else _parse_instant(as_of)  # the request's own faults first
        record = app.state.store.get_record(FLIGHT, flight_id)
        if record is None:
            raise HTTPException(404, f"flight {flight_id} is not in the online store: its day must be loaded "
                                     "(materialize online/flights for it)")
        prediction_us = to_us(pd.Timestamp(record["prediction_ts"]))
        as_of_us = prediction_us if requested_us is None else requested_us
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

    @app.post("/predict", dependencies=protected)
    async def predict(request: PredictRequest) -> dict[str, Any]:
        from tarmac.ml.scoring import row_scorer  # scikit-learn: only once a model is loaded

        prediction_us = to_us(request.sched_dep_ts) - horizon_us
        if not EARLIEST_US <= prediction_us <= LATEST_US:
            raise HTTPException(422, f"sched_dep_ts {request.sched_dep_ts.isoformat()} less the "
                                     f"{horizon_minutes}-minute horizon is {from_us(prediction_us).isoformat()}, "
                                     f"outside the accepted range of prediction times: {ACCEPTED_RANGE}")
        record = request.flight_record()
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
        probability = row_scorer(model)(values)
        return {
            "flight_id": record["flight_id"], "prediction_ts": from_us(prediction_us).isoformat(),
            "as_of": from_us(as_of_us).isoformat(), "delay_probability": probability,
            "model_name": name, "model_version": version, "features": values,
        }

    return app
