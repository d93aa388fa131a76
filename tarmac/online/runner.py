"""Running the speed layer against a store: batches of events in, feature changes and the
watermark out every `flush_every_events`, history older than the retention trimmed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from tarmac.online.events import Event, RedisEventStream, from_us, replay_silver, to_us
from tarmac.online.retrieval import open_online_store
from tarmac.online.speed_layer import SpeedLayer
from tarmac.online.store import OnlineStore, redis_client
from tarmac.paths import LOCAL_TIMEZONE, TarmacPaths
from tarmac.settings.loader import load_settings
from tarmac.settings.online import OnlineSettings

DAY_US = 86_400 * 1_000_000


@dataclass
class RunReport:
    events: int
    changes: int
    late_events: int
    late_ignored: int
    seconds: float
    watermark_us: int | None
    rejected: int = 0  # stream entries that were not valid events (quarantined, not applied)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def watermark(self) -> str | None:
        return from_us(self.watermark_us).isoformat() if self.watermark_us is not None else None


def run_speed_layer(
    batches: Iterable[list[Event]],
    store: OnlineStore,
    start_us: int | None = None,
    end_us: int | None = None,
    flush_every: int = 5000,
    retention_days: float | None = None,
    layer: SpeedLayer | None = None,
    on_flush: Callable[[SpeedLayer], None] | None = None,
) -> RunReport:
    """Consume every batch. The store's histories are rebuilt from `start_us` (or from just before
    the first event); values are exact from start + the longest window on. The watermark written
    is one microsecond before the latest event, as more events of that instant may follow, or
    `end_us` once the batches are known to hold every event up to it (a finite replay)."""
    layer = SpeedLayer() if layer is None else layer
    retention_us = int(retention_days * DAY_US) if retention_days else None
    began = time.perf_counter()
    started = start_us is not None
    if started:
        store.begin_stream(start_us)
    retained_from = start_us

    def flush(complete_to: int | None = None) -> None:
        nonlocal retained_from
        if complete_to is not None:
            layer.advance_to(complete_to)
        if layer.watermark_us is None:
            return
        store.write(layer.drain(), layer.watermark_us if complete_to is not None else layer.watermark_us - 1)
        # trim a day at a time: each trim walks every history
        if retention_us and retained_from is not None and layer.watermark_us - retention_us > retained_from + DAY_US:
            retained_from = layer.watermark_us - retention_us
            store.trim(retained_from)
        if on_flush:
            on_flush(layer)

    since_flush = 0
    for events in batches:
        events = events if isinstance(events, list) else list(events)
        if events and not started:
            store.begin_stream(events[0].ts_us - 1)
            retained_from, started = events[0].ts_us - 1, True
        position = 0
        while position < len(events):  # up to the next flush at a time: the layer takes them as columns
            chunk = events[position:position + max(1, flush_every - since_flush)]
            layer.apply_all(chunk)
            position += len(chunk)
            since_flush += len(chunk)
            if since_flush >= flush_every:
                flush()
                since_flush = 0
    flush(end_us)
    stats = layer.stats
    return RunReport(stats.events, stats.changes, stats.late_events, stats.late_ignored,
                     time.perf_counter() - began, layer.watermark_us)


def local_day_bounds(start_day: str, end_day: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(local midnight starting start_day, local midnight ending end_day), in UTC."""
    first = pd.Timestamp(start_day).tz_localize(LOCAL_TIMEZONE)
    last = (pd.Timestamp(end_day) + pd.Timedelta(days=1)).tz_localize(LOCAL_TIMEZONE)
    return first.tz_convert("UTC"), last.tz_convert("UTC")


def stream_client(online: OnlineSettings, block_ms: int | None = None):
    """A Redis client for the event stream: a server that stops answering fails a call after
    online.redis_timeout_seconds, beyond the time a blocking read waits for new entries by design
    (the speed layer then stops with the error, for its supervisor to restart, instead of hanging)."""
    return redis_client(online.redis_url, online.redis_timeout_seconds, (block_ms or 0) / 1000)


def run_configured_speed_layer(
    start_day: str | None = None, end_day: str | None = None, follow: bool = False,
    online: OnlineSettings | None = None, paths: TarmacPaths | None = None,
) -> RunReport:
    """The speed layer as tarmac.yaml configures it: replaying silver's events of the local days
    start..end, or reading the Redis stream from its first entry (and, with `follow`, waiting for
    more), into the configured online store."""
    online = (online or load_settings().online).with_environment()
    paths = paths or TarmacPaths.from_env()
    if online.stream == "push":
        raise ValueError("online.stream is push: the serving API hosts the speed layer (python -m serving), fed by "
                         "POST /events; a second speed layer would write the same histories")
    store = open_online_store(online, paths)
    try:
        if online.stream == "replay":
            if not (start_day and end_day):
                raise ValueError("replaying silver needs the local days to replay: give a start and an end day")
            start, end = local_day_bounds(start_day, end_day)
            events = replay_silver(paths.warehouse, start, end)
            return run_speed_layer([events], store, start_us=to_us(start), end_us=to_us(end),
                                   flush_every=online.flush_every_events, retention_days=online.retention_days)
        block_ms = 5000 if follow else None
        stream = RedisEventStream(stream_client(online, block_ms), online.stream_key)
        batches = stream.read(count=online.flush_every_events, block_ms=block_ms)
        report = run_speed_layer(batches, store, flush_every=online.flush_every_events,
                                 retention_days=online.retention_days)
        report.rejected = stream.rejected
        return report
    finally:
        store.close()
