"""The speed layer's input: the feature events (docs/design.md#features) in event-time order.

Two streams carry them. The embedded default replays silver through the dbt analysis
`feature_events`, which builds events with the same macros as the batch features; the production
option is a Redis Stream that any producer appends to (`python -m tools.cli stream-publish`
fills it from silver) and the speed layer reads in order.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from tarmac.dbt_project import compiled_analysis
from tarmac.features.registry import entity_keys, feature_registry
from tarmac.warehouse import read_only

log = logging.getLogger("tarmac.online.events")

KINDS = ("departure", "cancellation", "weather")
# the registry's event sources, by event kind
SOURCE_OF_KIND = {"departure": "departures", "cancellation": "cancellations", "weather": "weather"}


class Event(NamedTuple):
    """One event; the columns of the analysis feature_events. Times are UTC microseconds."""

    kind: str
    ts_us: int
    origin: str
    dest: str | None = None
    carrier: str | None = None
    dep_delay: float | None = None
    temp: float | None = None
    wind_speed: float | None = None
    visib: float | None = None
    precip: float | None = None
    humid: float | None = None


FIELDS = Event._fields


def to_us(ts: datetime | pd.Timestamp) -> int:
    """Microseconds since the epoch of a tz-aware instant (the online store's time unit)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"{ts!r} is naive: an event or as-of time must be an instant with a time zone")
    return stamp.value // 1000


def from_us(us: int) -> pd.Timestamp:
    return pd.Timestamp(us * 1000, tz="UTC")


def events_from_frame(frame: pd.DataFrame) -> list[Event]:
    """Events of a frame with the analysis's columns (event_ts a tz-aware timestamp)."""
    ts = frame["event_ts"].dt.tz_convert("UTC").dt.as_unit("us").astype("int64")
    columns = [frame[c].astype(object).where(frame[c].notna(), None) if c in frame else [None] * len(frame)
               for c in FIELDS[2:]]
    return [Event(kind, int(t), *values) for kind, t, *values in zip(frame["kind"], ts, *columns)]


def silver_events(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> list[Event]:
    """Every event with a time in (start, end], in event-time order, from silver on `con`."""
    con.execute("set TimeZone = 'UTC'")
    window = pd.DataFrame({"start_ts": [pd.Timestamp(start)], "end_ts": [pd.Timestamp(end)]})
    if window["start_ts"].dt.tz is None or window["end_ts"].dt.tz is None:
        raise ValueError("a replay window needs tz-aware bounds")
    con.register("replay_window", window)
    try:
        return events_from_frame(con.execute(compiled_analysis("feature_events")).df())
    finally:
        con.unregister("replay_window")


def replay_silver(warehouse, start: pd.Timestamp, end: pd.Timestamp) -> list[Event]:
    """The embedded stream: silver's events in (start, end], read on a read-only connection that is
    closed before the caller consumes them (the warehouse's writer is never held up)."""
    with read_only(warehouse) as con:
        return silver_events(con, start, end)


def encode(event: Event) -> dict[str, str]:
    """A Redis Stream entry: one field per non-null column, numbers as JSON."""
    return {name: json.dumps(value) for name, value in zip(FIELDS, event) if value is not None}


class EventShape(NamedTuple):
    """What an event of one kind carries, as the feature registry reads it: the keys of every
    feature its source feeds (required) and the values those features aggregate (null: unknown)."""

    keys: tuple[str, ...]
    values: tuple[str, ...]


@cache
def event_shape(kind: str) -> EventShape:
    fed = [f for f in feature_registry().values() if f.source == SOURCE_OF_KIND[kind]]
    return EventShape(tuple(name for name in FIELDS if any(name in entity_keys(f.entity) for f in fed)),
                      tuple(name for name in FIELDS if any(f.value == name for f in fed)))


# the codes an event's keys hold (origin: the registry's origins, below)
KEY_PATTERNS = {"dest": r"^[A-Z]{3}$", "carrier": r"^[A-Z0-9]{2}$"}
NUMBERS = FIELDS[5:]  # dep_delay and the weather's measurements
TS_US_END = 4_102_444_800_000_000  # 2100-01-01T00:00:00Z: event times are of the years POST /events takes


class BadEvent(ValueError):
    """An event that breaks a rule: the field, the rule and the value."""

    def __init__(self, field: str, rule: str, value: Any):
        self.field, self.rule, self.value = field, rule, value
        super().__init__(f"{field}: {rule} (got {value!r})")


@cache
def _origins() -> frozenset[str] | None:
    known = feature_registry()["origin"].isin
    return frozenset(known) if known else None


def validate(values: dict[str, Any]) -> Event:
    """The Event these values describe, or BadEvent for the first rule they break: only an
    event's fields; a kind the speed layer knows; the time as integer microseconds; every key the
    kind's features are keyed by, as a code (an origin the registry knows); numbers finite or null.
    The same rules as POST /events' contract (serving/contract.py)."""
    for name, value in values.items():
        if name not in FIELDS:
            raise BadEvent(name, f"is not a field of an event ({', '.join(FIELDS)})", value)
    kind = values.get("kind")
    if kind not in KINDS:
        raise BadEvent("kind", f"must be one of {', '.join(KINDS)}", kind)
    ts_us = values.get("ts_us")
    if isinstance(ts_us, bool) or not isinstance(ts_us, int) or not 0 <= ts_us < TS_US_END:
        raise BadEvent("ts_us", "must be an integer, microseconds since the epoch (UTC), of a year 1970 to 2099", ts_us)
    required = event_shape(kind).keys
    for name in ("origin", "dest", "carrier"):
        value = values.get(name)
        if value is None:
            if name in required:
                raise BadEvent(name, f"is required in a {kind} event", value)
            continue
        if not isinstance(value, str):
            raise BadEvent(name, "must be a string", value)
        if name == "origin" and _origins() is not None and value not in _origins():
            raise BadEvent(name, f"must be an origin the feature registry knows ({', '.join(sorted(_origins()))})", value)
        if name in KEY_PATTERNS and not re.fullmatch(KEY_PATTERNS[name], value):
            raise BadEvent(name, f"must match {KEY_PATTERNS[name]}", value)
    for name in NUMBERS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
            raise BadEvent(name, "must be a finite number or null", value)
    return Event(**values)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode(fields: dict[bytes | str, bytes | str]) -> Event:
    """The Event of a stream entry (each field's value JSON, as `encode` writes it), validated."""
    values = {}
    for key, raw in fields.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            values[name] = json.loads(text, parse_constant=_no_constant)
        except ValueError:
            raise BadEvent(name, "is not a JSON value", text) from None
    return validate(values)


class RedisEventStream:
    """Events in a Redis Stream. The speed layer keeps its windows in memory, so a reader starts
    from the stream's first entry and rebuilds them; producers bound the stream (MAXLEN) to the
    history a restart must replay.

    An entry that is not a valid event (`validate`) is not applied and does not stop the reader:
    it is logged with its entry id, field, rule and value, and copied whole, under the same entry
    id and with `tarmac.error` and `tarmac.rule` fields, to the quarantine stream `<key>:rejected`.
    A restarted reader meets it again and finds it there already, so each bad entry is quarantined
    once.
    """

    def __init__(self, client, key: str):
        self.client, self.key = client, key
        self.rejected_key = f"{key}:rejected"
        self.rejected = 0  # bad entries this reader met

    def _quarantine(self, entry_id: bytes | str, fields: dict, error: BadEvent) -> None:
        import redis

        self.rejected += 1
        entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        log.error("stream %s, entry %s: rejected, not applied: %s; kept in %s", self.key, entry, error, self.rejected_key)
        try:
            self.client.xadd(self.rejected_key, {**fields, "tarmac.error": str(error), "tarmac.rule": error.rule}, id=entry)
        except redis.ResponseError as failure:  # an id at or below the top: quarantined before
            if "equal or smaller" not in str(failure):
                raise

    def publish(self, events: Iterable[Event], max_len: int | None = None, batch: int = 5000) -> int:
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.key, encode(event), maxlen=max_len, approximate=max_len is not None)
            count += 1
            if count % batch == 0:
                pipe.execute()
        pipe.execute()
        return count

    def read(self, after: str = "0", count: int = 5000, block_ms: int | None = None) -> Iterator[list[Event]]:
        """Batches of the entries after the id `after`, in stream order; stops when the stream is
        drained or, with block_ms, after waiting that long for more."""
        while True:
            reply = self.client.xread({self.key: after}, count=count, block=block_ms)
            if not reply:
                return
            entries = reply[0][1]
            after = entries[-1][0]
            events = []
            for entry_id, fields in entries:
                try:
                    events.append(decode(fields))
                except BadEvent as error:
                    self._quarantine(entry_id, fields, error)
            yield events
