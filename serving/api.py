"""The serving API: flights' features and delay probabilities from the online store, and a push
endpoint for the events that feed it.

    GET  /features/{flight_id}   a flight's features as of an instant (default: its prediction time)
    POST /features               many flights' features in one round trip
    POST /predict                a flight (or a list) -> delay probability, from the champion model
    POST /events                 departures, cancellations and weather observations, applied by the
                                 speed layer (serving/push.py)
    GET  /feature-services       the feature set of each model version, and whether it can be served
    GET  /health                 the store, its watermark and the champion version
    GET  /metrics                Prometheus metrics (serving/observability.py)

The contract (serving/contract.py) is the OpenAPI document at /openapi.json: every constraint it
states is what the endpoints enforce, and every error, 4xx and 5xx, is one JSON shape (Problem)
with a one-line `detail`: 422 for a malformed request, 404 for an unknown flight or feature
service, 409 when the online store cannot give exact values for that instant or does not hold
the feature versions a service needs, 413 for a body over online.serve.max_body_bytes, 401
without the bearer token when TARMAC_API_TOKEN is set, 503 when there is no champion model or the
online store does not answer. A store unreachable at start-up is a start-up error (StartupError),
not a server that answers 500s.

Features are read exactly as the parity check reads them (tarmac/online/retrieval.py), and the
champion gives the probability batch scoring gives, computed for one row (tarmac/ml/scoring.py).
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from serving.contract import (
    FLIGHT_ID_FORM,
    FLIGHT_ID_PATTERN,
    INSTANT_FORM,
    INSTANT_PATTERN,
    MAX_BATCH,
    FeaturesBatchItem,
    FeaturesBatchRequest,
    FeaturesBatchResponse,
    FeatureService,
    FeatureVector,
    FieldError,
    Health,
    ModelInfo,
    PredictBatchItem,
    Prediction,
    PredictRequest,
    Problem,
    PushRequest,
    PushResult,
    parse_instant,
)
from serving.observability import Metrics, Observe, request_id
from tarmac.features.registry import feature_versions
from tarmac.ml.registry import ModelRegistry
from tarmac.online.events import from_us, to_us
from tarmac.online.retrieval import FLIGHT, FeaturesNotAvailable, OnlineFeatures, open_online_store
from tarmac.online.store import OnlineStore
from tarmac.orchestration.instance import redact_url
from tarmac.paths import LOCAL_TIMEZONE, TarmacPaths
from tarmac.settings.loader import load_settings
from tarmac.settings.online import OnlineSettings

if TYPE_CHECKING:
    from serving.push import PushHost

LOCAL = ZoneInfo(LOCAL_TIMEZONE)
TOKEN_ENV = "TARMAC_API_TOKEN"
log = logging.getLogger("tarmac.serving")


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
                            "accepts (online.serve.max_body_bytes): send fewer flights per request")

    @staticmethod
    async def _respond(scope: Scope, receive: Receive, send: Send, error: HTTPException) -> None:
        await problem_response(error.status_code, error.detail, error.headers)(scope, receive, send)

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
    """The registry's champion and every model version's feature set, loaded at start-up and looked
    up again every `refresh_seconds`.

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
        self._feature_sets: tuple[str, dict[str, dict[str, int]]] | None = None  # (model name, version -> set)

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

    def feature_sets(self) -> tuple[str, dict[str, dict[str, int]]] | None:
        """(model name, {version: {feature: version trained with}}) as last looked up."""
        return self._feature_sets

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
        self._feature_sets = (registry.model_name, registry.feature_sets())
        if version is not None and (self._current is None or version != self._current[1]):
            from tarmac.ml.scoring import row_scorer  # scikit-learn: only once there is a model

            model = registry.load(version)
            row_scorer(model)  # its tree walk is built here, not in the first request
            self._current = (registry.model_name, version, model)
            _freeze_heap()


ALL_FEATURES = "all"  # the service of every registry feature at its current version


class ApiError(Exception):
    """A request that cannot be answered as asked: the status and the one line that says why."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def problem(status: int, detail: str, errors: list[FieldError] | None = None) -> Problem:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return Problem(status=status, title=title, detail=detail, request_id=request_id.get(), errors=errors or [])


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None,
                     errors: list[FieldError] | None = None) -> JSONResponse:
    return JSONResponse(problem(status, detail, errors).model_dump(mode="json"), status, headers=dict(headers or {}))


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _field_error(error: Mapping[str, Any]) -> FieldError:
    """One of pydantic's errors as the contract words it: a pattern named by what it stands for."""
    loc, kind, message = tuple(error.get("loc", ())), error.get("type", "invalid"), error.get("msg", "invalid")
    value = error.get("input")
    if kind == "value_error":  # our validators' own sentences
        message = str(error.get("ctx", {}).get("error", message)).removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "flight_id":
        message = f"{value!r} is not a flight id: {FLIGHT_ID_FORM}"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "as_of":
        message = f"as_of {value!r} is not {INSTANT_FORM}"
    elif kind in ("enum", "literal_error", "string_pattern_mismatch", "int_type", "int_parsing", "missing",
                  "extra_forbidden") and "input" in error and kind != "missing":
        message = f"{message} (got {value!r})"[:300]
    return FieldError(location=_location(loc), message=message, type=kind)


def _one_branch(errors: list[Mapping[str, Any]], body: Any) -> list[Mapping[str, Any]]:
    """A body that may be one flight or a list of them (POST /predict) is judged as what it is:
    pydantic reports each member of the union; keep the member the body's JSON type chose."""
    kept = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str) and (
                loc[1] in UNION_MEMBERS or loc[1].startswith("list[")):
            if loc[1].startswith("list[") != isinstance(body, list):
                continue
            error = {**error, "loc": (loc[0], *loc[2:])}
        kept.append(error)
    return kept or errors


UNION_MEMBERS = {"PredictRequest"}


def _service_error(name: str, services: Mapping[str, FeatureService]) -> ApiError:
    known = ", ".join(sorted(services)) or "none"
    return ApiError(404, f"no feature service named {name!r}: GET /feature-services lists them ({known})")


def _stale(service: FeatureService) -> ApiError:
    held = feature_versions()
    wanted = ", ".join(f"{f} v{v} (the store holds {'v' + str(held[f]) if f in held else 'none'})"
                       for f, v in service.features.items() if f in service.stale)
    return ApiError(409, f"feature service {service.name} needs feature versions the online store does not hold: "
                         f"{wanted}; retrain the model on the current features, or serve a model that uses them")


def create_app(
    online: OnlineSettings | None = None,
    paths: TarmacPaths | None = None,
    store: OnlineStore | None = None,
    horizon_minutes: int | None = None,
    api_token: str | None = None,
    push: PushHost | None = None,
) -> FastAPI:
    """The API over the configured online store (or `store`), with the registry's champion.

    `api_token` (default: the environment's TARMAC_API_TOKEN; "" for none) makes every endpoint
    but /health and /metrics require `Authorization: Bearer <token>`. `push` is the speed layer
    POST /events applies events through (serving/push.py); without it, POST /events answers 409.
    Start-up (the lifespan) raises StartupError when the store does not answer."""
    from tarmac.features.offline_store import default_horizon_minutes  # dagster-dbt: only without a horizon given

    online = (online or load_settings().online).with_environment()
    paths = paths or TarmacPaths.from_env()
    horizon_minutes = default_horizon_minutes() if horizon_minutes is None else horizon_minutes
    horizon_us = horizon_minutes * 60_000_000
    token = os.environ.get(TOKEN_ENV, "") if api_token is None else api_token
    if token != "".join(token.split()):
        raise StartupError(f"{TOKEN_ENV} must not hold whitespace: a bearer token is sent as one word")
    metrics = Metrics()

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
            app.state.push = push
            if push is not None:
                push.start(app.state.store)
            _freeze_heap()
            yield
        finally:
            log.warning("serving API: stopping: the requests in flight are answered; closing the online store")
            if push is not None:
                push.stop()
            if store is None:
                app.state.store.close()

    error_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": Problem, "description": description} for status, description in {
            400: "The body is not JSON, or its Content-Length is not a number.",
            404: "Unknown flight or feature service.",
            409: "The online store cannot give exact values for that instant, or lacks the service's feature versions.",
            413: "The request body is larger than online.serve.max_body_bytes.",
            422: "The request does not match the contract: `errors` names each invalid field.",
            503: "The online store does not answer, or no model holds the champion alias.",
        }.items()}
    if token:
        error_responses[401] = {"model": Problem, "description": f"No bearer token, or not the one in {TOKEN_ENV}."}

    app = FastAPI(
        title="Tarmac serving", version="2", lifespan=lifespan, responses=error_responses,
        description="Point-in-time-correct flight features and delay probabilities from the online store. "
                    "Every error is a Problem; times are RFC 3339 instants with their offset, years 1970 to 2099.",
    )
    app.add_middleware(BodySizeLimit, max_body_bytes=online.serve.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics)
    app.state.metrics = metrics

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = str(error.detail)
        if error.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words
            detail = "the request body is not JSON: send one JSON document, Content-Type application/json"
        return problem_response(error.status_code, detail, error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return problem_response(error.status, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in _one_branch(error.errors(), error.body)]
        detail = "; ".join(f"{e.location}: {e.message}" for e in errors) or "the request does not match the contract"
        return problem_response(422, detail, errors=errors)

    def unavailable(error: Exception) -> str:
        backend = app.state.store.backend
        metrics.store_errors.labels(backend, type(error).__name__).inc()
        log.warning("online store (%s) error: %s: %s", backend, type(error).__name__, _one_line(error))
        return (f"the online store ({backend}) is unavailable: {type(error).__name__}: "
                f"{_one_line(error).rstrip('.')}; try again when it is back")

    async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
        return problem_response(503, unavailable(error))

    for error_class in STORE_ERRORS:
        app.add_exception_handler(error_class, store_unavailable)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("serving API: %s %s failed", request.method, request.url.path)
        return problem_response(500, f"the server failed: {type(error).__name__}; the log has it under this request's id")

    bearer = HTTPBearer(auto_error=False, description=f"the token in {TOKEN_ENV}")

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None:
            raise ApiError(401, "this API needs `Authorization: Bearer <token>` (the server's TARMAC_API_TOKEN)",
                           headers={"WWW-Authenticate": "Bearer"})
        # the header's bytes (Starlette decodes them as latin-1) against the token's UTF-8
        if not hmac.compare_digest(credentials.credentials.encode("latin-1"), token.encode("utf-8")):
            raise ApiError(401, "the bearer token is not this API's token",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    protected = [Depends(require_token)] if token else []

    built: list[Any] = [None, None, {}]  # the champion and feature sets the services were built from, the services

    def services() -> dict[str, FeatureService]:
        """Every feature service: `all`, and one per model version that logged its feature versions.
        Built again only when the champion or the registry's feature sets change (both are replaced
        whole by a look-up): every /features and /predict request asks for them."""
        champion = app.state.champion.get()
        sets = app.state.champion.feature_sets() if hasattr(app.state.champion, "feature_sets") else None
        if built[0] is champion and built[1] is sets and built[2]:
            return built[2]
        built[:] = [champion, sets, build_services(champion, sets)]
        return built[2]

    def build_services(champion: tuple[str, str, Any] | None, sets) -> dict[str, FeatureService]:
        held = feature_versions()
        found = {ALL_FEATURES: FeatureService(name=ALL_FEATURES, model_name="", model_version="", champion=False,
                                              servable=True, features=held, stale=[])}
        if sets is not None:
            model_name, by_version = sets
            for version, features in by_version.items():
                stale = [f for f, v in features.items() if held.get(f) != v]
                name = f"{model_name}@{version}"
                found[name] = FeatureService(
                    name=name, model_name=model_name, model_version=version,
                    champion=champion is not None and champion[1] == version, servable=not stale,
                    features=dict(features), stale=stale)
        return found

    def resolve(name: str | None) -> FeatureService:
        """The named service, or the champion's (`all` without one); ApiError 404 or 409."""
        known = services()
        if name is None:
            champion = app.state.champion.get()
            name = f"{champion[0]}@{champion[1]}" if champion is not None else ALL_FEATURES
            if name not in known:  # a champion whose feature versions were never logged
                name = ALL_FEATURES
        service = known.get(name)
        if service is None:
            raise _service_error(name, known)
        if not service.servable:
            raise _stale(service)
        return service

    def not_loaded(flight_id: str) -> ApiError:
        return ApiError(404, f"flight {flight_id} is not in the online store: its day must be loaded "
                             "(materialize online/flights for it)")

    def vector(flight_id: str, as_of_us: int | None, service: FeatureService) -> FeatureVector:
        record = app.state.store.get_record(FLIGHT, flight_id)
        if record is None:
            raise not_loaded(flight_id)
        prediction_us = to_us(pd.Timestamp(record["prediction_ts"]))
        as_of_us = prediction_us if as_of_us is None else as_of_us
        try:
            found = app.state.features.for_flight(record, as_of_us)
        except FeaturesNotAvailable as reason:
            found = reason
        return as_vector(flight_id, record, as_of_us, prediction_us, found, service)

    def as_vector(flight_id: str, record: Mapping[str, Any], as_of_us: int, prediction_us: int,
                  found: dict[str, Any] | FeaturesNotAvailable, service: FeatureService) -> FeatureVector:
        values, source = found, "stream"
        if isinstance(found, FeaturesNotAvailable):
            # the batch vector answers for the prediction time itself; any other instant needs the stream
            if as_of_us != prediction_us or "batch" not in record:
                raise ApiError(409, str(found))
            values, source = record["batch"], "batch"
        return FeatureVector(
            flight_id=flight_id, as_of=from_us(as_of_us).isoformat(), prediction_ts=record["prediction_ts"],
            source=source, service=service.name,
            features={name: values[name] for name in service.features if name in values},
            feature_versions=dict(service.features))

    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "The store does not answer."}})
    def health() -> Health | JSONResponse:
        """The store, its watermark, how many flights it holds and the champion. Open without a token."""
        try:
            coverage = app.state.store.coverage()
            flights = app.state.store.count_records(FLIGHT)
        except STORE_ERRORS as error:
            return JSONResponse(Health(status="unavailable", store=app.state.store.backend,
                                       detail=unavailable(error)).model_dump(mode="json"), status_code=503)
        champion = app.state.champion.get()
        return Health(
            status="ok", store=app.state.store.backend,
            watermark=from_us(coverage.watermark_us).isoformat() if coverage.watermark_us is not None else None,
            flights=flights, model=ModelInfo(name=champion[0], version=champion[1]) if champion else None)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def watermark_us() -> int | None:
        try:
            return app.state.store.coverage().watermark_us
        except STORE_ERRORS:
            return None

    metrics.watch(watermark_us, lambda: (lambda c: (c[0], c[1]) if c else None)(app.state.champion.get()))

    # The feature and predict endpoints are coroutines: their work is a few reads of the online
    # store (SQLite in WAL mode, where a read does not wait for the speed layer's writes, or Redis
    # on a short round trip) and, for /predict, a tree walk of a tenth of a millisecond. Run on the
    # event loop, a request costs no hop to the thread pool and back, nor the wait for the GIL
    # between the two threads that came with it. /health stays a function: it counts the flights.
    # the vector is validated as it is built: FastAPI's second pass over a response model is skipped
    @app.get("/features/{flight_id}", dependencies=protected, response_model=None,
             responses={200: {"model": FeatureVector, "description": "The flight's features as of the instant."}})
    async def features(
        flight_id: str = PathParam(pattern=FLIGHT_ID_PATTERN, description=f"The flight: {FLIGHT_ID_FORM}.",
                                   examples=["AA-100-LGA-20130609"]),
        as_of: str = Query(default=None, pattern=INSTANT_PATTERN, json_schema_extra={"format": "date-time"},
                           description=f"Read the features as of this instant, {INSTANT_FORM} (default: the "
                                       "flight's prediction time)."),
        service: str = Query(default=None, max_length=200, description="The feature service (default: the "
                             "champion's; `all` for every feature): GET /feature-services lists them."),
    ) -> Response:
        """A flight's features as of an instant, from the online store."""
        try:
            requested_us = None if as_of is None else to_us(parse_instant(as_of, "as_of"))
        except ValueError as reason:  # matches the pattern, but is no date (2013-02-30)
            raise ApiError(422, str(reason)) from None
        found = vector(flight_id, requested_us, resolve(service))
        return Response(found.model_dump_json(), media_type="application/json")

    @app.post("/features", dependencies=protected, response_model=FeaturesBatchResponse)
    async def features_batch(request: FeaturesBatchRequest) -> FeaturesBatchResponse:
        """Many flights' features in one round trip: each item is what GET /features/{flight_id} would
        answer for it, its status and either its vector or its error."""
        service = resolve(request.service)  # one service for the batch: its error is the whole request's
        # two reads of the store for the whole batch: the flights' records, then every vector
        records = app.state.store.get_records(FLIGHT, list(dict.fromkeys(q.flight_id for q in request.flights)))
        plans = []  # per flight: (record, as_of_us, prediction_us), or None when the store lacks it
        for query in request.flights:
            record = records[query.flight_id]
            if record is None:
                plans.append(None)
                continue
            prediction_us = to_us(pd.Timestamp(record["prediction_ts"]))
            plans.append((record, prediction_us if query.as_of is None else to_us(query.as_of), prediction_us))
        found = iter(app.state.features.for_flights([plan[:2] for plan in plans if plan is not None]))
        results = []
        for query, plan in zip(request.flights, plans, strict=True):
            try:
                if plan is None:
                    raise not_loaded(query.flight_id)
                answer = as_vector(query.flight_id, *plan, next(found), service)
                results.append(FeaturesBatchItem(flight_id=query.flight_id, status=200, vector=answer))
            except ApiError as error:
                results.append(FeaturesBatchItem(flight_id=query.flight_id, status=error.status,
                                                 error=problem(error.status, error.detail)))
        return FeaturesBatchResponse(results=results)

    def predict_one(request: PredictRequest, record: dict[str, Any], champion: tuple[str, str, Any],
                    service: FeatureService) -> Prediction:
        """`record`: flight_record(request)."""
        from tarmac.ml.scoring import row_scorer  # scikit-learn: only once a model is loaded

        prediction_us = to_us(request.sched_dep_ts) - horizon_us
        as_of_us = prediction_us - request.lookback_minutes * 60_000_000
        try:
            values = app.state.features.for_flight(record, as_of_us)
        except FeaturesNotAvailable as reason:
            raise ApiError(409, str(reason)) from None
        name, version, model = champion
        return Prediction(
            flight_id=record["flight_id"], prediction_ts=from_us(prediction_us).isoformat(),
            as_of=from_us(as_of_us).isoformat(), delay_probability=row_scorer(model)(values),
            model_name=name, model_version=version, service=service.name, features=values)

    def serving_champion() -> tuple[tuple[str, str, Any], FeatureService]:
        champion = app.state.champion.get()
        if champion is None:
            raise ApiError(503, "no model holds the champion alias in the registry: train one "
                                "(materialize ml/flight_delay_model, or make backfill)")
        known = services()
        service = known.get(f"{champion[0]}@{champion[1]}", known[ALL_FEATURES])
        if not service.servable:
            raise _stale(service)
        return champion, service

    @app.post("/predict", dependencies=protected, response_model=Prediction | list[PredictBatchItem])
    async def predict(
        request: PredictRequest | Annotated[list[PredictRequest], Field(min_length=1, max_length=MAX_BATCH)],
    ) -> Prediction | list[PredictBatchItem]:
        """The champion's delay probability for a flight, from its features as of its prediction time
        (sched_dep_ts less the horizon). A list of flights gets a list of items, each with its status
        and either its prediction or its error."""
        champion, service = serving_champion()
        if not isinstance(request, list):
            return predict_one(request, flight_record(request), champion, service)
        items = []
        for one in request:
            record = flight_record(one)
            flight_id = record["flight_id"]
            try:
                items.append(PredictBatchItem(flight_id=flight_id, status=200,
                                              prediction=predict_one(one, record, champion, service)))
            except ApiError as error:
                items.append(PredictBatchItem(flight_id=flight_id, status=error.status,
                                              error=problem(error.status, error.detail)))
        return items

    @app.get("/feature-services", dependencies=protected, response_model=list[FeatureService])
    async def feature_services() -> list[FeatureService]:
        """Every feature service: `all` (every feature at the store's versions) and one per model
        version, with whether the online store can serve it."""
        return list(services().values())

    @app.post("/events", dependencies=protected, response_model=PushResult)
    def push_events(request: PushRequest) -> PushResult:
        """Departures, cancellations and weather observations for the speed layer this server hosts
        (online.stream: push): applied in event-time order after every event pushed before them,
        once per event id, and answered with the online store's new watermark. A function, not a
        coroutine: it writes the store, which the event loop must not wait for."""
        host = app.state.push
        if host is None:
            raise ApiError(409, f"this server does not take pushed events: its speed layer reads the "
                                f"{online.stream} stream (online.stream: {online.stream}); serve with online.stream: "
                                "push (TARMAC_EVENT_STREAM=push) to push events over HTTP")
        result, counts = host.apply(request)
        for (kind, outcome), count in counts.items():
            metrics.pushed.labels(kind, outcome).inc(count)
        return result

    return app


def flight_record(request: PredictRequest) -> dict[str, Any]:
    """The request as the record gold's features read (silver.flights' columns)."""
    local = request.sched_dep_ts.astimezone(LOCAL)
    return {
        "flight_id": f"{request.carrier}-{request.flight}-{request.origin}-{local:%Y%m%d}",
        "flight_date": local.date().isoformat(), "year": local.year, "month": local.month, "hour": local.hour,
        "carrier": request.carrier, "flight": request.flight, "origin": str(request.origin), "dest": request.dest,
        "tailnum": request.tailnum, "distance": request.distance,
        "sched_dep_ts": pd.Timestamp(request.sched_dep_ts).tz_convert("UTC").isoformat(),
    }
