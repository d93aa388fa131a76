"""The speed layer's input: the feature events (docs/design.md#features) in event-time order.

Two streams carry them. The embedded default replays silver through the dbt analysis
`feature_events`, which builds events with the same macros as the batch features; the production
option is a Redis Stream that any producer appends to (`python -m tools.cli stream-publish`
fills it from silver) and the speed layer reads in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

import duckdb
import pandas as pd

from tarmac.dbt_project import compiled_analysis
from tarmac.warehouse import read_only

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


def decode(fields: dict[bytes | str, bytes | str]) -> Event:
    values = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in fields.items()}
    unknown = set(values) - set(FIELDS)
    if unknown or values.get("kind") not in KINDS or not isinstance(values.get("ts_us"), int):
        raise ValueError(f"not a Tarmac event: {values!r} (fields {', '.join(FIELDS)}; kind one of {', '.join(KINDS)})")
    return Event(**values)


class RedisEventStream:
    """Events in a Redis Stream. The speed layer keeps its windows in memory, so a reader starts
    from the stream's first entry and rebuilds them; producers bound the stream (MAXLEN) to the
    history a restart must replay."""

    def __init__(self, client, key: str):
        self.client, self.key = client, key

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
            yield [decode(fields) for _, fields in entries]
