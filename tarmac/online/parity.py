"""Training/serving parity: flights replayed through the online path and compared with gold.

For sampled flights, the events before their prediction times are streamed through the speed layer
into an online store, in event-time order, stopping at each flight's prediction_ts to read its
vector exactly as the serving API does. Each feature must equal gold's: strings and integers
exactly, floats within a tolerance.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from tarmac.features.registry import FeatureDefinition, feature_registry
from tarmac.online.batch import flight_records, plane_records
from tarmac.online.events import Event, from_us, silver_events, to_us
from tarmac.online.retrieval import PLANE, OnlineFeatures, scratch_store
from tarmac.online.speed_layer import SpeedLayer
from tarmac.online.store import OnlineStore
from tarmac.paths import TarmacPaths
from tarmac.quality.evaluate import Outcome
from tarmac.settings.online import OnlineSettings

PARITY_CHECK = "training_serving_parity"

def plain(value: Any) -> Any:
    """A warehouse value as plain Python: NULL, NaN and NA are None; numpy scalars are unboxed."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def differs(online: Any, batch: Any, tolerance: float) -> bool:
    online, batch = plain(online), plain(batch)
    if online is None or batch is None:
        return (online is None) != (batch is None)
    if isinstance(online, float) or isinstance(batch, float):
        return not abs(float(online) - float(batch)) <= tolerance
    return online != batch


@dataclass
class ParityResult:
    """The flights compared, and for those that differ, each differing feature's two values."""

    flights: list[str] = field(default_factory=list)
    mismatches: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    as_of: dict[str, str] = field(default_factory=dict)
    events: int = 0

    def for_flights(self, flight_ids: Sequence[str]) -> ParityResult:
        wanted = set(flight_ids)
        return ParityResult(
            [f for f in self.flights if f in wanted],
            {f: m for f, m in self.mismatches.items() if f in wanted},
            {f: t for f, t in self.as_of.items() if f in wanted},
            self.events,
        )

    @property
    def mismatch_rate(self) -> float:
        return len(self.mismatches) / len(self.flights) if self.flights else 0.0

    def by_feature(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for features in self.mismatches.values():
            for name in features:
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def examples(self, limit: int = 20) -> list[dict[str, Any]]:
        return [{"flight_id": f, "as_of": self.as_of[f], **m} for f, m in list(self.mismatches.items())[:limit]]


def replay_and_compare(
    flights: Mapping[str, Mapping[str, Any]],
    events: Sequence[Event],
    store: OnlineStore,
    tolerance: float,
    registry: Mapping[str, FeatureDefinition] | None = None,
) -> ParityResult:
    """Stream `events` (in event-time order, covering the longest window before the first flight's
    prediction_ts) through a speed layer into `store`, stopping at each flight's prediction_ts to
    read its features online and compare them with its batch (gold) vector. `flights` are the
    records of batch.flight_records."""
    registry = feature_registry() if registry is None else registry
    layer, reader = SpeedLayer(registry), OnlineFeatures(store, registry)
    result = ParityResult()
    ordered = sorted(flights.values(), key=lambda r: (to_us(pd.Timestamp(r["prediction_ts"])), r["flight_id"]))
    if not ordered:
        return result
    store.begin_stream(to_us(pd.Timestamp(ordered[0]["prediction_ts"])) - reader.max_window_us)
    position, times = 0, [event.ts_us for event in events]
    for record in ordered:
        at = to_us(pd.Timestamp(record["prediction_ts"]))
        end = max(position, bisect_right(times, at))  # the events up to the flight's time, in order
        layer.apply_all(events[position:end])
        position = end
        layer.advance_to(at)
        store.write(layer.drain(), at)
        online, batch = reader.for_flight(record, at), record["batch"]
        flight_id = record["flight_id"]
        result.flights.append(flight_id)
        result.as_of[flight_id] = from_us(at).isoformat()
        wrong = {n: {"online": plain(online[n]), "gold": plain(batch[n])}
                 for n in registry if differs(online[n], batch[n], tolerance)}
        if wrong:
            result.mismatches[flight_id] = wrong
    result.events = position
    return result


def parity_for_flights(con: duckdb.DuckDBPyConnection, flight_ids: Sequence[str], store: OnlineStore,
                       tolerance: float) -> ParityResult:
    """Replay silver's events through the online path for these flights and compare with gold.
    The store is a scratch one: its histories are rebuilt and its planes replaced."""
    flights = flight_records(con, flight_ids=flight_ids)
    if not flights:
        return ParityResult()
    store.put_records(PLANE, plane_records(con), group="all")
    times = [pd.Timestamp(r["prediction_ts"]) for r in flights.values()]
    max_window = pd.Timedelta(microseconds=OnlineFeatures(store).max_window_us)
    events = silver_events(con, min(times) - max_window, max(times))
    return replay_and_compare(flights, events, store, tolerance)


def sample_flights(con: duckdb.DuckDBPyConnection, days: Sequence[str], size: int, seed: int) -> dict[str, list[str]]:
    """Up to `size` flights of each local day, drawn reproducibly (the same rows give the same sample)."""
    frame = con.execute(
        "select flight_id, flight_date::varchar as day from gold.flight_features where flight_date::varchar in "
        "(select unnest(?)) order by flight_id", [list(days)],
    ).df()
    return {
        day: sorted(group.sample(n=min(size, len(group)), random_state=seed)["flight_id"])
        for day, group in frame.groupby("day")
    }


def parity_outcomes(con: duckdb.DuckDBPyConnection, key, days: Sequence[str], online: OnlineSettings,
                    paths: TarmacPaths, max_examples: int = 20) -> list[Outcome]:
    """The parity check of each day: its sampled flights replayed (all days in one pass) through a
    scratch online store of the configured backend, and their mismatch rate against its thresholds."""
    settings = online.parity
    samples = sample_flights(con, days, settings.sample_size, settings.seed)
    with scratch_store(online, paths, "parity") as store:
        result = parity_for_flights(con, [f for d in days for f in samples.get(d, [])], store, settings.float_tolerance)
        backend = store.backend
    outcomes = []
    for day in days:
        part = result.for_flights(samples.get(day, []))
        if not part.flights:
            outcomes.append(Outcome(key, PARITY_CHECK, day, "ok", "no flights of the day in gold.flight_features to compare",
                                    metrics={"flights_compared": 0.0}))
            continue
        rate = part.mismatch_rate
        summary = (f"{len(part.mismatches)} of {len(part.flights)} sampled flights differ online "
                   f"(rate {rate:.4f}; floats within {settings.float_tolerance:g})")
        if part.mismatches:
            summary += "; by feature: " + ", ".join(f"{n} {c}" for n, c in part.by_feature().items())
        outcomes.append(Outcome(
            key, PARITY_CHECK, day, settings.mismatch_rate.severity(rate), summary,
            metrics={"mismatch_rate": rate, "flights_compared": float(len(part.flights))},
            metadata={
                "mismatch_rate": dg.MetadataValue.float(rate),
                "flights_compared": dg.MetadataValue.int(len(part.flights)),
                "flights_mismatched": dg.MetadataValue.int(len(part.mismatches)),
                "mismatches_by_feature": dg.MetadataValue.json(part.by_feature()),
                "examples": dg.MetadataValue.json(part.examples(max_examples)),
                "events_replayed": dg.MetadataValue.int(result.events),
                "online_store": dg.MetadataValue.text(backend),
                "float_tolerance": dg.MetadataValue.float(settings.float_tolerance),
            },
        ))
    return outcomes
