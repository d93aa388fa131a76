"""The `online` section of tarmac.yaml: where the online store and the event stream live, how long
the online history is kept, the serving API's address and the training/serving parity check.

The production services are chosen here or, without editing the file, by the environment:
TARMAC_ONLINE_STORE=redis, TARMAC_EVENT_STREAM=redis and TARMAC_REDIS_URL."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from tarmac.settings.thresholds import StrictSettings, Thresholds

ENV_OVERRIDES = {"store": "TARMAC_ONLINE_STORE", "stream": "TARMAC_EVENT_STREAM", "redis_url": "TARMAC_REDIS_URL"}


class ParitySettings(StrictSettings):
    """Flights of a partition replayed through the online path and compared with gold."""

    # flights sampled per partition (all of them when the day has fewer)
    sample_size: int = Field(default=150, ge=1)
    seed: int = 13
    # floats may differ by this much (absolute) and still agree; everything else must be equal
    float_tolerance: float = Field(default=1e-9, ge=0)
    # share of sampled flights with any feature that differs
    mismatch_rate: Thresholds = Thresholds(warn=0.0, error=0.0)
    blocking: bool = False


class ServeSettings(StrictSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # how often the API looks for a new champion in the model registry
    model_refresh_seconds: float = Field(default=60, gt=0)
    # a request body larger than this is refused (413) before it is parsed (a batch of 1,000 flights fits)
    max_body_bytes: int = Field(default=262_144, ge=1)
    # on SIGTERM, requests in flight get this long to finish before their connections are closed
    shutdown_grace_seconds: float = Field(default=10, gt=0)


class OnlineSettings(StrictSettings):
    # sqlite: a file under TARMAC_DATA_DIR (WAL); redis: the server at redis_url
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = "online/online_store.sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # a Redis that stops answering (a hung server, a lost network) fails a store call after this
    # long (the API answers 503) instead of holding it forever; a socket_timeout or
    # socket_connect_timeout in redis_url's query takes precedence
    redis_timeout_seconds: float = Field(default=5, gt=0)
    # every Redis key of Tarmac starts with this (and ':'); the event stream is <prefix>:events
    key_prefix: str = Field(default="tarmac", pattern=r"^[A-Za-z0-9_.-]+$")
    # replay: the speed layer replays silver in process; redis: it reads <prefix>:events; push: the
    # serving API hosts it, fed by POST /events (after silver's replayed days, if given)
    stream: Literal["replay", "redis", "push"] = "replay"
    # event-time history kept behind the watermark (a read as of an older time is refused)
    retention_days: float = Field(default=8, gt=0)
    # changes are written to the store every this many events (and at the end)
    flush_every_events: int = Field(default=5000, ge=1)
    serve: ServeSettings = ServeSettings()
    parity: ParitySettings = ParitySettings()

    def with_environment(self) -> OnlineSettings:
        """These settings with the TARMAC_* overrides of the environment applied (and validated)."""
        overrides = {field: os.environ[var] for field, var in ENV_OVERRIDES.items() if os.environ.get(var)}
        return OnlineSettings.model_validate({**self.model_dump(), **overrides}) if overrides else self

    @property
    def stream_key(self) -> str:
        return f"{self.key_prefix}:events"
