"""A flight's feature vector from the online store, as of an instant: what the serving API returns
and what the parity check compares with gold.

Windowed and weather features are read from the speed layer's histories at the flight's entity
keys; the flight's own attributes come from its request or its record (the schedule), the plane's
from the planes the store holds. Which is which is the feature registry's `source`; the two
features that are arithmetic rather than a column repeat gold's select (point_in_time_features).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from tarmac.features.registry import FeatureDefinition, feature_registry
from tarmac.online.events import from_us
from tarmac.online.speed_layer import WINDOW_AGGREGATIONS, entity_key
from tarmac.online.store import (
    Coverage,
    OnlineStore,
    RedisOnlineStore,
    Slot,
    Snapshot,
    SnapshotRequest,
    SqliteOnlineStore,
)
from tarmac.paths import TarmacPaths
from tarmac.settings.online import OnlineSettings

FLIGHT, PLANE = "flight", "plane"


def _plane_age(flight: Mapping[str, Any], plane: Mapping[str, Any] | None) -> int | None:
    built = (plane or {}).get("year")
    return None if built is None or flight.get("year") is None else int(flight["year"]) - int(built)


# gold's `isodow(flight_date)` and `t.year - p.year`
DERIVED: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any] | None], Any]] = {
    "day_of_week": lambda flight, plane: date.fromisoformat(str(flight["flight_date"])[:10]).isoweekday(),
    "plane_age_years": _plane_age,
}


class FeaturesNotAvailable(Exception):
    """The online store cannot give exact values as of this instant (yet, or any more)."""


def open_online_store(online: OnlineSettings, paths: TarmacPaths, namespace: str | None = None) -> OnlineStore:
    """The configured online store; `namespace` gives a separate one beside it (a scratch store)."""
    online = online.with_environment()
    if online.store == "redis":
        prefix = online.key_prefix if namespace is None else f"{online.key_prefix}.{namespace}"
        return RedisOnlineStore.from_url(online.redis_url, prefix, online.redis_timeout_seconds)
    path = paths.data_dir / online.sqlite_path
    if namespace is not None:
        path = path.with_name(f"{path.stem}.{namespace}{path.suffix}")
    return SqliteOnlineStore(path)


class OnlineFeatures:
    """Reads of one online store, checked against what its stream covers."""

    def __init__(self, store: OnlineStore, registry: Mapping[str, FeatureDefinition] | None = None):
        self.store = store
        self.registry = dict(feature_registry() if registry is None else registry)
        windows = [f.window for f in self.registry.values() if f.aggregation in (*WINDOW_AGGREGATIONS, "latest")]
        self.max_window_us = int(max(windows).total_seconds()) * 1_000_000 if windows else 0
        # the features read from the histories, and their entities (a flight's key is made once per entity)
        self._windowed = [(name, f.entity) for name, f in self.registry.items()
                          if f.aggregation in (*WINDOW_AGGREGATIONS, "latest")]
        self._window_entities = sorted({entity for _, entity in self._windowed})

    def check_available(self, as_of_us: int) -> None:
        self._check(self.store.coverage(), as_of_us)

    def _check(self, coverage: Coverage, as_of_us: int) -> None:
        if coverage.watermark_us is None:
            raise FeaturesNotAvailable("the speed layer has not written to this online store yet")
        exact_from = coverage.exact_from(self.max_window_us)
        if as_of_us > coverage.watermark_us:
            raise FeaturesNotAvailable(
                f"as of {from_us(as_of_us).isoformat()} is after the speed layer's watermark "
                f"{from_us(coverage.watermark_us).isoformat()}: events up to that time are not all in yet"
            )
        if as_of_us < exact_from:
            raise FeaturesNotAvailable(
                f"as of {from_us(as_of_us).isoformat()} is before {from_us(exact_from).isoformat()}, the first "
                "instant the online store holds every window for (its stream start plus the longest window, "
                "or its retention): ask the offline store for older times"
            )

    def for_flight(self, flight: Mapping[str, Any], as_of_us: int) -> dict[str, Any]:
        """Every registry feature of `flight` (a record with the columns of silver.flights that
        gold reads: flight_date, year, month, hour, carrier, origin, dest, tailnum, distance) as of
        the instant, in the registry's order.

        The coverage is checked against the same snapshot the values come from (Snapshot), so a
        value is returned only when the coverage read with it vouches for it. The coverage is
        read on every call, never cached: a cached watermark is behind the true one, which only
        refuses instants it need not, but one cached across a restarted stream or a trim would
        let values through that the store no longer holds exactly."""
        slots, records = self._reads(flight)
        return self._vector(flight, slots, self.store.snapshot(list(slots.values()), as_of_us, records), as_of_us)

    def for_flights(self, requests: Sequence[tuple[Mapping[str, Any], int]]) -> list[dict[str, Any] | FeaturesNotAvailable]:
        """for_flight for each (flight, instant), read in one go (store.snapshots: one round trip on
        Redis); a flight the store cannot answer for gets its FeaturesNotAvailable in its place."""
        reads = [self._reads(flight) for flight, _ in requests]
        snapshots = self.store.snapshots([SnapshotRequest(list(slots.values()), as_of_us, records)
                                          for (slots, records), (_, as_of_us) in zip(reads, requests)])
        out: list[dict[str, Any] | FeaturesNotAvailable] = []
        for (flight, as_of_us), (slots, _), snapshot in zip(requests, reads, snapshots):
            try:
                out.append(self._vector(flight, slots, snapshot, as_of_us))
            except FeaturesNotAvailable as reason:
                out.append(reason)
        return out

    def _reads(self, flight: Mapping[str, Any]) -> tuple[dict[str, Slot], list[tuple[str, str]]]:
        keys = {entity: entity_key(entity, flight) for entity in self._window_entities}
        slots = {name: (name, keys[entity]) for name, entity in self._windowed if keys[entity] is not None}
        tailnum = flight.get("tailnum")
        return slots, [(PLANE, tailnum)] if tailnum else []

    def _vector(self, flight: Mapping[str, Any], slots: Mapping[str, Slot], snapshot: Snapshot,
                as_of_us: int) -> dict[str, Any]:
        self._check(snapshot.coverage, as_of_us)
        tailnum = flight.get("tailnum")
        stored = snapshot.values
        plane = snapshot.records.get((PLANE, tailnum)) if tailnum else None
        values: dict[str, Any] = {}
        for name, feature in self.registry.items():
            if name in DERIVED:
                values[name] = DERIVED[name](flight, plane)
            elif feature.source == "flight":
                values[name] = flight.get(feature.value)
            elif feature.source == "planes":
                values[name] = (plane or {}).get(feature.value)
            elif name in slots and slots[name] in stored:
                values[name] = stored[slots[name]]
            else:  # nothing recorded yet: no events in the window, or no observation
                values[name] = 0 if feature.aggregation == "count" else None
        return values


@contextmanager
def scratch_store(online: OnlineSettings, paths: TarmacPaths, purpose: str) -> Iterator[OnlineStore]:
    """A throwaway online store of the configured backend beside the serving one (a SQLite file
    next to it, or a key prefix under it), removed afterwards: replays never touch what is served."""
    namespace = f"{purpose}-{uuid.uuid4().hex[:12]}"
    store = open_online_store(online, paths, namespace=namespace)
    try:
        yield store
    finally:
        store.clear()
        store.close()
        if store.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store.path}{suffix}").unlink(missing_ok=True)
