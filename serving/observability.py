"""What the serving API tells its operators: a request id on every request (taken from the
caller's X-Request-ID or made here, answered in the same header, and in every log line the request
causes), one access-log line per request, and Prometheus metrics at /metrics.

Metrics (each app has its own registry):

    tarmac_http_requests_total{method,route,status}        requests answered
    tarmac_http_request_duration_seconds{method,route}     latency histogram, to the response's end
    tarmac_online_store_errors_total{backend,error}        store calls that failed (answered 503)
    tarmac_push_events_total{kind,outcome}                 pushed events: applied, duplicate; late (of the applied)
    tarmac_speed_layer_watermark_timestamp_seconds         the store's watermark (event time)
    tarmac_speed_layer_watermark_lag_seconds               wall clock less the watermark
    tarmac_model_info{name,version}                        the champion being served (1)

The watermark is read from the store when /metrics is scraped, never cached.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# an id the caller gives is kept when it is short and plain; anything else is replaced (never echoed into logs)
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
request_id: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("tarmac.serving.access")
disable_created_metrics()  # no *_created series: a counter's start is not a figure anyone graphs
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (`-` outside a request), for a format that prints it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("tarmac_http_requests", "HTTP requests answered.", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("tarmac_http_request_duration_seconds", "Time to answer a request, to the "
                                 "response's last byte.", ["method", "route"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.store_errors = Counter("tarmac_online_store_errors", "Online store calls that failed.",
                                    ["backend", "error"], registry=self.registry)
        self.pushed = Counter("tarmac_push_events", "Events pushed to POST /events, by what became of them.",
                              ["kind", "outcome"], registry=self.registry)

    def watch(self, watermark_us: Callable[[], int | None], model: Callable[[], tuple[str, str] | None]) -> None:
        """Gauges read when scraped: the store's watermark, and the model being served."""
        self.registry.register(_Gauges(watermark_us, model))


class _Gauges:
    def __init__(self, watermark_us: Callable[[], int | None], model: Callable[[], tuple[str, str] | None]):
        self.watermark_us, self.model = watermark_us, model

    def describe(self):
        return []  # read at scrape time only: registering must not call the store

    def collect(self):
        watermark = self.watermark_us()
        stamp = GaugeMetricFamily("tarmac_speed_layer_watermark_timestamp_seconds",
                                  "The online store's watermark: every event up to it is applied (event time).")
        lag = GaugeMetricFamily("tarmac_speed_layer_watermark_lag_seconds", "Wall clock less the watermark.")
        if watermark is not None:
            stamp.add_metric([], watermark / 1e6)
            lag.add_metric([], time.time() - watermark / 1e6)
        yield stamp
        yield lag
        info = GaugeMetricFamily("tarmac_model_info", "The champion being served.", labels=["name", "version"])
        if (model := self.model()) is not None:
            info.add_metric(list(model), 1)
        yield info


class Observe:
    """ASGI middleware, outermost: the request id, the access-log line and the request metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"").decode("latin-1")
        rid = given if _CALLER_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s %.1f ms", scope["method"], scope["path"], status, seconds * 1000,
                                extra={"request_id": rid})
            request_id.reset(token)
