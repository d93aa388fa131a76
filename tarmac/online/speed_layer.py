"""The speed layer (docs/design.md#online): the features' rolling windows and latest weather, kept
incrementally from a stream of events in event-time order, and emitted as a step function of
event time.

Everything is read from the feature registry: which event source feeds a feature, its entity key,
its aggregation and its window. Features that share (source, entity, window) share one state.

Windows are (p - w, p]: an event at time t enters every window at t and leaves it at exactly t + w,
so a feature's value only changes at those instants. The layer records the new value of a feature
for an entity key at each instant it changes, and a reader that takes the latest record at or
before p gets the exact value as of p. A weather observation at t is the latest one until a newer
arrives, and too old once p > t + max age, so it turns NULL one microsecond after t + max age.

Running sums hold whole minutes (dep_delay) as floats, which add and subtract exactly; a mean is
computed once from the exact sum, as SQL's avg does.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tarmac.features.registry import FeatureDefinition, entity_keys, feature_registry, vocabulary
from tarmac.online.events import SOURCE_OF_KIND, Event

WINDOW_AGGREGATIONS = ("mean", "count", "rate")


class FeatureChange(NamedTuple):
    """From `as_of_us` on (until the next change), `feature` of `entity_key` is `value`."""

    feature: str
    entity_key: str
    as_of_us: int
    value: Any


def entity_key(entity: str, record: Mapping[str, Any]) -> str | None:
    """The key a feature of `entity` is kept under, from an event or flight record; None if a key
    field is unknown."""
    parts = [record.get(name) for name in entity_keys(entity)]
    return None if any(p is None for p in parts) else "|".join(str(p) for p in parts)


def _us(window) -> int:
    return int(window.total_seconds()) * 1_000_000


@dataclass
class _Window:
    """Count, sums and threshold hits of one source's events per entity key over (p - w, p]."""

    source: str
    entity: str
    width_us: int
    features: list[FeatureDefinition]
    state: dict[str, list[float]] = field(default_factory=dict)  # key -> [n, (sum, n, hits) per value]

    def __post_init__(self) -> None:
        self.fields = entity_keys(self.entity)
        self.values = tuple(sorted({f.value for f in self.features if f.value is not None}))
        self.threshold = vocabulary().rate_threshold

    def add(self, key: str, event: Event, sign: int) -> None:
        state = self.state.setdefault(key, [0.0] * (1 + 3 * len(self.values)))
        state[0] += sign
        for i, name in enumerate(self.values):
            value = getattr(event, name)
            if value is not None:
                state[1 + 3 * i] += sign * value
                state[2 + 3 * i] += sign
                state[3 + 3 * i] += sign * (value >= self.threshold)

    def current(self, key: str) -> dict[str, Any]:
        state = self.state.get(key)
        out: dict[str, Any] = {}
        for feature in self.features:
            if feature.aggregation == "count":
                out[feature.name] = int(state[0]) if state else 0
                continue
            i = self.values.index(feature.value)
            total, n, hits = (state[1 + 3 * i], state[2 + 3 * i], state[3 + 3 * i]) if state else (0, 0, 0)
            if not n:
                out[feature.name] = None
            elif feature.aggregation == "mean":
                out[feature.name] = total / n
            else:  # rate: the share of values at or above the threshold
                out[feature.name] = hits / n
        return out


@dataclass
class _Latest:
    """The latest observation per entity key, and when it becomes too old to use."""

    source: str
    entity: str
    max_age_us: int
    features: list[FeatureDefinition]
    state: dict[str, tuple[int, Event]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fields = entity_keys(self.entity)

    def current(self, key: str, at_us: int) -> dict[str, Any]:
        observed = self.state.get(key)
        fresh = observed is not None and observed[0] >= at_us - self.max_age_us
        return {f.name: getattr(observed[1], f.value) if fresh else None for f in self.features}


@dataclass
class SpeedLayerStats:
    events: int = 0
    late_events: int = 0  # before the watermark, applied from the watermark on
    late_ignored: int = 0  # so late that they cannot change any value at or after the watermark
    changes: int = 0


class SpeedLayer:
    """Consumes events (`apply`), moves event time forward (`advance_to`) and hands out the
    feature changes recorded since the last `drain`."""

    def __init__(self, registry: Mapping[str, FeatureDefinition] | None = None):
        registry = feature_registry() if registry is None else registry
        windows: dict[tuple, list[FeatureDefinition]] = {}
        latest: dict[tuple, list[FeatureDefinition]] = {}
        for feature in registry.values():
            if feature.aggregation in (*WINDOW_AGGREGATIONS, "latest"):
                groups = windows if feature.aggregation in WINDOW_AGGREGATIONS else latest
                groups.setdefault((feature.source, feature.entity, _us(feature.window)), []).append(feature)
        self._groups: list[_Window | _Latest] = [
            *(_Window(*group, features=features) for group, features in windows.items()),
            *(_Latest(*group, features=features) for group, features in latest.items()),
        ]
        self._by_source: dict[str, list[int]] = {}
        for index, group in enumerate(self._groups):
            self._by_source.setdefault(group.source, []).append(index)
        self.max_window_us = max((g.width_us if isinstance(g, _Window) else g.max_age_us for g in self._groups), default=0)
        self.features = [f.name for g in self._groups for f in g.features]
        self.watermark_us: int | None = None
        self.stats = SpeedLayerStats()
        self._expiries: list[tuple[int, int, int, str, Any]] = []  # (at, seq, group, key, event or obs time)
        self._seq = 0
        self._last: dict[tuple[str, str], Any] = {}
        self._pending: dict[tuple[str, str], list[list]] = {}

    # -- input ----------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        self.stats.events += 1
        at = event.ts_us
        if self.watermark_us is None or at >= self.watermark_us:
            self.advance_to(at)
        else:
            self.stats.late_events += 1
            at = self.watermark_us
        for index in self._by_source.get(SOURCE_OF_KIND[event.kind], ()):
            group = self._groups[index]
            parts = [getattr(event, name) for name in group.fields]
            if None in parts:
                continue  # an event without the entity's key (no dest, say) has no value for it
            key = "|".join(parts)
            if isinstance(group, _Window):
                expires = event.ts_us + group.width_us
                if expires <= at:
                    self.stats.late_ignored += 1
                    continue
                group.add(key, event, +1)
                self._push(expires, index, key, event)
                self._record(group.current(key), key, at)
            else:
                previous = group.state.get(key)
                if previous is not None and previous[0] >= event.ts_us:
                    self.stats.late_ignored += 1  # an older (or the same) observation than the latest
                    continue
                group.state[key] = (event.ts_us, event)
                self._push(event.ts_us + group.max_age_us + 1, index, key, event.ts_us)
                self._record(group.current(key, at), key, at)

    def apply_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def advance_to(self, at_us: int) -> None:
        """Event time is now `at_us`: every event up to it has been applied, and the windows drop
        what left them, recorded at the instant it left."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= at_us:
            expires, _, index, key, payload = heapq.heappop(expiries)
            group = self._groups[index]
            if isinstance(group, _Window):
                group.add(key, payload, -1)
                self._record(group.current(key), key, expires)
            elif group.state.get(key, (None,))[0] == payload:  # still the latest observation
                self._record(group.current(key, expires), key, expires)
        if self.watermark_us is None or at_us > self.watermark_us:
            self.watermark_us = at_us

    def _push(self, at_us: int, index: int, key: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._expiries, (at_us, self._seq, index, key, payload))

    # -- output ---------------------------------------------------------------------------------
    def _record(self, values: Mapping[str, Any], key: str, at_us: int) -> None:
        for name, value in values.items():
            slot = (name, key)
            if slot in self._last and self._last[slot] == value and type(self._last[slot]) is type(value):
                continue
            self._last[slot] = value
            changes = self._pending.setdefault(slot, [])
            if changes and changes[-1][0] == at_us:
                changes[-1][1] = value
            else:
                changes.append([at_us, value])

    def drain(self) -> list[FeatureChange]:
        """The changes recorded since the last drain, oldest first per feature and key."""
        out = [FeatureChange(name, key, at, value)
               for (name, key), changes in self._pending.items() for at, value in changes]
        self._pending.clear()
        self.stats.changes += len(out)
        return out
