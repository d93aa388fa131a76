"""The online store: the latest feature values per entity key, with their recent history.

Each value is kept as a step function of event time (what the speed layer records), so a read as
of any instant p inside the store's coverage is exact: the latest record at or before p. Beside
the histories the store holds the flights' attributes (the schedule, with gold's batch-computed
features) and the planes, which the materialization assets load from the warehouse.

Two backends, one behaviour: SQLite in WAL mode under the data dir (embedded default; one writer,
any number of readers) and Redis (production; a sorted set per feature and key).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from tarmac.online.speed_layer import FeatureChange

Slot = tuple[str, str]  # (feature, entity key)


@dataclass(frozen=True)
class Coverage:
    """What the stream has written: event time up to `watermark_us`, from `stream_start_us` on, and
    history kept from `retained_from_us` on. None when nothing has been streamed."""

    stream_start_us: int | None
    watermark_us: int | None
    retained_from_us: int | None

    @classmethod
    def from_meta(cls, meta: Mapping[str, int]) -> Coverage:
        """From a store's meta values by name (none of them when nothing has been streamed)."""
        return cls(meta.get("stream_start_us"), meta.get("watermark_us"), meta.get("retained_from_us"))

    def exact_from(self, max_window_us: int) -> int | None:
        """The first instant every window is complete at: the stream must reach a window back."""
        if self.stream_start_us is None:
            return None
        return max(self.stream_start_us + max_window_us, self.retained_from_us or self.stream_start_us)


class SnapshotRequest(NamedTuple):
    slots: Sequence[Slot]
    as_of_us: int
    records: Sequence[tuple[str, str]] = ()


class PushLogEntry(NamedTuple):
    """One entry of the push log: an event (its id, event time and JSON), or a watermark the
    producer set (id None, the watermark as the time, payload "")."""

    event_id: str | None
    ts_us: int
    payload: str


@dataclass(frozen=True)
class Snapshot:
    """What one read of the store saw: its coverage, the values of slots as of an instant (slots
    without a record at or before it absent) and records by (entity, key) (None if absent)."""

    coverage: Coverage
    values: dict[Slot, Any]
    records: dict[tuple[str, str], dict[str, Any] | None]


class OnlineStore(ABC):
    backend: str

    @abstractmethod
    def begin_stream(self, start_us: int) -> None:
        """Forget the feature histories: a stream replayed from `start_us` rebuilds them."""

    @abstractmethod
    def write(self, changes: Sequence[FeatureChange], watermark_us: int) -> None:
        """Record the changes and that every event up to `watermark_us` is in them."""

    @abstractmethod
    def read(self, slots: Sequence[Slot], as_of_us: int) -> dict[Slot, Any]:
        """The value of each slot as of the instant; slots with no record at or before it are absent."""

    @abstractmethod
    def coverage(self) -> Coverage: ...

    def snapshot(self, slots: Sequence[Slot], as_of_us: int, records: Sequence[tuple[str, str]] = ()) -> Snapshot:
        """The coverage, the slots' values as of the instant and the records, read at one moment, so
        that the coverage describes the values read even while the speed layer writes: read apart,
        a trim or a restarted stream between the two could leave values the coverage checked no
        longer vouches for. The backends read all of it in one statement or transaction (one round
        trip); this default reads the coverage first, then the rest."""
        coverage = self.coverage()
        return Snapshot(coverage, self.read(slots, as_of_us), {r: self.get_record(*r) for r in records})

    def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        """A snapshot per request (slots, instant, records), all read at one moment where the
        backend can (Redis: one MULTI, one round trip); this default takes them one by one."""
        return [self.snapshot(slots, as_of_us, records) for slots, as_of_us, records in requests]

    def get_records(self, entity: str, keys: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """get_record for many keys (Redis: one round trip); None for a key the store lacks."""
        return {key: self.get_record(entity, key) for key in keys}

    @abstractmethod
    def trim(self, before_us: int) -> None:
        """Drop history older than `before_us`, keeping each slot's value in force at that instant."""

    def put_records(self, entity: str, records: Mapping[str, Mapping[str, Any]], group: str) -> None:
        """Attributes of keyed entities (flights, planes) as the whole of `group` (a day, say):
        the group's earlier records are replaced, those no longer in it removed."""
        self.put_record_json(entity, {key: json.dumps(record, default=str) for key, record in records.items()}, group)

    @abstractmethod
    def put_record_json(self, entity: str, records: Mapping[str, str], group: str) -> None:
        """put_records with each record already JSON text (as batch.flight_record_json builds them)."""

    @abstractmethod
    def get_record(self, entity: str, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def count_records(self, entity: str) -> int: ...

    @abstractmethod
    def log_pushed(self, entries: Sequence[PushLogEntry]) -> list[bool]:
        """Append pushed events (and watermarks) to the push log, in order, in one transaction: an
        event whose id the log already holds, or that an earlier entry of `entries` has, is not
        appended (False in its place); a watermark (id None) always is."""

    @abstractmethod
    def pushed(self) -> list[PushLogEntry]:
        """The push log, in the order it was appended."""

    @abstractmethod
    def trim_pushed(self, before_us: int) -> None:
        """Forget pushed events older than `before_us` (event time), their ids with them."""

    @abstractmethod
    def clear(self) -> None:
        """Remove everything this store holds (its file's tables, or its key prefix)."""

    def close(self) -> None:  # noqa: B027 (a store without a connection has nothing to close)
        pass


class SqliteOnlineStore(OnlineStore):
    backend = "sqlite"

    def __init__(self, path: Path | str):
        self.path = Path(path) if str(path) != ":memory:" else path
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by the API's worker threads, serialized by a lock
        self._con = self._connect()
        self._lock = threading.Lock()
        self._count_con: sqlite3.Connection | None = None  # opened by the first count_records
        self._count_lock = threading.Lock()
        with self._lock:
            self._con.execute("pragma journal_mode = wal")
            self._con.execute("pragma synchronous = normal")
            self._con.executescript("""
                create table if not exists feature_history (
                    feature text not null, entity_key text not null, as_of_us integer not null, value,
                    primary key (feature, entity_key, as_of_us)
                ) without rowid;
                -- a rowid table: a record is large (a flight's JSON is about 1 KB), and a WITHOUT ROWID
                -- table keeps it inside the key's B-tree, where each day's flights land all over a
                -- tree of gigabytes; here rows are appended and only the small key index is searched
                create table if not exists records (
                    entity text not null, key text not null, record_group text not null, record text not null,
                    unique (entity, key)
                );
                create index if not exists records_by_group on records (entity, record_group);
                create table if not exists meta (name text primary key, value integer);
                -- POST /events' log (serving/push.py): replayed at start-up; event ids are unique
                create table if not exists push_log (
                    seq integer primary key autoincrement, event_id text unique, ts_us integer not null,
                    payload text not null
                );
            """)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)

    def _set_meta(self, **values: int | None) -> None:
        self._con.executemany("insert or replace into meta values (?, ?)", list(values.items()))

    def begin_stream(self, start_us: int) -> None:
        with self._lock:
            self._con.execute("begin")
            self._con.execute("delete from feature_history")
            self._set_meta(stream_start_us=start_us, watermark_us=start_us, retained_from_us=start_us)
            self._con.execute("commit")

    def write(self, changes: Sequence[FeatureChange], watermark_us: int) -> None:
        with self._lock:
            self._con.execute("begin")
            self._con.executemany("insert or replace into feature_history values (?, ?, ?, ?)", changes)
            self._set_meta(watermark_us=watermark_us)
            self._con.execute("commit")

    def read(self, slots: Sequence[Slot], as_of_us: int) -> dict[Slot, Any]:
        sql = ("select value from feature_history where feature = ? and entity_key = ? and as_of_us <= ? "
               "order by as_of_us desc limit 1")
        out: dict[Slot, Any] = {}
        with self._lock:
            for slot in slots:
                row = self._con.execute(sql, (*slot, as_of_us)).fetchone()
                if row is not None:
                    out[slot] = row[0]
        return out

    def coverage(self) -> Coverage:
        with self._lock:
            meta = dict(self._con.execute("select name, value from meta").fetchall())
        return Coverage.from_meta(meta)

    @staticmethod
    @cache
    def _snapshot_sql(slots: int, records: int) -> str:
        """One statement (one read transaction, so one state of the file) for a snapshot: rows
        (-1, name, value) of meta, (-2 - j, null, record j) and (i, null, slot i's value as of ?)."""
        return " union all ".join([
            "select -1, name, value from meta",
            *(f"select {-2 - j}, null, record from records where entity = ? and key = ?" for j in range(records)),
            *(f"select {i}, null, value from (select value from feature_history where feature = ? and entity_key = ? "
              "and as_of_us <= ? order by as_of_us desc limit 1)" for i in range(slots)),
        ])

    def snapshot(self, slots: Sequence[Slot], as_of_us: int, records: Sequence[tuple[str, str]] = ()) -> Snapshot:
        params: list[Any] = [part for record in records for part in record]
        for feature, key in slots:
            params += (feature, key, as_of_us)
        with self._lock:
            rows = self._con.execute(self._snapshot_sql(len(slots), len(records)), params).fetchall()
        meta, values, found = {}, {}, dict.fromkeys(records)
        for index, name, value in rows:
            if index >= 0:
                values[slots[index]] = value
            elif index == -1:
                meta[name] = value
            else:
                found[records[-2 - index]] = json.loads(value)
        return Snapshot(Coverage.from_meta(meta), values, found)

    def trim(self, before_us: int) -> None:
        with self._lock:
            self._con.execute("begin")
            self._con.execute("""
                delete from feature_history as h
                where as_of_us < (select max(g.as_of_us) from feature_history g
                                  where g.feature = h.feature and g.entity_key = h.entity_key and g.as_of_us <= ?)
            """, (before_us,))
            self._set_meta(retained_from_us=before_us)
            self._con.execute("commit")

    def put_record_json(self, entity: str, records: Mapping[str, str], group: str) -> None:
        # in key order: one pass along the key index instead of a jump per row
        rows = sorted((entity, key, group, record) for key, record in records.items())
        with self._lock:
            self._con.execute("begin")
            self._con.execute("delete from records where entity = ? and record_group = ?", (entity, group))
            self._con.executemany("insert or replace into records values (?, ?, ?, ?)", rows)
            self._con.execute("commit")

    def get_record(self, entity: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute("select record from records where entity = ? and key = ?", (entity, key)).fetchone()
        return json.loads(row[0]) if row else None

    def count_records(self, entity: str) -> int:
        # a count walks the whole key index (a year's flights: tens of milliseconds), so it reads on
        # a connection of its own: in WAL mode it then holds up no read or write of the API's threads
        # (an in-memory store has one connection only)
        own = isinstance(self.path, Path)
        with self._count_lock if own else self._lock:
            if own and self._count_con is None:
                self._count_con = self._connect()
            con = self._count_con if own else self._con
            return con.execute("select count(*) from records where entity = ?", (entity,)).fetchone()[0]

    def log_pushed(self, entries: Sequence[PushLogEntry]) -> list[bool]:
        ids = sorted({e.event_id for e in entries if e.event_id is not None})
        with self._lock:
            self._con.execute("begin")
            try:
                known = set()
                for chunk in range(0, len(ids), 500):
                    part = ids[chunk:chunk + 500]
                    known.update(i for (i,) in self._con.execute(
                        f"select event_id from push_log where event_id in ({', '.join('?' * len(part))})", part))
                appended: list[bool] = []
                rows = []
                for entry in entries:
                    new = entry.event_id is None or entry.event_id not in known
                    if entry.event_id is not None:
                        known.add(entry.event_id)
                    if new:
                        rows.append(tuple(entry))
                    appended.append(new)
                self._con.executemany("insert into push_log (event_id, ts_us, payload) values (?, ?, ?)", rows)
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise
        return appended

    def pushed(self) -> list[PushLogEntry]:
        with self._lock:
            rows = self._con.execute("select event_id, ts_us, payload from push_log order by seq").fetchall()
        return [PushLogEntry(*row) for row in rows]

    def trim_pushed(self, before_us: int) -> None:
        with self._lock:
            self._con.execute("delete from push_log where ts_us < ?", (before_us,))

    def clear(self) -> None:
        with self._lock:
            self._con.executescript("delete from feature_history; delete from records; delete from meta; "
                                    "delete from push_log;")

    def close(self) -> None:
        with self._lock:
            self._con.close()
        with self._count_lock:
            if self._count_con is not None:
                self._count_con.close()


def redis_client(url: str, timeout_seconds: float, wait_seconds: float = 0):
    """A client of the Redis at `url` whose connection or reply that takes longer than
    `timeout_seconds` (plus `wait_seconds`, a blocking read's own wait) raises redis.TimeoutError;
    socket_timeout and socket_connect_timeout in the URL's query win."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds + wait_seconds)


# Deletes a sorted set's members older than the one in force at ARGV[1] (the latest at or before it).
_TRIM_SCRIPT = """
local kept = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if kept[2] then return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. kept[2]) end
return 0
"""


# Records changes: KEYS[1] is the set of history keys, KEYS[2..] the changes' sorted sets, ARGV a
# (score, member) pair per change. One value per instant: a rewrite of an instant replaces it.
_WRITE_SCRIPT = """
for i = 2, #KEYS do
    local score, member = ARGV[2 * i - 3], ARGV[2 * i - 2]
    redis.call('ZREMRANGEBYSCORE', KEYS[i], score, score)
    redis.call('ZADD', KEYS[i], score, member)
    redis.call('SADD', KEYS[1], KEYS[i])
end
return #KEYS - 1
"""


# Appends pushed entries: KEYS[1] the hash of known ids (id -> event time), KEYS[2] the log (a list);
# ARGV a (id or "", time, payload) triple per entry. Returns 1 per entry appended, 0 per known id.
_PUSH_SCRIPT = """
local out = {}
for i = 1, #ARGV, 3 do
    local id, ts, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    if id == '' or redis.call('HSETNX', KEYS[1], id, ts) == 1 then
        redis.call('RPUSH', KEYS[2], cjson.encode({id, ts, payload}))  -- the time as text: cjson keeps 14 digits
        out[#out + 1] = 1
    else
        out[#out + 1] = 0
    end
end
return out
"""

# Drops the log's entries older than ARGV[1] (event time) and their ids: KEYS[1] ids, KEYS[2] the log.
_TRIM_PUSHED_SCRIPT = """
local kept = {}
local dropped = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local entry = cjson.decode(raw)
    if tonumber(entry[2]) < tonumber(ARGV[1]) then
        if entry[1] ~= '' then redis.call('HDEL', KEYS[1], entry[1]) end
        dropped = dropped + 1
    else
        kept[#kept + 1] = raw
    end
end
if dropped > 0 then
    redis.call('DEL', KEYS[2])
    for i = 1, #kept, 1000 do redis.call('RPUSH', KEYS[2], unpack(kept, i, math.min(i + 999, #kept))) end
end
return dropped
"""


class RedisOnlineStore(OnlineStore):
    """Keys under `prefix`: `h:<feature>:<entity key>` (a sorted set of "<as_of_us>:<json value>"
    scored by as_of_us), `r:<entity>:<key>` (a record as JSON), `rgroup:<entity>:<group>` and
    `rkeys:<entity>` (sets of record keys), `hkeys` (the set of history keys) and `meta` (a hash)."""

    backend = "redis"
    WRITE_CHUNK = 2000  # changes per script call: short enough not to hold the server up

    def __init__(self, client, prefix: str):
        if not prefix or prefix.endswith(":") or "*" in prefix:
            raise ValueError(f"key prefix {prefix!r}: give a name such as 'tarmac' (no trailing ':', no '*')")
        self.client, self.prefix = client, prefix
        self._trim = client.register_script(_TRIM_SCRIPT)
        self._write = client.register_script(_WRITE_SCRIPT)
        self._push = client.register_script(_PUSH_SCRIPT)
        self._trim_pushed = client.register_script(_TRIM_PUSHED_SCRIPT)

    @classmethod
    def from_url(cls, url: str, prefix: str, timeout_seconds: float | None = None) -> RedisOnlineStore:
        """The store at `url`; with `timeout_seconds`, a connection or a reply that takes longer
        raises redis.TimeoutError (options given in the URL's query win)."""
        import redis

        return cls(redis_client(url, timeout_seconds) if timeout_seconds is not None else redis.Redis.from_url(url), prefix)

    def _history_key(self, feature: str, key: str) -> str:
        return f"{self.prefix}:h:{feature}:{key}"

    def _meta(self) -> str:
        return f"{self.prefix}:meta"

    def begin_stream(self, start_us: int) -> None:
        hkeys = f"{self.prefix}:hkeys"
        keys = [k.decode() for k in self.client.smembers(hkeys)]
        pipe = self.client.pipeline(transaction=True)
        for chunk in range(0, len(keys), 1000):
            pipe.unlink(*keys[chunk:chunk + 1000])
        pipe.delete(hkeys)
        pipe.hset(self._meta(), mapping={"stream_start_us": start_us, "watermark_us": start_us,
                                         "retained_from_us": start_us})
        pipe.execute()

    def write(self, changes: Sequence[FeatureChange], watermark_us: int) -> None:
        # server-side, a chunk at a time: one command per chunk instead of three per change
        for start in range(0, len(changes), self.WRITE_CHUNK):
            chunk = changes[start:start + self.WRITE_CHUNK]
            keys = [self._history_key(c.feature, c.entity_key) for c in chunk]
            members = [arg for c in chunk for arg in (c.as_of_us, f"{c.as_of_us}:{json.dumps(c.value)}")]
            self._write(keys=[f"{self.prefix}:hkeys", *keys], args=members)
        self.client.hset(self._meta(), "watermark_us", watermark_us)

    def _record_key(self, entity: str, key: str) -> str:
        return f"{self.prefix}:r:{entity}:{key}"

    def _queue_reads(self, pipe, slots: Sequence[Slot], as_of_us: int) -> None:
        """Each slot's latest member at or before the instant, queued on `pipe` (see _values)."""
        for feature, key in slots:
            pipe.zrevrangebyscore(self._history_key(feature, key), as_of_us, "-inf", start=0, num=1)

    @staticmethod
    def _values(slots: Sequence[Slot], answers: Sequence[list[bytes]]) -> dict[Slot, Any]:
        """The values of _queue_reads' answers ("<as_of_us>:<json value>"), slots without one absent."""
        return {slot: json.loads(members[0].decode().split(":", 1)[1]) for slot, members in zip(slots, answers) if members}

    def read(self, slots: Sequence[Slot], as_of_us: int) -> dict[Slot, Any]:
        pipe = self.client.pipeline(transaction=False)
        self._queue_reads(pipe, slots, as_of_us)
        return self._values(slots, pipe.execute())

    def coverage(self) -> Coverage:
        return self._coverage(self.client.hgetall(self._meta()))

    @staticmethod
    def _coverage(meta: Mapping[bytes, bytes]) -> Coverage:
        return Coverage.from_meta({k.decode(): int(v) for k, v in meta.items()})

    def snapshot(self, slots: Sequence[Slot], as_of_us: int, records: Sequence[tuple[str, str]] = ()) -> Snapshot:
        # MULTI/EXEC: the server runs the commands together, nothing written in between
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self._meta())
        for entity, key in records:
            pipe.get(self._record_key(entity, key))
        self._queue_reads(pipe, slots, as_of_us)
        meta, *answers = pipe.execute()
        found = {record: None if raw is None else json.loads(raw) for record, raw in zip(records, answers)}
        return Snapshot(self._coverage(meta), self._values(slots, answers[len(records):]), found)

    def snapshots(self, requests: Sequence[SnapshotRequest]) -> list[Snapshot]:
        # one MULTI/EXEC for all of them: one round trip, and one state of the store
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self._meta())
        for slots, as_of_us, records in requests:
            for entity, key in records:
                pipe.get(self._record_key(entity, key))
            self._queue_reads(pipe, slots, as_of_us)
        meta, *answers = pipe.execute()
        coverage, out, at = self._coverage(meta), [], 0
        for slots, _, records in requests:
            found = {r: None if raw is None else json.loads(raw) for r, raw in zip(records, answers[at:at + len(records)])}
            at += len(records)
            out.append(Snapshot(coverage, self._values(slots, answers[at:at + len(slots)]), found))
            at += len(slots)
        return out

    def get_records(self, entity: str, keys: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        if not keys:
            return {}
        raws = self.client.mget([self._record_key(entity, key) for key in keys])
        return {key: None if raw is None else json.loads(raw) for key, raw in zip(keys, raws)}

    def trim(self, before_us: int) -> None:
        # the coverage first: a snapshot taken while the keys are trimmed one by one already
        # refuses the instants whose history may be gone
        self.client.hset(self._meta(), "retained_from_us", before_us)
        for key in self.client.smembers(f"{self.prefix}:hkeys"):
            self._trim(keys=[key], args=[before_us])

    def put_record_json(self, entity: str, records: Mapping[str, str], group: str) -> None:
        members = f"{self.prefix}:rgroup:{entity}:{group}"
        gone = {k.decode() for k in self.client.smembers(members)} - set(records)
        pipe = self.client.pipeline(transaction=True)
        if gone:
            pipe.unlink(*(self._record_key(entity, key) for key in gone))
            pipe.srem(f"{self.prefix}:rkeys:{entity}", *gone)
        pipe.delete(members)
        for key, record in records.items():
            pipe.set(self._record_key(entity, key), record)
        if records:
            pipe.sadd(members, *records)
            pipe.sadd(f"{self.prefix}:rkeys:{entity}", *records)
        pipe.execute()

    def get_record(self, entity: str, key: str) -> dict[str, Any] | None:
        raw = self.client.get(self._record_key(entity, key))
        return json.loads(raw) if raw is not None else None

    def count_records(self, entity: str) -> int:
        return int(self.client.scard(f"{self.prefix}:rkeys:{entity}"))

    def _push_keys(self) -> list[str]:
        return [f"{self.prefix}:push-ids", f"{self.prefix}:push-log"]

    def log_pushed(self, entries: Sequence[PushLogEntry]) -> list[bool]:
        if not entries:
            return []
        args = [part for e in entries for part in (e.event_id or "", e.ts_us, e.payload)]
        return [bool(flag) for flag in self._push(keys=self._push_keys(), args=args)]

    def pushed(self) -> list[PushLogEntry]:
        entries = [json.loads(raw) for raw in self.client.lrange(self._push_keys()[1], 0, -1)]
        return [PushLogEntry(event_id or None, int(ts), payload) for event_id, ts, payload in entries]

    def trim_pushed(self, before_us: int) -> None:
        self._trim_pushed(keys=self._push_keys(), args=[before_us])

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for chunk in range(0, len(keys), 1000):
            self.client.unlink(*keys[chunk:chunk + 1000])

    def close(self) -> None:
        self.client.close()

