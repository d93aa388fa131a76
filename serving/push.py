"""POST /events: a producer pushes departures, cancellations and weather observations over HTTP,
and the speed layer this process hosts applies them, as it applies the stream's (online.stream:
push).

One speed layer, one writer. The serving process holds the layer's windows in memory and is the
only process that writes the online store's histories: pushes are applied one request at a time,
under a lock, each request's events in event-time order after every event pushed before them.
An event older than the watermark is late and counted as the speed layer counts it (applied from
the watermark on, never rewriting what was already answered for an earlier instant).

Every accepted event is first appended to the push log in the online store, keyed by its id: an
id the log holds is a duplicate, counted and not applied, so a producer can retry a request whose
answer it lost. At start-up the layer is rebuilt, optionally from silver's events of the replayed
days, then from the push log in the order it was written, so a restarted server holds the values
it held before. The log is trimmed with the store's history (online.retention_days): an event
pushed again after that is no longer known as a duplicate, and falls before every window anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from pydantic import TypeAdapter

from serving.contract import EVENT_MODELS, PushedEvent, PushRequest, PushResult
from tarmac.online.events import FIELDS, Event, from_us, replay_silver, to_us
from tarmac.online.runner import DAY_US, local_day_bounds, run_speed_layer
from tarmac.online.speed_layer import SpeedLayer
from tarmac.online.store import OnlineStore, PushLogEntry
from tarmac.paths import TarmacPaths
from tarmac.settings.online import OnlineSettings

log = logging.getLogger("tarmac.serving.push")
_EVENT = TypeAdapter(PushedEvent)


def as_pushed(event: Event, event_id: str) -> dict:
    """The JSON a producer pushes for `event`: the fields its kind has (serving/contract.py), the
    time as an RFC 3339 instant."""
    fields = EVENT_MODELS[event.kind].model_fields
    values = dict(zip(FIELDS, event, strict=True))
    return {"kind": event.kind, "event_id": event_id, "ts": from_us(event.ts_us).isoformat(),
            **{name: values[name] for name in fields if name in values and name not in ("kind", "ts_us")}}


def to_event(pushed) -> Event:
    """A validated pushed event as the speed layer's Event (fields the kind lacks are None)."""
    values = pushed.model_dump(exclude={"kind", "event_id", "ts"})
    return Event(pushed.kind, to_us(pushed.ts), **{k: (str(v) if k == "origin" else v) for k, v in values.items()})


class PushHost:
    """The speed layer that POST /events feeds; `start` (the API's lifespan) rebuilds it."""

    def __init__(self, online: OnlineSettings, paths: TarmacPaths, replay_days: tuple[str, str] | None = None):
        self.online, self.paths, self.replay_days = online, paths, replay_days
        self.retention_us = int(online.retention_days * DAY_US)
        self._lock = threading.Lock()
        self.layer: SpeedLayer | None = None
        self.store: OnlineStore | None = None
        self.watermark_us: int | None = None  # the store's, as this host last wrote it
        self._retained_from: int | None = None

    def start(self, store: OnlineStore) -> None:
        with self._lock:
            self.store, self.layer, self.watermark_us = store, SpeedLayer(), None
            if self.replay_days is not None:
                start, end = local_day_bounds(*self.replay_days)
                events = replay_silver(self.paths.warehouse, start, end)
                report = run_speed_layer([events], store, start_us=to_us(start), end_us=to_us(end), layer=self.layer,
                                         flush_every=self.online.flush_every_events,
                                         retention_days=self.online.retention_days)
                self.watermark_us, self._retained_from = report.watermark_us, to_us(start)
                log.warning("push: %s events of silver replayed (%s to %s)", f"{report.events:,}", *self.replay_days)
            entries = store.pushed()
            if entries:
                self._restore(entries)
                log.warning("push: %s entries of the push log applied again; watermark %s", f"{len(entries):,}",
                            None if self.watermark_us is None else from_us(self.watermark_us).isoformat())

    def _restore(self, entries: Sequence[PushLogEntry]) -> None:
        """Apply the log as it was applied when pushed: events in their order, watermarks where set."""
        assert self.layer is not None and self.store is not None
        if self.watermark_us is None:
            self._begin(min(e.ts_us - 1 if e.event_id is not None else e.ts_us for e in entries))
        run: list[Event] = []
        for entry in entries:
            if entry.event_id is None:
                self.layer.apply_all(run)
                run = []
                self._advance(entry.ts_us)
            else:
                run.append(to_event(_EVENT.validate_json(entry.payload)))
        self.layer.apply_all(run)
        self._flush(None)

    def _begin(self, start_us: int) -> None:
        """The first thing this store's stream holds is at start_us: its histories start there."""
        assert self.store is not None
        self.store.begin_stream(start_us)
        self._retained_from = start_us

    def _advance(self, watermark_us: int) -> None:
        assert self.layer is not None
        if self.layer.watermark_us is None or watermark_us > self.layer.watermark_us:
            self.layer.advance_to(watermark_us)
        self.watermark_us = watermark_us if self.watermark_us is None else max(self.watermark_us, watermark_us)

    def _flush(self, watermark_us: int | None) -> None:
        """Write what changed; the watermark as set by the producer, else one microsecond before the
        latest event (more of that instant may follow), never lower than before."""
        assert self.layer is not None and self.store is not None
        if self.layer.watermark_us is None:
            return
        candidate = watermark_us if watermark_us is not None else self.layer.watermark_us - 1
        self.watermark_us = max(self.watermark_us if self.watermark_us is not None else candidate, candidate)
        self.store.write(self.layer.drain(), self.watermark_us)
        horizon = self.watermark_us - self.retention_us
        if self._retained_from is not None and horizon > self._retained_from + DAY_US:  # a day at a time
            self._retained_from = horizon
            self.store.trim(horizon)
            self.store.trim_pushed(horizon)

    def apply(self, request: PushRequest) -> tuple[PushResult, dict[tuple[str, str], int]]:
        """Apply one request: (what became of its events, counts per (kind, outcome) for the metrics)."""
        events = sorted(request.events, key=lambda e: e.ts)  # stable: the producer's order within an instant
        watermark_us = None if request.watermark is None else to_us(request.watermark)
        entries = [PushLogEntry(e.event_id, to_us(e.ts), e.model_dump_json()) for e in events]
        if watermark_us is not None:
            entries.append(PushLogEntry(None, watermark_us, ""))
        with self._lock:
            if self.layer is None or self.store is None:
                raise RuntimeError("the push host has not started")
            appended = self.store.log_pushed(entries)
            fresh = [e for e, new in zip(events, appended, strict=False) if new]
            before = self.layer.watermark_us  # sorted, so an event is late exactly when it is before this
            stats = self.layer.stats
            late, ignored = stats.late_events, stats.late_ignored
            if self.layer.watermark_us is None and self.watermark_us is None and (fresh or watermark_us is not None):
                self._begin(to_us(fresh[0].ts) - 1 if fresh else watermark_us)
            self.layer.apply_all([to_event(e) for e in fresh])
            if watermark_us is not None:
                self._advance(watermark_us)
            self._flush(watermark_us)
            result = PushResult(
                received=len(events), applied=len(fresh), duplicates=len(events) - len(fresh),
                late=stats.late_events - late, late_ignored=stats.late_ignored - ignored,
                watermark=None if self.watermark_us is None else from_us(self.watermark_us).isoformat())
        counts: dict[tuple[str, str], int] = {}
        for event, new in zip(events, appended, strict=False):
            outcomes = ["applied" if new else "duplicate"]
            if new and before is not None and to_us(event.ts) < before:
                outcomes.append("late")
            for outcome in outcomes:
                counts[(event.kind, outcome)] = counts.get((event.kind, outcome), 0) + 1
        return result, counts

    def stop(self) -> None:
        with self._lock:  # a request being applied finishes first
            self.layer = None
