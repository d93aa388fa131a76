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

`apply` takes one event at a time and is the definition. `apply_all` computes a run of events in
event-time order as columns, one state at a time: the events entering it and the expiries leaving
it are merged in the order `apply` and `advance_to` take them (at an instant, the expiries in the
order they were queued, then the events in arrival order), running counts and sums are taken per
key along that sequence, in that order, so that the floats are added in the same order too, and a
value is recorded wherever `_record` would record it. It leaves the same state behind (open
windows, queued expiries, the last value recorded per feature and key), so batches, single events
and `advance_to` mix freely. Events before the watermark are rare and go through `apply`.
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import attrgetter, is_not
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tarmac.features.registry import FeatureDefinition, entity_keys, feature_registry, vocabulary
from tarmac.online.events import FIELDS, SOURCE_OF_KIND, Event

WINDOW_AGGREGATIONS = ("mean", "count", "rate")
# Runs of in-order events (or expiries due at once) shorter than this go one at a time: for a few,
# building columns costs more than it saves.
COLUMNAR_MIN = 32
_NEVER = np.iinfo(np.int64).min


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


def _present(objects: Sequence[Any]) -> np.ndarray:
    """Where `objects` are not None."""
    return np.fromiter(map(is_not, objects, repeat(None)), dtype=bool, count=len(objects))


def _floats(objects: Sequence[Any], checked: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Numbers (None among them) as float64, 0 where None, and where they are not None. Checked,
    TypeError for anything but None, ints and floats: the running sums might not take it as they
    take a float."""
    if checked and not all(kind is type(None) or issubclass(kind, int | float) for kind in set(map(type, objects))):
        raise TypeError("not a number")
    present = _present(objects)
    values = np.zeros(len(objects))
    if present.any():
        values[present] = np.array(objects, dtype=object)[present].astype(np.float64)
    return values, present


def _segment_sums(increments: np.ndarray, starts: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Running sums of integer increments, per segment (runs of one key) from its initial value."""
    sums = np.cumsum(increments)
    before = np.concatenate(([0], sums))[starts]
    return sums + np.repeat(initial - before, np.diff(np.append(starts, len(increments))))


def _bounds(sorted_codes: np.ndarray, keys: int) -> list[int]:
    """Where each key's run starts in codes sorted by key, and where the last one ends."""
    return np.searchsorted(sorted_codes, np.arange(keys + 1)).tolist()


@dataclass
class _Parsed:
    """One state's share of a run of in-order events: those with every key part, as columns."""

    ts: np.ndarray  # event times
    arrival: np.ndarray  # positions in the run
    codes: np.ndarray  # key codes, indexes into keys
    keys: list[str]
    events: list[Event]
    values: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # a window's value columns


# A list of FeatureChange built by tuple.__new__ over an iterable of 4-tuples: what FeatureChange._make
# does, without its Python-level call per change (a drain hands out hundreds of thousands).
_tuple_new = tuple.__new__


class SpeedLayer:
    """Consumes events (`apply`, `apply_all`), moves event time forward (`advance_to`) and hands out
    the feature changes recorded since the last `drain`. With columnar=False every event and expiry
    is applied one at a time, the definition the columnar path is held to."""

    def __init__(self, registry: Mapping[str, FeatureDefinition] | None = None, *, columnar: bool = True):
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
        self._pending: dict[tuple[str, str], tuple[list[int], list[Any]]] = {}  # slot -> (times, values)
        # columns need every key and value a state reads to be an event field
        needed = {name for g in self._groups for name in (*g.fields, *(f.value for f in g.features if f.value))}
        self.columnar = columnar and needed <= set(FIELDS)

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
        """`apply` each event in turn, with the same effect; runs of events in event-time order are
        computed as columns."""
        events = events if isinstance(events, Sequence) else list(events)
        if not self.columnar or len(events) < COLUMNAR_MIN:
            for event in events:
                self.apply(event)
            return
        try:
            kinds, kind_names = pd.factorize(np.array(list(map(attrgetter("kind"), events)), dtype=object))
            ts = np.array(list(map(attrgetter("ts_us"), events)))
        except AttributeError:
            kinds, kind_names, ts = np.array([-1]), [], np.zeros(0)
        if (kinds < 0).any() or not set(kind_names) <= SOURCE_OF_KIND.keys() or ts.dtype != np.int64:
            for event in events:  # not events, an unknown kind, a time not an integer: as apply takes them
                self.apply(event)
            return
        sources = {source: [i for i, kind in enumerate(kind_names) if SOURCE_OF_KIND[kind] == source]
                   for source in self._by_source}
        # an event is late when it is before the watermark its predecessors leave
        previous = np.empty(len(ts), dtype=np.int64)
        previous[0] = _NEVER if self.watermark_us is None else self.watermark_us
        np.maximum(np.maximum.accumulate(ts[:-1]), previous[0], out=previous[1:])
        start = 0
        for late in [*np.flatnonzero(ts < previous).tolist(), len(events)]:
            self._apply_in_order(events[start:late], kinds[start:late], ts[start:late], sources)
            if late < len(events):
                self.apply(events[late])
            start = late + 1

    def advance_to(self, at_us: int) -> None:
        """Event time is now `at_us`: every event up to it has been applied, and the windows drop
        what left them, recorded at the instant it left."""
        due = self._pop_due(at_us)
        if self.columnar and len(due) >= COLUMNAR_MIN:
            self._apply_columns({}, 0, due, at_us)
        else:
            for expires, _, index, key, payload in due:
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

    def _pop_due(self, at_us: int) -> list[tuple[int, int, int, str, Any]]:
        """The queued expiries up to `at_us`, in the order they are applied."""
        expiries, due = self._expiries, []
        while expiries and expiries[0][0] <= at_us:
            due.append(heapq.heappop(expiries))
        return due

    # -- columns --------------------------------------------------------------------------------
    def _apply_in_order(self, events: Sequence[Event], kinds: np.ndarray, ts: np.ndarray,
                        sources: dict[str, list[int]]) -> None:
        """Events none of which is before the watermark or an earlier one, so in event-time order."""
        parsed = self._parse(events, kinds, ts, sources) if len(events) >= COLUMNAR_MIN else None
        if parsed is None:
            for event in events:
                self.apply(event)
            return
        until = int(ts[-1])
        self._apply_columns(parsed, len(events), self._pop_due(until), until)
        self.stats.events += len(events)
        if self.watermark_us is None or until > self.watermark_us:
            self.watermark_us = until

    def _parse(self, events: Sequence[Event], kinds: np.ndarray, ts: np.ndarray,
               sources: dict[str, list[int]]) -> dict[int, _Parsed] | None:
        """Each state's events as columns, or None where `apply` would fail (a key part that is not a
        string, a value that is not a number) so that it fails the same way."""
        by_source: dict[str, tuple[np.ndarray, list[Event], dict[str, Any]]] = {}
        parsed: dict[int, _Parsed] = {}
        try:
            for index, group in enumerate(self._groups):
                if group.source not in by_source:
                    mask = np.isin(kinds, sources[group.source])
                    by_source[group.source] = (np.flatnonzero(mask), list(compress(events, mask.tolist())), {})
                where, sub, columns = by_source[group.source]
                for name in (*group.fields, *(group.values if isinstance(group, _Window) else ())):
                    if name not in columns:
                        column = list(map(attrgetter(name), sub))
                        columns[name] = column if name in group.fields else _floats(column)
                parts = [columns[name] for name in group.fields]
                present = _present(parts[0])
                for part in parts[1:]:
                    present &= _present(part)
                kept = [list(compress(part, present.tolist())) for part in parts]
                keys = kept[0] if len(kept) == 1 else list(map("|".join, zip(*kept)))
                codes, uniques = pd.factorize(np.array(keys, dtype=object))
                if not all(isinstance(key, str) for key in uniques):
                    return None
                arrival = where[present]
                one = _Parsed(ts[arrival], arrival, codes, uniques.tolist(), list(compress(sub, present.tolist())))
                if isinstance(group, _Window):
                    one.values = [(columns[name][0][present], columns[name][1][present]) for name in group.values]
                parsed[index] = one
        except (TypeError, ValueError, OverflowError):
            return None
        return parsed

    def _apply_columns(self, parsed: dict[int, _Parsed], n_events: int, due: list[tuple], until: int) -> None:
        """Apply a run's `n_events` events, parsed, and the expiries `due` (popped from the queue, in
        its order) up to `until`, the time of the last event or the instant advanced to."""
        base = self._seq + 1  # an expiry queued here by the event at position i of group g: base + i * G + g
        due_by_group: dict[int, list[tuple]] = {}
        for entry in due:
            due_by_group.setdefault(entry[2], []).append(entry)
        records: list[tuple[tuple, tuple[str, str], list[int], list[Any]]] = []
        queued: list[tuple] = []
        for index, group in enumerate(self._groups):
            one, old = parsed.get(index), due_by_group.get(index, [])
            if (one is None or not len(one.ts)) and not old:
                continue
            if one is None:  # expiries alone
                nothing = np.zeros(0, dtype=np.int64)
                one = _Parsed(nothing, nothing, nothing, [], [])
                if isinstance(group, _Window):
                    one.values = [(np.zeros(0), np.zeros(0, dtype=bool)) for _ in group.values]
            apply = self._window_columns if isinstance(group, _Window) else self._latest_columns
            apply(index, group, one, old, base, until, records, queued)
        self._seq = base + n_events * len(self._groups) - 1
        if len(queued) > len(self._expiries) // 8:
            self._expiries.extend(queued)
            heapq.heapify(self._expiries)
        else:
            for entry in queued:
                heapq.heappush(self._expiries, entry)
        records.sort(key=lambda record: record[0])  # slots new to this drain join in the order apply meets them
        for _, slot, times, values in records:
            pending = self._pending.get(slot)
            if pending is None:
                self._pending[slot] = (times, values)
                continue
            if pending[0][-1] == times[0]:  # one value per instant: the latest
                pending[1][-1] = values[0]
                times, values = times[1:], values[1:]
            pending[0].extend(times)
            pending[1].extend(values)

    def _merged(self, index: int, one: _Parsed, old: list[tuple], starts_at: np.ndarray, base: int,
                codes_of_old: list[int]) -> tuple[np.ndarray, ...]:
        """The order apply and advance_to take a state's steps in, per key: the queued expiries, the
        expiries of this run's events (those starting at starts_at, by the run's time) and the
        events. Returns (order, times, phases: 0 expiry 1 event, ties: queue sequence or arrival)."""
        n_old, n_new = len(old), len(starts_at)
        times = np.concatenate((np.array([e[0] for e in old], dtype=np.int64), starts_at, one.ts))
        ties = np.concatenate((np.array([e[1] for e in old], dtype=np.int64),
                               base + one.arrival[:n_new] * len(self._groups) + index, one.arrival))
        phases = np.concatenate((np.zeros(n_old + n_new, dtype=np.int8), np.ones(len(one.ts), dtype=np.int8)))
        codes = np.concatenate((np.array(codes_of_old, dtype=np.int64), one.codes[:n_new], one.codes))
        # old expiries come in queue order and new ones in queue order after them, events in arrival
        # order: a stable sort by time puts them in apply's order, a stable sort by key groups them
        order = np.argsort(times, kind="stable")
        order = order[np.argsort(codes[order], kind="stable")]
        return order, times[order], phases[order], ties[order], codes[order]

    @staticmethod
    def _codes(keys: list[str], old: list[tuple]) -> list[int]:
        """The key codes of queued expiries, adding keys the run's events do not have."""
        index = dict(zip(keys, range(len(keys))))
        codes = []
        for entry in old:
            code = index.get(entry[3])
            if code is None:
                code = index[entry[3]] = len(keys)
                keys.append(entry[3])
            codes.append(code)
        return codes

    def _window_columns(self, index: int, group: _Window, one: _Parsed, old: list[tuple], base: int, until: int,
                        records: list, queued: list) -> None:
        expires = one.ts + group.width_us
        n_new = int(np.searchsorted(expires, until, side="right"))  # the run's expiries due in it
        old_codes = self._codes(one.keys, old)
        order, times, phases, ties, codes = self._merged(index, one, old, expires[:n_new], base, old_codes)
        n_old, keys = len(old), one.keys
        signs = np.concatenate((np.full(n_old + n_new, -1, dtype=np.int64), np.ones(len(one.ts), dtype=np.int64)))[order]
        bounds = _bounds(codes, len(keys))
        starts = np.array(bounds[:-1], dtype=np.int64)
        initial = [group.state.get(key) for key in keys]
        count = _segment_sums(signs, starts, np.array([int(s[0]) if s else 0 for s in initial], dtype=np.int64))
        columns = []  # (sum, n, hits) per value, after each step
        for i, name in enumerate(group.values):
            new_values, new_present = one.values[i]
            old_values, old_present = _floats([getattr(entry[4], name) for entry in old], checked=False)  # applied already
            values = np.concatenate((old_values, new_values[:n_new], new_values))[order]
            present = np.concatenate((old_present, new_present[:n_new], new_present))[order]
            steps = np.where(present, signs, 0)
            n = _segment_sums(steps, starts, np.array([int(s[2 + 3 * i]) if s else 0 for s in initial], dtype=np.int64))
            hits = _segment_sums(np.where(values >= group.threshold, steps, 0), starts,
                                 np.array([int(s[3 + 3 * i]) if s else 0 for s in initial], dtype=np.int64))
            # the sum in the order apply adds, from each key's sum: not reassociated
            added = np.where(present, signs * values, 0.0)
            total = np.empty_like(added)
            for k, state in enumerate(initial):
                lo, hi = bounds[k], bounds[k + 1]
                added[lo] = (state[1 + 3 * i] if state else 0.0) + added[lo]
                np.cumsum(added[lo:hi], out=total[lo:hi])
            columns.append((total, n, hits))
        ends = [b - 1 for b in bounds[1:]]  # each key's state after its last step, laid out as _Window.state
        final = np.stack([count[ends], *(c[ends] for column in columns for c in column)], axis=1, dtype=np.float64)
        group.state.update(zip(keys, final.tolist()))
        runs = self._runs(codes, times)
        for position, feature in enumerate(group.features):
            if feature.aggregation == "count":
                values, present = count, None
            else:
                total, n, hits = columns[group.values.index(feature.value)]
                present = n != 0
                values = np.divide(total if feature.aggregation == "mean" else hits, n,
                                   out=np.zeros(len(n)), where=present)
            self._record_columns(feature.name, keys, bounds, codes, times, phases, ties, runs, values, present,
                                 (index, position), records)
        queued.extend(zip(expires[n_new:].tolist(),
                          (base + one.arrival[n_new:] * len(self._groups) + index).tolist(),
                          repeat(index), [keys[c] for c in one.codes[n_new:].tolist()], one.events[n_new:]))

    @staticmethod
    def _runs(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Where each (key, instant) starts among steps sorted by key and time."""
        starts = np.ones(len(codes), dtype=bool)
        starts[1:] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
        return np.flatnonzero(starts)

    def _record_columns(self, name: str, keys: list[str], bounds: list[int], codes: np.ndarray, times: np.ndarray,
                        phases: np.ndarray, ties: np.ndarray, runs: np.ndarray, values: np.ndarray,
                        present: np.ndarray | None, place: tuple[int, int], records: list) -> None:
        """`_record` over one feature's values after each step (None where not present): a step
        changes the value unless equal to the one before (and of its type); at each instant with a
        change the value of its last change is recorded."""
        changed = np.empty(len(values), dtype=bool)
        changed[1:] = values[1:] != values[:-1]
        if present is not None:
            changed[1:] = (present[1:] != present[:-1]) | (present[1:] & changed[1:])
        starts = bounds[:-1]
        firsts = values[starts].tolist()
        if present is not None:
            firsts = [value if known else None for value, known in zip(firsts, present[starts].tolist())]
        for k, (key, value) in enumerate(zip(keys, firsts)):  # each key's first step against the last value recorded
            lo = bounds[k]
            slot = (name, key)
            changed[lo] = not (slot in self._last and self._last[slot] == value
                               and type(self._last[slot]) is type(value))
        steps = np.arange(len(values))
        last_change = np.maximum.reduceat(np.where(changed, steps, -1), runs)
        with_change = last_change >= 0
        recorded = last_change[with_change]
        # a slot joins the pending changes at its first change, which places it in the drain
        first_change = np.minimum.reduceat(np.where(changed, steps, len(steps)), runs)[with_change]
        at = times[recorded].tolist()
        out = values[recorded].tolist()
        if present is not None:
            for i in np.flatnonzero(~present[recorded]).tolist():
                out[i] = None
        split = _bounds(codes[recorded], len(keys))
        for k, key in enumerate(keys):
            lo, hi = split[k], split[k + 1]
            if lo < hi:
                first = first_change[lo]
                records.append(((at[lo], int(phases[first]), int(ties[first]), *place), (name, key), at[lo:hi], out[lo:hi]))
                self._last[(name, key)] = out[hi - 1]

    def _latest_columns(self, index: int, group: _Latest, one: _Parsed, old: list[tuple], base: int, until: int,
                        records: list, queued: list) -> None:
        old_codes = self._codes(one.keys, old)
        keys, initial = one.keys, [group.state.get(key) for key in one.keys]
        initial_ts = np.array([s[0] if s else _NEVER for s in initial], dtype=np.int64)
        initial_known = np.array([s is not None for s in initial], dtype=bool)
        # an observation is ignored unless newer than the key's latest, in a run in time order the
        # key's observation before it (or the one it had)
        by_key = np.argsort(one.codes, kind="stable")
        codes, ts = one.codes[by_key], one.ts[by_key]
        first = np.ones(len(codes), dtype=bool)
        first[1:] = codes[1:] != codes[:-1]
        before = np.empty(len(ts), dtype=np.int64)
        before[1:] = ts[:-1]
        known = ~first
        before[first], known[first] = initial_ts[codes[first]], initial_known[codes[first]]
        accepted = np.empty(len(ts), dtype=bool)
        accepted[by_key] = ~known | (ts > before)
        self.stats.late_ignored += int((~accepted).sum())
        taken = _Parsed(one.ts[accepted], one.arrival[accepted], one.codes[accepted], keys,
                        list(compress(one.events, accepted.tolist())))
        expires = taken.ts + group.max_age_us + 1
        n_new = int(np.searchsorted(expires, until, side="right"))
        order, times, phases, ties, codes = self._merged(index, taken, old, expires[:n_new], base, old_codes)
        n_old = len(old)
        # an expiry applies if its observation is still the key's latest: the last one before it, or
        # the one the key had
        observed = np.concatenate((np.array([e[4] for e in old], dtype=np.int64), taken.ts[:n_new], taken.ts))[order]
        which = np.concatenate((np.full(n_old + n_new, -1, dtype=np.int64), np.arange(len(taken.ts))))[order]
        is_event = phases == 1
        bounds = _bounds(codes, len(keys))
        key_start = np.array(bounds, dtype=np.int64)[codes]
        last = np.maximum.accumulate(np.where(is_event, np.arange(len(codes)), -1))
        own = last >= key_start
        latest = np.where(own, observed[np.maximum(last, 0)], initial_ts[codes])
        kept = np.flatnonzero(is_event | ((own | initial_known[codes]) & (latest == observed)))
        sources = [taken.events[j] if j >= 0 else None for j in which[kept].tolist()]
        kept_times = times[kept].tolist()
        kept_bounds = _bounds(codes[kept], len(keys))
        for position, feature in enumerate(group.features):
            get = attrgetter(feature.value)
            values = [None if e is None else get(e) for e in sources]
            for k, key in enumerate(keys):
                lo, hi = kept_bounds[k], kept_bounds[k + 1]
                if lo < hi:
                    self._record_steps(feature.name, key, kept_times[lo:hi], values[lo:hi],
                                       (phases, ties, kept, lo, index, position), records)
        for code, t, event in zip(taken.codes.tolist(), taken.ts.tolist(), taken.events):
            group.state[keys[code]] = (t, event)
        queued.extend(zip(expires[n_new:].tolist(),
                          (base + taken.arrival[n_new:] * len(self._groups) + index).tolist(),
                          repeat(index), [keys[c] for c in taken.codes[n_new:].tolist()], taken.ts[n_new:].tolist()))

    def _record_steps(self, name: str, key: str, times: list[int], values: list[Any], where: tuple,
                      records: list) -> None:
        """`_record` of one slot's values, step by step (values that are any object)."""
        phases, ties, kept, offset, index, position = where
        slot = (name, key)
        known, last = slot in self._last, self._last.get(slot)
        at: list[int] = []
        out: list[Any] = []
        first = None
        for i, (t, value) in enumerate(zip(times, values)):
            if known and last == value and type(last) is type(value):
                continue
            known, last = True, value
            if at and at[-1] == t:
                out[-1] = value
            else:
                at.append(t)
                out.append(value)
                if first is None:
                    first = kept[offset + i]
        if at:
            records.append(((at[0], int(phases[first]), int(ties[first]), index, position), slot, at, out))
            self._last[slot] = last

    # -- output ---------------------------------------------------------------------------------
    def _record(self, values: Mapping[str, Any], key: str, at_us: int) -> None:
        for name, value in values.items():
            slot = (name, key)
            if slot in self._last and self._last[slot] == value and type(self._last[slot]) is type(value):
                continue
            self._last[slot] = value
            pending = self._pending.get(slot)
            if pending is None:
                self._pending[slot] = ([at_us], [value])
            elif pending[0][-1] == at_us:
                pending[1][-1] = value
            else:
                pending[0].append(at_us)
                pending[1].append(value)

    def drain(self) -> list[FeatureChange]:
        """The changes recorded since the last drain, oldest first per feature and key."""
        # Without cyclic garbage collection meanwhile: the changes are up to hundreds of thousands of
        # tuples that hold no reference cycle, but a tuple subclass stays tracked, and the
        # collections their number triggers would each walk every object of the process, for
        # nothing (a caller that drops them frees them by reference counting alone).
        collecting = gc.isenabled()
        gc.disable()
        try:
            out = list(map(_tuple_new, repeat(FeatureChange), chain.from_iterable(
                zip(repeat(name), repeat(key), times, values) for (name, key), (times, values) in self._pending.items())))
        finally:
            if collecting:
                gc.enable()
        self._pending.clear()
        self.stats.changes += len(out)
        return out
